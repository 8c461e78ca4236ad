//! The listener: accepts connections under a limit and shuts down
//! gracefully (mini-redis's Listener): on shutdown it stops accepting, lets
//! every connection answer the requests it already read, then returns.

use std::future::Future;
use std::sync::Arc;
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

    let retention = tokio::spawn(retention::run(broker.clone(), stop_rx.clone()));
    let timers = tokio::spawn(broker.coordinator().clone().run_timers(stop_rx.clone()));

    tokio::select! {
        _ = accept_loop(&listener, &broker, &limit, &stop_rx, &done_tx) => {}
        _ = shutdown => info!("shutdown requested; finishing in-flight requests"),
    }
    let _ = stop_tx.send(true);
    // Parked JoinGroup/SyncGroup replies would otherwise wait for timers
    // that no longer run, and the connections would never drain.
    broker.coordinator().release_waiters();
    drop(done_tx);
    let _ = done_rx.recv().await;
    let _ = retention.await;
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
        let broker = broker.clone();
        let stop = stop.clone();
        let done = done.clone();
        let span = tracing::info_span!("conn", %peer);
        tokio::spawn(
            async move {
                connection::serve(stream, peer, broker, stop).await;
                drop(permit);
                drop(done);
            }
            .instrument(span),
        );
    }
}
