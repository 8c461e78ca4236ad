//! Record batch v2 headers: parse, validate and patch in place, never re-encode.
//!
//! A broker only needs the 61-byte header of a batch: the client's bytes are
//! stored and served as received. The CRC-32C covers bytes 21.. (attributes
//! onwards), so base offset (0..8) and partition leader epoch (12..16) can be
//! patched without touching it.

use crate::error::BatchError;
use crate::inflate;

/// Size of the v2 batch header up to and including `recordsCount`.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes counted outside `batchLength`: base offset (8) and the length itself (4).
pub const LOG_OVERHEAD: usize = 12;
/// The smallest `batchLength`: a header and no records.
pub const MIN_BATCH_LENGTH: i32 = 49;
const _: () = assert!(BATCH_HEADER_LEN - LOG_OVERHEAD == 49);

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
            magic: i8::from_be_bytes([b[MAGIC]]),
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
        LOG_OVERHEAD + usize::try_from(self.batch_length).unwrap_or(0)
    }
    /// Offset of the last record in the batch.
    /// Wraps as Kafka's `long` arithmetic does: a client's batch may carry
    /// any base offset, and this must not panic on it.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
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
        // At most 2 * i32::MAX, so one wrap brings it into range.
        let wrapped = if last > i64::from(i32::MAX) {
            last - i64::from(i32::MAX) - 1
        } else {
            last
        };
        i32::try_from(wrapped).unwrap_or(-1)
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
    if h.batch_length < MIN_BATCH_LENGTH {
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
        if h.batch_length < MIN_BATCH_LENGTH {
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

/// The fields of one record that a broker looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordInfo {
    /// Offset relative to the batch's base offset.
    pub offset_delta: i32,
    /// Timestamp relative to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Key length; -1 (or any negative) for a null key.
    pub key_len: i32,
    /// Value length; -1 (or any negative) for a null value.
    pub value_len: i32,
    /// Where the record starts and ends, and where its key starts, in the
    /// records section as read (inflated for a compressed batch).
    pub start: usize,
    /// End (exclusive).
    pub end: usize,
    /// Start of the key bytes.
    pub key_at: usize,
}

/// What [`validate_records`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordsSummary {
    /// Records in the batch.
    pub count: i32,
    /// Records with a null key (a compacted topic refuses them).
    pub null_keys: i32,
    /// Their indexes in the batch (Produce v8+ record errors), the first
    /// thousand.
    pub null_key_indexes: Vec<i32>,
}

/// A byte source for the record parser: the batch itself, or a bounded
/// decompression stream. Generic so that uncompressed batches are parsed
/// straight from the slice.
struct Src<R> {
    r: R,
    consumed: usize,
}

impl<R: std::io::BufRead> Src<R> {
    fn byte(&mut self) -> Result<Option<u8>, BatchError> {
        let buf = self.r.fill_buf().map_err(inflate::map_io)?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.r.consume(1);
        self.consumed += 1;
        Ok(Some(b))
    }

    fn need_byte(&mut self) -> Result<u8, BatchError> {
        self.byte()?.ok_or_else(|| {
            BatchError::Records("Incorrect declared batch size, premature EOF reached".into())
        })
    }

