//! Broker errors. Protocol errors travel inside responses as Kafka error
//! codes (see [`ErrorCode`]); a [`ConnectionError`] closes one connection.

use thiserror::Error;

/// Kafka error codes Gregor answers with. Values from Kafka's `Errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
#[allow(missing_docs)]
pub enum ErrorCode {
    UnknownServerError = -1,
    None = 0,
    OffsetOutOfRange = 1,
    CorruptMessage = 2,
    UnknownTopicOrPartition = 3,
    LeaderNotAvailable = 5,
    MessageTooLarge = 10,
    OffsetMetadataTooLarge = 12,
    CoordinatorNotAvailable = 15,
    InvalidTopicException = 17,
    InvalidRequiredAcks = 21,
    InvalidTimestamp = 32,
    UnsupportedVersion = 35,
    TopicAlreadyExists = 36,
    InvalidPartitions = 37,
    InvalidReplicationFactor = 38,
    InvalidReplicaAssignment = 39,
    InvalidConfig = 40,
    InvalidRequest = 42,
    OutOfOrderSequenceNumber = 45,
    InvalidProducerEpoch = 47,
    InvalidTxnState = 48,
    KafkaStorageError = 56,
    FetchSessionIdNotFound = 70,
    UnknownLeaderEpoch = 75,
    UnsupportedCompressionType = 76,
    GroupSubscribedToTopic = 86,
    InvalidRecord = 87,
    UnknownTopicId = 100,
    UnsupportedEndpointType = 119,
}

impl ErrorCode {
    /// The wire value.
    pub fn code(self) -> i16 {
        self as i16
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
