//! Converts a store of format 1 (record batches inside sled, before segment
//! files) into format 2, once, at open.
//!
//! Each partition's batches are copied, in offset order and byte for byte,
//! into segment files; its log start carries over; its producer state keys
//! are the same in both formats and stay. Each partition is checkpointed
//! (files synced, then its checkpoint flushed) before the format version
//! says 2, and the old keys are deleted only after that: a crash at any
//! point leaves either format 1 intact (the next open starts over) or
//! format 2 complete plus old keys that the next open deletes.

use std::sync::Arc;

use bytes::Bytes;

use crate::durability::{Checkpoint, Shared};
use crate::engine::{EngineExt, WriteBatch};
use crate::error::{Result, StorageError};
use crate::keys::{self, V1_INDEX, V1_LOG, V1_TIME};
use crate::partition::{PartitionLog, DELETE_CHUNK};
use crate::store::{partition_dir, TopicRecord};

/// Batches copied per engine scan.
const COPY_CHUNK: usize = 64;

pub(crate) fn from_v1(shared: &Arc<Shared>) -> Result<()> {
    let engine = &*shared.engine;
    let mut records: Vec<TopicRecord> = Vec::new();
    let (from, to) = keys::prefix_range(&keys::topic_prefix());
    engine.scan(&from, &to, false, &mut |_, v| {
        records.push(
            serde_json::from_slice(&v)
                .map_err(|e| StorageError::Corrupt(format!("topic metadata: {e}")))?,
        );
        Ok(true)
    })?;
    tracing::info!(
        topics = records.len(),
        "migrating the data dir from storage format 1 (batches in sled) to format 2 (segment files); this runs once"
    );
    let started = std::time::Instant::now();
    let mut batches = 0u64;
    for r in &records {
        let id = uuid::Uuid::parse_str(&r.id)
            .map_err(|e| StorageError::Corrupt(format!("topic {} id: {e}", r.name)))?;
        for (i, lid) in r.logs.iter().enumerate() {
            let index = i32::try_from(i).unwrap_or(i32::MAX);
            let dir = partition_dir(&shared.root, &r.name, &id, index);
            // Left by an interrupted migration: start this partition over.
            shared.fs.remove_dir_all(&dir)?;
            let log = PartitionLog::create(Arc::clone(shared), &r.name, index, *lid, dir);
            let mut next = keys::offset_key(V1_LOG, *lid, 0);
            let (_, end) = keys::prefix_range(&keys::partition_prefix(V1_LOG, *lid));
            loop {
                let mut chunk: Vec<(Vec<u8>, Bytes)> = Vec::new();
                engine.scan(&next, &end, false, &mut |k, v| {
                    chunk.push((k.to_vec(), v));
                    Ok(chunk.len() < COPY_CHUNK)
                })?;
                let Some((last_key, _)) = chunk.last() else {
                    break;
                };
                let mut after = last_key.clone();
                after.push(0);
                next = after;
                for (_, batch) in &chunk {
                    log.migrate_batch(batch)?;
                    batches += 1;
                }
            }
            let log_start = match engine.get(&keys::v1_log_start_key(*lid))? {
                Some(v) => i64::from_be_bytes(
                    v.as_ref()
                        .try_into()
                        .map_err(|_| StorageError::Corrupt("format 1 log start".into()))?,
                ),
                None => 0,
            };
            log.set_migrated_log_start(log_start);
            shared.flush_durable(Checkpoint::One(&log))?;
            log.mark_deleted(); // this handle is done; the store loads its own
        }
    }
    let mut wb = WriteBatch::default();
    wb.put(keys::format_key(), keys::FORMAT_VERSION.to_vec());
    engine.write(wb)?;
    shared.mark_dirty();
    shared.flush_durable(Checkpoint::None)?;
    tracing::info!(
        batches,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "storage format 1 migrated"
    );
    purge_v1_leftovers(shared)
}

/// Deletes format 1's keys (batches, summaries, time index, log starts).
pub(crate) fn purge_v1_leftovers(shared: &Shared) -> Result<()> {
    let engine = &*shared.engine;
    let mut deleted = 0;
    for prefix in [&[V1_LOG][..], &[V1_INDEX], &[V1_TIME], &[keys::META, b's']] {
        let (from, to) = keys::prefix_range(prefix);
        deleted += engine
            .delete_range(&from, &to, DELETE_CHUNK, &|| false)?
            .unwrap_or(0);
    }
    if deleted > 0 {
        shared.mark_dirty();
        shared.flush_durable(Checkpoint::None)?;
    }
    Ok(())
}
