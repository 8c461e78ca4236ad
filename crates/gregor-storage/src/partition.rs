//! One partition's log on top of the engine.
//!
//! Per partition (`pid`), keyed by base offset:
//! - `L`: the batch bytes as served;
//! - `I`: a 16-byte summary (last offset delta, max timestamp, size), so
//!   retention and size accounting never read batch bodies;
//! - `T`: Kafka `.timeindex` style, one entry per batch that raises the
//!   running max timestamp, keyed `(max ts, base)` so keys never collide;
//! - `P`: idempotent producer state.
//!
//! All of them are written by ONE atomic engine write per append.
//!
//! Retention first persists the new log start (reads honour it at once),
//! then deletes keys in chunks. Until a chunk is gone, entries below the log
//! start are "stale": every lookup skips them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use gregor_protocol::records::{self, BatchHeader};
use tokio::sync::Notify;

use crate::durability::{lock, Shared};
use crate::engine::{EngineExt, WriteBatch};
use crate::error::{Result, StorageError};
use crate::keys::{self, INDEX, LOG, PRODUCER, TIME};
use crate::producer::{self, Check, ProducerState};
use crate::{AppendOptions, AppendOutcome, ReadResult};

/// Keys deleted per engine write during retention and purges: big enough to
/// amortise, small enough not to stall other writers.
pub(crate) const DELETE_CHUNK: usize = 1000;

/// Batches whose CRC is checked at open (more if those are corrupt too).
const TAIL_CHECK: usize = 8;

/// One partition of a topic. Appends are serialised per partition; reads
/// run concurrently with them and with each other.
pub struct PartitionLog {
    shared: Arc<Shared>,
    topic: String,
    partition: i32,
    pid: u32,
    /// Offset the next append gets (= high watermark on a single node).
    /// Published after the engine write, so readers never see a missing batch.
    log_end: AtomicI64,
    log_start: AtomicI64,
    /// Bytes of the batches at or after the log start.
    size: AtomicU64,
    /// Set when the topic is deleted: appends and reads then fail.
    deleted: AtomicBool,
    /// Held for the whole append (serialises offset assignment).
    state: Mutex<AppendState>,
    /// Serialises retention runs (not appends: they only touch old keys).
    retention: Mutex<()>,
    waiters: Mutex<Vec<Weak<Notify>>>,
}

struct AppendState {
    /// Largest max timestamp among the live batches; `i64::MIN` when none.
    running_max_ts: i64,
    producers: HashMap<i64, ProducerState>,
}

/// The `I` value: what retention and size accounting need of a batch.
#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    base: i64,
    last_offset_delta: i32,
    max_ts: i64,
    size: u32,
}

impl IndexEntry {
    fn last(&self) -> i64 {
        self.base + i64::from(self.last_offset_delta)
    }
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&self.last_offset_delta.to_be_bytes());
        v.extend_from_slice(&self.max_ts.to_be_bytes());
        v.extend_from_slice(&self.size.to_be_bytes());
        v
    }
    fn decode(key: &[u8], v: &[u8]) -> Result<IndexEntry> {
        let bad = || StorageError::Corrupt(format!("index entry of {} bytes", v.len()));
        let base = keys::offset_of(key).ok_or_else(bad)?;
        if v.len() != 16 {
            return Err(bad());
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&v[4..12]);
        Ok(IndexEntry {
            base,
            last_offset_delta: i32::from_be_bytes([v[0], v[1], v[2], v[3]]),
            max_ts: i64::from_be_bytes(ts),
            size: u32::from_be_bytes([v[12], v[13], v[14], v[15]]),
        })
    }
}

fn decode_i64(v: &[u8]) -> Result<i64> {
    let a: [u8; 8] = v
        .try_into()
        .map_err(|_| StorageError::Corrupt(format!("expected 8 bytes, got {}", v.len())))?;
    Ok(i64::from_be_bytes(a))
}

fn header_of(batch: &[u8]) -> Result<BatchHeader> {
    BatchHeader::parse(batch).map_err(|e| StorageError::Corrupt(format!("stored batch: {e}")))
}

