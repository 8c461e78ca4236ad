//! Durability: the context every partition shares (engine, filesystem,
//! open-file cache, what still needs a sync), the poison flag, and the
//! group-commit thread.
//!
//! Group commit: each [`Committer::register`] adds a oneshot; the thread
//! takes every waiter registered before its cycle starts, makes everything
//! written so far durable once (a directory fsync for each new or removed
//! segment file, `fdatasync` of each segment file written since the last
//! cycle, and a sled flush + fsync only when sled itself was written), and
//! answers them all. Many acks=all produce requests thus share one sync.
//!
//! Checkpoints: every flush interval (and at close) the cycle also writes
//! each changed partition's checkpoint to sled (index entries, producer
//! state, segment list, recovery point) AFTER syncing the segment files, so
//! a durable recovery point never covers data that is not durable.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::engine::{Engine, WriteBatch};
use crate::error::{Result, StorageError};
use crate::fs::{FileHandle, Fs};
use crate::partition::PartitionLog;
use crate::AppendOutcome;

/// Engine writes per checkpoint batch (whole partitions each).
const CHECKPOINT_BATCH: usize = 2048;

/// Which partitions a durable flush checkpoints.
#[derive(Clone, Copy)]
pub(crate) enum Checkpoint<'a> {
    /// None: just make the writes so far durable.
    None,
    /// Every partition changed since its last checkpoint.
    All,
    /// This one, changed or not.
    One(&'a PartitionLog),
}

#[derive(Default)]
struct Unsynced {
    /// Keyed by the handle's address: one entry per open file.
    files: HashMap<usize, Arc<dyn FileHandle>>,
    dirs: BTreeSet<PathBuf>,
}

/// Open files by path, with the tick of their last use; and the clock.
type OpenFiles = (HashMap<PathBuf, (Arc<dyn FileHandle>, u64)>, u64);

/// Open segment files, at most `cap` at a time (least recently used goes),
/// so that 100,000 partitions do not need 100,000 descriptors.
pub(crate) struct FileCache {
    fs: Arc<dyn Fs>,
    cap: usize,
    inner: Mutex<OpenFiles>,
}

impl FileCache {
    pub(crate) fn new(fs: Arc<dyn Fs>, cap: usize) -> FileCache {
        FileCache {
            fs,
            cap: cap.max(1),
            inner: Mutex::new((HashMap::new(), 0)),
        }
    }

    /// The open file at `path`, opening (or creating) it if needed.
    pub(crate) fn get(&self, path: &Path, create: bool) -> std::io::Result<Arc<dyn FileHandle>> {
        let mut g = lock(&self.inner);
        g.1 += 1;
        let tick = g.1;
        if let Some(e) = g.0.get_mut(path) {
            e.1 = tick;
            return Ok(Arc::clone(&e.0));
        }
        let f = self.fs.open(path, create)?;
        if g.0.len() >= self.cap {
            // Close the least recently used eighth at once: one pass over
            // the map per cap/8 misses, not one per miss, when more files
            // are in use than the cap (100,000 partitions written in turn).
            let mut ticks: Vec<u64> = g.0.values().map(|v| v.1).collect();
            let k = (ticks.len() / 8).max(1);
            let (_, cutoff, _) = ticks.select_nth_unstable(k - 1);
            let cutoff = *cutoff;
            g.0.retain(|_, v| v.1 > cutoff);
        }
        g.0.insert(path.to_path_buf(), (Arc::clone(&f), tick));
        Ok(f)
    }

    /// Drops the cached handle of one file (replaced by a rename).
    pub(crate) fn forget(&self, path: &Path) {
        lock(&self.inner).0.remove(path);
    }

    /// Drops the cached handles of files under `prefix` (deleted files).
    pub(crate) fn forget_under(&self, prefix: &Path) {
        lock(&self.inner).0.retain(|p, _| !p.starts_with(prefix));
    }

    /// Number of files open through the cache (tests).
    pub(crate) fn open_count(&self) -> usize {
        lock(&self.inner).0.len()
    }
}

/// State every partition log and background thread shares.
/// Called after each group-commit cycle that answered acks=all waiters,
/// with its duration and the number of waiters it answered.
pub type SyncObserver = Box<dyn Fn(Duration, usize) + Send + Sync>;

