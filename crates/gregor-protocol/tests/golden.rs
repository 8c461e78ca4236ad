//! Golden request frames recorded from real clients decode.
//!
//! `tests/golden/<client>/<client>-<Api>-v<version>-<n>.bin` each hold one
//! request frame body (no length prefix) as kcat (librdkafka 2.0.2),
//! confluent-kafka (librdkafka 2.16), kafka-python 3.0.12 and Java
//! kafka-clients 4.3.1 sent it to Gregor through `compat-tests/capture`
//! (see its README to re-capture). The files are read at test time, so a
//! re-capture needs no change here unless a client's behaviour changed.
//!
//! Every frame must decode to the request its name says, with the header's
//! correlation id, and re-encode to the very same bytes (nothing skipped or
//! lost). Frames of APIs Gregor does not serve yet are listed in [`UNSERVED`]
//! and must be refused with `UnsupportedVersion`; when Gregor starts serving
//! one, move it out of the list and it becomes a positive test.
#![allow(clippy::unwrap_used)] // test harness: a bad golden file should fail loudly

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use gregor_protocol::kafka_protocol::messages::RequestKind;
use gregor_protocol::kafka_protocol::protocol::Encodable;
use gregor_protocol::kafka_protocol::records::RecordBatchDecoder;
use gregor_protocol::records::validate_client_batch;
use gregor_protocol::{decode_request, Decoded, ProtocolError, Request};

/// Frames of APIs Gregor does not serve yet, by file name (client folder
/// included). Each must be refused with `UnsupportedVersion`.
///
/// kafka-python with a pinned `api_version=(2, 5)` skips the ApiVersions
/// check and asks for a group coordinator; the other clients check
/// ApiVersions and never send an API the broker does not advertise.
const UNSERVED: &[&str] = &[];

/// The clients the capture covers; each must have a folder.
const CLIENTS: &[&str] = &["kcat", "confluent-kafka", "kafka-python", "java"];

/// Largest total size of the golden folder: the frames are small on purpose.
const MAX_TOTAL_BYTES: u64 = 200 * 1024;

#[derive(Debug)]
struct Golden {
    /// `client/file.bin`, as in [`UNSERVED`].
    rel: String,
    client: String,
    api: String,
    version: i16,
    bytes: Bytes,
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
}

/// `<client>-<Api>-v<version>-<n>.bin`; the client name may hold dashes.
fn parse_name(client: &str, file: &str) -> (String, i16) {
    let stem = file
        .strip_suffix(".bin")
        .unwrap_or_else(|| panic!("{file}: not a .bin"));
    let rest = stem
        .strip_prefix(client)
        .and_then(|s| s.strip_prefix('-'))
        .unwrap_or_else(|| panic!("{file}: does not start with its folder name {client}-"));
    let parts: Vec<&str> = rest.split('-').collect();
    assert_eq!(
        parts.len(),
        3,
        "{file}: expected <client>-<Api>-v<N>-<n>.bin"
    );
    let version = parts[1]
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{file}: bad version part {}", parts[1]));
    parts[2]
        .parse::<u32>()
        .unwrap_or_else(|_| panic!("{file}: bad sequence part {}", parts[2]));
    (parts[0].to_string(), version)
}

fn load() -> Vec<Golden> {
    let dir = golden_dir();
    let mut out = Vec::new();
    let mut clients: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    clients.sort();
    for cdir in clients {
        let client = cdir.file_name().unwrap().to_str().unwrap().to_string();
        let mut files: Vec<_> = std::fs::read_dir(&cdir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "bin"))
            .collect();
        files.sort();
        for f in files {
            let file = f.file_name().unwrap().to_str().unwrap().to_string();
            let (api, version) = parse_name(&client, &file);
            out.push(Golden {
                rel: format!("{client}/{file}"),
                client: client.clone(),
                api,
                version,
                bytes: Bytes::from(std::fs::read(&f).unwrap()),
            });
        }
    }
    assert!(!out.is_empty(), "no golden frames under {}", dir.display());
    out
}

fn raw_key(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[0], b[1]])
}
fn raw_version(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[2], b[3]])
}
fn raw_correlation_id(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[4], b[5], b[6], b[7]])
}