    /// A zigzag varint of at most `max_bytes` bytes, as Kafka's `ByteUtils`.
    fn zigzag(&mut self, max_bytes: u32) -> Result<i64, BatchError> {
        let mut raw: u64 = 0;
        for i in 0..max_bytes {
            let b = self.need_byte()?;
            raw |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                // Zigzag: the low bit is the sign; the rest fits in 63 bits.
                let magnitude = i64::try_from(raw >> 1).unwrap_or(i64::MAX);
                return Ok(magnitude ^ -i64::from(raw & 1 == 1));
            }
        }
        Err(BatchError::Records("varint is too long".into()))
    }

    fn varint(&mut self) -> Result<i32, BatchError> {
        let v = self.zigzag(5)?;
        i32::try_from(v).map_err(|_| BatchError::Records("varint out of range".into()))
    }

    fn skip(&mut self, mut n: usize) -> Result<(), BatchError> {
        while n > 0 {
            let buf = self.r.fill_buf().map_err(inflate::map_io)?;
            if buf.is_empty() {
                return Err(BatchError::Records(
                    "Incorrect declared batch size, premature EOF reached".into(),
                ));
            }
            let k = buf.len().min(n);
            self.r.consume(k);
            self.consumed += k;
            n -= k;
        }
        Ok(())
    }

    /// Reads one record as Kafka's `DefaultRecord.readFrom` does, checking
    /// every length against the record's declared size before skipping.
    fn record(&mut self) -> Result<RecordInfo, BatchError> {
        let record_start = self.consumed;
        let size = self.varint()?;
        let size = usize::try_from(size)
            .map_err(|_| BatchError::Records(format!("Invalid record size {size}")))?;
        let start = self.consumed;
        let bad_size = |read: usize| {
            BatchError::Records(format!(
                "Invalid record size: expected to read {size} bytes in record payload, but instead read {read}"
            ))
        };
        let _attributes = self.need_byte()?;
        let timestamp_delta = self.zigzag(10)?;
        let offset_delta = self.varint()?;
        // Skips a length-prefixed field, refusing one that runs past the record.
        let field = |src: &mut Self, len: i32| -> Result<(), BatchError> {
            let Ok(len) = usize::try_from(len) else {
                return Ok(()); // null
            };
            let read = src.consumed - start;
            if len > size.saturating_sub(read) {
                return Err(bad_size(read.saturating_add(len)));
            }
            src.skip(len)
        };
        let key_len = self.varint()?;
        let key_at = self.consumed;
        field(self, key_len)?;
        let value_len = self.varint()?;
        field(self, value_len)?;
        let headers = self.varint()?;
        if headers < 0 {
            return Err(BatchError::Records(format!(
                "Found invalid number of record headers {headers}"
            )));
        }
        for _ in 0..headers {
            let key = self.varint()?;
            if key < 0 {
                return Err(BatchError::Records(format!(
                    "Invalid negative header key size {key}"
                )));
            }
            field(self, key)?;
            let value = self.varint()?;
            field(self, value)?;
            if self.consumed - start > size {
                return Err(bad_size(self.consumed - start));
            }
        }
        if self.consumed - start != size {
            return Err(bad_size(self.consumed - start));
        }
        Ok(RecordInfo {
            offset_delta,
            timestamp_delta,
            key_len,
            value_len,
            start: record_start,
            end: self.consumed,
            key_at,
        })
    }
}

/// Walks the records of the batch `batch` (one whole v2 batch), calling
/// `visit` for each until it returns false. Compressed records are read
/// as a stream that fails beyond `max_inflated` bytes, so the work and the
/// memory are bounded whatever the batch claims. With `strict`, checks as
/// Kafka's `LogValidator` does: exactly `recordsCount` records and nothing
/// after them, and consecutive offset deltas in a compressed batch.
fn walk_records(
    batch: &[u8],
    max_inflated: usize,
    strict: bool,
    visit: &mut dyn FnMut(&RecordInfo) -> bool,
) -> Result<(), BatchError> {
    let h = BatchHeader::parse(batch)?;
    let end = h.total_len().min(batch.len());
    let body = batch.get(BATCH_HEADER_LEN..end).unwrap_or_default();
    let codec = h.compression();
    if codec == 0 {
        walk_src(
            Src {
                r: body,
                consumed: 0,
            },
            &h,
            false,
            strict,
            visit,
        )
    } else {
        let r = inflate::records_stream(codec, body, max_inflated)?;
        walk_src(Src { r, consumed: 0 }, &h, true, strict, visit)
    }
}

