//! Durability: the engine handle every partition shares, the poison flag,
//! and the group-commit thread.
//!
//! Group commit: each [`Committer::register`] adds a oneshot; the thread
//! takes every waiter registered before its cycle starts, makes everything
//! durable once (sled flush + syncfs), and answers them all. Many acks=all
//! produce requests thus share one fsync-equivalent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::engine::Engine;
use crate::error::{Result, StorageError};

/// State every partition log and background thread shares.
pub(crate) struct Shared {
    pub(crate) engine: Box<dyn Engine>,
    /// Set once a flush failed; never cleared (see [`StorageError::Poisoned`]).
    poisoned: AtomicBool,
    /// Writes since the last durable flush started.
    dirty: AtomicBool,
    /// Serialises durable flushes from the thread and from `flush_now`.
    flush_lock: Mutex<()>,
    /// Set by [`crate::Store::inject_flush_failure`]: the next durable
    /// flush fails as if the disk had refused it.
    inject_failure: AtomicBool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Our critical sections leave their data consistent at every step (the
    // engine write is the commit point), so a panic elsewhere is no reason
    // to stop serving: recover the guard.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(engine: Box<dyn Engine>) -> Shared {
        Shared {
            engine,
            poisoned: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            flush_lock: Mutex::new(()),
            inject_failure: AtomicBool::new(false),
        }
    }

    /// `Err(Poisoned)` once a flush has failed.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            Err(StorageError::Poisoned)
        } else {
            Ok(())
        }
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Makes the next durable flush fail (see `inject_failure`).
    pub(crate) fn inject_flush_failure(&self) {
        self.inject_failure.store(true, Ordering::Release);
    }

    /// Records that there is something for the next flush to do.
    pub(crate) fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Flushes everything written so far; poisons the store on failure.
    pub(crate) fn flush_durable(&self) -> Result<()> {
        let _g = lock(&self.flush_lock);
        self.check_writable()?;
        // Cleared before flushing: a write racing with the flush sets it
        // again and is picked up by the next cycle. If nothing was written
        // since the last flush started (and, holding the lock, finished),
        // there is nothing to do: an idle sync costs no syncfs.
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let flushed = if self.inject_failure.swap(false, Ordering::AcqRel) {
            Err(StorageError::Io(std::io::Error::other(
                "injected flush failure",
            )))
        } else {
            self.engine.flush_durable()
        };
        match flushed {
            Ok(()) => Ok(()),
            Err(e) => {
                // After a failed fsync the kernel may have dropped the dirty
                // pages: retrying could report success for lost data.
                tracing::error!(error = %e, "durable flush failed; storage is now poisoned");
                self.poisoned.store(true, Ordering::Release);
                Err(e)
            }
        }
    }
}

type Waiter = oneshot::Sender<Result<()>>;

#[derive(Default)]
struct CommitState {
    waiters: Vec<Waiter>,
    shutdown: bool,
}

struct CommitCtl {
    state: Mutex<CommitState>,
    cv: Condvar,
}

/// The group-commit thread of a persistent store.
pub(crate) struct Committer {
    ctl: Arc<CommitCtl>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Committer {
    /// Starts the thread. `flush_interval_ms` > 0 also flushes periodically
    /// when there were writes.
    pub(crate) fn start(shared: Arc<Shared>, flush_interval_ms: u64) -> Result<Committer> {
        let ctl = Arc::new(CommitCtl {
            state: Mutex::new(CommitState::default()),
            cv: Condvar::new(),
        });
        let interval = (flush_interval_ms > 0).then(|| Duration::from_millis(flush_interval_ms));
        let thread_ctl = Arc::clone(&ctl);
        let thread = std::thread::Builder::new()
            .name("gregor-group-commit".into())
            .spawn(move || run(&shared, &thread_ctl, interval))?;
        Ok(Committer {
            ctl,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Registers a waiter answered after the next flush cycle that starts
    /// after this call.
    pub(crate) fn register(&self) -> oneshot::Receiver<Result<()>> {
        let (tx, rx) = oneshot::channel();
        let mut st = lock(&self.ctl.state);
        st.waiters.push(tx);
        drop(st);
        self.ctl.cv.notify_one();
        rx
    }

    /// Stops the thread after a last flush of whatever is pending.
    pub(crate) fn shutdown(&self) {
        lock(&self.ctl.state).shutdown = true;
        self.ctl.cv.notify_one();
        if let Some(t) = lock(&self.thread).take() {
            if t.join().is_err() {
                tracing::error!("group-commit thread panicked");
            }
        }
    }
}

fn run(shared: &Shared, ctl: &CommitCtl, interval: Option<Duration>) {
    let mut next_periodic = interval.map(|i| Instant::now() + i);
    loop {
        let mut st = lock(&ctl.state);
        // Wait for a waiter, shutdown, or a due periodic flush with writes.
        loop {
            if !st.waiters.is_empty() || st.shutdown {
                break;
            }
            match next_periodic {
                Some(due) => {
                    let now = Instant::now();
                    if now >= due {
                        next_periodic = interval.map(|i| now + i);
                        if shared.dirty.load(Ordering::Acquire) {
                            break;
                        }
                        continue;
                    }
                    st = ctl
                        .cv
                        .wait_timeout(st, due - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                None => st = ctl.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
            }
        }
        // Everyone registered before this point is covered by this cycle.
        let waiters = std::mem::take(&mut st.waiters);
        let shutdown = st.shutdown;
        drop(st);

        let result = if shared.is_poisoned() {
            Err(StorageError::Poisoned)
        } else if waiters.is_empty() && !shared.dirty.load(Ordering::Acquire) {
            Ok(())
        } else {
            shared.flush_durable()
        };
        let ok = result.is_ok();
        for w in waiters {
            // A dropped receiver just means nobody is waiting any more.
            let _ = w.send(if ok {
                Ok(())
            } else {
                Err(StorageError::Poisoned)
            });
        }
        if shutdown {
            // Answer anyone who registered during the last flush too.
            let late = std::mem::take(&mut lock(&ctl.state).waiters);
            if !late.is_empty() {
                let ok = shared.flush_durable().is_ok();
                for w in late {
                    let _ = w.send(if ok {
                        Ok(())
                    } else {
                        Err(StorageError::Poisoned)
                    });
                }
            }
            return;
        }
    }
}