/// Decodes a frame expected to be served, checking what every request must hold.
fn decode_served(g: &Golden) -> Request {
    let req = match decode_request(g.bytes.clone()) {
        Ok(Decoded::Request(r)) => *r,
        other => panic!("{}: expected a request, got {other:?}", g.rel),
    };
    assert_eq!(format!("{:?}", req.api_key), g.api, "{}: api key", g.rel);
    assert_eq!(req.api_key as i16, raw_key(&g.bytes), "{}", g.rel);
    assert_eq!(req.version, g.version, "{}: version", g.rel);
    assert_eq!(raw_version(&g.bytes), g.version, "{}: name vs bytes", g.rel);
    assert_eq!(req.header.request_api_key, raw_key(&g.bytes), "{}", g.rel);
    assert_eq!(req.header.request_api_version, g.version, "{}", g.rel);
    assert_eq!(
        req.header.correlation_id,
        raw_correlation_id(&g.bytes),
        "{}: correlation id",
        g.rel
    );
    let client_id = req.header.client_id.as_ref().map(|s| s.as_str());
    assert!(
        client_id.is_some_and(|s| !s.is_empty()),
        "{}: client id {client_id:?}",
        g.rel
    );
    req
}

/// Re-encodes header and body: a lossless decode gives back the frame.
fn reencode(req: &Request) -> Bytes {
    let mut buf = BytesMut::new();
    req.header
        .encode(&mut buf, req.api_key.request_header_version(req.version))
        .unwrap();
    req.body.encode(&mut buf, req.version).unwrap();
    buf.freeze()
}

#[test]
fn golden_set_is_complete_and_small() {
    let all = load();
    let total: u64 = all.iter().map(|g| g.bytes.len() as u64).sum();
    assert!(
        total <= MAX_TOTAL_BYTES,
        "golden frames total {total} bytes"
    );
    let by_client: BTreeMap<&str, BTreeSet<&str>> = all.iter().fold(BTreeMap::new(), |mut m, g| {
        m.entry(g.client.as_str())
            .or_default()
            .insert(g.api.as_str());
        m
    });
    for c in CLIENTS {
        let apis = by_client
            .get(c)
            .unwrap_or_else(|| panic!("no golden frames for client {c}"));
        // Every scenario bootstraps, produces, fetches and lists offsets.
        for api in ["ApiVersions", "Metadata", "Produce", "Fetch", "ListOffsets"] {
            assert!(apis.contains(api), "{c}: no {api} frame ({apis:?})");
        }
    }
    for u in UNSERVED {
        assert!(
            all.iter().any(|g| g.rel == *u),
            "UNSERVED lists {u}, which is not in tests/golden"
        );
    }
}

#[test]
fn every_served_frame_decodes_losslessly() {
    let mut n = 0;
    for g in load()
        .iter()
        .filter(|g| !UNSERVED.contains(&g.rel.as_str()))
    {
        let req = decode_served(g);
        assert_eq!(
            reencode(&req),
            g.bytes,
            "{}: re-encoding the decoded request differs from the captured frame",
            g.rel
        );
        n += 1;
    }
    assert!(n >= 20, "only {n} served golden frames");
}

#[test]
fn unserved_frames_are_refused_as_unsupported() {
    let all = load();
    for u in UNSERVED {
        let g = all.iter().find(|g| g.rel == *u).unwrap();
        match decode_request(g.bytes.clone()) {
            Err(ProtocolError::UnsupportedVersion { api, version }) => {
                assert_eq!(api, g.api, "{u}");
                assert_eq!(version, g.version, "{u}");
            }
            other => panic!(
                "{u}: expected UnsupportedVersion, got {other:?}; if Gregor serves \
                 this API now, move the file out of UNSERVED"
            ),
        }
    }
}

