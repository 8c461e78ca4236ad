//! Time and size retention (`retention.ms`, `retention.bytes`), checked
//! every `log.retention.check.interval.ms`, deleting whole segments; and,
//! on the same beat, the expiry of idle producers' state
//! (`producer.id.expiration.ms`).

use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::context::{now_ms, Broker};
use crate::topics;

/// Runs until `stop` turns true.
pub async fn run(b: Broker, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_millis(b.config().log_retention_check_interval_ms.max(10));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let b2 = b.clone();
        // Deletes touch the engine: keep them off the async workers.
        let _ = tokio::task::spawn_blocking(move || enforce_once(&b2)).await;
    }
}

/// One pass over every partition. Returns the records deleted.
pub fn enforce_once(b: &Broker) -> u64 {
    let mut deleted = 0;
    let now = now_ms();
    let expiry = b.config().producer_id_expiration_ms;
    for meta in b.store().topics() {
        let ms = topics::effective_i64(&b.config(), &meta.configs, "retention.ms", -1);
        let bytes = topics::effective_i64(&b.config(), &meta.configs, "retention.bytes", -1);
        for p in 0..meta.partitions {
            let Some(log) = b.store().partition(&meta.name, p) else {
                continue;
            };
            match log.expire_producers(now, expiry) {
                Ok(0) => {}
                Ok(n) => {
                    info!(topic = %meta.name, partition = p, producers = n, "expired idle producer state")
                }
                Err(e) => {
                    warn!(topic = %meta.name, partition = p, cause = %e, "producer expiry failed")
                }
            }
            if ms < 0 && bytes < 0 {
                continue;
            }
            match log.enforce_retention(now, ms, bytes) {
                Ok(0) => {}
                Ok(n) => {
                    info!(topic = %meta.name, partition = p, records = n, "retention deleted records");
                    deleted += n;
                }
                Err(e) => warn!(topic = %meta.name, partition = p, cause = %e, "retention failed"),
            }
        }
    }
    deleted
}