/// Is a stored batch whole and intact? (The checks a torn write would fail.)
fn stored_batch_ok(key_offset: i64, v: &[u8]) -> bool {
    let Ok(h) = BatchHeader::parse(v) else {
        return false;
    };
    h.magic == 2
        && h.batch_length >= records::MIN_BATCH_LENGTH
        && h.total_len() == v.len()
        && h.base_offset == key_offset
        && h.last_offset_delta >= 0
        && crc32c::crc32c(&v[21..]) == h.crc
}

/// First record at or after `offset >= min_offset` with timestamp >= `ts`.
/// A batch that does not decode, or inflates beyond `max_inflated`, is
/// skipped with a warning: a client could once store garbage under a valid
/// CRC, which must not fail ListOffsets for good (nor exhaust memory).
fn first_in_batch(
    batch: &Bytes,
    ts: i64,
    min_offset: i64,
    max_inflated: usize,
) -> Option<(i64, i64)> {
    match records::first_record_at_or_after(batch, ts, min_offset, max_inflated) {
        Ok(found) => found,
        Err(e) => {
            let base_offset = BatchHeader::parse(batch)
                .map(|h| h.base_offset)
                .unwrap_or(-1);
            tracing::warn!(base_offset, error = %e, "stored batch skipped in a timestamp lookup");
            None
        }
    }
}

