//! Seed inputs: the golden request frames recorded from real clients, a
//! typed default request for every advertised api key and version, and
//! record batches of every codec made from real record sets.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use gregor_protocol::kafka_protocol::indexmap::IndexMap;
use gregor_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use gregor_protocol::kafka_protocol::messages::*;
use gregor_protocol::kafka_protocol::protocol::{Encodable, StrBytes};
use gregor_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use gregor_protocol::{decode_request, versions, Decoded};

/// Where `crates/gregor-protocol/tests/golden.rs` reads its frames.
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/gregor-protocol/tests/golden")
}

/// Every golden frame body (no length prefix), sorted by path.
pub fn golden_frames() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(clients) = std::fs::read_dir(golden_dir()) else {
        return out;
    };
    for c in clients.flatten() {
        let Ok(files) = std::fs::read_dir(c.path()) else {
            continue;
        };
        for f in files.flatten() {
            let p = f.path();
            if p.extension().is_some_and(|x| x == "bin") {
                if let Ok(b) = std::fs::read(&p) {
                    out.push((p.display().to_string(), b));
                }
            }
        }
    }
    out.sort();
    out
}

fn default_request(key: ApiKey) -> Option<RequestKind> {
    macro_rules! kinds {
        ($($k:ident => $t:ident),* $(,)?) => {
            match key {
                $(ApiKey::$k => Some(RequestKind::$k($t::default())),)*
                _ => None,
            }
        };
    }
    kinds! {
        Produce => ProduceRequest, Fetch => FetchRequest, ListOffsets => ListOffsetsRequest,
        Metadata => MetadataRequest, OffsetCommit => OffsetCommitRequest,
        OffsetFetch => OffsetFetchRequest, FindCoordinator => FindCoordinatorRequest,
        JoinGroup => JoinGroupRequest, Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest, SyncGroup => SyncGroupRequest,
        DescribeGroups => DescribeGroupsRequest, ListGroups => ListGroupsRequest,
        ApiVersions => ApiVersionsRequest, CreateTopics => CreateTopicsRequest,
        DeleteTopics => DeleteTopicsRequest, InitProducerId => InitProducerIdRequest,
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
        DescribeConfigs => DescribeConfigsRequest, DescribeCluster => DescribeClusterRequest,
        DeleteGroups => DeleteGroupsRequest, OffsetDelete => OffsetDeleteRequest,
    }
}

/// A request frame body: header at the version's header version, then `body`.
pub fn frame_body(key: ApiKey, version: i16, corr: i32, body: &RequestKind) -> Option<Vec<u8>> {
    let mut b = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(corr)
        .with_client_id(Some(StrBytes::from_static_str("gregor-fuzz")))
        .encode(&mut b, key.request_header_version(version))
        .ok()?;
    body.encode(&mut b, version).ok()?;
    Some(b.to_vec())
}

/// A default typed request for every api key and version the broker
/// advertises (so every decoder gets a well-formed start), plus a Produce
/// carrying a real batch at every served Produce version.
pub fn generated_requests() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for r in versions::supported() {
        let Some(body) = default_request(r.key) else {
            continue;
        };
        for v in r.min..=r.max {
            out.extend(frame_body(r.key, v, v as i32, &body));
        }
    }
    // Real client requests at every other version of their api: populated
    // bodies (topics, partitions, records, groups) for each decoder version.
    for (_, f) in golden_frames() {
        let Ok(Decoded::Request(r)) = decode_request(Bytes::from(f)) else {
            continue;
        };
        let Some(range) = versions::range(r.api_key) else {
            continue;
        };
        for v in range.served_min..=range.max {
            if v != r.version {
                out.extend(frame_body(r.api_key, v, r.header.correlation_id, &r.body));
            }
        }
    }
    let produce = versions::range(ApiKey::Produce).map_or(3..=3, |r| r.served_min..=r.max);
    for v in produce {
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(1000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("fuzz")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(codec_batches()[0].clone())))])]);
        out.extend(frame_body(
            ApiKey::Produce,
            v,
            7,
            &RequestKind::Produce(req),
        ));
    }
    out
}

/// Prefixes a frame body with its i32 length.
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// The record batches inside the golden Produce frames, as clients sent them.
pub fn golden_batches() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (_, f) in golden_frames() {
        let Ok(Decoded::Request(r)) = decode_request(Bytes::from(f)) else {
            continue;
        };
        if let RequestKind::Produce(p) = r.body {
            for t in p.topic_data {
                for part in t.partition_data {
                    out.extend(part.records.map(|b| b.to_vec()));
                }
            }
        }
    }
    out
}