fn walk_src<R: std::io::BufRead>(
    mut src: Src<R>,
    h: &BatchHeader,
    compressed: bool,
    strict: bool,
    visit: &mut dyn FnMut(&RecordInfo) -> bool,
) -> Result<(), BatchError> {
    for i in 0..h.records_count.max(0) {
        let r = src.record()?;
        if strict && compressed && r.offset_delta != i {
            return Err(BatchError::Records(format!(
                "Inner record offset delta {} where {i} was expected",
                r.offset_delta
            )));
        }
        if !visit(&r) {
            return Ok(());
        }
    }
    if strict && src.byte()?.is_some() {
        return Err(BatchError::Records(
            "Incorrect declared batch size, records still remaining in file".into(),
        ));
    }
    Ok(())
}

/// Checks every record of a client batch (already through
/// [`validate_client_batch`]) as Kafka's `LogValidator` does, inflating
/// compressed records as a stream capped at `max_inflated` bytes (see
/// [`inflate::inflate_limit`]). Costs a pass over the (inflated) records:
/// run it off the async reactor for compressed or large batches.
pub fn validate_records(batch: &[u8], max_inflated: usize) -> Result<RecordsSummary, BatchError> {
    let mut sum = RecordsSummary::default();
    walk_records(batch, max_inflated, true, &mut |r| {
        if r.key_len < 0 {
            sum.null_keys += 1;
            if sum.null_key_indexes.len() < 1000 {
                sum.null_key_indexes.push(sum.count);
            }
        }
        sum.count += 1;
        true
    })?;
    Ok(sum)
}

/// The first record in `batch` at or after `min_offset` whose timestamp is
/// `>= target`: its offset and timestamp. Decodes (and decompresses, within
/// `max_inflated` bytes) the records, so it is only for the rare
/// by-timestamp lookups, never for Produce or Fetch.
pub fn first_record_at_or_after(
    batch: &[u8],
    target: i64,
    min_offset: i64,
    max_inflated: usize,
) -> Result<Option<(i64, i64)>, BatchError> {
    let h = BatchHeader::parse(batch)?;
    if h.last_offset() < min_offset || h.max_timestamp < target {
        return Ok(None);
    }
    if h.is_log_append_time() {
        // Every record carries the batch's append time.
        return Ok(Some((h.base_offset.max(min_offset), h.max_timestamp)));
    }
    let mut found = None;
    walk_records(batch, max_inflated, false, &mut |r| {
        let offset = h.base_offset.saturating_add(i64::from(r.offset_delta));
        let ts = h.base_timestamp.saturating_add(r.timestamp_delta);
        if offset >= min_offset && ts >= target {
            found = Some((offset, ts));
            return false;
        }
        true
    })?;
    Ok(found)
}

/// Control record type of an ABORT marker (Kafka's `ControlRecordType`).
pub const CONTROL_ABORT: i16 = 0;
/// Control record type of a COMMIT marker.
pub const CONTROL_COMMIT: i16 = 1;

