//! The writer thread: appends leave the async workers here.
//!
//! A Produce hands each batch over ([`Writer::submit`]) and awaits its
//! outcome; the thread takes whatever is queued, writes it (a `pwrite` into
//! the page cache per batch), and answers each at once, or, for a durable
//! (acks=all) append, hands the outcome to the group-commit thread
//! ([`crate::durability`]), which answers after the `fdatasync` that covers
//! it. A slow `fdatasync` never holds up the next writes.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use gregor_protocol::records::BatchHeader;
use tokio::sync::oneshot;

use crate::durability::{lock, Checkpoint, Committer, Shared, Waiter};
use crate::error::{Result, StorageError};
use crate::partition::PartitionLog;
use crate::{AppendOptions, AppendOutcome};

struct Job {
    log: Arc<PartitionLog>,
    batch: Bytes,
    header: BatchHeader,
    opts: AppendOptions,
    durable: bool,
    reply: oneshot::Sender<Result<AppendOutcome>>,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    shutdown: bool,
}

struct Ctl {
    queue: Mutex<Queue>,
    cv: Condvar,
}

pub(crate) struct Writer {
    ctl: Arc<Ctl>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub(crate) fn start(committer: Option<Arc<Committer>>, shared: Arc<Shared>) -> Result<Writer> {
        let ctl = Arc::new(Ctl {
            queue: Mutex::new(Queue::default()),
            cv: Condvar::new(),
        });
        let c = Arc::clone(&ctl);
        let thread = std::thread::Builder::new()
            .name("gregor-writer".into())
            .spawn(move || run(&c, committer.as_deref(), &shared))?;
        Ok(Writer {
            ctl,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues an append; the receiver gets its outcome once written.
    pub(crate) fn submit(
        &self,
        log: Arc<PartitionLog>,
        batch: Bytes,
        header: BatchHeader,
        opts: AppendOptions,
        durable: bool,
    ) -> oneshot::Receiver<Result<AppendOutcome>> {
        let (tx, rx) = oneshot::channel();
        let mut q = lock(&self.ctl.queue);
        if q.shutdown {
            let _ = tx.send(Err(StorageError::Engine("the store is closing".into())));
            return rx;
        }
        let wake = q.jobs.is_empty();
        q.jobs.push(Job {
            log,
            batch,
            header,
            opts,
            durable,
            reply: tx,
        });
        drop(q);
        if wake {
            self.ctl.cv.notify_one();
        }
        rx
    }

    /// Writes what is queued, then stops the thread.
    pub(crate) fn shutdown(&self) {
        lock(&self.ctl.queue).shutdown = true;
        self.ctl.cv.notify_one();
        if let Some(t) = lock(&self.thread).take() {
            if t.join().is_err() {
                tracing::error!("writer thread panicked");
            }
        }
    }
}

fn run(ctl: &Ctl, committer: Option<&Committer>, shared: &Shared) {
    let mut jobs = Vec::new();
    let mut durable = Vec::new();
    loop {
        {
            let mut q = lock(&ctl.queue);
            while q.jobs.is_empty() && !q.shutdown {
                q = ctl.cv.wait(q).unwrap_or_else(|e| e.into_inner());
            }
            if q.jobs.is_empty() {
                return; // shutdown with nothing left
            }
            std::mem::swap(&mut jobs, &mut q.jobs);
        }
        for j in jobs.drain(..) {
            let r = j.log.append_parsed(&j.batch, j.header, j.opts);
            match r {
                Ok(out) if j.durable && committer.is_some() => {
                    durable.push(Waiter::Append(j.reply, out));
                }
                // A dropped receiver: the connection went away; the write stands.
                r => {
                    let _ = j.reply.send(r);
                }
            }
        }
        let Some(c) = committer else { continue };
        if durable.is_empty() {
            continue;
        }
        if lock(&ctl.queue).jobs.is_empty() {
            // Nothing else to write: sync here rather than wake the
            // group-commit thread (one hand-off less on the acks=all
            // round trip). The cycle covers everything written so far.
            let ok = shared.flush_durable(Checkpoint::None).is_ok();
            for w in durable.drain(..) {
                w.answer(ok);
            }
        } else {
            // More appends are waiting: let the group-commit thread sync
            // while this one writes them.
            for w in durable.drain(..) {
                c.register_waiter(w);
            }
        }
    }
}
