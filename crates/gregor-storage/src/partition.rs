//! One partition's log: record batches in append-only segment files, as
//! Apache Kafka keeps them, indexed in the engine.
//!
//! - Segment files `<base offset:020>.log` in the partition's directory
//!   hold the batches exactly as served (the client's bytes, base offset
//!   and leader epoch patched in place). The active (last) one takes the
//!   appends; it rolls at `segment.bytes` or `segment.ms`.
//! - A sparse offset index (an entry at most every `index.interval.bytes`,
//!   and at the start of each segment) maps offsets to file positions; a
//!   sparse time index maps the running max timestamp to the offset of the
//!   index point where it was seen.
//! - Entries newer than the last checkpoint live in memory (`tail_*`); a
//!   checkpoint ([`crate::durability`]) writes them, the producer state and
//!   the segment list to the engine, with the recovery point: the log end
//!   offset whose bytes the same cycle made durable.
//! - Opening after a crash re-reads only what lies after the recovery point
//!   ([`PartitionLog::recover`]): every batch's CRC is checked, a torn tail
//!   is cut, a damaged batch followed by intact data quarantines the
//!   partition instead of cutting it silently.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use bytes::Bytes;
use gregor_protocol::records::{self, BatchHeader, BATCH_HEADER_LEN};
use tokio::sync::Notify;

use crate::durability::{lock, Checkpoint, Shared};
use crate::engine::{EngineExt, WriteBatch};
use crate::error::{Result, StorageError};
use crate::fs::FileHandle;
use crate::keys::{self, INDEX, TIME};
use crate::producer::{self, Check, ProducerState};
use crate::{AppendOptions, AppendOutcome, ReadResult};

#[path = "compact.rs"]
mod compact;
pub use compact::{CompactOptions, CompactStats};

/// Keys deleted per engine write during retention and purges: big enough to
/// amortise, small enough not to stall other writers.
pub(crate) const DELETE_CHUNK: usize = 1000;

/// Bytes read per step while recovering a segment.
const RECOVERY_CHUNK: usize = 1 << 20;

/// Bytes of a batch header a reader needs to step over it: base offset,
/// length, leader epoch, magic, CRC, attributes, last offset delta.
const STEP_HEADER: usize = 27;

/// Segment file name for a base offset, as Kafka names them.
pub(crate) fn segment_file_name(base: i64) -> String {
    format!("{base:020}.log")
}

fn parse_segment_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One segment as the log tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegInfo {
    pub(crate) base: i64,
    pub(crate) size: u64,
    /// Offset of the last record, `base - 1` while empty.
    pub(crate) last_offset: i64,
    /// Largest batch max timestamp, `i64::MIN` while empty.
    pub(crate) max_ts: i64,
    /// Base offset of the first batch that reached `max_ts`.
    pub(crate) max_ts_offset: i64,
    /// When it started, for `segment.ms`: its first batch's max timestamp
    /// (wall-clock time if that batch had none), as Kafka measures it.
    pub(crate) created_ms: i64,
}

impl SegInfo {
    fn new(base: i64, now_ms: i64) -> SegInfo {
        SegInfo {
            base,
            size: 0,
            last_offset: base - 1,
            max_ts: i64::MIN,
            max_ts_offset: -1,
            created_ms: now_ms,
        }
    }
}

/// The engine's `R` value: what opening needs without reading the segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckpointRec {
    pub(crate) log_start: i64,
    /// Everything below is in durable segment bytes, indexed in the engine
    /// and reflected in the producer snapshots.
    pub(crate) recovery_offset: i64,
    pub(crate) bytes_since_index: u64,
    pub(crate) last_index_ts: i64,
    /// Oldest first; the last one is the active segment, its `size` the
    /// position of `recovery_offset`.
    pub(crate) segs: Vec<SegInfo>,
}

const CKPT_VERSION: u8 = 1;
const CKPT_HEAD: usize = 1 + 8 + 8 + 8 + 8 + 4;
const CKPT_SEG: usize = 6 * 8;

impl CheckpointRec {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(CKPT_HEAD + CKPT_SEG * self.segs.len());
        v.push(CKPT_VERSION);
        v.extend_from_slice(&self.log_start.to_be_bytes());
        v.extend_from_slice(&self.recovery_offset.to_be_bytes());
        v.extend_from_slice(&self.bytes_since_index.to_be_bytes());
        v.extend_from_slice(&self.last_index_ts.to_be_bytes());
        let n = u32::try_from(self.segs.len()).unwrap_or(u32::MAX);
        v.extend_from_slice(&n.to_be_bytes());
        for s in &self.segs {
            v.extend_from_slice(&s.base.to_be_bytes());
            v.extend_from_slice(&s.size.to_be_bytes());
            v.extend_from_slice(&s.last_offset.to_be_bytes());
            v.extend_from_slice(&s.max_ts.to_be_bytes());
            v.extend_from_slice(&s.max_ts_offset.to_be_bytes());
            v.extend_from_slice(&s.created_ms.to_be_bytes());
        }
        v
    }

    pub(crate) fn decode(v: &[u8]) -> Result<CheckpointRec> {
        let bad = || StorageError::Corrupt(format!("partition checkpoint of {} bytes", v.len()));
        if v.len() < CKPT_HEAD || v[0] != CKPT_VERSION {
            return Err(bad());
        }
        let i64_at = |at: usize| -> i64 {
            let mut a = [0u8; 8];
            a.copy_from_slice(&v[at..at + 8]);
            i64::from_be_bytes(a)
        };
        let n =
            usize::try_from(u32::from_be_bytes([v[33], v[34], v[35], v[36]])).map_err(|_| bad())?;
        if v.len() != CKPT_HEAD + n * CKPT_SEG {
            return Err(bad());
        }
        let segs = (0..n)
            .map(|i| {
                let at = CKPT_HEAD + i * CKPT_SEG;
                SegInfo {
                    base: i64_at(at),
                    size: u64::try_from(i64_at(at + 8)).unwrap_or(0),
                    last_offset: i64_at(at + 16),
                    max_ts: i64_at(at + 24),
                    max_ts_offset: i64_at(at + 32),
                    created_ms: i64_at(at + 40),
                }
            })
            .collect();
        Ok(CheckpointRec {
            log_start: i64_at(1),
            recovery_offset: i64_at(9),
            bytes_since_index: u64::try_from(i64_at(17)).unwrap_or(0),
            last_index_ts: i64_at(25),
            segs,
        })
    }
}

/// An aborted transaction (Kafka's `AbortedTxn`): the producer, the first
/// offset of its data and the offset of its ABORT marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// Producer id.
    pub producer_id: i64,
    /// First offset of the transaction's data on this partition.
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
}

impl AbortedTxn {
    pub(crate) fn value(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&self.producer_id.to_be_bytes());
        v.extend_from_slice(&self.first_offset.to_be_bytes());
        v
    }

    pub(crate) fn decode(last_offset: i64, v: &[u8]) -> Result<AbortedTxn> {
        if v.len() != 16 {
            return Err(StorageError::Corrupt(format!(
                "aborted transaction entry of {} bytes",
                v.len()
            )));
        }
        let at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&v[i..i + 8]);
            i64::from_be_bytes(a)
        };
        Ok(AbortedTxn {
            producer_id: at(0),
            first_offset: at(8),
            last_offset,
        })
    }
}

