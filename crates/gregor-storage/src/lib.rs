//! Gregor's store, in log terms: topics, partition logs, idempotent producer
//! state and committed group offsets. Record batches live in append-only
//! segment files per partition, as Apache Kafka keeps them; sled 0.34.7
//! keeps everything that is an index or a small record. Or all of it in
//! memory (`--ephemeral`).
//!
//! - [`Store`]: topics, producer ids, group offsets and the durability
//!   barrier ([`Store::sync`], group commit).
//! - [`PartitionLog`]: one partition: append, read, ListOffsets lookups,
//!   retention and fetch long-poll wake-ups.
//!
//! Record batches are stored exactly as they will be served: the client's
//! bytes with the base offset and leader epoch patched in place (both are
//! outside the CRC), never re-encoded.
//!
//! Durability: an append is written to its segment file (page cache) and
//! is durable after [`Store::sync`] resolves (acks=all: `fdatasync` of the
//! segment files written since the last cycle) or after the periodic flush
//! ([`StoreOptions::flush_interval_ms`], which bounds acks=1 loss). The same
//! holds for topic creation/deletion and offset commits (sled flush + fsync
//! of its file): await [`Store::sync`] when the answer must survive a crash.
//! Opening after a crash re-reads only what follows each partition's last
//! checkpoint.
#![deny(missing_docs)]
// Lengths and counts come from the wire: a cast that can wrap or drop a
// sign is where a hostile value turns into a huge allocation or a negative
// index. Convert with try_from (or document why the value is in range).
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]

mod durability;
mod engine;
pub mod error;
pub mod fs;
mod keys;
mod lock;
mod migrate;
mod partition;
mod producer;
pub mod sim;
mod store;
mod writer;

use std::collections::BTreeMap;

pub use durability::SyncObserver;
pub use error::{Result, StorageError};
pub use lock::DataDirInUse;
pub use partition::{AbortedTxn, CompactOptions, CompactStats, PartitionLog, ProducerInfo};
pub use store::Store;

// The broker shares these across tasks.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Store>();
    send_sync::<PartitionLog>();
};

/// How a [`Store`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Period of the background durable flush (flush + syncfs) that runs when
    /// there were writes since the last one; it bounds what a crash can take
    /// from acks=1 producers. 0 disables it (sled's own 500 ms non-fsync
    /// flush then stays on). Ignored by the memory engine. Default = 1000.
    pub flush_interval_ms: u64,
    /// sled page cache size. It holds only indexes and metadata now, and
    /// sled 0.34 undercounts small pages: with 120,000 small keys a 16 MiB
    /// cache took 963 MiB of RSS, 1 MiB 261 MiB, 512 KiB 31 MiB (measured,
    /// docs/BENCHMARKS.md). Default = 512 KiB.
    pub cache_capacity_bytes: u64,
    /// Segment files kept open at once (least recently used are closed).
    /// Default = 1024.
    pub max_open_files: usize,
    /// Bytes between sparse index entries (Kafka's `index.interval.bytes`).
    /// Default = 4096.
    pub index_interval_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            flush_interval_ms: 1000,
            cache_capacity_bytes: 512 * 1024,
            max_open_files: 1024,
            index_interval_bytes: 4096,
        }
    }
}

/// A topic as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicMeta {
    /// Topic name.
    pub name: String,
    /// Topic id (random v4, fixed at creation).
    pub id: uuid::Uuid,
    /// Number of partitions.
    pub partitions: i32,
    /// Topic configs as given at creation (`retention.ms`, ...).
    pub configs: BTreeMap<String, String>,
}

/// One committed offset of a consumer group.
#[derive(Clone, Debug, PartialEq)]
pub struct CommittedOffset {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Committed offset.
    pub offset: i64,
    /// Leader epoch the client committed with (-1 if none).
    pub leader_epoch: i32,
    /// Client metadata string.
    pub metadata: Option<String>,
    /// When the commit happened (ms since the epoch).
    pub commit_timestamp: i64,
}

/// Per-append settings chosen by the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendOptions {
    /// `Some(now_ms)` when the topic uses `message.timestamp.type=LogAppendTime`.
    pub log_append_time_ms: Option<i64>,
    /// Leader epoch stamped into the batch.
    pub leader_epoch: i32,
    /// The topic's `segment.bytes`: the active segment rolls before it
    /// would grow past this.
    pub segment_bytes: u64,
    /// The topic's `segment.ms`: the active segment rolls once this old.
    pub segment_ms: i64,
}

impl Default for AppendOptions {
    /// CreateTime, epoch 0, Kafka's default segment.bytes (1 GiB) and
    /// segment.ms (7 days).
    fn default() -> Self {
        AppendOptions {
            log_append_time_ms: None,
            leader_epoch: 0,
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Offset of the batch's first record (the original one for a duplicate).
    pub base_offset: i64,
    /// The append time for LogAppendTime topics, -1 for CreateTime (and for
    /// duplicates, as Kafka answers).
    pub log_append_time_ms: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// True when the batch was a retry of one already written: nothing was
    /// written and `base_offset` is the original one.
    pub duplicate: bool,
}

/// Batches returned by [`PartitionLog::read`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadResult {
    /// Whole stored batches, in offset order, without copies.
    pub batches: Vec<bytes::Bytes>,
    /// High watermark when the read started.
    pub high_watermark: i64,
    /// Log start offset when the read started.
    pub log_start_offset: i64,
}

impl ReadResult {
    /// Total bytes of the batches.
    pub fn total_bytes(&self) -> usize {
        self.batches.iter().map(|b| b.len()).sum()
    }
}
