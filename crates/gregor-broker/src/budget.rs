//! The broker-wide memory budget, `queued.max.request.bytes`: bytes of
//! requests read and not yet answered, and of Fetch responses not yet
//! written, across all connections.
//!
//! A frame is charged as its buffer grows, never for the length its prefix
//! declares, so a peer that announces 100 MiB and sends one byte holds
//! about one buffer's first step. When the budget is spent, readers wait
//! (the socket is not read: back-pressure). So that a budget full of
//! half-read frames cannot wait on itself for ever, one frame at a time
//! may go on past the budget (the overdraft) until it is answered, as
//! Kafka's non-strict memory pool lets one allocation dip below zero:
//! memory stays below the budget plus one `socket.request.max.bytes`.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

/// The budget; cheap to clone.
#[derive(Clone, Debug)]
pub struct Budget {
    sem: Arc<Semaphore>,
    overdraft: Arc<Mutex<()>>,
    total: usize,
}

/// What one request (or response) holds; released when dropped.
#[derive(Debug, Default)]
pub struct Charge {
    permit: Option<OwnedSemaphorePermit>,
    overdraft: Option<OwnedMutexGuard<()>>,
}

impl Charge {
    fn add(&mut self, p: OwnedSemaphorePermit) {
        match &mut self.permit {
            Some(held) => held.merge(p),
            None => self.permit = Some(p),
        }
    }
}

impl Budget {
    /// A budget of `total` bytes (at most [`Semaphore::MAX_PERMITS`]).
    pub fn new(total: usize) -> Budget {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Budget {
            sem: Arc::new(Semaphore::new(total)),
            overdraft: Arc::new(Mutex::new(())),
            total,
        }
    }

    fn permits(&self, n: usize) -> u32 {
        // A charge larger than the whole budget takes all of it.
        u32::try_from(n.min(self.total)).unwrap_or(u32::MAX)
    }

    /// Adds `n` bytes to `charge`: at once if there is room, else after
    /// waiting for room or for the overdraft. A charge that holds the
    /// overdraft is not charged further.
    pub async fn take(&self, n: usize, charge: &mut Charge) {
        if n == 0 || charge.overdraft.is_some() {
            return;
        }
        let n = self.permits(n);
        if let Ok(p) = self.sem.clone().try_acquire_many_owned(n) {
            charge.add(p);
            return;
        }
        tokio::select! {
            p = self.sem.clone().acquire_many_owned(n) => {
                // The semaphore is never closed.
                if let Ok(p) = p {
                    charge.add(p);
                }
            }
            g = self.overdraft.clone().lock_owned() => charge.overdraft = Some(g),
        }
    }

    /// `n` bytes if there is room now (a Fetch response, already read).
    pub fn try_take(&self, n: usize) -> Option<OwnedSemaphorePermit> {
        if n == 0 {
            return None;
        }
        self.sem
            .clone()
            .try_acquire_many_owned(self.permits(n))
            .ok()
    }

    /// Bytes not charged right now.
    pub fn available(&self) -> usize {
        self.sem.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn charges_return_when_dropped_and_one_frame_may_overdraw() {
        let b = Budget::new(100);
        let mut one = Charge::default();
        b.take(60, &mut one).await;
        b.take(40, &mut one).await;
        assert_eq!(b.available(), 0);
        // The budget is spent: the next charge takes the overdraft.
        let mut two = Charge::default();
        b.take(10, &mut two).await;
        assert!(two.overdraft.is_some());
        b.take(1_000, &mut two).await; // not charged further
                                       // A third waits until something is returned.
        let mut three = Charge::default();
        let b2 = b.clone();
        let waiter = tokio::spawn(async move {
            b2.take(50, &mut three).await;
            three
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(one);
        let three = waiter.await.unwrap_or_default();
        assert!(three.permit.is_some());
        assert_eq!(b.available(), 50);
        assert!(b.try_take(60).is_none());
        assert!(b.try_take(50).is_some());
    }
}