/// One producer's state on a partition, for DescribeProducers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerInfo {
    /// Producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub epoch: i16,
    /// Last sequence written, -1 if none.
    pub last_sequence: i32,
    /// Max timestamp of its last batch.
    pub last_timestamp: i64,
    /// First offset of its open transaction, -1 if none.
    pub txn_start_offset: i64,
    /// Coordinator epoch of its last marker, -1 if none.
    pub coordinator_epoch: i32,
}

/// What a checkpoint of one partition writes (taken under its lock).
pub(crate) struct Snapshot {
    rec: CheckpointRec,
    index: Vec<(i64, i64, u64)>,
    time: Vec<(i64, i64)>,
    producers: Vec<(i64, Vec<u8>)>,
    expired: Vec<i64>,
    aborted: Vec<AbortedTxn>,
}

struct LogState {
    /// Oldest first; the last is the active segment. Empty until the first
    /// append (a partition without data has no directory).
    segs: Vec<SegInfo>,
    bytes_since_index: u64,
    /// Running max timestamp at the last time-index entry.
    last_index_ts: i64,
    /// Index entries (offset, segment base, position) not yet checkpointed.
    tail_index: Vec<(i64, i64, u64)>,
    /// Time-index entries (max ts, offset) not yet checkpointed.
    tail_time: Vec<(i64, i64)>,
    producers: HashMap<i64, ProducerState>,
    dirty_producers: HashSet<i64>,
    expired_producers: Vec<i64>,
    /// Open transactions as (first offset, producer id): the first is the
    /// last stable offset.
    open_txns: BTreeSet<(i64, i64)>,
    /// Aborted transactions still in the log, in marker order.
    aborted: Vec<AbortedTxn>,
    /// Those not yet checkpointed.
    tail_aborted: Vec<AbortedTxn>,
    /// Offset up to which the log was last compacted (in memory: after a
    /// restart the first pass treats everything as dirty).
    clean_end: i64,
    /// The oldest batch timestamp among tombstones the last compaction
    /// kept: when it passes `delete.retention.ms`, the log is cleaned again
    /// even without new data (KIP-534).
    oldest_tombstone: Option<i64>,
    /// Changed since the last checkpoint.
    dirty: bool,
    /// Where the last read ended: (next offset, segment base, position),
    /// so a consumer reading on needs no index lookup.
    read_hint: Option<(i64, i64, u64)>,
}