/// Every Produce frame carries valid single-batch record sets holding the
/// scenario's keyed records; each client sent one uncompressed and one gzip
/// batch, idempotent or not as its defaults (and the scenario) say.
#[test]
fn produce_frames_hold_valid_client_batches() {
    const NONE: i16 = 0;
    const GZIP: i16 = 1;
    // (client, codec, idempotent): Java and kafka-python 3 default to
    // idempotence; librdkafka does not (the confluent-kafka scenario turns it
    // on for its gzip producer).
    let expected: BTreeSet<(String, i16, bool)> = [
        ("confluent-kafka", NONE, false),
        ("confluent-kafka", GZIP, true),
        ("java", NONE, true),
        ("java", GZIP, true),
        ("kafka-python", NONE, true),
        ("kafka-python", GZIP, true),
        ("kcat", NONE, false),
        ("kcat", GZIP, false),
    ]
    .into_iter()
    .map(|(c, codec, idem)| (c.to_string(), codec, idem))
    .collect();
    let mut seen = BTreeSet::new();
    for g in load().iter().filter(|g| g.api == "Produce") {
        let req = decode_served(g);
        let RequestKind::Produce(p) = &req.body else {
            panic!("{}: not a Produce body", g.rel)
        };
        assert!(p.transactional_id.is_none(), "{}", g.rel);
        assert!(!p.topic_data.is_empty(), "{}", g.rel);
        for t in &p.topic_data {
            assert_eq!(
                t.name.as_str(),
                format!("capture-{}", g.client),
                "{}: topic",
                g.rel
            );
            for part in &t.partition_data {
                assert_eq!(part.index, 0, "{}", g.rel);
                let records = part.records.as_ref().expect("records present");
                let h = validate_client_batch(records)
                    .unwrap_or_else(|e| panic!("{}: batch refused: {e}", g.rel));
                assert_eq!(h.base_offset, 0, "{}: client batches start at 0", g.rel);
                assert!(!h.is_transactional(), "{}", g.rel);
                let idempotent = h.producer_id >= 0;
                if idempotent {
                    // A new producer's first batch to the partition.
                    assert_eq!((h.producer_epoch, h.base_sequence), (0, 0), "{}", g.rel);
                } else {
                    assert_eq!((h.producer_epoch, h.base_sequence), (-1, -1), "{}", g.rel);
                }
                seen.insert((g.client.clone(), h.compression(), idempotent));
                // The records themselves: keyed, as the scenario sent them.
                let set = RecordBatchDecoder::decode(&mut records.clone())
                    .unwrap_or_else(|e| panic!("{}: records: {e}", g.rel));
                assert_eq!(set.records.len(), h.records_count as usize, "{}", g.rel);
                for r in &set.records {
                    let k = r.key.as_ref().expect("keyed record");
                    let v = r.value.as_ref().expect("record value");
                    assert!(k.starts_with(b"k"), "{}: key {k:?}", g.rel);
                    assert!(v.starts_with(b"v"), "{}: value {v:?}", g.rel);
                    if h.compression() == GZIP {
                        // The scenarios pad these values so that gzip pays:
                        // clients send a batch that does not shrink uncompressed.
                        assert!(v.ends_with(b"gregorgregor"), "{}: value {v:?}", g.rel);
                    }
                }
            }
        }
    }
    assert_eq!(
        seen, expected,
        "(client, codec, idempotent) of the Produce batches"
    );
}

fn find<'a>(all: &'a [Golden], client: &str, api: &str) -> Vec<&'a Golden> {
    let v: Vec<_> = all
        .iter()
        .filter(|g| g.client == client && g.api == api)
        .collect();
    assert!(!v.is_empty(), "no {client} {api} frame");
    v
}

/// ApiVersions v3+ names the client software (KIP-511).
#[test]
fn api_versions_name_the_client_software() {
    let all = load();
    let expect = [
        ("kcat", "librdkafka", "2.0.2"),
        ("confluent-kafka", "confluent-kafka-python", "2.16.1"),
        ("kafka-python", "kafka-python", "3.0.12"),
        ("java", "apache-kafka-java", "4."),
    ];
    for (client, name, version_prefix) in expect {
        for g in find(&all, client, "ApiVersions") {
            let req = decode_served(g);
            let RequestKind::ApiVersions(av) = &req.body else {
                panic!("{}: not ApiVersions", g.rel)
            };
            assert!(g.version >= 3, "{}", g.rel);
            assert_eq!(av.client_software_name.as_str(), name, "{}", g.rel);
            assert!(
                av.client_software_version
                    .as_str()
                    .starts_with(version_prefix),
                "{}: software version {}",
                g.rel,
                av.client_software_version.as_str()
            );
        }
    }
    // kafka-python 3 and Java 4 open with the newest ApiVersions, v4.
    for client in ["kafka-python", "java"] {
        assert!(
            find(&all, client, "ApiVersions")
                .iter()
                .any(|g| g.version == 4),
            "{client}: no ApiVersions v4"
        );
    }
}

