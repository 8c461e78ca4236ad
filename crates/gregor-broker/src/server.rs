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

use crate::config::BrokerConfig;
use crate::connection;
use crate::context::Broker;
use crate::retention;

/// Binds the listener of every virtual broker: `listen`, then the
/// following ports (or a port of its own each when `listen` asks for 0).
pub async fn bind_all(config: &BrokerConfig) -> std::io::Result<Vec<TcpListener>> {
    let mut out = Vec::with_capacity(usize::from(config.virtual_brokers));
    for i in 0..config.virtual_brokers {
        let mut addr = config.listen;
        if addr.port() != 0 {
            let port = addr.port().checked_add(i).ok_or_else(|| {
                std::io::Error::other(format!("no port {} + {i} for broker {i}", addr.port()))
            })?;
            addr.set_port(port);
        }
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
        out.push(l);
    }
    Ok(out)
}

/// Serves every broker listener and, when given, the HTTP admin API
/// until `shutdown` resolves.
pub async fn serve_all(
    listeners: Vec<TcpListener>,
    admin: Option<TcpListener>,
    broker: Broker,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let admin = admin.map(|l| tokio::spawn(crate::admin::serve(l, broker.clone(), stop_rx)));
    run_cluster(listeners, broker, async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    })
    .await;
    if let Some(a) = admin {
        let _ = a.await;
    }
}

/// Serves `listener` until `shutdown` resolves, then drains connections and
/// flushes the store.
pub async fn run(listener: TcpListener, broker: Broker, shutdown: impl Future<Output = ()>) {
    run_cluster(vec![listener], broker, shutdown).await;
}

/// Serves one listener per broker of the (virtual) cluster, in id order,
/// until `shutdown` resolves; then drains connections and flushes the store.
pub async fn run_cluster(
    listeners: Vec<TcpListener>,
    broker: Broker,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection holds a clone; `recv()` returns None once all are gone.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let limit = Arc::new(Semaphore::new(broker.config().max_connections.max(1)));
    let per_ip = PerIp::new(broker.config().max_connections_per_ip);

    let retention = tokio::spawn(retention::run(broker.clone(), stop_rx.clone()));
    let timers = tokio::spawn(broker.coordinator().clone().run_timers(stop_rx.clone()));
    let txn_sweep = tokio::spawn(crate::txn::run(broker.clone(), stop_rx.clone()));
    let cleaner = tokio::spawn(crate::cleaner::run(broker.clone(), stop_rx.clone()));

    let mut nodes = tokio::task::JoinSet::new();
    for (index, listener) in listeners.into_iter().enumerate() {
        let shared = Accept {
            broker: broker.clone(),
            limit: limit.clone(),
            per_ip: per_ip.clone(),
            stop: stop_rx.clone(),
            done: done_tx.clone(),
        };
        nodes.spawn(serve_node(index, listener, shared));
    }
    tokio::select! {
        _ = nodes.join_next() => {}
        _ = shutdown => info!("shutdown requested; finishing in-flight requests"),
    }
    nodes.abort_all();
    while nodes.join_next().await.is_some() {}
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

/// What every accept loop shares.
struct Accept {
    broker: Broker,
    limit: Arc<Semaphore>,
    per_ip: PerIp,
    stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
}

/// One broker's listener: accepts while the broker is up; taken down, it
/// closes the listening socket (connects are refused) until brought up,
/// then binds the same address again.
async fn serve_node(index: usize, listener: TcpListener, a: Accept) {
    let cluster = a.broker.cluster();
    let Some(mut down) = cluster.watch_down(index) else {
        return;
    };
    let id = cluster.nodes()[index].id;
    let addr = match listener.local_addr() {
        Ok(x) => x,
        Err(e) => {
            error!(cause = %e, broker = id, "listener has no address");
            return;
        }
    };
    let mut listener = Some(listener);
    loop {
        match listener.take() {
            Some(l) => {
                tokio::select! {
                    _ = accept_loop(&l, id, &a) => return,
                    r = down.wait_for(|d| *d) => {
                        if r.is_err() {
                            return;
                        }
                        drop(l);
                        info!(broker = id, %addr, "listener closed: broker down");
                    }
                }
            }
            None => {
                if down.wait_for(|d| !*d).await.is_err() {
                    return;
                }
                match TcpListener::bind(addr).await {
                    Ok(l) => {
                        info!(broker = id, %addr, "listening again: broker up");
                        listener = Some(l);
                    }
                    Err(e) => {
                        warn!(broker = id, %addr, cause = %e, "cannot listen again; retrying");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }
}

async fn accept_loop(listener: &TcpListener, node: i32, a: &Accept) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let Ok(permit) = a.limit.clone().acquire_owned().await else {
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
        let Some(ip_slot) = a.per_ip.admit(peer.ip()) else {
            info!(%peer, limit = a.per_ip.limit, "connection refused: max.connections.per.ip reached");
            drop(stream);
            continue;
        };
        let broker = a.broker.clone();
        let stop = a.stop.clone();
        let done = a.done.clone();
        let Some(down) = broker
            .cluster()
            .nodes()
            .iter()
            .position(|n| n.id == node)
            .and_then(|i| broker.cluster().watch_down(i))
        else {
            continue;
        };
        let span = tracing::info_span!("conn", %peer, broker = node);
        tokio::spawn(
            async move {
                connection::serve(stream, peer, broker, stop, node, down).await;
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