/// Recomputes `batchLength` (when `fix_len`) and the CRC-32C over bytes 21..
/// so that a mutated batch still gets past the length and CRC checks.
pub fn fix_batch(b: &mut [u8], fix_len: bool) {
    if fix_len && b.len() >= 12 {
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
    }
    if b.len() >= 21 {
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

fn record_set(n: i64, producer_id: i64) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let mut headers = IndexMap::new();
            if i % 3 == 1 {
                headers.insert(
                    StrBytes::from_static_str("h"),
                    Some(Bytes::from_static(b"header-value")),
                );
                headers.insert(StrBytes::from_static_str("null"), None);
            }
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch: if producer_id >= 0 { 0 } else { -1 },
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: if producer_id >= 0 { i as i32 } else { -1 },
                timestamp: 1_700_000_000_000 + i * 7,
                key: (i % 4 != 3).then(|| Bytes::from(format!("key-{i}"))),
                value: (i % 5 != 4)
                    .then(|| Bytes::from(format!("value {i} ").repeat(1 + i as usize % 9))),
                headers,
            }
        })
        .collect()
}

/// Header bytes, uncompressed record bytes.
fn plain_batch(n: i64, producer_id: i64) -> (Vec<u8>, Vec<u8>) {
    let mut buf = BytesMut::new();
    let records = record_set(n, producer_id);
    let opts = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    if RecordBatchEncoder::encode(&mut buf, records.iter(), &opts).is_err() || buf.len() < 61 {
        return (Vec::new(), Vec::new());
    }
    (buf[..61].to_vec(), buf[61..].to_vec())
}

/// Kafka's snappy: the xerial stream header, then blocks each prefixed by
/// its compressed length.
fn xerial_snappy(raw: &[u8]) -> Vec<u8> {
    let mut out = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    for chunk in raw.chunks(32 * 1024) {
        let c = snap::raw::Encoder::new()
            .compress_vec(chunk)
            .unwrap_or_default();
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend_from_slice(&c);
    }
    out
}

/// `raw` compressed as Kafka clients do for `codec` (0 returns it as is).
pub fn compress(codec: i16, raw: &[u8]) -> Vec<u8> {
    match codec {
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let _ = e.write_all(raw);
            e.finish().unwrap_or_default()
        }
        2 => xerial_snappy(raw),
        3 => {
            // The LZ4 frame format, as Kafka's KafkaLZ4BlockOutputStream writes.
            let Ok(mut e) = lz4::EncoderBuilder::new().build(Vec::new()) else {
                return Vec::new();
            };
            let _ = e.write_all(raw);
            let (v, r) = e.finish();
            r.map(|_| v).unwrap_or_default()
        }
        4 => zstd::encode_all(raw, 3).unwrap_or_default(),
        _ => raw.to_vec(),
    }
}

/// Valid client batches (CRC and length right) of every codec: 0 none,
/// 1 gzip, 2 snappy, 3 lz4, 4 zstd; one, a few and many records; plain and
/// idempotent.
pub fn codec_batches() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (n, pid) in [(1, -1), (5, 42), (40, -1)] {
        let (header, raw) = plain_batch(n, pid);
        if header.is_empty() {
            continue;
        }
        for codec in 0..=4i16 {
            let mut b = header.clone();
            let attrs = i16::from_be_bytes([b[21], b[22]]) & !7 | codec;
            b[21..23].copy_from_slice(&attrs.to_be_bytes());
            b.extend_from_slice(&compress(codec, &raw));
            fix_batch(&mut b, true);
            out.push(b);
        }
    }
    out
}

/// A decompression bomb per codec: small batches whose records inflate to
/// far more than the batch, to exercise the inflation cap.
pub fn bomb_batches() -> Vec<Vec<u8>> {
    let (header, _) = plain_batch(1, -1);
    if header.is_empty() {
        return Vec::new();
    }
    let raw = vec![0u8; 8 << 20];
    (1..=4i16)
        .map(|codec| {
            let mut b = header.clone();
            let attrs = i16::from_be_bytes([b[21], b[22]]) & !7 | codec;
            b[21..23].copy_from_slice(&attrs.to_be_bytes());
            b.extend_from_slice(&compress(codec, &raw));
            fix_batch(&mut b, true);
            b
        })
        .collect()
}