/// A transaction marker as Kafka's `EndTransactionMarker` writes it: a
/// transactional control batch of one record whose key is (version 0,
/// type) and whose value is (version 0, coordinator epoch). Base offset 0
/// (the log assigns it), no sequence.
pub fn control_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Vec<u8> {
    let kind = if commit {
        CONTROL_COMMIT
    } else {
        CONTROL_ABORT
    };
    // The record: attributes, timestamp delta 0, offset delta 0, key of 4
    // bytes, value of 6 bytes, no headers. Every varint here is one byte
    // (zigzag doubles: 4 -> 8, 6 -> 12, 16 -> 32).
    let mut rec = Vec::with_capacity(17);
    rec.push(32); // length 16
    rec.extend_from_slice(&[0, 0, 0]); // attributes, timestamp and offset delta
    rec.push(8); // key length 4
    rec.extend_from_slice(&0i16.to_be_bytes());
    rec.extend_from_slice(&kind.to_be_bytes());
    rec.push(12); // value length 6
    rec.extend_from_slice(&0i16.to_be_bytes());
    rec.extend_from_slice(&coordinator_epoch.to_be_bytes());
    rec.push(0); // no headers
    let mut b = Vec::with_capacity(BATCH_HEADER_LEN + rec.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    let len = i32::try_from(BATCH_HEADER_LEN - LOG_OVERHEAD + rec.len()).unwrap_or(i32::MAX);
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
    b.push(2); // magic
    b.extend_from_slice(&[0; 4]); // CRC, below
    b.extend_from_slice(&(TRANSACTIONAL_BIT | CONTROL_BIT).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&producer_id.to_be_bytes());
    b.extend_from_slice(&producer_epoch.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&1i32.to_be_bytes()); // records count
    b.extend_from_slice(&rec);
    let crc = crc32c::crc32c(&b[ATTRIBUTES..]);
    b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// The type of a control batch's marker (its first record's key), if it
/// parses: [`CONTROL_COMMIT`] or [`CONTROL_ABORT`].
pub fn control_type(batch: &[u8]) -> Option<i16> {
    let mut at = BATCH_HEADER_LEN;
    let varint = |at: &mut usize| -> Option<i64> {
        let mut raw: u64 = 0;
        for i in 0..10 {
            let b = *batch.get(*at)?;
            *at += 1;
            raw |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                let magnitude = i64::try_from(raw >> 1).ok()?;
                return Some(magnitude ^ -i64::from(raw & 1 == 1));
            }
        }
        None
    };
    let _len = varint(&mut at)?;
    at += 1; // attributes
    let _ts = varint(&mut at)?;
    let _off = varint(&mut at)?;
    let key_len = usize::try_from(varint(&mut at)?).ok()?;
    if key_len < 4 {
        return None;
    }
    let key = batch.get(at..at + 4)?;
    Some(i16::from_be_bytes([key[2], key[3]]))
}

#[cfg(test)]
mod control_tests {
    use super::*;

    #[test]
    fn control_batch_parses_and_names_its_type() {
        for commit in [true, false] {
            let b = control_batch(7, 3, commit, 0, 1_000);
            let h = BatchHeader::parse(&b).expect("header");
            assert_eq!(h.total_len(), b.len());
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.records_count),
                (7, 3, 1)
            );
            assert_eq!(crc32c::crc32c(&b[ATTRIBUTES..]), h.crc);
            let want = if commit {
                CONTROL_COMMIT
            } else {
                CONTROL_ABORT
            };
            assert_eq!(control_type(&b), Some(want));
        }
    }
}

/// The records of a stored batch for the log cleaner: the records section
/// (inflated within `max_inflated` for a compressed batch) and every
/// record's place in it.
pub fn records_of(
    batch: &[u8],
    max_inflated: usize,
) -> Result<(Vec<u8>, Vec<RecordInfo>), BatchError> {
    let h = BatchHeader::parse(batch)?;
    let end = h.total_len().min(batch.len());
    let body = batch.get(BATCH_HEADER_LEN..end).unwrap_or_default();
    let raw = if h.compression() == 0 {
        body.to_vec()
    } else {
        let mut v = Vec::new();
        let mut r = inflate::records_stream(h.compression(), body, max_inflated)?;
        std::io::Read::read_to_end(&mut r, &mut v).map_err(inflate::map_io)?;
        v
    };
    let mut out = Vec::with_capacity(
        usize::try_from(h.records_count.max(0))
            .unwrap_or(0)
            .min(1 << 16),
    );
    walk_src(
        Src {
            r: &raw[..],
            consumed: 0,
        },
        &h,
        false,
        false,
        &mut |r| {
            out.push(*r);
            true
        },
    )?;
    Ok((raw, out))
}