pub(crate) struct Shared {
    pub(crate) engine: Box<dyn Engine>,
    pub(crate) fs: Arc<dyn Fs>,
    /// Data directory: partition directories live right under it.
    pub(crate) root: PathBuf,
    pub(crate) files: FileCache,
    /// Sparse index spacing (Kafka's `index.interval.bytes`).
    pub(crate) index_interval: u64,
    /// Memory stores write index entries straight into the engine: there is
    /// no checkpoint to carry them and nothing to recover.
    pub(crate) direct_index: bool,
    unsynced: Mutex<Unsynced>,
    /// Every live partition, for checkpoints.
    logs: Mutex<HashMap<u32, Weak<PartitionLog>>>,
    /// Partitions changed since their last checkpoint (log ids; may repeat).
    changed: Mutex<Vec<u32>>,
    /// Set once a flush failed; never cleared (see [`StorageError::Poisoned`]).
    poisoned: AtomicBool,
    /// Engine writes since the last durable engine flush started.
    dirty: AtomicBool,
    /// Appends since the last checkpoint.
    ckpt_dirty: AtomicBool,
    /// Serialises durable flushes from the thread and from `flush_now`.
    flush_lock: Mutex<()>,
    /// Set by [`crate::Store::inject_flush_failure`]: the next durable
    /// flush fails as if the disk had refused it.
    inject_failure: AtomicBool,
    /// Told the duration and size of every group-commit cycle (metrics).
    pub(crate) observer: std::sync::OnceLock<SyncObserver>,
    /// Set when the store is dropped: partition handles that outlive it
    /// refuse writes (they would miss the closing checkpoint).
    closed: AtomicBool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Our critical sections leave their data consistent at every step (the
    // engine write is the commit point), so a panic elsewhere is no reason
    // to stop serving: recover the guard.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(
        engine: Box<dyn Engine>,
        fs: Arc<dyn Fs>,
        root: PathBuf,
        max_open_files: usize,
        index_interval: u64,
    ) -> Shared {
        let direct_index = !engine.is_persistent();
        Shared {
            engine,
            files: FileCache::new(Arc::clone(&fs), max_open_files),
            fs,
            root,
            index_interval: index_interval.max(1),
            direct_index,
            unsynced: Mutex::new(Unsynced::default()),
            logs: Mutex::new(HashMap::new()),
            changed: Mutex::new(Vec::new()),
            poisoned: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            ckpt_dirty: AtomicBool::new(false),
            flush_lock: Mutex::new(()),
            inject_failure: AtomicBool::new(false),
            observer: std::sync::OnceLock::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// See `closed`.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// `Err(Poisoned)` once a flush has failed.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            Err(StorageError::Poisoned)
        } else if self.closed.load(Ordering::Acquire) {
            Err(StorageError::Engine("the store is closed".into()))
        } else {
            Ok(())
        }
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Refuses everything from now on: a write or sync failed, so the
    /// kernel may have dropped pages we cannot name.
    pub(crate) fn poison(&self, what: &str, e: &dyn std::fmt::Display) {
        tracing::error!(error = %e, "{what} failed; storage is now poisoned");
        self.poisoned.store(true, Ordering::Release);
    }

    /// Makes the next durable flush fail (see `inject_failure`).
    pub(crate) fn inject_flush_failure(&self) {
        self.inject_failure.store(true, Ordering::Release);
    }

    /// Records an engine write for the next flush to make durable.
    pub(crate) fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Records an append for the next checkpoint.
    pub(crate) fn mark_ckpt_dirty(&self) {
        self.ckpt_dirty.store(true, Ordering::Release);
    }

    /// A segment file was written: the next cycle fdatasyncs it.
    pub(crate) fn unsynced_file(&self, f: &Arc<dyn FileHandle>) {
        if !self.engine.is_persistent() {
            return; // memory: nothing to sync
        }
        let key = Arc::as_ptr(f).cast::<u8>() as usize;
        lock(&self.unsynced)
            .files
            .entry(key)
            .or_insert_with(|| Arc::clone(f));
    }

    /// A file was created or removed in `dir`: the next cycle fsyncs it.
    pub(crate) fn unsynced_dir(&self, dir: &Path) {
        if !self.engine.is_persistent() {
            return;
        }
        lock(&self.unsynced).dirs.insert(dir.to_path_buf());
    }

    pub(crate) fn register_log(&self, log: &Arc<PartitionLog>) {
        lock(&self.logs).insert(log.lid(), Arc::downgrade(log));
    }

    /// A partition changed: the next checkpoint visits it.
    pub(crate) fn changed_log(&self, lid: u32) {
        lock(&self.changed).push(lid);
    }

    pub(crate) fn unregister_log(&self, lid: u32) {
        lock(&self.logs).remove(&lid);
    }

    fn has_work(&self) -> bool {
        self.dirty.load(Ordering::Acquire) || self.ckpt_dirty.load(Ordering::Acquire) || {
            let u = lock(&self.unsynced);
            !u.files.is_empty() || !u.dirs.is_empty()
        }
    }

    /// Makes everything written so far durable (and checkpoints as asked);
    /// poisons the store on failure.
    pub(crate) fn flush_durable(&self, ckpt: Checkpoint<'_>) -> Result<()> {
        let _g = lock(&self.flush_lock);
        self.check_writable()?;
        let r = self.flush_locked(ckpt);
        if let Err(e) = &r {
            self.poison("durable flush", e);
        }
        r
    }

    fn flush_locked(&self, ckpt: Checkpoint<'_>) -> Result<()> {
        // Checkpoint snapshots first: the syncs below then cover every
        // byte their recovery points promise.
        let mut snaps = Vec::new();
        match ckpt {
            Checkpoint::None => {}
            Checkpoint::All => {
                if self.ckpt_dirty.swap(false, Ordering::AcqRel) {
                    let logs: Vec<Arc<PartitionLog>> = lock(&self.logs)
                        .values()
                        .filter_map(Weak::upgrade)
                        .collect();
                    for log in logs {
                        if let Some(s) = log.snapshot(false) {
                            snaps.push((log, s));
                        }
                    }
                }
            }
            Checkpoint::One(log) => {
                if let Some(s) = log.snapshot(true) {
                    // A borrowed log: find its Arc to finish the checkpoint.
                    let arc = lock(&self.logs).get(&log.lid()).and_then(Weak::upgrade);
                    if let Some(arc) = arc {
                        snaps.push((arc, s));
                    }
                }
            }
        }
        let (files, dirs) = {
            let mut u = lock(&self.unsynced);
            (std::mem::take(&mut u.files), std::mem::take(&mut u.dirs))
        };
        if self.inject_failure.swap(false, Ordering::AcqRel) {
            return Err(StorageError::Io(std::io::Error::other(
                "injected flush failure",
            )));
        }
        for f in files.values() {
            f.sync_data()?;
        }
        // Deepest first: a new partition directory, then the data dir
        // that names it.
        for d in dirs.iter().rev() {
            self.fs.sync_dir(d)?;
        }
        if !snaps.is_empty() {
            // In engine batches of bounded size (one huge sled batch costs
            // memory out of proportion), split between partitions: each
            // partition's entries stay in one atomic batch with the
            // checkpoint record that makes them count.
            let mut wb = WriteBatch::default();
            for (log, s) in &snaps {
                log.checkpoint_writes(s, &mut wb);
                if wb.len() >= CHECKPOINT_BATCH {
                    self.engine.write(std::mem::take(&mut wb))?;
                }
            }
            if !wb.is_empty() {
                self.engine.write(wb)?;
            }
            self.dirty.store(true, Ordering::Release);
        }
        // Cleared before flushing: a write racing with the flush sets it
        // again and is picked up by the next cycle.
        if self.dirty.swap(false, Ordering::AcqRel) {
            self.engine.flush_durable()?;
        }
        for (log, s) in &snaps {
            log.checkpoint_done(s);
        }
        Ok(())
    }
}

/// Someone waiting for the next cycle: a `sync()` caller, or an acks=all
/// append whose outcome is handed over once it is durable (the writer
/// registers it directly: one thread hop less per request).
pub(crate) enum Waiter {
    Sync(oneshot::Sender<Result<()>>),
    Append(oneshot::Sender<Result<AppendOutcome>>, AppendOutcome),
}

impl Waiter {
    pub(crate) fn answer(self, ok: bool) {
        // A dropped receiver just means nobody is waiting any more.
        match self {
            Waiter::Sync(tx) => {
                let _ = tx.send(if ok {
                    Ok(())
                } else {
                    Err(StorageError::Poisoned)
                });
            }
            Waiter::Append(tx, out) => {
                let _ = tx.send(if ok {
                    Ok(out)
                } else {
                    Err(StorageError::Poisoned)
                });
            }
        }
    }
}

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
    /// Starts the thread. It flushes and checkpoints every
    /// `flush_interval_ms` when there were writes (every second if 0: the
    /// checkpoint also bounds what recovery has to scan).
    pub(crate) fn start(shared: Arc<Shared>, flush_interval_ms: u64) -> Result<Committer> {
        let ctl = Arc::new(CommitCtl {
            state: Mutex::new(CommitState::default()),
            cv: Condvar::new(),
        });
        let interval = Some(Duration::from_millis(if flush_interval_ms > 0 {
            flush_interval_ms
        } else {
            1000
        }));
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
        self.register_waiter(Waiter::Sync(tx));
        rx
    }

    /// Adds a waiter answered after the next cycle that starts after this.
    pub(crate) fn register_waiter(&self, w: Waiter) {
        let mut st = lock(&self.ctl.state);
        st.waiters.push(w);
        drop(st);
        self.ctl.cv.notify_one();
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
        let mut periodic = false;
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
                        if shared.has_work() {
                            periodic = true;
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

        let started = Instant::now();
        let result = if shared.is_poisoned() {
            Err(StorageError::Poisoned)
        } else if waiters.is_empty() && !shared.has_work() {
            Ok(())
        } else if periodic || shutdown {
            shared.flush_durable(Checkpoint::All)
        } else {
            shared.flush_durable(Checkpoint::None)
        };
        if !waiters.is_empty() {
            if let Some(o) = shared.observer.get() {
                o(started.elapsed(), waiters.len());
            }
        }
        let ok = result.is_ok();
        for w in waiters {
            w.answer(ok);
        }
        if shutdown {
            // Answer anyone who registered during the last flush too.
            let late = std::mem::take(&mut lock(&ctl.state).waiters);
            if !late.is_empty() {
                let ok = shared.flush_durable(Checkpoint::All).is_ok();
                for w in late {
                    w.answer(ok);
                }
            }
            return;
        }
    }
}