impl PartitionLog {
    /// A new, empty partition.
    pub(crate) fn create(
        shared: Arc<Shared>,
        topic: &str,
        partition: i32,
        pid: u32,
    ) -> PartitionLog {
        PartitionLog {
            shared,
            topic: topic.to_owned(),
            partition,
            pid,
            log_end: AtomicI64::new(0),
            log_start: AtomicI64::new(0),
            size: AtomicU64::new(0),
            deleted: AtomicBool::new(false),
            state: Mutex::new(AppendState {
                running_max_ts: i64::MIN,
                producers: HashMap::new(),
            }),
            retention: Mutex::new(()),
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// Recovers a partition at open: log start, log end from the last intact
    /// batch (a torn or corrupt tail is dropped, fjall's TolerateCorruptTail),
    /// running max timestamp, size and producer state.
    pub(crate) fn load(
        shared: Arc<Shared>,
        topic: &str,
        partition: i32,
        pid: u32,
    ) -> Result<PartitionLog> {
        let log = PartitionLog::create(shared, topic, partition, pid);
        let engine = &*log.shared.engine;
        let log_start = match engine.get(&keys::log_start_key(pid))? {
            Some(v) => decode_i64(&v)?,
            None => 0,
        };

        // Walk back over the tail: at least TAIL_CHECK batches, and on
        // until an intact one, so a run of damaged batches goes as a whole.
        let (lfrom, lto) = keys::prefix_range(&keys::partition_prefix(LOG, pid));
        let mut tail: Vec<(i64, Option<BatchHeader>)> = Vec::new();
        engine.scan(&lfrom, &lto, true, &mut |k, v| {
            let off =
                keys::offset_of(k).ok_or_else(|| StorageError::Corrupt("short log key".into()))?;
            let ok = stored_batch_ok(off, &v);
            tail.push((
                off,
                if ok {
                    BatchHeader::parse(&v).ok()
                } else {
                    None
                },
            ));
            Ok(tail.len() < TAIL_CHECK || !ok)
        })?;
        tail.reverse();
        // Forward over the window: intact and contiguous, else cut there.
        let mut cut: Option<i64> = None;
        let mut end: Option<i64> = None;
        for (off, h) in &tail {
            match h {
                Some(h) if end.is_none_or(|e| e == *off) => end = Some(h.last_offset() + 1),
                _ => {
                    cut = Some(*off);
                    break;
                }
            }
        }
        let log_end = match (cut, end) {
            (Some(c), _) => c,
            (None, Some(e)) => e,
            (None, None) => log_start,
        }
        .max(log_start);

        let mut repair = WriteBatch::default();
        if let Some(c) = cut {
            tracing::warn!(
                topic,
                partition,
                from_offset = c,
                "dropping a torn or corrupt log tail at open"
            );
            for tag in [LOG, INDEX] {
                let (_, to) = keys::prefix_range(&keys::partition_prefix(tag, pid));
                engine.scan(&keys::offset_key(tag, pid, c), &to, false, &mut |k, _| {
                    repair.delete(k.to_vec());
                    Ok(true)
                })?;
            }
            // Time entries of the dropped batches (keyed by ts, so scan all).
            let (tfrom, tto) = keys::prefix_range(&keys::partition_prefix(TIME, pid));
            engine.scan(&tfrom, &tto, false, &mut |k, _| {
                if keys::time_key_parts(k).is_some_and(|(_, base)| base >= c) {
                    repair.delete(k.to_vec());
                }
                Ok(true)
            })?;
        } else {
            // Index entries without a batch (cannot happen with atomic
            // writes, but cheap to make sure the index never runs ahead).
            let (_, to) = keys::prefix_range(&keys::partition_prefix(INDEX, pid));
            engine.scan(
                &keys::offset_key(INDEX, pid, log_end),
                &to,
                false,
                &mut |k, _| {
                    repair.delete(k.to_vec());
                    Ok(true)
                },
            )?;
        }

        // Running max: the highest live time entry.
        let mut running_max_ts = i64::MIN;
        let (tfrom, tto) = keys::prefix_range(&keys::partition_prefix(TIME, pid));
        engine.scan(&tfrom, &tto, true, &mut |k, v| {
            let Some((ts, base)) = keys::time_key_parts(k) else {
                return Ok(true);
            };
            let last = decode_i64(&v)?;
            if last >= log_start && base < log_end {
                running_max_ts = ts;
                return Ok(false);
            }
            Ok(true)
        })?;

        // Size of the live batches.
        let mut size = 0u64;
        engine.scan(
            &keys::offset_key(INDEX, pid, 0),
            &keys::offset_key(INDEX, pid, log_end),
            false,
            &mut |k, v| {
                let e = IndexEntry::decode(k, &v)?;
                if e.last() >= log_start {
                    size += u64::from(e.size);
                }
                Ok(true)
            },
        )?;

        // Producer state, forgetting batches of a dropped tail.
        let mut producers = HashMap::new();
        let (pfrom, pto) = keys::prefix_range(&keys::partition_prefix(PRODUCER, pid));
        engine.scan(&pfrom, &pto, false, &mut |k, v| {
            let id = keys::offset_of(k)
                .ok_or_else(|| StorageError::Corrupt("short producer key".into()))?;
            let mut st = ProducerState::decode(&v)?;
            let before = st.batches.len();
            st.batches.retain(|b| b.base_offset < log_end);
            if st.batches.is_empty() {
                // Nothing left to check a sequence against: treat as new.
                repair.delete(k.to_vec());
            } else {
                if st.batches.len() != before {
                    repair.put(k.to_vec(), st.encode());
                }
                producers.insert(id, st);
            }
            Ok(true)
        })?;

        if !repair.is_empty() {
            engine.write(repair)?;
            log.shared.mark_dirty();
        }
        log.log_start.store(log_start, Ordering::Release);
        log.log_end.store(log_end, Ordering::Release);
        log.size.store(size, Ordering::Release);
        {
            let mut st = lock(&log.state);
            st.running_max_ts = running_max_ts;
            st.producers = producers;
        }
        Ok(log)
    }

    /// Topic this partition belongs to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Partition index.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Marks the partition deleted: later appends and reads get
    /// `UnknownTopic`, and long-polls are woken so they notice.
    pub(crate) fn mark_deleted(&self) {
        // Under the append lock, so no append is half-way when we return.
        let _st = lock(&self.state);
        self.deleted.store(true, Ordering::Release);
        drop(_st);
        self.wake_waiters();
    }

    fn check_live(&self) -> Result<()> {
        if self.deleted.load(Ordering::Acquire) {
            Err(StorageError::UnknownTopic)
        } else {
            Ok(())
        }
    }

    /// Appends ONE client record batch v2, already validated by the caller
    /// (`gregor_protocol::records::validate_client_batch`).
    ///
    /// Assigns base offset = log end offset and patches it and the leader
    /// epoch in place (outside the CRC); for LogAppendTime stamps the time
    /// and recomputes the CRC. Idempotent batches (`producer_id >= 0`) are
    /// checked as Kafka's `ProducerStateManager` does: an older epoch is
    /// `InvalidProducerEpoch`; a retry of one of the last 5 batches returns
    /// the original offset with `duplicate: true` and writes nothing; a gap
    /// is `OutOfOrderSequence`. The batch, its index entries and the producer
    /// state go in one atomic write; then the log end advances and waiters
    /// are woken. Not durable until [`crate::Store::sync`].
    pub fn append(&self, mut batch: Vec<u8>, opts: AppendOptions) -> Result<AppendOutcome> {
        self.shared.check_writable()?;
        let mut h = BatchHeader::parse(&batch)?;
        let mut st = lock(&self.state);
        self.check_live()?;

        let idempotent = h.producer_id >= 0;
        if idempotent {
            if let Check::Duplicate(base_offset) =
                producer::check(st.producers.get(&h.producer_id), &h)?
            {
                return Ok(AppendOutcome {
                    base_offset,
                    log_append_time_ms: -1,
                    log_start_offset: self.log_start.load(Ordering::Acquire),
                    duplicate: true,
                });
            }
        }

        let base = self.log_end.load(Ordering::Acquire);
        records::set_base_offset(&mut batch, base);
        records::set_leader_epoch(&mut batch, opts.leader_epoch);
        if let Some(now) = opts.log_append_time_ms {
            records::set_log_append_time(&mut batch, now);
            h.max_timestamp = now;
        }
        h.base_offset = base;
        let entry = IndexEntry {
            base,
            last_offset_delta: h.last_offset_delta,
            max_ts: h.max_timestamp,
            size: u32::try_from(batch.len()).map_err(|_| {
                StorageError::Engine(format!("batch of {} bytes is too large", batch.len()))
            })?,
        };

        let mut wb = WriteBatch::default();
        wb.put(keys::offset_key(INDEX, self.pid, base), entry.encode());
        let raises_max = entry.max_ts > st.running_max_ts;
        if raises_max {
            wb.put(
                keys::time_key(self.pid, entry.max_ts, base),
                entry.last().to_be_bytes().to_vec(),
            );
        }
        let new_producer =
            idempotent.then(|| producer::updated(st.producers.get(&h.producer_id), &h, base));
        if let Some(p) = &new_producer {
            wb.put(keys::producer_key(self.pid, h.producer_id), p.encode());
        }
        wb.put(keys::offset_key(LOG, self.pid, base), batch);
        self.shared.engine.write(wb)?;

        // Committed: now publish.
        if raises_max {
            st.running_max_ts = entry.max_ts;
        }
        if let Some(p) = new_producer {
            st.producers.insert(h.producer_id, p);
        }
        self.size.fetch_add(u64::from(entry.size), Ordering::AcqRel);
        self.log_end.store(entry.last() + 1, Ordering::Release);
        self.shared.mark_dirty();
        drop(st);
        self.wake_waiters();
        Ok(AppendOutcome {
            base_offset: base,
            log_append_time_ms: opts.log_append_time_ms.unwrap_or(-1),
            log_start_offset: self.log_start.load(Ordering::Acquire),
            duplicate: false,
        })
    }

    /// Stored batches from the one CONTAINING `offset`: whole batches,
    /// at most `max_bytes` in total, except that the first batch is always
    /// returned even if larger (KIP-74). `offset == high watermark` gives no
    /// batches; below the log start or above the high watermark is
    /// `OffsetOutOfRange`. The batches share the engine's buffers (no copy).
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        self.check_live()?;
        let hw = self.log_end.load(Ordering::Acquire);
        let ls = self.log_start.load(Ordering::Acquire);
        if offset < ls || offset > hw {
            return Err(StorageError::OffsetOutOfRange {
                log_start_offset: ls,
                high_watermark: hw,
            });
        }
        let mut out = ReadResult {
            batches: Vec::new(),
            high_watermark: hw,
            log_start_offset: ls,
        };
        if offset == hw {
            return Ok(out);
        }
        let engine = &*self.shared.engine;
        // The batch containing `offset` is the last one based at or before it.
        let start = match engine.first(
            &keys::offset_key(LOG, self.pid, 0),
            &keys::offset_key(LOG, self.pid, offset + 1),
            true,
        )? {
            Some((k, v)) if header_of(&v)?.last_offset() >= offset => {
                keys::offset_of(&k).unwrap_or(offset)
            }
            _ => offset,
        };
        let mut total = 0usize;
        // Keys below the high watermark snapshot only: a batch written but
        // not yet published is not served.
        engine.scan(
            &keys::offset_key(LOG, self.pid, start),
            &keys::offset_key(LOG, self.pid, hw),
            false,
            &mut |_, v| {
                if !out.batches.is_empty() && total + v.len() > max_bytes {
                    return Ok(false);
                }
                total += v.len();
                out.batches.push(v);
                Ok(total < max_bytes)
            },
        )?;
        Ok(out)
    }

    /// Offset the next append gets; on a single node, the high watermark.
    pub fn high_watermark(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    /// First readable offset.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }

    /// Bytes of the live batches.
    pub fn size_bytes(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// ListOffsets by timestamp: the first record with timestamp >= `ts`
    /// (at or after the log start), as `(offset, timestamp)`; `None` if none.
    /// Compressed batches are inflated as a stream of at most `max_inflated`
    /// bytes each; one that inflates further is skipped with a warning.
    pub fn offset_for_timestamp(&self, ts: i64, max_inflated: usize) -> Result<Option<(i64, i64)>> {
        self.check_live()?;
        let hw = self.log_end.load(Ordering::Acquire);
        let ls = self.log_start.load(Ordering::Acquire);
        let engine = &*self.shared.engine;
        // First live time entry at or after ts: the first batch whose
        // timestamps can reach ts (every batch before it stays below).
        let (_, tto) = keys::prefix_range(&keys::partition_prefix(TIME, self.pid));
        let mut from_base = None;
        engine.scan(
            &keys::time_key(self.pid, ts, 0),
            &tto,
            false,
            &mut |k, v| {
                let Some((_, base)) = keys::time_key_parts(k) else {
                    return Ok(true);
                };
                if decode_i64(&v)? >= ls && base < hw {
                    from_base = Some(base);
                    return Ok(false);
                }
                Ok(true)
            },
        )?;
        let Some(from_base) = from_base else {
            return Ok(None);
        };
        // Normally found in that batch; keep walking if its header's max
        // timestamp was not borne out by its records.
        let mut found = None;
        engine.scan(
            &keys::offset_key(LOG, self.pid, from_base),
            &keys::offset_key(LOG, self.pid, hw),
            false,
            &mut |_, v| {
                found = first_in_batch(&v, ts, ls, max_inflated);
                Ok(found.is_none())
            },
        )?;
        Ok(found)
    }

    /// ListOffsets MAX_TIMESTAMP (-3): offset and timestamp of the record
    /// with the largest timestamp (the first such record), `None` if empty.
    /// Inflates at most `max_inflated` bytes, as [`Self::offset_for_timestamp`].
    pub fn max_timestamp(&self, max_inflated: usize) -> Result<Option<(i64, i64)>> {
        self.check_live()?;
        let hw = self.log_end.load(Ordering::Acquire);
        let ls = self.log_start.load(Ordering::Acquire);
        let engine = &*self.shared.engine;
        let (tfrom, tto) = keys::prefix_range(&keys::partition_prefix(TIME, self.pid));
        let mut top = None;
        engine.scan(&tfrom, &tto, true, &mut |k, v| {
            let Some((ts, base)) = keys::time_key_parts(k) else {
                return Ok(true);
            };
            if decode_i64(&v)? >= ls && base < hw {
                top = Some((ts, base));
                return Ok(false);
            }
            Ok(true)
        })?;
        let Some((ts, base)) = top else {
            return Ok(None);
        };
        let Some(batch) = engine.get(&keys::offset_key(LOG, self.pid, base))? else {
            return Ok(None);
        };
        Ok(Some(
            first_in_batch(&batch, ts, ls, max_inflated).unwrap_or((base.max(ls), ts)),
        ))
    }

    /// Registers a long-poll waiter: every later append calls `notify_one()`
    /// on it until the caller drops its `Arc`. Registering the same `Arc`
    /// twice is a no-op.
    pub fn register_waiter(&self, waiter: &Arc<Notify>) {
        let mut ws = lock(&self.waiters);
        ws.retain(|w| w.strong_count() > 0);
        let weak = Arc::downgrade(waiter);
        if !ws.iter().any(|w| w.ptr_eq(&weak)) {
            ws.push(weak);
        }
    }

    fn wake_waiters(&self) {
        let mut ws = lock(&self.waiters);
        ws.retain(|w| match w.upgrade() {
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        });
    }

    /// DeleteRecords: moves the log start to `offset` and deletes the whole
    /// batches below it (a batch straddling `offset` stays; reads honour the
    /// new log start at once). `offset` above the high watermark (or
    /// negative) is `OffsetOutOfRange`; at or below the log start it changes
    /// nothing. Returns the new log start.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64> {
        self.shared.check_writable()?;
        let _r = lock(&self.retention);
        self.check_live()?;
        let hw = self.log_end.load(Ordering::Acquire);
        let ls = self.log_start.load(Ordering::Acquire);
        if offset < 0 || offset > hw {
            return Err(StorageError::OffsetOutOfRange {
                log_start_offset: ls,
                high_watermark: hw,
            });
        }
        if offset <= ls {
            return Ok(ls);
        }
        self.advance_log_start(offset)?;
        Ok(offset)
    }

    /// Time and size retention: deletes whole batches, oldest first, while
    /// the oldest one's max timestamp is below `now_ms - retention_ms`
    /// (`retention_ms < 0`: never) or the live size exceeds
    /// `retention_bytes` (`< 0`: unlimited). Never deletes the last batch.
    /// Returns the number of records deleted.
    pub fn enforce_retention(
        &self,
        now_ms: i64,
        retention_ms: i64,
        retention_bytes: i64,
    ) -> Result<u64> {
        self.shared.check_writable()?;
        if retention_ms < 0 && retention_bytes < 0 {
            return Ok(0);
        }
        let _r = lock(&self.retention);
        self.check_live()?;
        let hw = self.log_end.load(Ordering::Acquire);
        let ls = self.log_start.load(Ordering::Acquire);
        let cutoff = now_ms.saturating_sub(retention_ms);
        let mut remaining = self.size.load(Ordering::Acquire);
        let mut new_ls = ls;
        self.shared.engine.scan(
            &keys::offset_key(INDEX, self.pid, 0),
            &keys::offset_key(INDEX, self.pid, hw),
            false,
            &mut |k, v| {
                let e = IndexEntry::decode(k, &v)?;
                if e.last() < ls {
                    return Ok(true); // stale, already accounted for
                }
                if e.last() + 1 >= hw {
                    return Ok(false); // the last batch always stays
                }
                let time_breach = retention_ms >= 0 && e.max_ts < cutoff;
                let size_breach = u64::try_from(retention_bytes).is_ok_and(|max| remaining > max);
                if !(time_breach || size_breach) {
                    return Ok(false);
                }
                remaining = remaining.saturating_sub(u64::from(e.size));
                new_ls = e.last() + 1;
                Ok(true)
            },
        )?;
        if new_ls <= ls {
            return Ok(0);
        }
        self.advance_log_start(new_ls)?;
        Ok(u64::try_from(new_ls - ls).unwrap_or(0))
    }

    /// Persists `new_ls` as the log start (with a rebuilt time index for the
    /// survivors, in the same write), then deletes the dead batches in
    /// chunks. Caller holds the retention lock; `new_ls` is in (ls, hw].
    fn advance_log_start(&self, new_ls: i64) -> Result<()> {
        let engine = &*self.shared.engine;
        let old_ls = self.log_start.load(Ordering::Acquire);

        // Batches wholly below the new start, stale ones included (left by
        // a crash during an earlier run), and where the survivors begin.
        let mut doomed: Vec<IndexEntry> = Vec::new();
        let mut survivors_from = new_ls;
        engine.scan(
            &keys::offset_key(INDEX, self.pid, 0),
            &keys::offset_key(INDEX, self.pid, i64::MAX),
            false,
            &mut |k, v| {
                let e = IndexEntry::decode(k, &v)?;
                if e.last() < new_ls {
                    doomed.push(e);
                    Ok(true)
                } else {
                    survivors_from = e.base;
                    Ok(false)
                }
            },
        )?;
        let freed: u64 = doomed
            .iter()
            .filter(|e| e.last() >= old_ls)
            .map(|e| u64::from(e.size))
            .sum();

        {
            let mut st = lock(&self.state);
            let log_end = self.log_end.load(Ordering::Acquire);
            // The time index must again hold exactly the batches that raise
            // the running max counted from the new log start. Entries from
            // the first live one on are still right (it beats everything
            // before it); the survivors before it need entries of their own.
            let (tfrom, tto) = keys::prefix_range(&keys::partition_prefix(TIME, self.pid));
            let mut first_live: Option<i64> = None;
            engine.scan(&tfrom, &tto, false, &mut |k, v| {
                let Some((_, base)) = keys::time_key_parts(k) else {
                    return Ok(true);
                };
                if decode_i64(&v)? >= new_ls {
                    first_live = Some(base);
                    return Ok(false);
                }
                Ok(true)
            })?;
            let mut wb = WriteBatch::default();
            let mut running = i64::MIN;
            engine.scan(
                &keys::offset_key(INDEX, self.pid, survivors_from),
                &keys::offset_key(INDEX, self.pid, first_live.unwrap_or(log_end)),
                false,
                &mut |k, v| {
                    let e = IndexEntry::decode(k, &v)?;
                    if e.max_ts > running {
                        running = e.max_ts;
                        wb.put(
                            keys::time_key(self.pid, e.max_ts, e.base),
                            e.last().to_be_bytes().to_vec(),
                        );
                    }
                    Ok(true)
                },
            )?;
            wb.put(keys::log_start_key(self.pid), new_ls.to_be_bytes().to_vec());
            engine.write(wb)?;
            if first_live.is_none() {
                // The max batch itself went: the running max drops.
                st.running_max_ts = running;
            }
            self.log_start.store(new_ls, Ordering::Release);
            self.size.fetch_sub(
                freed.min(self.size.load(Ordering::Acquire)),
                Ordering::AcqRel,
            );
            self.shared.mark_dirty();
        }

        // The keys of dead batches are unreachable now; remove them in
        // chunks so appends on other partitions are not stalled.
        let mut wb = WriteBatch::default();
        for e in &doomed {
            wb.delete(keys::offset_key(LOG, self.pid, e.base));
            wb.delete(keys::offset_key(INDEX, self.pid, e.base));
            // A batch's own time entry, if it has one, is keyed by its max ts.
            wb.delete(keys::time_key(self.pid, e.max_ts, e.base));
            if wb.len() >= DELETE_CHUNK {
                engine.write(std::mem::take(&mut wb))?;
                self.shared.mark_dirty();
            }
        }
        if !wb.is_empty() {
            engine.write(wb)?;
        }
        self.shared.mark_dirty();
        Ok(())
    }

    /// Forgets producers whose last batch's timestamp is older than
    /// `now_ms - expiration_ms` (Kafka's `producer.id.expiration.ms`, default
    /// one day), so per-producer state does not grow without bound. A
    /// forgotten producer is treated as new. Returns how many were dropped.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> Result<usize> {
        self.shared.check_writable()?;
        let cutoff = now_ms.saturating_sub(expiration_ms);
        let mut st = lock(&self.state);
        let expired: Vec<i64> = st
            .producers
            .iter()
            .filter(|(_, s)| s.last_timestamp < cutoff)
            .map(|(id, _)| *id)
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        let mut wb = WriteBatch::default();
        for id in &expired {
            wb.delete(keys::producer_key(self.pid, *id));
        }
        self.shared.engine.write(wb)?;
        for id in &expired {
            st.producers.remove(id);
        }
        self.shared.mark_dirty();
        Ok(expired.len())
    }
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLog")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("log_start", &self.log_start_offset())
            .field("high_watermark", &self.high_watermark())
            .finish()
    }
}
