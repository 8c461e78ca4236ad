//! Hostile inputs: every one must give an error, never a panic or a huge
//! allocation.

use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::frame::{check, check_length};
use gregor_protocol::records::{validate_client_batch, BatchHeader};
use gregor_protocol::{decode_request, BatchError, Decoded, ProtocolError};

fn header(api: i16, version: i16, corr: i32) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i16(api);
    b.put_i16(version);
    b.put_i32(corr);
    b
}

#[test]
fn short_frames_are_errors() {
    for n in 0..8 {
        let frame = Bytes::from(vec![0u8; n]);
        assert!(matches!(decode_request(frame), Err(ProtocolError::ShortFrame(m)) if m == n));
    }
}

#[test]
fn negative_and_huge_lengths_are_refused_before_allocation() {
    assert!(matches!(
        check_length((-1i32).to_be_bytes(), 1 << 20),
        Err(ProtocolError::NegativeLength(-1))
    ));
    assert!(matches!(
        check_length(i32::MAX.to_be_bytes(), 100 << 20),
        Err(ProtocolError::FrameTooLarge { .. })
    ));
    assert_eq!(check_length(16i32.to_be_bytes(), 100).ok(), Some(16));
    // Incomplete frames ask for more bytes rather than failing.
    let mut buf = 10i32.to_be_bytes().to_vec();
    assert_eq!(check(&buf, 100).ok(), Some(None));
    buf.extend_from_slice(&[0; 10]);
    assert_eq!(check(&buf, 100).ok(), Some(Some(10)));
}

#[test]
fn unknown_api_key_is_an_error() {
    let mut b = header(12345, 0, 1);
    b.put_i16(-1);
    assert!(matches!(
        decode_request(b.freeze()),
        Err(ProtocolError::UnknownApiKey(12345))
    ));
}

#[test]
fn unsupported_versions() {
    // ApiVersions above the max: answered, not refused (KIP-511).
    let mut b = header(18, 99, 7);
    b.put_i16(-1);
    assert!(matches!(
        decode_request(b.freeze()),
        Ok(Decoded::UnsupportedApiVersions {
            correlation_id: 7,
            version: 99
        })
    ));
    // Produce v2 is advertised (for old librdkafka) but refused like Kafka 4.
    let mut b = header(0, 2, 1);
    b.put_i16(-1);
    assert!(matches!(
        decode_request(b.freeze()),
        Err(ProtocolError::UnsupportedVersion { .. })
    ));
    // Fetch v13 would need topic ids.
    let mut b = header(1, 13, 1);
    b.put_i16(-1);
    assert!(matches!(
        decode_request(b.freeze()),
        Err(ProtocolError::UnsupportedVersion { .. })
    ));
}

/// The 8-byte pre-allocation attack: a Metadata v1 request whose topic
/// array claims i32::MAX entries. Unpatched kafka-protocol 0.18 asks for
/// ~3.6 GiB here and aborts the process.
#[test]
fn huge_array_counts_do_not_preallocate() {
    let mut b = header(3, 1, 1);
    b.put_i16(-1); // null client id
    b.put_i32(i32::MAX);
    assert!(matches!(
        decode_request(b.freeze()),
        Err(ProtocolError::Malformed { .. })
    ));
    // Same with a compact array in a flexible version (Metadata v9+).
    let mut b = header(3, 12, 1);
    b.put_i16(-1);
    b.put_u8(0); // header tagged fields
    b.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]); // uvarint ~ u32::MAX
    assert!(matches!(
        decode_request(b.freeze()),
        Err(ProtocolError::Malformed { .. })
    ));
}

#[test]
fn truncated_bodies_are_errors() {
    // A real Produce v9 header followed by a body cut at every length.
    let mut full = header(0, 9, 1);
    full.put_i16(5);
    full.put_slice(b"hello");
    full.put_u8(0);
    full.put_u8(0); // transactional id: null compact string
    full.put_i16(-1);
    full.put_i32(30_000);
    full.put_u8(2); // one topic
    full.put_u8(2);
    full.put_slice(b"t");
    for cut in 8..full.len() {
        let r = decode_request(full.clone().freeze().slice(..cut));
        assert!(r.is_err(), "cut at {cut} decoded");
    }
}

fn batch(records: i32, last_offset_delta: i32) -> Vec<u8> {
    let mut b = vec![0u8; 61];
    let body_len = b.len() as i32 - 12;
    b[8..12].copy_from_slice(&body_len.to_be_bytes());
    b[16] = 2;
    b[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    b[57..61].copy_from_slice(&records.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn corrupt_batches_are_refused_with_kafka_codes() {
    assert!(validate_client_batch(&batch(1, 0)).is_ok());
    // CRC damage → CORRUPT_MESSAGE.
    let mut b = batch(1, 0);
    b[60] ^= 1;
    let e = validate_client_batch(&b).err();
    assert!(matches!(e, Some(BatchError::Crc { .. })));
    assert_eq!(e.map(|e| e.error_code()), Some(2));
    // A batch whose count lies → INVALID_RECORD.
    let e = validate_client_batch(&batch(5, 0)).err();
    assert!(matches!(e, Some(BatchError::CountMismatch { .. })));
    assert_eq!(e.map(|e| e.error_code()), Some(87));
    // Two batches in one partition → INVALID_RECORD.
    let mut two = batch(1, 0);
    two.extend(batch(1, 0));
    assert_eq!(
        validate_client_batch(&two).err().map(|e| e.error_code()),
        Some(87)
    );
    // Length beyond the bytes sent; and a magic 1 batch.
    let mut long = batch(1, 0);
    long[8..12].copy_from_slice(&1000i32.to_be_bytes());
    assert!(matches!(
        validate_client_batch(&long),
        Err(BatchError::BadLength { .. })
    ));
    let mut v1 = batch(1, 0);
    v1[16] = 1;
    assert!(matches!(
        validate_client_batch(&v1),
        Err(BatchError::UnsupportedMagic(1))
    ));
    // Too short for a header.
    assert!(matches!(
        validate_client_batch(&[0u8; 20]),
        Err(BatchError::Truncated { .. })
    ));
    assert!(BatchHeader::parse(&[0u8; 60]).is_err());
}