/// A batch like `original` holding only `records` (raw records, their
/// offset and timestamp deltas unchanged), compressed with the original
/// codec. Base offset, last offset delta, producer fields and timestamps
/// stay, as Kafka's cleaner keeps them, so the batch still ends where it
/// did and consumers skip the gaps.
pub fn rebuild_batch(original: &[u8], records: &[u8], count: i32) -> Result<Vec<u8>, BatchError> {
    let h = BatchHeader::parse(original)?;
    let body = match h.compression() {
        0 => records.to_vec(),
        codec => compress(codec, records).map_err(inflate::map_io)?,
    };
    let mut b = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
    b.extend_from_slice(&original[..BATCH_HEADER_LEN]);
    b.extend_from_slice(&body);
    let len = i32::try_from(b.len() - LOG_OVERHEAD)
        .map_err(|_| BatchError::Records("rebuilt batch too large".into()))?;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&b[ATTRIBUTES..]);
    b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(b)
}

/// Compresses a records section with a Kafka codec: gzip, snappy (xerial
/// framing, as the Java client writes it), LZ4 frames, zstd.
pub fn compress(codec: i16, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    match codec {
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(raw)?;
            e.finish()
        }
        2 => {
            let mut out = vec![
                0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
            ];
            let mut enc = snap::raw::Encoder::new();
            for chunk in raw.chunks(32 * 1024) {
                let block = enc
                    .compress_vec(chunk)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let n = i32::try_from(block.len()).map_err(std::io::Error::other)?;
                out.extend_from_slice(&n.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        3 => {
            let mut e = lz4::EncoderBuilder::new()
                .block_mode(lz4::BlockMode::Independent)
                .build(Vec::new())?;
            e.write_all(raw)?;
            let (out, r) = e.finish();
            r.map(|()| out)
        }
        4 => zstd::encode_all(raw, 3),
        _ => Err(std::io::Error::other(format!("unknown codec {codec}"))),
    }
}

#[cfg(test)]
mod rebuild_tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_through_rebuild() {
        use kafka_protocol::records::{
            Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        for (codec, c) in [
            (0, Compression::None),
            (1, Compression::Gzip),
            (2, Compression::Snappy),
            (3, Compression::Lz4),
            (4, Compression::Zstd),
        ] {
            let records: Vec<Record> = (0..5)
                .map(|i| Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: 0,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset: i,
                    // Constant offset - sequence keeps one batch.
                    sequence: i32::try_from(i).unwrap_or(0) - 1,
                    timestamp: 1000 + i,
                    key: Some(bytes::Bytes::from(format!("k{i}"))),
                    value: if i == 3 {
                        None
                    } else {
                        Some(bytes::Bytes::from(vec![b'v'; 50]))
                    },
                    headers: Default::default(),
                })
                .collect();
            let mut buf = bytes::BytesMut::new();
            RecordBatchEncoder::encode(
                &mut buf,
                records.iter(),
                &RecordEncodeOptions {
                    version: 2,
                    compression: c,
                },
            )
            .expect("encode");
            let batch = buf.to_vec();
            let (raw, recs) = records_of(&batch, 1 << 20).expect("records");
            assert_eq!(recs.len(), 5, "codec {codec}");
            assert_eq!(recs[3].value_len, -1);
            assert_eq!(&raw[recs[1].key_at..recs[1].key_at + 2], b"k1");
            // Keep records 1 and 4.
            let mut kept = Vec::new();
            kept.extend_from_slice(&raw[recs[1].start..recs[1].end]);
            kept.extend_from_slice(&raw[recs[4].start..recs[4].end]);
            let rebuilt = rebuild_batch(&batch, &kept, 2).expect("rebuild");
            let h = validate_client_batch(&rebuilt);
            // Two records but last offset delta 4: not a client batch, so
            // only the header and CRC are checked here.
            assert!(h.is_err());
            let h = BatchHeader::parse(&rebuilt).expect("header");
            assert_eq!(
                (h.records_count, h.last_offset_delta, h.compression()),
                (2, 4, codec)
            );
            assert_eq!(crc32c::crc32c(&rebuilt[ATTRIBUTES..]), h.crc);
            let (_, again) = records_of(&rebuilt, 1 << 20).expect("records");
            assert_eq!(
                again.iter().map(|r| r.offset_delta).collect::<Vec<_>>(),
                vec![1, 4]
            );
        }
    }
}
