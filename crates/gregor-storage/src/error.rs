//! Storage errors.
//!
//! Two kinds, kept apart on purpose:
//!
//! - **Request errors** describe one request (the broker turns them into
//!   Kafka error codes, in one place: `gregor_broker::error::storage_error`);
//!   the store is fine and the next request may succeed:
//!   [`StorageError::UnknownTopic`], [`StorageError::TopicExists`],
//!   [`StorageError::InvalidPartitions`], [`StorageError::OffsetOutOfRange`],
//!   [`StorageError::OutOfOrderSequence`], [`StorageError::InvalidProducerEpoch`],
//!   [`StorageError::InvalidBatch`]. [`StorageError::is_protocol`] is true for these.
//! - **Fatal errors** mean the store itself is in trouble:
//!   [`StorageError::Poisoned`], [`StorageError::Corrupt`],
//!   [`StorageError::Engine`], [`StorageError::Io`]. After `Poisoned`,
//!   nothing will succeed until a restart.

use gregor_protocol::BatchError;
use thiserror::Error;

/// Result alias for the storage crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Everything the store can refuse or fail with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StorageError {
    // ---- protocol errors: answer the request, keep going ----
    /// No such topic (or it was deleted while the request was in flight).
    #[error("unknown topic or partition")]
    UnknownTopic,
    /// `create_topic` for a name that exists.
    #[error("topic already exists")]
    TopicExists,
    /// `create_topic` with a partition count below 1.
    #[error("invalid partition count {0}")]
    InvalidPartitions(i32),
    /// A read or delete outside `[log_start_offset, high_watermark]`.
    #[error("offset out of range [{log_start_offset}, {high_watermark}]")]
    OffsetOutOfRange {
        /// First offset still readable.
        log_start_offset: i64,
        /// Offset the next append will get.
        high_watermark: i64,
    },
    /// An idempotent batch whose base sequence is not the next one expected.
    #[error("out of order sequence: expected {expected}, got {got}")]
    OutOfOrderSequence {
        /// Sequence the partition expected.
        expected: i32,
        /// Base sequence of the batch.
        got: i32,
    },
    /// An idempotent batch from an older producer epoch (a fenced producer).
    #[error("invalid producer epoch: current {current}, got {got}")]
    InvalidProducerEpoch {
        /// Epoch the partition knows.
        current: i16,
        /// Epoch of the batch.
        got: i16,
    },
    /// The batch handed to `append` has no readable v2 header. The caller is
    /// meant to validate first, so this is a broker bug or damaged bytes.
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),

    // ---- fatal errors: the store is in trouble ----
    /// A flush or fsync failed earlier: after such a failure the kernel may
    /// have dropped dirty pages, so nothing written since can be trusted to be
    /// durable ("fsyncgate", Rebello et al., USENIX ATC '20). Every later
    /// append and sync returns this until the process restarts.
    #[error("storage is poisoned after a failed flush; restart required")]
    Poisoned,
    /// Stored bytes that do not decode.
    #[error("corrupt storage: {0}")]
    Corrupt(String),
    /// The engine (sled) reported an error.
    #[error("storage engine error: {0}")]
    Engine(String),
    /// An operating-system I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl StorageError {
    /// True for errors that describe the request (the store is healthy);
    /// false for fatal storage errors.
    pub fn is_protocol(&self) -> bool {
        matches!(
            self,
            StorageError::UnknownTopic
                | StorageError::TopicExists
                | StorageError::InvalidPartitions(_)
                | StorageError::OffsetOutOfRange { .. }
                | StorageError::OutOfOrderSequence { .. }
                | StorageError::InvalidProducerEpoch { .. }
                | StorageError::InvalidBatch(_)
        )
    }
}

impl From<sled::Error> for StorageError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(e) => StorageError::Io(e),
            sled::Error::Corruption { at, .. } => {
                StorageError::Corrupt(format!("sled reports corruption at {at:?}"))
            }
            other => StorageError::Engine(other.to_string()),
        }
    }
}