/// One partition of a topic. Appends are serialised per partition; reads
/// run concurrently with them and with each other.
pub struct PartitionLog {
    shared: Arc<Shared>,
    topic: String,
    partition: i32,
    lid: u32,
    dir: PathBuf,
    /// Offset the next append gets (= high watermark on a single node).
    /// Published after the write, so readers never see a missing batch.
    log_end: AtomicI64,
    log_start: AtomicI64,
    /// Bytes of the segments still kept.
    size: AtomicU64,
    /// Set when the topic is deleted: appends and reads then fail.
    deleted: AtomicBool,
    /// Set when recovery found damage it must not cut: every call fails.
    quarantined: OnceLock<String>,
    state: Mutex<LogState>,
    /// Serialises retention, DeleteRecords and compaction.
    retention: Mutex<()>,
    /// Held shared by reads and exclusively while compaction swaps a
    /// segment file, so that no read mixes the old file and new positions.
    swap: std::sync::RwLock<()>,
    waiters: Mutex<Vec<Weak<Notify>>>,
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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// (base offset, total length, last offset) of the batch header at the
/// start of `b`, or `None` if it is not a plausible v2 header.
fn step(b: &[u8]) -> Option<(i64, u64, i64)> {
    let h = b.get(..STEP_HEADER)?;
    let base = i64::from_be_bytes(h[0..8].try_into().ok()?);
    let len = i32::from_be_bytes(h[8..12].try_into().ok()?);
    let magic = h[16];
    let delta = i32::from_be_bytes(h[23..27].try_into().ok()?);
    if magic != 2 || len < records::MIN_BATCH_LENGTH || delta < 0 {
        return None;
    }
    let total = 12 + u64::try_from(len).ok()?;
    Some((base, total, base.checked_add(i64::from(delta))?))
}

impl PartitionLog {
    fn new(
        shared: Arc<Shared>,
        topic: &str,
        partition: i32,
        lid: u32,
        dir: PathBuf,
    ) -> PartitionLog {
        PartitionLog {
            shared,
            topic: topic.to_owned(),
            partition,
            lid,
            dir,
            log_end: AtomicI64::new(0),
            log_start: AtomicI64::new(0),
            size: AtomicU64::new(0),
            deleted: AtomicBool::new(false),
            quarantined: OnceLock::new(),
            state: Mutex::new(LogState {
                segs: Vec::new(),
                bytes_since_index: 0,
                last_index_ts: i64::MIN,
                tail_index: Vec::new(),
                tail_time: Vec::new(),
                producers: HashMap::new(),
                dirty_producers: HashSet::new(),
                expired_producers: Vec::new(),
                open_txns: BTreeSet::new(),
                aborted: Vec::new(),
                tail_aborted: Vec::new(),
                clean_end: 0,
                oldest_tombstone: None,
                dirty: false,
                read_hint: None,
            }),
            retention: Mutex::new(()),
            swap: std::sync::RwLock::new(()),
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// A new, empty partition (no directory until the first append).
    pub(crate) fn create(
        shared: Arc<Shared>,
        topic: &str,
        partition: i32,
        lid: u32,
        dir: PathBuf,
    ) -> Arc<PartitionLog> {
        let log = Arc::new(PartitionLog::new(
            Arc::clone(&shared),
            topic,
            partition,
            lid,
            dir,
        ));
        shared.register_log(&log);
        log
    }

    /// Opens a partition from its checkpoint and producer snapshots. After
    /// a clean close that is all; otherwise what lies after the recovery
    /// point is re-read first ([`PartitionLog::recover`]).
    #[allow(clippy::too_many_arguments)] // one call site, in Store::load
    pub(crate) fn load(
        shared: Arc<Shared>,
        topic: &str,
        partition: i32,
        lid: u32,
        dir: PathBuf,
        ckpt: Option<CheckpointRec>,
        producers: HashMap<i64, ProducerState>,
        aborted: Vec<AbortedTxn>,
        clean: bool,
    ) -> Result<Arc<PartitionLog>> {
        let log = PartitionLog::new(Arc::clone(&shared), topic, partition, lid, dir);
        {
            let mut st = lock(&log.state);
            if let Some(c) = &ckpt {
                st.segs.clone_from(&c.segs);
                st.bytes_since_index = c.bytes_since_index;
                st.last_index_ts = c.last_index_ts;
                log.log_start.store(c.log_start, Ordering::Release);
                log.log_end.store(c.recovery_offset, Ordering::Release);
                log.size
                    .store(c.segs.iter().map(|s| s.size).sum(), Ordering::Release);
            }
            st.open_txns = producers
                .iter()
                .filter(|(_, p)| p.txn_first_offset >= 0)
                .map(|(id, p)| (p.txn_first_offset, *id))
                .collect();
            st.producers = producers;
            st.aborted = aborted;
        }
        if !clean {
            if let Err(e) = log.recover(ckpt.as_ref()) {
                match e {
                    StorageError::Corrupt(msg) => {
                        tracing::error!(topic, partition, reason = %msg, "partition quarantined: its log is damaged before its end; it is left as found and refuses reads and writes");
                        let _ = log.quarantined.set(msg);
                    }
                    other => return Err(other),
                }
            }
        }
        let log = Arc::new(log);
        shared.register_log(&log);
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

    pub(crate) fn lid(&self) -> u32 {
        self.lid
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn seg_path(&self, base: i64) -> PathBuf {
        self.dir.join(segment_file_name(base))
    }

    /// Marks the partition deleted: later appends and reads get
    /// `UnknownTopic`, and long-polls are woken so they notice.
    pub(crate) fn mark_deleted(&self) {
        // Under the append lock, so no append is half-way when we return.
        let st = lock(&self.state);
        self.deleted.store(true, Ordering::Release);
        drop(st);
        self.shared.unregister_log(self.lid);
        self.wake_waiters();
    }

    /// Records that the partition needs a checkpoint (and tells the store,
    /// so a checkpoint visits only changed partitions).
    fn mark_changed(&self, st: &mut LogState) {
        if !st.dirty {
            st.dirty = true;
            self.shared.changed_log(self.lid);
        }
    }

    fn check_live(&self) -> Result<()> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(StorageError::UnknownTopic);
        }
        if let Some(why) = self.quarantined.get() {
            return Err(StorageError::Corrupt(format!(
                "partition {}-{} is quarantined: {why}",
                self.topic, self.partition
            )));
        }
        Ok(())
    }

    /// Why the partition refuses service after recovery, if it does.
    pub fn quarantine_reason(&self) -> Option<&str> {
        self.quarantined.get().map(String::as_str)
    }

    // ---------------------------------------------------------------- append

    /// Appends ONE client record batch v2, already validated by the caller
    /// (`gregor_protocol::records::validate_client_batch`). Parses the
    /// header; see [`PartitionLog::append_parsed`].
    pub fn append(&self, batch: impl AsRef<[u8]>, opts: AppendOptions) -> Result<AppendOutcome> {
        let batch = batch.as_ref();
        let h = BatchHeader::parse(batch)?;
        self.append_parsed(batch, h, opts)
    }

    /// Appends a batch whose header the caller parsed.
    ///
    /// Assigns base offset = log end offset and writes the batch with it
    /// and the leader epoch patched in (outside the CRC); for LogAppendTime
    /// stamps the time and recomputes the CRC over the patched header and
    /// the untouched body. The body is written from the caller's buffer:
    /// no copy of the records. Idempotent batches (`producer_id >= 0`) are
    /// checked as Kafka's `ProducerStateManager` does: an older epoch is
    /// `InvalidProducerEpoch`; a retry of one of the last 5 batches returns
    /// the original offset with `duplicate: true` and writes nothing; a gap
    /// is `OutOfOrderSequence`. Then the log end advances and waiters are
    /// woken. Durable once [`crate::Store::sync`] resolves.
    pub fn append_parsed(
        &self,
        batch: &[u8],
        mut h: BatchHeader,
        opts: AppendOptions,
    ) -> Result<AppendOutcome> {
        self.shared.check_writable()?;
        if batch.len() < BATCH_HEADER_LEN || h.total_len() != batch.len() {
            return Err(StorageError::InvalidBatch(
                gregor_protocol::BatchError::Truncated {
                    needed: h.total_len().max(BATCH_HEADER_LEN),
                    have: batch.len(),
                },
            ));
        }
        let mut st = lock(&self.state);
        self.check_live()?;

        let idempotent = h.producer_id >= 0;
        if idempotent && h.is_control() {
            producer::check_marker(st.producers.get(&h.producer_id), &h)?;
        } else if idempotent {
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
        let mut head = [0u8; BATCH_HEADER_LEN];
        head.copy_from_slice(&batch[..BATCH_HEADER_LEN]);
        records::set_base_offset(&mut head, base);
        records::set_leader_epoch(&mut head, opts.leader_epoch);
        if let Some(now) = opts.log_append_time_ms {
            // The CRC covers attributes onwards: the patched header part,
            // then the body as it is.
            records::set_log_append_time(&mut head, now);
            let crc =
                crc32c::crc32c_append(crc32c::crc32c(&head[21..]), &batch[BATCH_HEADER_LEN..]);
            head[17..21].copy_from_slice(&crc.to_be_bytes());
            h.max_timestamp = now;
        }
        h.base_offset = base;
        let len = to_u64(batch.len());
        let now = now_ms();
        // Kafka's `timeWaitedForRoll`: segment age is measured in record
        // time (this batch's max timestamp against the segment's first
        // batch's), or in wall-clock time for batches without timestamps.
        let roll_ts = if h.max_timestamp >= 0 {
            h.max_timestamp
        } else {
            now
        };

        // Roll when the active segment is full or old (never while empty).
        let roll = match st.segs.last() {
            None => true,
            Some(a) => {
                a.size > 0
                    && (a.size.saturating_add(len) > opts.segment_bytes
                        || roll_ts.saturating_sub(a.created_ms) > opts.segment_ms)
            }
        };
        if roll {
            self.roll(&mut st, base, roll_ts)?;
        }
        let Some(active) = st.segs.last().copied() else {
            return Err(StorageError::Engine(
                "no active segment after a roll".into(),
            ));
        };
        let file = self.shared.files.get(&self.seg_path(active.base), roll)?;
        if let Err(e) = file.write_all_at(&[&head, &batch[BATCH_HEADER_LEN..]], active.size) {
            // Part of the batch may be in the file: nothing after it may
            // be trusted, so refuse everything (fjall does the same).
            self.shared.poison("segment write", &e);
            return Err(e.into());
        }
        self.shared.unsynced_file(&file);
        let pos = active.size;
        let last = h.last_offset();
        self.note_batch(&mut st, &h, pos, len);
        self.apply_producer(&mut st, &h, batch);
        self.size.fetch_add(len, Ordering::AcqRel);
        self.log_end.store(last + 1, Ordering::Release);
        drop(st);
        self.shared.mark_ckpt_dirty();
        self.wake_waiters();
        Ok(AppendOutcome {
            base_offset: base,
            log_append_time_ms: opts.log_append_time_ms.unwrap_or(-1),
            log_start_offset: self.log_start.load(Ordering::Acquire),
            duplicate: false,
        })
    }

    /// Migration from format 1: writes a stored batch as it is (offsets
    /// already assigned) after the last one.
    pub(crate) fn migrate_batch(&self, batch: &[u8]) -> Result<()> {
        let h = BatchHeader::parse(batch)?;
        if h.total_len() != batch.len() {
            return Err(StorageError::Corrupt(format!(
                "format 1 batch at offset {} is cut short",
                h.base_offset
            )));
        }
        let mut st = lock(&self.state);
        let now = now_ms();
        if st.segs.is_empty() {
            // Retention may have removed the first batches.
            self.log_end.store(h.base_offset, Ordering::Release);
            self.roll(&mut st, h.base_offset, now)?;
        }
        let end = self.log_end.load(Ordering::Acquire);
        if h.base_offset != end {
            return Err(StorageError::Corrupt(format!(
                "format 1 batch at offset {} where {end} was expected",
                h.base_offset
            )));
        }
        let Some(active) = st.segs.last().copied() else {
            return Err(StorageError::Engine("no active segment".into()));
        };
        let file = self.shared.files.get(&self.seg_path(active.base), false)?;
        file.write_all_at(&[batch], active.size)?;
        self.shared.unsynced_file(&file);
        let len = to_u64(batch.len());
        self.note_batch(&mut st, &h, active.size, len);
        self.size.fetch_add(len, Ordering::AcqRel);
        self.log_end.store(h.last_offset() + 1, Ordering::Release);
        Ok(())
    }

    /// Migration from format 1: the log start it had.
    pub(crate) fn set_migrated_log_start(&self, log_start: i64) {
        let st = lock(&self.state);
        let first = st.segs.first().map_or(0, |s| s.base);
        let end = self.log_end.load(Ordering::Acquire);
        self.log_start
            .store(log_start.max(first).min(end), Ordering::Release);
    }

    /// Starts a new active segment at `base`.
    fn roll(&self, st: &mut LogState, base: i64, now: i64) -> Result<()> {
        if st.segs.is_empty() {
            self.shared.fs.create_dir_all(&self.dir)?;
            // The data dir must name the new partition directory.
            self.shared.unsynced_dir(&self.shared.root);
        }
        // Create now, so that the directory fsync below covers it.
        let f = self.shared.files.get(&self.seg_path(base), true)?;
        self.shared.unsynced_file(&f);
        self.shared.unsynced_dir(&self.dir);
        st.segs.push(SegInfo::new(base, now));
        self.mark_changed(st);
        Ok(())
    }

    /// Accounts a batch just written at `pos` of the active segment:
    /// segment summary, sparse indexes.
    fn note_batch(&self, st: &mut LogState, h: &BatchHeader, pos: u64, len: u64) {
        let Some(a) = st.segs.last_mut() else { return };
        a.size += len;
        a.last_offset = h.last_offset();
        if h.max_timestamp > a.max_ts {
            a.max_ts = h.max_timestamp;
            a.max_ts_offset = h.base_offset;
        }
        let seg_base = a.base;
        // An index entry at each segment start and then at most every
        // index interval, as Kafka's `index.interval.bytes`.
        let due = pos == 0 || st.bytes_since_index >= self.shared.index_interval;
        if due {
            st.bytes_since_index = 0;
            let running = st.segs.iter().map(|s| s.max_ts).max().unwrap_or(i64::MIN);
            let time = (running > st.last_index_ts).then_some((running, h.base_offset));
            if time.is_some() {
                st.last_index_ts = running;
            }
            if self.shared.direct_index {
                let mut wb = WriteBatch::default();
                wb.put(
                    keys::offset_key(INDEX, self.lid, h.base_offset),
                    index_value(seg_base, pos),
                );
                if let Some((ts, off)) = time {
                    wb.put(keys::time_key(self.lid, ts), off.to_be_bytes().to_vec());
                }
                // A memory engine write cannot fail.
                let _ = self.shared.engine.write(wb);
            } else {
                st.tail_index.push((h.base_offset, seg_base, pos));
                if let Some(t) = time {
                    st.tail_time.push(t);
                }
            }
        }
        st.bytes_since_index += len;
        self.mark_changed(st);
    }

    /// The producer-state effects of a batch just written (or re-read by
    /// recovery) at `h.base_offset`: sequences for idempotence, the open
    /// transaction a transactional batch starts, and what a marker closes
    /// (an ABORT marker adds an aborted-transaction entry).
    fn apply_producer(&self, st: &mut LogState, h: &BatchHeader, batch: &[u8]) {
        let id = h.producer_id;
        if id < 0 {
            return;
        }
        let prev = st.producers.get(&id);
        if h.is_control() {
            let (next, first) = producer::after_marker(prev, h);
            if let Some(first) = first {
                st.open_txns.remove(&(first, id));
                // A marker whose key does not say COMMIT counts as an abort:
                // hiding data is the safe side.
                if records::control_type(batch) != Some(records::CONTROL_COMMIT) {
                    let a = AbortedTxn {
                        producer_id: id,
                        first_offset: first,
                        last_offset: h.base_offset,
                    };
                    st.aborted.push(a);
                    if self.shared.direct_index {
                        let mut wb = WriteBatch::default();
                        wb.put(keys::aborted_key(self.lid, a.last_offset), a.value());
                        // A memory engine write cannot fail.
                        let _ = self.shared.engine.write(wb);
                    } else {
                        st.tail_aborted.push(a);
                    }
                }
            }
            st.producers.insert(id, next);
        } else {
            let next = producer::updated(prev, h, h.base_offset);
            if next.txn_first_offset >= 0 {
                st.open_txns.insert((next.txn_first_offset, id));
            }
            st.producers.insert(id, next);
        }
        st.dirty_producers.insert(id);
    }

    /// The last stable offset: the first offset of the earliest open
    /// transaction, or the high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        let st = lock(&self.state);
        let hw = self.log_end.load(Ordering::Acquire);
        st.open_txns
            .first()
            .map_or(hw, |(first, _)| (*first).min(hw))
    }

    /// Aborted transactions overlapping `[from, upto)`: those whose marker
    /// is at or after `from` and whose data starts before `upto` (Kafka's
    /// `collectAbortedTxns`), as (producer id, first offset).
    pub fn aborted_txns(&self, from: i64, upto: i64) -> Vec<(i64, i64)> {
        let st = lock(&self.state);
        let i = st.aborted.partition_point(|a| a.last_offset < from);
        st.aborted[i..]
            .iter()
            .filter(|a| a.first_offset < upto)
            .map(|a| (a.producer_id, a.first_offset))
            .collect()
    }

    /// Every producer with state here (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerInfo> {
        let st = lock(&self.state);
        let mut v: Vec<ProducerInfo> = st
            .producers
            .iter()
            .map(|(id, p)| ProducerInfo {
                producer_id: *id,
                epoch: p.epoch,
                last_sequence: p.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp: p.last_timestamp,
                txn_start_offset: p.txn_first_offset,
                coordinator_epoch: p.coordinator_epoch,
            })
            .collect();
        v.sort_by_key(|p| p.producer_id);
        v
    }

    // ------------------------------------------------------------ checkpoint

    /// What a checkpoint must write, if the partition changed (or `force`).
    pub(crate) fn snapshot(&self, force: bool) -> Option<Snapshot> {
        if self.deleted.load(Ordering::Acquire) || self.quarantined.get().is_some() {
            return None;
        }
        let mut st = lock(&self.state);
        if !st.dirty && !force {
            return None;
        }
        st.dirty = false;
        let producers = st
            .dirty_producers
            .drain()
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|id| st.producers.get(&id).map(|p| (id, p.encode())))
            .collect();
        Some(Snapshot {
            rec: CheckpointRec {
                log_start: self.log_start.load(Ordering::Acquire),
                recovery_offset: self.log_end.load(Ordering::Acquire),
                bytes_since_index: st.bytes_since_index,
                last_index_ts: st.last_index_ts,
                segs: st.segs.clone(),
            },
            index: st.tail_index.clone(),
            time: st.tail_time.clone(),
            producers,
            expired: std::mem::take(&mut st.expired_producers),
            aborted: st.tail_aborted.clone(),
        })
    }

