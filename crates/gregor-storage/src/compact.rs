//! Log compaction of one partition, as Kafka's `LogCleaner` does it.
//!
//! The cleanable part of the log is every closed segment (never the active
//! one) below the last stable offset whose newest record is older than
//! `min.compaction.lag.ms`. When its dirty part (written since the last
//! clean) is at least `min.cleanable.dirty.ratio` of it, or older than
//! `max.compaction.lag.ms`, two passes run:
//! 1. an offset map, key hash -> latest offset, over the cleanable part;
//! 2. each segment is rewritten keeping, per key, only the record at its
//!    latest offset; a tombstone (null value) goes too once its batch is
//!    older than `delete.retention.ms`; data of aborted transactions goes;
//!    markers stay. A batch keeps its base and last offset (gaps are
//!    allowed), and is re-encoded with its own codec only when it lost
//!    records; untouched batches are copied as they are.
//!
//! Swap: the new segment is written as `<base>.log.cleaned` and synced,
//! then renamed over `<base>.log` under the partition's swap lock (readers
//! hold it shared, so none sees a half-swapped segment), the segment's
//! index entries are replaced, and a checkpoint makes the new size
//! durable. A crash after the rename and before that checkpoint leaves a
//! segment whose length differs from its checkpoint: recovery re-reads it
//! ([`PartitionLog::recover`]), which is safe because its bytes were
//! synced before the rename.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;

use gregor_protocol::records::{self, BatchHeader};

use super::{index_value, lock, to_u64, PartitionLog};
use crate::durability::Checkpoint;
use crate::engine::{EngineExt, WriteBatch};
use crate::error::Result;
use crate::keys::{self, INDEX};

/// What a compaction of a partition may do.
#[derive(Debug, Clone, Copy)]
pub struct CompactOptions {
    /// The clock.
    pub now_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_ratio: f64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// The inflate cap of one batch (the hardening issue's bound).
    pub max_inflated: usize,
    /// Keys the offset map may hold (Kafka's dedupe buffer): a larger
    /// dirty part is cleaned a part at a time.
    pub max_map_entries: usize,
    /// `log.cleaner.io.max.bytes.per.second`: bytes read and written per
    /// second at most (`f64::INFINITY`: unthrottled, Kafka's default).
    pub max_bytes_per_sec: f64,
}

/// Sleeps as needed to keep `done` bytes since `start` within the rate.
fn throttle(start: std::time::Instant, done: u64, rate: f64) {
    if !rate.is_finite() || rate <= 0.0 {
        return;
    }
    #[allow(clippy::cast_precision_loss)] // a duration
    let due = std::time::Duration::from_secs_f64(done as f64 / rate);
    let spent = start.elapsed();
    if due > spent {
        std::thread::sleep(due - spent);
    }
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Segments rewritten.
    pub segments: usize,
    /// Their bytes before.
    pub bytes_before: u64,
    /// And after.
    pub bytes_after: u64,
    /// Records removed.
    pub records_removed: u64,
}

