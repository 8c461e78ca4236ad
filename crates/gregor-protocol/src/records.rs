//! Record batch v2 headers: parse, validate and patch in place, never re-encode.
//!
//! A broker only needs the 61-byte header of a batch: the client's bytes are
//! stored and served as received. The CRC-32C covers bytes 21.. (attributes
//! onwards), so base offset (0..8) and partition leader epoch (12..16) can be
//! patched without touching it.

use bytes::Bytes;

use crate::error::BatchError;

/// Size of the v2 batch header up to and including `recordsCount`.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes counted outside `batchLength`: base offset (8) and the length itself (4).
pub const LOG_OVERHEAD: usize = 12;

const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORDS_COUNT: usize = 57;

/// Attribute bits.
const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// The fields of a v2 record batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Size of the batch after the length field.
    pub batch_length: i32,
    /// Leader epoch stamped by the broker.
    pub partition_leader_epoch: i32,
    /// Message format; only 2 is accepted.
    pub magic: i8,
    /// CRC-32C of bytes 21.. of the batch.
    pub crc: u32,
    /// Codec, timestamp type, transactional and control bits.
    pub attributes: i16,
    /// `recordsCount - 1` for a well-formed batch.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the append time for LogAppendTime).
    pub max_timestamp: i64,
    /// Idempotent producer id, -1 if none.
    pub producer_id: i64,
    /// Idempotent producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl BatchHeader {
    /// Reads the header at the start of `b`. Checks only that the header is there.
    pub fn parse(b: &[u8]) -> Result<BatchHeader, BatchError> {
        if b.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: BATCH_HEADER_LEN,
                have: b.len(),
            });
        }
        Ok(BatchHeader {
            base_offset: i64_at(b, BASE_OFFSET),
            batch_length: i32_at(b, BATCH_LENGTH),
            partition_leader_epoch: i32_at(b, LEADER_EPOCH),
            magic: b[MAGIC] as i8,
            crc: u32::from_be_bytes([b[CRC], b[CRC + 1], b[CRC + 2], b[CRC + 3]]),
            attributes: i16_at(b, ATTRIBUTES),
            last_offset_delta: i32_at(b, LAST_OFFSET_DELTA),
            base_timestamp: i64_at(b, BASE_TIMESTAMP),
            max_timestamp: i64_at(b, MAX_TIMESTAMP),
            producer_id: i64_at(b, PRODUCER_ID),
            producer_epoch: i16_at(b, PRODUCER_EPOCH),
            base_sequence: i32_at(b, BASE_SEQUENCE),
            records_count: i32_at(b, RECORDS_COUNT),
        })
    }

    /// Total size of the batch on the wire, length field and base offset included.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }
    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }
    /// True when the batch carries LogAppendTime timestamps.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }
    /// True for a transactional batch.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }
    /// True for a control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
    /// Last sequence number in the batch, wrapping like Kafka's `DefaultRecordBatch`.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        if last > i64::from(i32::MAX) {
            (last - i64::from(i32::MAX) - 1) as i32
        } else {
            last as i32
        }
    }
}

/// Checks a single client batch the way Kafka's `LogValidator` does, without
/// decoding the records: exactly one v2 batch, consistent length, valid CRC,
/// `lastOffsetDelta + 1 == count > 0`, no control batch from a client, and a
/// sequence for every idempotent batch.
pub fn validate_client_batch(b: &[u8]) -> Result<BatchHeader, BatchError> {
    if b.len() < BATCH_HEADER_LEN {
        // Kafka reports a batch too short to hold a header as corrupt.
        return Err(BatchError::Truncated {
            needed: BATCH_HEADER_LEN,
            have: b.len(),
        });
    }
    let h = BatchHeader::parse(b)?;
    if h.magic != 2 {
        return Err(BatchError::UnsupportedMagic(h.magic));
    }
    if h.batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(BatchError::BadLength {
            declared: h.batch_length,
            actual: b.len(),
        });
    }
    let total = h.total_len();
    if total > b.len() {
        return Err(BatchError::BadLength {
            declared: h.batch_length,
            actual: b.len(),
        });
    }
    if total < b.len() {
        return Err(BatchError::MultipleBatches);
    }
    let crc = crc32c::crc32c(&b[ATTRIBUTES..]);
    if crc != h.crc {
        return Err(BatchError::Crc {
            stored: h.crc,
            computed: crc,
        });
    }
    if h.records_count <= 0 || i64::from(h.last_offset_delta) + 1 != i64::from(h.records_count) {
        return Err(BatchError::CountMismatch {
            count: h.records_count,
            last_offset_delta: h.last_offset_delta,
        });
    }
    if h.compression() > 4 {
        return Err(BatchError::UnknownCompression(h.compression()));
    }
    if h.is_control() {
        return Err(BatchError::ControlFromClient);
    }
    if h.producer_id >= 0 && h.base_sequence < 0 {
        return Err(BatchError::MissingSequence);
    }
    Ok(h)
}

/// Stamps the broker-assigned base offset. Outside the CRC.
pub fn set_base_offset(b: &mut [u8], base_offset: i64) {
    b[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Stamps the partition leader epoch. Outside the CRC.
pub fn set_leader_epoch(b: &mut [u8], epoch: i32) {
    b[LEADER_EPOCH..LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Turns a batch into a LogAppendTime batch stamped `now_ms`, as Kafka's
/// `DefaultRecordBatch.setMaxTimestamp` does: set the timestamp-type bit and
/// the max timestamp, then recompute the CRC. A CRC pass, not a re-encode.
pub fn set_log_append_time(b: &mut [u8], now_ms: i64) {
    let attrs = i16_at(b, ATTRIBUTES) | TIMESTAMP_TYPE_BIT;
    b[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attrs.to_be_bytes());
    b[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&b[ATTRIBUTES..]);
    b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Iterates over the batches laid end to end in `data`, stopping at the first
/// incomplete or unparsable one (a fetch may legitimately end mid-batch).
pub fn batches(data: &[u8]) -> impl Iterator<Item = (BatchHeader, std::ops::Range<usize>)> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let rest = data.get(at..)?;
        let h = BatchHeader::parse(rest).ok()?;
        if h.batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
            return None;
        }
        let len = h.total_len();
        if len > rest.len() {
            return None;
        }
        let range = at..at + len;
        at += len;
        Some((h, range))
    })
}

/// The first record in `batch` whose timestamp is `>= target`: its offset
/// and timestamp. Decodes (and decompresses) the records, so it is only for
/// the rare by-timestamp lookups, never for Produce or Fetch.
pub fn first_record_at_or_after(
    batch: &Bytes,
    target: i64,
) -> Result<Option<(i64, i64)>, BatchError> {
    let h = BatchHeader::parse(batch)?;
    if h.is_log_append_time() {
        // Every record carries the batch's append time.
        return Ok((h.max_timestamp >= target).then_some((h.base_offset, h.max_timestamp)));
    }
    let mut buf = batch.clone();
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf)
        .map_err(|e| BatchError::Records(e.to_string()))?;
    Ok(set
        .records
        .iter()
        .find(|r| r.timestamp >= target)
        .map(|r| (r.offset, r.timestamp)))
}