    /// The engine writes of a snapshot.
    pub(crate) fn checkpoint_writes(&self, s: &Snapshot, wb: &mut WriteBatch) {
        for (off, seg, pos) in &s.index {
            wb.put(
                keys::offset_key(INDEX, self.lid, *off),
                index_value(*seg, *pos),
            );
        }
        for (ts, off) in &s.time {
            wb.put(keys::time_key(self.lid, *ts), off.to_be_bytes().to_vec());
        }
        for (id, v) in &s.producers {
            wb.put(keys::producer_key(self.lid, *id), v.clone());
        }
        for id in &s.expired {
            wb.delete(keys::producer_key(self.lid, *id));
        }
        for a in &s.aborted {
            wb.put(keys::aborted_key(self.lid, a.last_offset), a.value());
        }
        wb.put(keys::checkpoint_key(self.lid), s.rec.encode());
    }

    /// The snapshot is durable: its tail entries now live in the engine.
    pub(crate) fn checkpoint_done(&self, s: &Snapshot) {
        let mut st = lock(&self.state);
        let upto = s.rec.recovery_offset;
        st.tail_index.retain(|e| e.0 >= upto);
        st.tail_time.retain(|e| e.1 >= upto);
        st.tail_aborted.retain(|a| a.last_offset >= upto);
    }