/// A 128-bit hash of a key (Kafka's offset map keeps a hash too).
fn key_hash(key: &[u8]) -> u128 {
    let mut a = DefaultHasher::new();
    key.hash(&mut a);
    let mut b = DefaultHasher::new();
    (key, 0x9E37_79B9_u32).hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

impl PartitionLog {
    /// Compacts the cleanable part of the log if it is dirty enough.
    /// `None` when there was nothing to do. Runs on the caller's thread
    /// (a blocking one); appends and reads go on meanwhile.
    pub fn compact(&self, o: &CompactOptions) -> Result<Option<CompactStats>> {
        self.shared.check_writable()?;
        let _r = lock(&self.retention);
        self.check_live()?;
        let lso = self.last_stable_offset();
        let (segs, clean_end, aborted, tombstone) = {
            let st = lock(&self.state);
            (
                st.segs.clone(),
                st.clean_end,
                st.aborted.clone(),
                st.oldest_tombstone,
            )
        };
        let delete_horizon = o.now_ms.saturating_sub(o.delete_retention_ms);
        // Kept tombstones now past the horizon make the whole log dirty.
        let clean_end = if tombstone.is_some_and(|t| t < delete_horizon) {
            0
        } else {
            clean_end
        };
        if segs.len() < 2 {
            return Ok(None);
        }
        let horizon = o.now_ms.saturating_sub(o.min_compaction_lag_ms);
        let mut cleanable: Vec<_> = segs[..segs.len() - 1]
            .iter()
            .copied()
            .take_while(|s| s.max_ts <= horizon && s.last_offset < lso)
            .filter(|s| s.size > 0 && s.last_offset >= self.log_start.load(Ordering::Acquire))
            .collect();
        if cleanable.is_empty() {
            return Ok(None);
        }
        let total: u64 = cleanable.iter().map(|s| s.size).sum();
        let dirty: Vec<_> = cleanable
            .iter()
            .filter(|s| s.last_offset >= clean_end)
            .collect();
        let dirty_bytes: u64 = dirty.iter().map(|s| s.size).sum();
        if dirty_bytes == 0 {
            return Ok(None);
        }
        #[allow(clippy::cast_precision_loss)] // a ratio
        let ratio = dirty_bytes as f64 / total as f64;
        let overdue = dirty
            .iter()
            .any(|s| o.now_ms.saturating_sub(s.max_ts) > o.max_compaction_lag_ms);
        if ratio < o.min_cleanable_ratio && !overdue {
            return Ok(None);
        }
        let is_aborted = |h: &BatchHeader| {
            h.is_transactional()
                && !h.is_control()
                && aborted.iter().any(|a| {
                    a.producer_id == h.producer_id
                        && a.first_offset <= h.base_offset
                        && h.base_offset < a.last_offset
                })
        };

        // Pass 1: the latest offset of every key, segment by segment, as
        // far as the map may grow.
        let started = std::time::Instant::now();
        let mut io = 0u64;
        let mut map: HashMap<u128, i64> = HashMap::new();
        let mut mapped = 0;
        for seg in &cleanable {
            self.for_each_batch(seg.base, seg.last_offset, &mut |b, h| {
                io += to_u64(b.len());
                throttle(started, io, o.max_bytes_per_sec);
                if h.is_control() || is_aborted(h) {
                    return Ok(());
                }
                let Ok((raw, recs)) = records::records_of(b, o.max_inflated) else {
                    return Ok(()); // kept as it is in pass 2
                };
                for r in &recs {
                    if r.key_len >= 0 {
                        let k = &raw[r.key_at..r.key_at + usize::try_from(r.key_len).unwrap_or(0)];
                        map.insert(key_hash(k), h.base_offset + i64::from(r.offset_delta));
                    }
                }
                Ok(())
            })?;
            mapped += 1;
            if map.len() > o.max_map_entries {
                break;
            }
        }
        cleanable.truncate(mapped);

        // Pass 2: rewrite each segment that loses something.
        let ls = self.log_start.load(Ordering::Acquire);
        let mut stats = CompactStats::default();
        let mut oldest_tombstone: Option<i64> = None;
        for seg in &cleanable {
            let mut out: Vec<u8> = Vec::with_capacity(usize::try_from(seg.size).unwrap_or(0));
            let mut index: Vec<(i64, u64)> = Vec::new();
            let mut since_index = u64::MAX;
            let mut removed = 0u64;
            let mut changed = false;
            // An emptied segment ends before its base.
            let mut new_last = seg.base - 1;
            self.for_each_batch(seg.base, seg.last_offset, &mut |b, h| {
                io += to_u64(b.len());
                throttle(started, io, o.max_bytes_per_sec);
                let keep: Option<std::borrow::Cow<'_, [u8]>> = if h.last_offset() < ls {
                    None
                } else if h.is_control() {
                    Some(b.into())
                } else if is_aborted(h) {
                    None
                } else {
                    match records::records_of(b, o.max_inflated) {
                        Err(_) => Some(b.into()),
                        Ok((raw, recs)) => {
                            let mut kept = Vec::new();
                            let mut n = 0i32;
                            for r in &recs {
                                let latest = if r.key_len < 0 {
                                    true
                                } else {
                                    let k = &raw[r.key_at
                                        ..r.key_at + usize::try_from(r.key_len).unwrap_or(0)];
                                    map.get(&key_hash(k)).is_none_or(|l| {
                                        *l <= h.base_offset + i64::from(r.offset_delta)
                                    })
                                };
                                let expired_tombstone =
                                    r.value_len < 0 && h.max_timestamp < delete_horizon;
                                if latest && !expired_tombstone {
                                    kept.extend_from_slice(&raw[r.start..r.end]);
                                    n += 1;
                                    if r.value_len < 0 {
                                        oldest_tombstone =
                                            Some(oldest_tombstone.map_or(h.max_timestamp, |t| {
                                                t.min(h.max_timestamp)
                                            }));
                                    }
                                }
                            }
                            let lost = recs.len() - usize::try_from(n).unwrap_or(0);
                            removed += to_u64(lost);
                            if lost == 0 {
                                Some(b.into())
                            } else if n == 0 {
                                None
                            } else {
                                Some(records::rebuild_batch(b, &kept, n)?.into())
                            }
                        }
                    }
                };
                match keep {
                    Some(bytes) => {
                        if bytes.len() != b.len() {
                            changed = true;
                        }
                        let pos = to_u64(out.len());
                        if since_index >= self.shared.index_interval {
                            index.push((h.base_offset, pos));
                            since_index = 0;
                        }
                        since_index += to_u64(bytes.len());
                        out.extend_from_slice(&bytes);
                        new_last = h.last_offset();
                    }
                    None => changed = true,
                }
                Ok(())
            })?;
            if !changed {
                continue;
            }
            stats.segments += 1;
            stats.bytes_before += seg.size;
            stats.bytes_after += to_u64(out.len());
            stats.records_removed += removed;
            self.swap_segment(seg.base, seg.last_offset, new_last, &out, &index)?;
        }
        if let Some(last) = cleanable.last() {
            let mut st = lock(&self.state);
            st.clean_end = last.last_offset + 1;
            st.oldest_tombstone = oldest_tombstone;
        }
        Ok((stats.segments > 0).then_some(stats))
    }

    /// Calls `f` with every batch of the segment at `base`, up to
    /// `last_offset`.
    fn for_each_batch(
        &self,
        base: i64,
        last_offset: i64,
        f: &mut dyn FnMut(&[u8], &BatchHeader) -> Result<()>,
    ) -> Result<()> {
        // Batches wholly below the log start are not read, so the rewrite
        // drops them.
        let mut at = base.max(self.log_start.load(Ordering::Acquire));
        while at <= last_offset {
            let r = self.read_below(at, 1 << 20, last_offset + 1)?;
            if r.batches.is_empty() {
                break;
            }
            for b in &r.batches {
                let h = BatchHeader::parse(b)?;
                at = h.last_offset() + 1;
                f(b, &h)?;
            }
        }
        Ok(())
    }

    /// Replaces the segment at `base` by `bytes` (see the module docs).
    fn swap_segment(
        &self,
        base: i64,
        last_offset: i64,
        new_last: i64,
        bytes: &[u8],
        index: &[(i64, u64)],
    ) -> Result<()> {
        let path = self.seg_path(base);
        let cleaned = path.with_extension("log.cleaned");
        let f = self.shared.fs.open(&cleaned, true)?;
        f.set_len(0)?;
        f.write_all_at(&[bytes], 0)?;
        f.sync_data()?;
        drop(f);
        {
            let _w = self.swap.write().unwrap_or_else(|e| e.into_inner());
            let mut st = lock(&self.state);
            self.shared.fs.rename(&cleaned, &path)?;
            self.shared.files.forget(&path);
            self.shared.unsynced_dir(&self.dir);
            // The segment's index entries now point into the new file.
            let mut wb = WriteBatch::default();
            for (off, pos) in index {
                wb.put(
                    keys::offset_key(INDEX, self.lid, *off),
                    index_value(base, *pos),
                );
            }
            let engine = &*self.shared.engine;
            engine.delete_range(
                &keys::offset_key(INDEX, self.lid, base),
                &keys::offset_key(INDEX, self.lid, last_offset + 1),
                super::DELETE_CHUNK,
                &|| false,
            )?;
            engine.write(wb)?;
            self.shared.mark_dirty();
            st.tail_index.retain(|e| e.1 != base);
            if st.read_hint.is_some_and(|h| h.1 == base) {
                st.read_hint = None;
            }
            let old = st
                .segs
                .iter()
                .find(|s| s.base == base)
                .map_or(0, |s| s.size);
            if let Some(s) = st.segs.iter_mut().find(|s| s.base == base) {
                s.size = to_u64(bytes.len());
                // Offsets past the new end are found in the next segment.
                s.last_offset = new_last;
            }
            self.size.fetch_sub(old, Ordering::AcqRel);
            self.size.fetch_add(to_u64(bytes.len()), Ordering::AcqRel);
            self.mark_changed(&mut st);
        }
        // The new size and index durable: no recovery needed to trust them.
        self.shared.flush_durable(Checkpoint::One(self))
    }
}
