//! Bounded decompression: real batches of every codec walk record by
//! record; decompression bombs fail at the cap without inflating the batch
//! into memory; malformed records get Kafka's INVALID_RECORD.
#![allow(clippy::unwrap_used)]

use std::io::Write;

use gregor_protocol::inflate::{inflate_limit, INFLATE_FACTOR};
use gregor_protocol::records::{self, BATCH_HEADER_LEN};
use gregor_protocol::BatchError;

const GZIP: i16 = 1;
const SNAPPY: i16 = 2;
const LZ4: i16 = 3;
const ZSTD: i16 = 4;
const CODECS: [i16; 4] = [GZIP, SNAPPY, LZ4, ZSTD];

fn varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// One record as Kafka's `DefaultRecord` writes it.
fn record(
    out: &mut Vec<u8>,
    offset_delta: i64,
    ts_delta: i64,
    key: Option<&[u8]>,
    value_len: usize,
) {
    let mut body = vec![0u8]; // attributes
    varint(&mut body, ts_delta);
    varint(&mut body, offset_delta);
    match key {
        Some(k) => {
            varint(&mut body, k.len() as i64);
            body.extend_from_slice(k);
        }
        None => varint(&mut body, -1),
    }
    varint(&mut body, value_len as i64);
    body.resize(body.len() + value_len, b'v');
    varint(&mut body, 0); // headers
    varint(out, body.len() as i64);
    out.extend_from_slice(&body);
}

fn records(n: i64, value_len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        record(
            &mut out,
            i,
            i * 10,
            Some(format!("k{i}").as_bytes()),
            value_len,
        );
    }
    out
}

fn compress(codec: i16, raw: &[u8]) -> Vec<u8> {
    match codec {
        0 => raw.to_vec(),
        GZIP => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        SNAPPY => {
            // xerial framing, as snappy-java and librdkafka write it.
            let mut out = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
            for chunk in raw.chunks(32 * 1024) {
                let c = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
                out.extend_from_slice(&(c.len() as u32).to_be_bytes());
                out.extend_from_slice(&c);
            }
            out
        }
        LZ4 => {
            let mut e = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
            e.write_all(raw).unwrap();
            let (out, r) = e.finish();
            r.unwrap();
            out
        }
        ZSTD => zstd::bulk::compress(raw, 1).unwrap(),
        _ => unreachable!(),
    }
}

