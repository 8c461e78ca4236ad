//! The log cleaner: every `log.cleaner.backoff.ms` (Kafka's default
//! 15000), each partition of a topic whose `cleanup.policy` includes
//! `compact` is compacted if it is dirty enough (the storage crate's
//! `PartitionLog::compact` does the work), one partition at a time on one
//! blocking thread, so that it never takes more than one core from the
//! data path. Settings come from the topic, else the broker defaults
//! (`log.cleaner.min.cleanable.ratio`, `log.cleaner.delete.retention.ms`,
//! ...), and a change takes effect at the next pass.

use std::time::Duration;

use gregor_storage::CompactOptions;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::context::{now_ms, Broker};
use crate::topics;

/// Keys the offset map of one pass may hold (Kafka sizes its dedupe
/// buffer at 128 MiB; this is about 50 MiB of map).
const MAX_MAP_ENTRIES: usize = 1 << 20;

/// Runs until `stop` turns true.
pub async fn run(b: Broker, mut stop: watch::Receiver<bool>) {
    loop {
        // A dynamic setting: read on every round.
        let every = Duration::from_millis(b.config().log_cleaner_backoff_ms.max(10));
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let b2 = b.clone();
        let _ = tokio::task::spawn_blocking(move || clean_once(&b2)).await;
    }
}

/// One pass over every compacted partition. Returns the records removed.
pub fn clean_once(b: &Broker) -> u64 {
    let mut removed = 0;
    let cfg = b.config();
    for meta in b.store().topics() {
        let policy = topics::effective(&cfg, &meta.configs, "cleanup.policy").unwrap_or_default();
        if !policy.split(',').any(|p| p.trim() == "compact") {
            continue;
        }
        let num =
            |name: &str, fallback: i64| topics::effective_i64(&cfg, &meta.configs, name, fallback);
        let ratio = topics::effective(&cfg, &meta.configs, "min.cleanable.dirty.ratio")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.5);
        let o = CompactOptions {
            now_ms: now_ms(),
            min_cleanable_ratio: ratio,
            min_compaction_lag_ms: num("min.compaction.lag.ms", 0),
            max_compaction_lag_ms: num("max.compaction.lag.ms", i64::MAX),
            delete_retention_ms: num("delete.retention.ms", 86_400_000),
            max_inflated: b.inflate_limit(&meta.configs),
            max_map_entries: MAX_MAP_ENTRIES,
            max_bytes_per_sec: cfg.log_cleaner_io_max_bytes_per_second,
        };
        for p in 0..meta.partitions {
            let Some(log) = b.store().partition(&meta.name, p) else {
                continue;
            };
            let t0 = std::time::Instant::now();
            match log.compact(&o) {
                Ok(None) => {}
                Ok(Some(s)) => {
                    info!(topic = %meta.name, partition = p, segments = s.segments, bytes_before = s.bytes_before, bytes_after = s.bytes_after, records_removed = s.records_removed, elapsed_ms = t0.elapsed().as_millis(), "compacted");
                    removed += s.records_removed;
                }
                Err(e) => warn!(topic = %meta.name, partition = p, cause = %e, "compaction failed"),
            }
        }
    }
    removed
}
