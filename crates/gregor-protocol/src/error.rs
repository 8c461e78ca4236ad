//! Errors of the wire codec. Every variant here is fatal for the connection
//! that produced it except [`BatchError`], which maps to a per-partition
//! error code in a Produce response.

use kafka_protocol::ResponseError;
use thiserror::Error;

/// A frame or request that cannot be served: the connection is closed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The 4-byte length prefix is negative.
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    /// The length prefix exceeds `socket.request.max.bytes`.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// Declared length.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// A frame too short to hold a request header.
    #[error("frame of {0} bytes is too short for a request header")]
    ShortFrame(usize),
    /// An api key Kafka does not define.
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    /// An api Gregor does not serve, or a version outside the advertised range.
    #[error("unsupported version {version} of api {api}")]
    UnsupportedVersion {
        /// Api name.
        api: &'static str,
        /// Requested version.
        version: i16,
    },
    /// The header or body did not decode.
    #[error("malformed {api} v{version} request: {reason}")]
    Malformed {
        /// Api name.
        api: &'static str,
        /// Requested version.
        version: i16,
        /// Decoder message.
        reason: String,
    },
    /// A response could not be encoded (a broker bug, never the client's).
    #[error("cannot encode {api} v{version} response: {reason}")]
    Encode {
        /// Api name.
        api: &'static str,
        /// Response version.
        version: i16,
        /// Encoder message.
        reason: String,
    },
}

/// Why a client record batch was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchError {
    /// Fewer bytes than the header or the declared length needs.
    #[error("batch truncated: need {needed} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        have: usize,
    },
    /// Not a v2 batch.
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
    /// `batchLength` disagrees with the bytes sent.
    #[error("batch length {declared} does not match the {actual} bytes sent")]
    BadLength {
        /// Declared batch length.
        declared: i32,
        /// Bytes present.
        actual: usize,
    },
    /// More than one batch for a partition in one Produce request.
    #[error("more than one record batch for a partition")]
    MultipleBatches,
    /// CRC-32C mismatch.
    #[error("batch CRC {stored:#010x} does not match computed {computed:#010x}")]
    Crc {
        /// CRC in the batch.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// `recordsCount` disagrees with `lastOffsetDelta`.
    #[error("record count {count} does not match last offset delta {last_offset_delta}")]
    CountMismatch {
        /// Declared record count.
        count: i32,
        /// Declared last offset delta.
        last_offset_delta: i32,
    },
    /// Clients may not write control batches.
    #[error("control batches may not be produced by clients")]
    ControlFromClient,
    /// An idempotent batch without a base sequence.
    #[error("idempotent batch without a base sequence")]
    MissingSequence,
    /// A compression codec id Kafka does not define.
    #[error("unknown compression type id {0}")]
    UnknownCompression(i16),
    /// The records are malformed (Kafka's `InvalidRecordException`).
    #[error("invalid records: {0}")]
    Records(String),
    /// The compressed records inflate beyond the broker's cap.
    #[error("compressed records inflate beyond {limit} bytes")]
    InflatedTooLarge {
        /// The cap, from `max.message.bytes` times the inflate factor.
        limit: usize,
    },
    /// The compressed stream is damaged.
    #[error("compressed records do not decompress: {0}")]
    Decompress(String),
}

impl BatchError {
    /// The Kafka error a Produce response carries for this batch, as
    /// `LogValidator` chooses: CORRUPT_MESSAGE for bytes that are damaged,
    /// INVALID_RECORD for a well-formed batch Kafka refuses.
    pub fn error(&self) -> ResponseError {
        // Checked against Apache Kafka 4.3.1 (compat-tests/rust/differential.rs).
        match self {
            BatchError::MultipleBatches
            | BatchError::ControlFromClient
            | BatchError::MissingSequence
            | BatchError::CountMismatch { .. }
            | BatchError::BadLength { .. }
            | BatchError::UnsupportedMagic(_)
            | BatchError::Records(_)
            | BatchError::InflatedTooLarge { .. } => ResponseError::InvalidRecord,
            // Kafka fails with an IllegalArgumentException, which it
            // reports as UNKNOWN_SERVER_ERROR.
            BatchError::UnknownCompression(_) => ResponseError::UnknownServerError,
            BatchError::Truncated { .. } | BatchError::Crc { .. } | BatchError::Decompress(_) => {
                ResponseError::CorruptMessage
            }
        }
    }

    /// [`Self::error`]'s code on the wire.
    pub fn error_code(&self) -> i16 {
        self.error().code()
    }
}