    // ------------------------------------------------------------------ read

    /// Stored batches from the one CONTAINING `offset`: whole batches,
    /// at most `max_bytes` in total, except that the first batch is always
    /// returned even if larger (KIP-74); one segment at a time. `offset ==
    /// high watermark` gives no batches; below the log start or above the
    /// high watermark is `OffsetOutOfRange`. The batches are slices of one
    /// buffer read from the segment file.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        self.read_below(offset, max_bytes, i64::MAX)
    }

    /// As [`PartitionLog::read`], but only batches that start below
    /// `max_offset` (read_committed reads stop at the last stable offset,
    /// which is always a batch boundary).
    pub fn read_below(&self, offset: i64, max_bytes: usize, max_offset: i64) -> Result<ReadResult> {
        self.check_live()?;
        let _swap = self.swap.read().unwrap_or_else(|e| e.into_inner());
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
        let limit = hw.min(max_offset);
        if offset >= limit {
            return Ok(out);
        }
        let Some((seg, mut pos)) = self.locate(offset)? else {
            return Ok(out);
        };
        let file = self.shared.files.get(&self.seg_path(seg.base), false)?;
        let end = seg.size;
        // Step over the batches that end before `offset` (at most an index
        // interval's worth), reading only their headers.
        let mut hdr = [0u8; STEP_HEADER];
        let first_len = loop {
            if pos >= end {
                return Ok(out);
            }
            let n = file.read_at(&mut hdr, pos)?;
            let Some((_, total, last)) = step(&hdr[..n]) else {
                return Err(StorageError::Corrupt(format!(
                    "{}: no batch header at position {pos}",
                    self.seg_path(seg.base).display()
                )));
            };
            if last >= offset {
                break total;
            }
            pos += total;
        };
        let avail = end - pos;
        let want = if to_u64(max_bytes) <= first_len {
            first_len
        } else {
            to_u64(max_bytes).min(avail)
        }
        .min(avail);
        let mut buf = vec![0u8; to_usize(want)];
        let n = file.read_at(&mut buf, pos)?;
        buf.truncate(n);
        let buf = Bytes::from(buf);
        let mut at = 0usize;
        let mut next = None;
        for (h, range) in records::batches(&buf) {
            if h.base_offset >= limit || (at > 0 && range.end > max_bytes) {
                break;
            }
            at = range.end;
            next = Some(h.last_offset() + 1);
            out.batches.push(buf.slice(range));
            if at >= max_bytes {
                break;
            }
        }
        if out.batches.is_empty() && first_len > 0 {
            return Err(StorageError::Corrupt(format!(
                "{}: unreadable batch at position {pos}",
                self.seg_path(seg.base).display()
            )));
        }
        if let Some(next) = next {
            lock(&self.state).read_hint = Some((next, seg.base, pos + to_u64(at)));
        }
        Ok(out)
    }

    /// The segment holding `offset` (with its size as of now) and a
    /// position at or before the batch containing it.
    fn locate(&self, offset: i64) -> Result<Option<(SegInfo, u64)>> {
        let (seg, hint) = {
            let st = lock(&self.state);
            let mut i = st.segs.partition_point(|s| s.last_offset < offset);
            // Segments emptied by compaction hold nothing to read.
            while st
                .segs
                .get(i)
                .is_some_and(|s| s.size == 0 && i + 1 < st.segs.len())
            {
                i += 1;
            }
            let Some(seg) = st.segs.get(i).copied() else {
                return Ok(None);
            };
            let mut hint = None;
            if let Some((next, base, pos)) = st.read_hint {
                if base == seg.base && next <= offset {
                    hint = Some((next, pos));
                }
            }
            // Newest entries first: the tail is in offset order.
            let j = st.tail_index.partition_point(|e| e.0 <= offset);
            if let Some(&(o, base, pos)) = j.checked_sub(1).and_then(|j| st.tail_index.get(j)) {
                if base == seg.base && hint.is_none_or(|(n, _)| o > n) {
                    hint = Some((o, pos));
                }
            }
            (seg, hint)
        };
        if let Some((_, pos)) = hint {
            return Ok(Some((seg, pos)));
        }
        // The engine's sparse index: the last entry at or before `offset`
        // within this segment.
        let found = self.shared.engine.first(
            &keys::offset_key(INDEX, self.lid, seg.base),
            &keys::offset_key(INDEX, self.lid, offset.saturating_add(1)),
            true,
        )?;
        let pos = match found {
            Some((_, v)) => match decode_index(&v) {
                Some((base, pos)) if base == seg.base => pos,
                _ => 0,
            },
            None => 0,
        };
        Ok(Some((seg, pos)))
    }

