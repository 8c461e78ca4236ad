//! The listener: accepts connections under a limit and shuts down
//! gracefully (mini-redis's Listener): on shutdown it stops accepting, lets
//! every connection answer the requests it already read, then returns.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{error, info, warn, Instrument};

use crate::connection;
use crate::context::Broker;
use crate::retention;

/// Serves `listener` until `shutdown` resolves, then drains connections and
/// flushes the store.
pub async fn run(listener: TcpListener, broker: Broker, shutdown: impl Future<Output = ()>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection holds a clone; `recv()` returns None once all are gone.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let limit = Arc::new(Semaphore::new(broker.config().max_connections.max(1)));
    let per_ip = PerIp::new(broker.config().max_connections_per_ip);

    let retention = tokio::spawn(retention::run(broker.clone(), stop_rx.clone()));
    let timers = tokio::spawn(broker.coordinator().clone().run_timers(stop_rx.clone()));
    let txn_sweep = tokio::spawn(crate::txn::run(broker.clone(), stop_rx.clone()));
    let cleaner = tokio::spawn(crate::cleaner::run(broker.clone(), stop_rx.clone()));

    tokio::select! {
        _ = accept_loop(&listener, &broker, &limit, &per_ip, &stop_rx, &done_tx) => {}
        _ = shutdown => info!("shutdown requested; finishing in-flight requests"),
    }
    let _ = stop_tx.send(true);
    // Parked JoinGroup/SyncGroup replies would otherwise wait for timers
    // that no longer run, and the connections would never drain.
    broker.coordinator().release_waiters();
    drop(done_tx);
    let _ = done_rx.recv().await;
    let _ = retention.await;
    let _ = txn_sweep.await;
    let _ = cleaner.await;
    let _ = timers.await;
    let store = broker.store().clone();
    match tokio::task::spawn_blocking(move || store.flush_now()).await {
        Ok(Ok(())) => info!("store flushed; bye"),
        Ok(Err(e)) => error!(cause = %e, "final flush failed"),
        Err(e) => error!(cause = %e, "final flush task failed"),
    }
}

async fn accept_loop(
    listener: &TcpListener,
    broker: &Broker,
    limit: &Arc<Semaphore>,
    per_ip: &PerIp,
    stop: &watch::Receiver<bool>,
    done: &mpsc::Sender<()>,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(x) => {
                backoff = Duration::from_millis(10);
                x
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                warn!(cause = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        // Kafka closes a connection over `max.connections.per.ip` at once.
        let Some(ip_slot) = per_ip.admit(peer.ip()) else {
            info!(%peer, limit = per_ip.limit, "connection refused: max.connections.per.ip reached");
            drop(stream);
            continue;
        };
        let broker = broker.clone();
        let stop = stop.clone();
        let done = done.clone();
        let span = tracing::info_span!("conn", %peer);
        tokio::spawn(
            async move {
                connection::serve(stream, peer, broker, stop).await;
                drop(ip_slot);
                drop(permit);
                drop(done);
            }
            .instrument(span),
        );
    }
}

/// Open connections per client address, for `max.connections.per.ip`.
#[derive(Clone)]
struct PerIp {
    limit: usize,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One admitted connection; gives its slot back when dropped.
struct IpSlot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerIp {
    fn new(limit: usize) -> PerIp {
        PerIp {
            limit,
            counts: Arc::default(),
        }
    }

    fn admit(&self, ip: IpAddr) -> Option<IpSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            ip,
            counts: self.counts.clone(),
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}