/// A v2 batch around already-encoded (and maybe compressed) records, with
/// a valid CRC: what a hostile client can send.
fn batch(codec: i16, count: i32, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(BATCH_HEADER_LEN + payload.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((BATCH_HEADER_LEN - 12 + payload.len()) as i32).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, below
    b.extend_from_slice(&codec.to_be_bytes());
    b.extend_from_slice(&(count - 1).to_be_bytes());
    b.extend_from_slice(&1_000i64.to_be_bytes());
    b.extend_from_slice(&(1_000i64 + 10 * i64::from(count - 1)).to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(payload);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    records::validate_client_batch(&b).unwrap();
    b
}

const CAP: usize = 32 * 1_048_588;

#[test]
fn the_cap_is_the_documented_factor_of_max_message_bytes() {
    assert_eq!(INFLATE_FACTOR, 32);
    assert_eq!(inflate_limit(1_048_588), CAP);
    assert_eq!(inflate_limit(-5), 32);
}

#[test]
fn real_batches_of_every_codec_walk_and_find_timestamps() {
    for codec in [0, GZIP, SNAPPY, LZ4, ZSTD] {
        let raw = records(1000, 1000); // about 1 MB inflated
        let b = batch(codec, 1000, &compress(codec, &raw));
        let sum = records::validate_records(&b, CAP).unwrap();
        assert_eq!(sum.count, 1000, "codec {codec}");
        assert_eq!(sum.null_keys, 0);
        assert_eq!(
            records::first_record_at_or_after(&b, 1_000 + 4_995, 0, CAP).unwrap(),
            Some((500, 6_000)),
            "codec {codec}"
        );
        assert_eq!(
            records::first_record_at_or_after(&b, 0, 700, CAP).unwrap(),
            Some((700, 8_000))
        );
        assert_eq!(
            records::first_record_at_or_after(&b, 1_000_000, 0, CAP).unwrap(),
            None
        );
    }
}

#[test]
fn bombs_of_every_codec_fail_at_the_cap() {
    // One record whose value is 64 MiB of one byte: a few KB compressed.
    let raw = records(1, 64 << 20);
    for codec in CODECS {
        let compressed = compress(codec, &raw);
        assert!(
            compressed.len() < 4 << 20,
            "codec {codec}: {}",
            compressed.len()
        );
        let b = batch(codec, 1, &compressed);
        let e = records::validate_records(&b, CAP).unwrap_err();
        assert!(
            matches!(e, BatchError::InflatedTooLarge { limit: CAP }),
            "codec {codec}: {e}"
        );
        assert_eq!(e.error_code(), 87);
        // The same lookup a ListOffsets by timestamp does.
        let e = records::first_record_at_or_after(&b, 0, 0, CAP).unwrap_err();
        assert!(
            matches!(e, BatchError::InflatedTooLarge { .. }),
            "codec {codec}: {e}"
        );
        // Below the cap it is a valid batch.
        assert_eq!(records::validate_records(&b, 65 << 20).unwrap().count, 1);
    }
}

#[test]
fn many_tiny_records_and_trailing_garbage_are_bounded_too() {
    // recordsCount claims 2^31-1 records; the stream holds 1 MiB of them.
    let raw = records(100_000, 0);
    for codec in CODECS {
        let b = batch(codec, i32::MAX, &compress(codec, &raw));
        let e = records::validate_records(&b, 1 << 20).unwrap_err();
        assert!(
            matches!(
                e,
                BatchError::InflatedTooLarge { .. } | BatchError::Records(_)
            ),
            "codec {codec}: {e}"
        );
        // One valid record then 64 MiB of zeros.
        let mut raw = records(1, 10);
        raw.resize(raw.len() + (64 << 20), 0);
        let b = batch(codec, 1, &compress(codec, &raw));
        let e = records::validate_records(&b, CAP).unwrap_err();
        assert_eq!(e.error_code(), 87, "codec {codec}: {e}");
    }
}

#[test]
fn concatenated_gzip_members_are_one_stream() {
    let raw = records(10, 5);
    let (a, b) = raw.split_at(raw.len() / 2);
    let mut two = compress(GZIP, a);
    two.extend(compress(GZIP, b));
    let bt = batch(GZIP, 10, &two);
    assert_eq!(records::validate_records(&bt, CAP).unwrap().count, 10);
    // A bomb of many members, each 1 MiB of zeros.
    let member = compress(GZIP, &vec![0u8; 1 << 20]);
    let mut many = compress(GZIP, &records(1, 0));
    for _ in 0..64 {
        many.extend_from_slice(&member);
    }
    let bt = batch(GZIP, 1, &many);
    assert_eq!(
        records::validate_records(&bt, CAP)
            .unwrap_err()
            .error_code(),
        87
    );
}

#[test]
fn raw_snappy_and_huge_declared_sizes_are_checked_before_allocating() {
    // Older clients send one raw snappy block without the xerial header.
    let raw = records(10, 5);
    let b = batch(
        SNAPPY,
        10,
        &snap::raw::Encoder::new().compress_vec(&raw).unwrap(),
    );
    assert_eq!(records::validate_records(&b, CAP).unwrap().count, 10);
    // A raw block whose header declares 4 GiB: refused from the varint alone.
    let mut forged = Vec::new();
    let mut n: u64 = 4 << 30;
    while n >= 0x80 {
        forged.push((n as u8) | 0x80);
        n >>= 7;
    }
    forged.push(n as u8);
    forged.extend_from_slice(&[0; 16]);
    let b = batch(SNAPPY, 1, &forged);
    let e = records::validate_records(&b, CAP).unwrap_err();
    assert!(
        matches!(
            e,
            BatchError::InflatedTooLarge { .. } | BatchError::Decompress(_)
        ),
        "{e}"
    );
    // A zstd frame that declares 8 GiB of content but holds a few records.
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    enc.set_pledged_src_size(Some(8 << 30)).unwrap();
    enc.write_all(&records(3, 5)).unwrap();
    let frame = enc.finish(); // the encoder refuses the size mismatch
    let body = match frame {
        Ok(f) => f,
        Err(_) => {
            // Forge it instead: a single-segment frame header with an
            // 8-byte content size, then a raw block of the records.
            let recs = records(3, 5);
            let mut f = vec![0x28, 0xB5, 0x2F, 0xFD, 0b1110_0000];
            f.extend_from_slice(&(8u64 << 30).to_le_bytes());
            let block_header = ((recs.len() as u32) << 3) | 1; // last, raw
            f.extend_from_slice(&block_header.to_le_bytes()[..3]);
            f.extend_from_slice(&recs);
            f
        }
    };
    let b = batch(ZSTD, 3, &body);
    // Either the records walk (the stream ends before the declared size,
    // which Kafka's streaming reader does not check either) or the decoder
    // complains; it never allocates the declared size.
    match records::validate_records(&b, CAP) {
        Ok(sum) => assert_eq!(sum.count, 3),
        Err(e) => assert!(matches!(e, BatchError::Decompress(_)), "{e}"),
    }
}

#[test]
fn malformed_records_get_invalid_record() {
    let good = records(3, 5);
    // Count says 4: the stream ends early.
    let e = records::validate_records(&batch(0, 4, &good), CAP).unwrap_err();
    assert_eq!(e.error_code(), 87, "{e}");
    // Count says 2: a record is left over.
    let e = records::validate_records(&batch(0, 2, &good), CAP).unwrap_err();
    assert!(e.to_string().contains("records still remaining"), "{e}");
    // A key longer than its record.
    let mut bad = Vec::new();
    varint(&mut bad, 6);
    bad.push(0);
    varint(&mut bad, 0);
    varint(&mut bad, 0);
    varint(&mut bad, 1_000_000); // key length
    bad.extend_from_slice(&[0; 2]);
    let e = records::validate_records(&batch(0, 1, &bad), CAP).unwrap_err();
    assert!(e.to_string().contains("Invalid record size"), "{e}");
    // Compressed records must have consecutive offset deltas.
    let mut skewed = Vec::new();
    record(&mut skewed, 0, 0, Some(b"a"), 1);
    record(&mut skewed, 5, 0, Some(b"b"), 1);
    let e = records::validate_records(&batch(ZSTD, 2, &compress(ZSTD, &skewed)), CAP).unwrap_err();
    assert_eq!(e.error_code(), 87, "{e}");
    // Corrupt compressed bytes: CORRUPT_MESSAGE.
    for codec in CODECS {
        let e = records::validate_records(&batch(codec, 1, &[0x55; 64]), CAP).unwrap_err();
        assert!(matches!(e.error_code(), 2 | 87), "codec {codec}: {e}");
    }
    // Null keys are counted (compacted topics refuse them).
    let mut nk = Vec::new();
    record(&mut nk, 0, 0, None, 3);
    record(&mut nk, 1, 0, Some(b"k"), 3);
    assert_eq!(
        records::validate_records(&batch(0, 2, &nk), CAP)
            .unwrap()
            .null_keys,
        1
    );
}