    /// Offset the next append gets; on a single node, the high watermark.
    pub fn high_watermark(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    /// First readable offset.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }

    /// Bytes of the kept segments.
    pub fn size_bytes(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Number of segment files (tests, DescribeLogDirs).
    pub fn segment_count(&self) -> usize {
        lock(&self.state).segs.len()
    }

    /// ListOffsets by timestamp: the first record with timestamp >= `ts`
    /// (at or after the log start), as `(offset, timestamp)`; `None` if none.
    /// Compressed batches are inflated as a stream of at most `max_inflated`
    /// bytes each; one that inflates further is skipped with a warning.
    pub fn offset_for_timestamp(&self, ts: i64, max_inflated: usize) -> Result<Option<(i64, i64)>> {
        self.check_live()?;
        let hw = self.log_end.load(Ordering::Acquire);
        let ls = self.log_start.load(Ordering::Acquire);
        // The first segment that reaches `ts`; the time index then narrows
        // the start to the last index point whose running max is below it.
        let (seg_from, tail_from) = {
            let st = lock(&self.state);
            let Some(seg) = st.segs.iter().find(|s| s.max_ts >= ts && s.size > 0) else {
                return Ok(None);
            };
            let j = st.tail_time.partition_point(|e| e.0 < ts);
            (
                seg.base,
                j.checked_sub(1)
                    .and_then(|j| st.tail_time.get(j))
                    .map(|e| e.1),
            )
        };
        let engine_from = if tail_from.is_some() {
            None
        } else {
            let (tfrom, _) = keys::prefix_range(&keys::partition_prefix(TIME, self.lid));
            self.shared
                .engine
                .first(&tfrom, &keys::time_key(self.lid, ts), true)?
                .and_then(|(_, v)| Some(i64::from_be_bytes(v.as_ref().try_into().ok()?)))
        };
        let from = seg_from
            .max(ls)
            .max(tail_from.or(engine_from).unwrap_or(i64::MIN));
        let mut found = None;
        self.walk_batches(from, hw - 1, |b, h| {
            if h.max_timestamp >= ts {
                found = first_in_batch(b, ts, ls, max_inflated);
            }
            found.is_none()
        })?;
        Ok(found)
    }

    /// Visits the batches from the one containing `from` through the one
    /// containing `last` (at most to the high watermark), in order, until
    /// `visit` returns false. Reads a MiB at a time.
    fn walk_batches(
        &self,
        from: i64,
        last: i64,
        mut visit: impl FnMut(&Bytes, &BatchHeader) -> bool,
    ) -> Result<()> {
        let hw = self.log_end.load(Ordering::Acquire);
        let mut at = from;
        while at <= last && at < hw {
            let r = self.read(at, 1 << 20)?;
            if r.batches.is_empty() {
                break;
            }
            for b in &r.batches {
                let h = BatchHeader::parse(b)?;
                at = h.last_offset() + 1;
                if !visit(b, &h) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// ListOffsets MAX_TIMESTAMP (-3): offset and timestamp of the record
    /// with the largest timestamp (the first such record), `None` if empty.
    /// Inflates at most `max_inflated` bytes, as [`Self::offset_for_timestamp`].
    pub fn max_timestamp(&self, max_inflated: usize) -> Result<Option<(i64, i64)>> {
        self.check_live()?;
        let ls = self.log_start.load(Ordering::Acquire);
        // (max ts, base offset of its batch) over the segment summaries;
        // the first segment's summary may count batches below the log
        // start (DeleteRecords cuts inside segments): its live part is
        // read instead.
        let (mut top, straddling) = {
            let st = lock(&self.state);
            let mut top: Option<(i64, i64)> = None;
            let mut straddling = None;
            for s in st.segs.iter().filter(|s| s.size > 0 && s.last_offset >= ls) {
                if s.base < ls && s.max_ts_offset < ls {
                    straddling = Some(s.last_offset);
                    continue;
                }
                if top.is_none_or(|(t, _)| s.max_ts > t) {
                    top = Some((s.max_ts, s.max_ts_offset.max(ls)));
                }
            }
            (top, straddling)
        };
        if let Some(last) = straddling {
            let mut best: Option<(i64, i64)> = None;
            self.walk_batches(ls, last, |_, h| {
                if best.is_none_or(|(t, _)| h.max_timestamp > t) {
                    best = Some((h.max_timestamp, h.base_offset.max(ls)));
                }
                true
            })?;
            // Earlier segment first: on a tie its record comes first.
            if let Some((t, o)) = best {
                if top.is_none_or(|(tt, _)| t >= tt) {
                    top = Some((t, o));
                }
            }
        }
        let Some((ts, base)) = top else {
            return Ok(None);
        };
        let r = self.read(base, 1)?;
        Ok(Some(
            r.batches
                .first()
                .and_then(|b| first_in_batch(b, ts, ls, max_inflated))
                .unwrap_or((base, ts)),
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
        if ws.is_empty() {
            return;
        }
        ws.retain(|w| match w.upgrade() {
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        });
    }

    // ------------------------------------------------------------- retention

    /// DeleteRecords: moves the log start to `offset` (durably, before
    /// returning) and deletes the segments wholly below it. `offset` above
    /// the high watermark (or negative) is `OffsetOutOfRange`; at or below
    /// the log start it changes nothing. Returns the new log start.
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
        let doomed = {
            let mut st = lock(&self.state);
            self.log_start.store(offset, Ordering::Release);
            let n = st.segs.len();
            let k = st
                .segs
                .iter()
                .take(n.saturating_sub(1))
                .take_while(|s| s.last_offset < offset)
                .count();
            self.drop_segments(&mut st, k)
        };
        self.finish_deletion(&doomed, offset)?;
        Ok(offset)
    }

    /// Time and size retention over whole segments, as Kafka: the oldest
    /// segments go while their newest record is older than `now_ms -
    /// retention_ms` (`< 0`: never) or while the partition would still hold
    /// at least `retention_bytes` without them (`< 0`: unlimited). The
    /// active segment goes too (a new empty one is rolled first) when it
    /// qualifies. Returns the number of records deleted.
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
        let ls = self.log_start.load(Ordering::Acquire);
        let cutoff = now_ms.saturating_sub(retention_ms);
        let (doomed, new_ls) = {
            let mut st = lock(&self.state);
            let mut remaining = self.size.load(Ordering::Acquire);
            let mut k = 0;
            for s in &st.segs {
                if s.size == 0 {
                    break;
                }
                let time_breach = retention_ms >= 0 && s.max_ts < cutoff;
                let size_breach = u64::try_from(retention_bytes)
                    .is_ok_and(|max| remaining.saturating_sub(s.size) >= max);
                if !(time_breach || size_breach) {
                    break;
                }
                remaining -= s.size;
                k += 1;
            }
            if k == 0 {
                return Ok(0);
            }
            if k == st.segs.len() {
                // Kafka rolls so that the active segment can go too.
                let end = self.log_end.load(Ordering::Acquire);
                self.roll(&mut st, end, now_ms)?;
            }
            let new_ls = st.segs[k].base.max(ls);
            self.log_start.store(new_ls, Ordering::Release);
            (self.drop_segments(&mut st, k), new_ls)
        };
        self.finish_deletion(&doomed, new_ls)?;
        Ok(u64::try_from(new_ls - ls).unwrap_or(0))
    }

    /// Removes the first `k` segments from the list (the caller has moved
    /// the log start past them).
    fn drop_segments(&self, st: &mut LogState, k: usize) -> Vec<SegInfo> {
        let doomed: Vec<SegInfo> = st.segs.drain(..k).collect();
        let freed: u64 = doomed.iter().map(|s| s.size).sum();
        self.size.fetch_sub(
            freed.min(self.size.load(Ordering::Acquire)),
            Ordering::AcqRel,
        );
        st.read_hint = None;
        let first = st.segs.first().map_or(i64::MAX, |s| s.base);
        st.tail_index.retain(|e| e.0 >= first);
        self.mark_changed(st);
        doomed
    }

    /// Makes the new log start and segment list durable, then deletes the
    /// files and the index entries below `new_ls`. In this order, a crash
    /// never leaves a checkpoint that names a deleted file.
    fn finish_deletion(&self, doomed: &[SegInfo], new_ls: i64) -> Result<()> {
        self.shared.flush_durable(Checkpoint::One(self))?;
        if doomed.is_empty() {
            return Ok(());
        }
        for s in doomed {
            let p = self.seg_path(s.base);
            self.shared.files.forget_under(&p);
            match self.shared.fs.remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.shared.unsynced_dir(&self.dir);
        self.delete_index_below(new_ls)
    }

    /// Deletes index and time-index entries below `offset`, in chunks.
    fn delete_index_below(&self, offset: i64) -> Result<()> {
        let engine = &*self.shared.engine;
        let from = keys::offset_key(INDEX, self.lid, 0);
        let to = keys::offset_key(INDEX, self.lid, offset);
        if engine.delete_range(&from, &to, DELETE_CHUNK, &|| false)? != Some(0) {
            self.shared.mark_dirty();
        }
        // Aborted transactions wholly below the log start no longer matter.
        lock(&self.state)
            .aborted
            .retain(|a| a.last_offset >= offset);
        let from = keys::aborted_key(self.lid, 0);
        let to = keys::aborted_key(self.lid, offset);
        if engine.delete_range(&from, &to, DELETE_CHUNK, &|| false)? != Some(0) {
            self.shared.mark_dirty();
        }
        // Time entries are keyed by timestamp; their offsets rise with it.
        let (tfrom, tto) = keys::prefix_range(&keys::partition_prefix(TIME, self.lid));
        loop {
            let mut wb = WriteBatch::default();
            engine.scan(&tfrom, &tto, false, &mut |k, v| {
                let off = v
                    .as_ref()
                    .try_into()
                    .map(i64::from_be_bytes)
                    .unwrap_or(i64::MAX);
                if off >= offset || wb.len() >= DELETE_CHUNK {
                    return Ok(false);
                }
                wb.delete(k.to_vec());
                Ok(true)
            })?;
            if wb.is_empty() {
                break;
            }
            engine.write(wb)?;
            self.shared.mark_dirty();
        }
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
            // A producer with an open transaction is kept: it holds the LSO.
            .filter(|(_, s)| s.last_timestamp < cutoff && s.txn_first_offset < 0)
            .map(|(id, _)| *id)
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        for id in &expired {
            st.producers.remove(id);
            st.dirty_producers.remove(id);
        }
        if self.shared.direct_index {
            let mut wb = WriteBatch::default();
            for id in &expired {
                wb.delete(keys::producer_key(self.lid, *id));
            }
            self.shared.engine.write(wb)?;
        } else {
            st.expired_producers.extend(expired.iter().copied());
            self.mark_changed(&mut st);
            self.shared.mark_ckpt_dirty();
        }
        Ok(expired.len())
    }

    /// Number of producers with state (tests).
    pub fn producer_count(&self) -> usize {
        lock(&self.state).producers.len()
    }

    // -------------------------------------------------------------- recovery

    /// Re-reads what lies after the recovery point: checks every batch
    /// (header, contiguous offsets, CRC) as Kafka's log recovery does,
    /// rebuilding the index tail, segment summaries and producer state.
    /// A damaged batch at the end of its file (nothing intact after it
    /// there) is a torn write: the file is cut there and later segment
    /// files, necessarily unsynced too, are removed. Damage with intact
    /// data after it in the same file is `Corrupt` (the caller quarantines).
    fn recover(&self, ckpt: Option<&CheckpointRec>) -> Result<()> {
        let names = self.shared.fs.list_dir(&self.dir)?;
        let mut on_disk: Vec<i64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
        on_disk.sort_unstable();
        let mut st = lock(&self.state);
        let from_offset = ckpt.map_or(0, |c| c.recovery_offset);
        let first_kept = st.segs.first().map(|s| s.base);
        // Files below the first kept segment were deleted by retention
        // whose unlinks did not reach the disk: finish the job.
        for base in on_disk
            .iter()
            .filter(|b| first_kept.is_some_and(|f| **b < f))
        {
            let _ = self.shared.fs.remove_file(&self.seg_path(*base));
            self.shared.unsynced_dir(&self.dir);
        }
        for s in &st.segs {
            if !on_disk.contains(&s.base) {
                return Err(StorageError::Corrupt(format!(
                    "segment {} named by the checkpoint is missing",
                    self.seg_path(s.base).display()
                )));
            }
        }
        // A closed segment whose length is not its checkpoint's was
        // replaced by compaction after that checkpoint (its bytes were
        // synced before the rename): re-read it for its size and index.
        for i in 0..st.segs.len().saturating_sub(1) {
            let s = st.segs[i];
            let file = self.shared.files.get(&self.seg_path(s.base), false)?;
            let len = file.len()?;
            if len != s.size {
                self.reindex_closed(&mut st, i, &*file, len)?;
            }
        }
        // Index entries past the recovery point may point past durable
        // data (the engine may have flushed them early): rebuild them.
        let kept_ts = self.drop_index_from(from_offset)?;
        st.last_index_ts = st.last_index_ts.min(kept_ts);
        let active_base = st.segs.last().map(|s| s.base);
        let later: Vec<i64> = on_disk
            .iter()
            .copied()
            .filter(|b| active_base.is_none_or(|a| *b > a))
            .collect();
        if st.segs.is_empty() && later.is_empty() {
            return Ok(()); // never written
        }
        let mut to_scan: Vec<(i64, u64)> = Vec::new();
        if let Some(a) = st.segs.last() {
            to_scan.push((a.base, a.size));
        }
        to_scan.extend(later.iter().map(|b| (*b, 0)));
        let mut expected = from_offset;
        let now = now_ms();
        for (i, (base, start)) in to_scan.iter().copied().enumerate() {
            if st.segs.last().is_none_or(|a| a.base != base) {
                if base != expected {
                    // A later file that does not continue the log: the end
                    // of the one before it was lost, so this one, written
                    // after it, was never synced either. It goes, with
                    // every file after it.
                    tracing::warn!(
                        topic = %self.topic,
                        partition = self.partition,
                        segment = %self.seg_path(base).display(),
                        expected_offset = expected,
                        "removing unsynced segment files after a lost log tail"
                    );
                    for (b, _) in &to_scan[i..] {
                        let _ = self.shared.fs.remove_file(&self.seg_path(*b));
                    }
                    self.shared.unsynced_dir(&self.dir);
                    break;
                }
                st.segs.push(SegInfo::new(base, now));
            }
            let file = self.shared.files.get(&self.seg_path(base), false)?;
            let len = file.len()?;
            if len < start {
                return Err(StorageError::Corrupt(format!(
                    "{} is {len} bytes, shorter than its checkpoint ({start})",
                    self.seg_path(base).display()
                )));
            }
            let cut = self.scan_segment(&mut st, &file, start, len, &mut expected)?;
            if let Some(pos) = cut {
                // Intact data after the damage in the same file: not a torn
                // write, refuse to cut. (Later segment files do not count:
                // they were written after this tail, so no sync can have
                // covered them without covering it.)
                if intact_batch_follows(&*file, pos, len)? {
                    return Err(StorageError::Corrupt(format!(
                        "{}: damaged batch at position {pos} with intact data after it",
                        self.seg_path(base).display()
                    )));
                }
                tracing::warn!(
                    topic = %self.topic,
                    partition = self.partition,
                    segment = %self.seg_path(base).display(),
                    position = pos,
                    dropped_bytes = len - pos,
                    "cutting a torn log tail at open"
                );
                file.set_len(pos)?;
                self.shared.unsynced_file(&file);
                for (b, _) in &to_scan[i + 1..] {
                    let _ = self.shared.fs.remove_file(&self.seg_path(*b));
                    self.shared.unsynced_dir(&self.dir);
                }
                break;
            }
        }
        self.log_end.store(expected, Ordering::Release);
        self.size
            .store(st.segs.iter().map(|s| s.size).sum(), Ordering::Release);
        self.mark_changed(&mut st);
        self.shared.mark_ckpt_dirty();
        Ok(())
    }

    /// Re-reads a closed segment that compaction replaced: its size, last
    /// offset and index entries.
    fn reindex_closed(
        &self,
        st: &mut LogState,
        i: usize,
        file: &dyn FileHandle,
        len: u64,
    ) -> Result<()> {
        let s = st.segs[i];
        let next_base = st.segs.get(i + 1).map_or(i64::MAX, |n| n.base);
        let engine = &*self.shared.engine;
        engine.delete_range(
            &keys::offset_key(INDEX, self.lid, s.base),
            &keys::offset_key(INDEX, self.lid, next_base),
            DELETE_CHUNK,
            &|| false,
        )?;
        let mut wb = WriteBatch::default();
        let mut pos = 0u64;
        let mut last = s.base - 1;
        let mut since = u64::MAX;
        let mut hdr = [0u8; STEP_HEADER];
        while pos < len {
            let n = file.read_at(&mut hdr, pos)?;
            let Some((base, total, l)) = step(&hdr[..n]) else {
                return Err(StorageError::Corrupt(format!(
                    "{}: no batch header at position {pos} of a compacted segment",
                    self.seg_path(s.base).display()
                )));
            };
            if since >= self.shared.index_interval {
                wb.put(
                    keys::offset_key(INDEX, self.lid, base),
                    index_value(s.base, pos),
                );
                since = 0;
            }
            since += total;
            last = l;
            pos += total;
        }
        engine.write(wb)?;
        self.shared.mark_dirty();
        st.segs[i].size = len;
        st.segs[i].last_offset = last;
        tracing::info!(topic = %self.topic, partition = self.partition, segment = %self.seg_path(s.base).display(), "re-read a segment compacted after the last checkpoint");
        Ok(())
    }

    /// Checks the batches of one segment from `start` to `len`, accounting
    /// each; returns the position of the first bad one, if any.
    fn scan_segment(
        &self,
        st: &mut LogState,
        file: &Arc<dyn FileHandle>,
        start: u64,
        len: u64,
        expected: &mut i64,
    ) -> Result<Option<u64>> {
        let mut pos = start;
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_at = pos;
        while pos < len {
            if len - pos < to_u64(BATCH_HEADER_LEN) {
                return Ok(Some(pos));
            }
            // The buffer must hold this batch's header, then all of it.
            let mut need = to_u64(BATCH_HEADER_LEN);
            let mut t = 0u64;
            for _ in 0..2 {
                let have = to_u64(buf.len()).saturating_sub(pos - buf_at);
                if pos < buf_at || have < need {
                    let want = to_usize(need.max(to_u64(RECOVERY_CHUNK)).min(len - pos));
                    buf = vec![0u8; want];
                    let n = file.read_at(&mut buf, pos)?;
                    buf.truncate(n);
                    buf_at = pos;
                    if to_u64(n) < need {
                        return Ok(Some(pos));
                    }
                }
                let off = to_usize(pos - buf_at);
                match step(&buf[off..]) {
                    Some((_, total, _)) if pos.saturating_add(total) <= len => {
                        t = total;
                        need = total;
                    }
                    _ => return Ok(Some(pos)),
                }
            }
            let off = to_usize(pos - buf_at);
            let b = &buf[off..off + to_usize(t)];
            let Ok(h) = BatchHeader::parse(b) else {
                return Ok(Some(pos));
            };
            if h.base_offset != *expected || crc32c::crc32c(&b[21..]) != h.crc {
                return Ok(Some(pos));
            }
            self.note_batch(st, &h, pos, t);
            self.apply_producer(st, &h, b);
            *expected = h.last_offset() + 1;
            pos += t;
        }
        Ok(None)
    }

    /// Deletes index entries at or after `offset` (and time entries that
    /// point there); returns the newest time entry kept. Touches only the
    /// engine (the caller may hold the state lock).
    fn drop_index_from(&self, offset: i64) -> Result<i64> {
        let engine = &*self.shared.engine;
        let mut wb = WriteBatch::default();
        let (_, to) = keys::prefix_range(&keys::partition_prefix(INDEX, self.lid));
        engine.scan(
            &keys::offset_key(INDEX, self.lid, offset),
            &to,
            false,
            &mut |k, _| {
                wb.delete(k.to_vec());
                Ok(true)
            },
        )?;
        let (tfrom, tto) = keys::prefix_range(&keys::partition_prefix(TIME, self.lid));
        let mut last_kept_ts = i64::MIN;
        engine.scan(&tfrom, &tto, true, &mut |k, v| {
            let off = v
                .as_ref()
                .try_into()
                .map(i64::from_be_bytes)
                .unwrap_or(i64::MAX);
            if off >= offset {
                wb.delete(k.to_vec());
                Ok(true)
            } else {
                last_kept_ts = keys::time_of(k).unwrap_or(i64::MIN);
                Ok(false)
            }
        })?;
        if !wb.is_empty() {
            engine.write(wb)?;
            self.shared.mark_dirty();
        }
        Ok(last_kept_ts)
    }
}

/// After damage at `pos`: does an intact batch start where the damaged
/// header says it ends? (Zeros or a cut-off write never pass this.)
fn intact_batch_follows(file: &dyn FileHandle, pos: u64, len: u64) -> Result<bool> {
    let mut hdr = [0u8; STEP_HEADER];
    let n = file.read_at(&mut hdr, pos)?;
    let Some((_, total, _)) = step(&hdr[..n]) else {
        return Ok(false);
    };
    let next = pos.saturating_add(total);
    if next >= len {
        return Ok(false);
    }
    let mut h2 = [0u8; STEP_HEADER];
    let n = file.read_at(&mut h2, next)?;
    let Some((_, t2, _)) = step(&h2[..n]) else {
        return Ok(false);
    };
    if next.saturating_add(t2) > len {
        return Ok(false);
    }
    let mut b = vec![0u8; to_usize(t2)];
    file.read_at(&mut b, next)?;
    Ok(BatchHeader::parse(&b).is_ok_and(|h| crc32c::crc32c(&b[21..]) == h.crc))
}

fn index_value(seg: i64, pos: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&seg.to_be_bytes());
    v.extend_from_slice(&pos.to_be_bytes());
    v
}

fn decode_index(v: &[u8]) -> Option<(i64, u64)> {
    let seg = i64::from_be_bytes(v.get(0..8)?.try_into().ok()?);
    let pos = u64::from_be_bytes(v.get(8..16)?.try_into().ok()?);
    Some((seg, pos))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips() {
        let rec = CheckpointRec {
            log_start: 3,
            recovery_offset: 99,
            bytes_since_index: 17,
            last_index_ts: -5,
            segs: vec![SegInfo::new(0, 1), SegInfo::new(50, 2)],
        };
        assert_eq!(CheckpointRec::decode(&rec.encode()).ok(), Some(rec));
        assert!(CheckpointRec::decode(&[1, 2, 3]).is_err());
    }

    #[test]
    fn segment_names_are_kafkas() {
        assert_eq!(segment_file_name(0), "00000000000000000000.log");
        assert_eq!(parse_segment_name("00000000000000000042.log"), Some(42));
        assert_eq!(parse_segment_name("42.log"), None);
        assert_eq!(parse_segment_name("00000000000000000042.index"), None);
    }
}