/// A client newer than Gregor asks ApiVersions at a version above the
/// advertised maximum: the frame (a captured one with its version raised)
/// decodes to the KIP-511 fallback with the correlation id to echo.
#[test]
fn api_versions_above_max_is_answered_the_kip511_way() {
    let all = load();
    let g = find(&all, "java", "ApiVersions")[0];
    let mut b = g.bytes.to_vec();
    b[2..4].copy_from_slice(&i16::MAX.to_be_bytes());
    match decode_request(Bytes::from(b)) {
        Ok(Decoded::UnsupportedApiVersions {
            correlation_id,
            version,
        }) => {
            assert_eq!(correlation_id, raw_correlation_id(&g.bytes));
            assert_eq!(version, i16::MAX);
        }
        other => panic!("expected UnsupportedApiVersions, got {other:?}"),
    }
}

#[test]
fn create_topics_fetch_and_list_offsets_carry_the_scenario() {
    let all = load();
    for client in ["confluent-kafka", "kafka-python", "java"] {
        for g in find(&all, client, "CreateTopics") {
            let req = decode_served(g);
            let RequestKind::CreateTopics(ct) = &req.body else {
                panic!("{}", g.rel)
            };
            assert_eq!(ct.topics.len(), 1, "{}", g.rel);
            let t = &ct.topics[0];
            assert_eq!(t.name.as_str(), format!("capture-{client}"), "{}", g.rel);
            assert_eq!(t.num_partitions, 1, "{}", g.rel);
            assert_eq!(t.replication_factor, 1, "{}", g.rel);
            assert!(!ct.validate_only, "{}", g.rel);
        }
    }
    for client in CLIENTS {
        for g in find(&all, client, "Fetch") {
            let req = decode_served(g);
            let RequestKind::Fetch(f) = &req.body else {
                panic!("{}", g.rel)
            };
            assert!(
                f.replica_state.replica_id.0 < 0 && f.replica_id.0 < 0,
                "{}",
                g.rel
            );
            let parts: Vec<_> = f
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.as_str(), p)))
                .collect();
            assert_eq!(parts.len(), 1, "{}", g.rel);
            let (topic, p) = parts[0];
            assert_eq!(topic, format!("capture-{client}"), "{}", g.rel);
            assert_eq!(p.partition, 0, "{}", g.rel);
            // The first fetch of a consumer that seeked to the beginning.
            assert_eq!(p.fetch_offset, 0, "{}", g.rel);
            assert!(p.partition_max_bytes > 0, "{}", g.rel);
        }
        for g in find(&all, client, "ListOffsets") {
            let req = decode_served(g);
            let RequestKind::ListOffsets(lo) = &req.body else {
                panic!("{}", g.rel)
            };
            assert!(lo.replica_id.0 < 0, "{}", g.rel);
            for t in &lo.topics {
                assert_eq!(t.name.as_str(), format!("capture-{client}"), "{}", g.rel);
                for p in &t.partitions {
                    assert_eq!(p.partition_index, 0, "{}", g.rel);
                    // latest (-1), earliest (-2) or a timestamp.
                    assert!(p.timestamp >= -2, "{}: timestamp {}", g.rel, p.timestamp);
                }
            }
        }
    }
}

#[test]
fn init_producer_id_is_idempotent_not_transactional() {
    let all = load();
    for client in ["confluent-kafka", "kafka-python", "java"] {
        for g in find(&all, client, "InitProducerId") {
            let req = decode_served(g);
            let RequestKind::InitProducerId(ip) = &req.body else {
                panic!("{}", g.rel)
            };
            assert!(ip.transactional_id.is_none(), "{}", g.rel);
            assert_eq!(ip.producer_id.0, -1, "{}", g.rel);
            assert_eq!(ip.producer_epoch, -1, "{}", g.rel);
        }
    }
}

#[test]
fn metadata_requests_decode_topic_lists() {
    for g in load().iter().filter(|g| g.api == "Metadata") {
        let req = decode_served(g);
        let RequestKind::Metadata(m) = &req.body else {
            panic!("{}", g.rel)
        };
        // Either all topics (null) or named ones; never an unnamed entry
        // below v10, where topic ids do not exist yet.
        if let Some(ts) = &m.topics {
            for t in ts {
                if g.version < 10 {
                    assert!(t.name.is_some(), "{}", g.rel);
                }
            }
        }
    }
}
