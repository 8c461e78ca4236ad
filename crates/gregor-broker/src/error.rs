//! Broker errors. Protocol errors travel inside responses as Kafka error
//! codes (see [`ResponseError`]); a [`ConnectionError`] closes one connection.

use gregor_storage::StorageError;
use kafka_protocol::ResponseError;
use thiserror::Error;

/// The Kafka error a storage failure answers with. The storage crate
/// speaks storage; this is the one place its errors become Kafka's.
pub fn storage_error(e: &StorageError) -> ResponseError {
    match e {
        StorageError::UnknownTopic => ResponseError::UnknownTopicOrPartition,
        StorageError::TopicExists => ResponseError::TopicAlreadyExists,
        StorageError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        StorageError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        StorageError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        StorageError::InvalidBatch(b) => b.error(),
        // Poisoned, corrupt, engine and I/O failures: the disk is in trouble.
        _ => ResponseError::KafkaStorageError,
    }
}

/// Why a connection is closed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The frame or request could not be decoded.
    #[error(transparent)]
    Protocol(#[from] gregor_protocol::ProtocolError),
    /// Socket I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Nothing in flight and no bytes for `connections.max.idle.ms`.
    #[error("idle for {0} ms")]
    Idle(u128),
    /// The peer stopped in the middle of a frame for `connections.max.idle.ms`.
    #[error("stalled for {0} ms in the middle of a frame")]
    Stalled(u128),
    /// Kafka closes the connection in this situation (e.g. an acks=0 Produce that failed).
    #[error("{0}")]
    Closed(String),
}
