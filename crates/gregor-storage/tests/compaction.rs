//! Log compaction of a partition (Kafka's log cleaner): the latest record
//! per key survives, tombstones go after `delete.retention.ms`, offsets
//! keep their order with gaps, compressed batches are re-encoded with
//! their codec, and the result survives a reopen.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use common::*;
use gregor_protocol::records::BatchHeader;
use gregor_storage::{AppendOptions, CompactOptions, PartitionLog, Store};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One batch of (key, value) records; `None` value = tombstone.
fn keyed(recs: &[(&str, Option<&str>)], ts: i64, compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = recs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: ts,
            key: Some(Bytes::from(k.to_string())),
            value: v.map(|v| Bytes::from(v.to_string())),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.to_vec()
}

/// One batch per segment.
fn small() -> AppendOptions {
    AppendOptions {
        segment_bytes: 1,
        ..AppendOptions::default()
    }
}

fn opts(now: i64, delete_retention_ms: i64) -> CompactOptions {
    CompactOptions {
        now_ms: now,
        min_cleanable_ratio: 0.0,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
        delete_retention_ms,
        max_inflated: 32 << 20,
        max_map_entries: 1_000_000,
        max_bytes_per_sec: f64::INFINITY,
    }
}

/// Every record from the log start: (offset, key, value).
fn contents(p: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut at = p.log_start_offset();
    while at < p.high_watermark() {
        let r = p.read(at, 1 << 20).unwrap();
        if r.batches.is_empty() {
            break;
        }
        for b in &r.batches {
            let h = BatchHeader::parse(b).unwrap();
            at = h.last_offset() + 1;
            let mut buf = b.clone();
            let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap();
            for set in sets {
                for rec in set.records {
                    out.push((
                        rec.offset,
                        String::from_utf8(rec.key.unwrap().to_vec()).unwrap(),
                        rec.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
                    ));
                }
            }
        }
    }
    out
}

fn write_versions(p: &PartitionLog, compression: Compression) {
    // Offsets: 0-2 a1 b1 c1 | 3-4 a2 b<tombstone> | 5 c2 | 6 d1 (active)
    p.append(
        keyed(
            &[("a", Some("a1")), ("b", Some("b1")), ("c", Some("c1"))],
            1_000,
            compression,
        ),
        small(),
    )
    .unwrap();
    p.append(
        keyed(&[("a", Some("a2")), ("b", None)], 2_000, compression),
        small(),
    )
    .unwrap();
    p.append(keyed(&[("c", Some("c2"))], 3_000, compression), small())
        .unwrap();
    p.append(keyed(&[("d", Some("d1"))], 4_000, compression), small())
        .unwrap();
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn keeps_the_latest_record_per_key_and_drops_old_tombstones() {
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        for f in [memory(), sled()] {
            f.store.create_topic("t", 1, BTreeMap::new()).unwrap();
            let p = f.store.partition("t", 0).unwrap();
            write_versions(&p, compression);
            let before = p.size_bytes();
            // The tombstone (batch max ts 2000) is younger than the delete
            // horizon (now 3500 - 2000): it stays this time.
            let stats = p
                .compact(&opts(3_500, 2_000))
                .unwrap()
                .expect("something cleaned");
            assert!(stats.records_removed >= 3, "{stats:?}");
            assert_eq!(
                contents(&p),
                vec![
                    (3, "a".into(), s("a2")),
                    (4, "b".into(), None),
                    (5, "c".into(), s("c2")),
                    (6, "d".into(), s("d1"))
                ],
                "{compression:?}"
            );
            assert!(p.size_bytes() < before);
            // Later, past the horizon, the tombstone goes too.
            p.compact(&opts(10_000, 1_000)).unwrap();
            assert_eq!(
                contents(&p),
                vec![
                    (3, "a".into(), s("a2")),
                    (5, "c".into(), s("c2")),
                    (6, "d".into(), s("d1"))
                ],
                "{compression:?}"
            );
            // Offsets and the high watermark are kept; reads from inside a
            // gap land on the next record.
            assert_eq!(p.high_watermark(), 7);
            let r = p.read(1, 1 << 20).unwrap();
            assert_eq!(BatchHeader::parse(&r.batches[0]).unwrap().base_offset, 3);
            // Nothing left to do.
            assert!(p.compact(&opts(10_000, 1_000)).unwrap().is_none());
            // Appends go on.
            assert_eq!(
                p.append(keyed(&[("a", Some("a3"))], 5_000, compression), small())
                    .unwrap()
                    .base_offset,
                7
            );
        }
    }
}

#[test]
fn the_active_segment_and_young_segments_are_left_alone() {
    let f = memory();
    f.store.create_topic("t", 1, BTreeMap::new()).unwrap();
    let p = f.store.partition("t", 0).unwrap();
    // All in one (active) segment: nothing is cleanable.
    for i in 0..5 {
        p.append(
            keyed(&[("k", Some(&format!("v{i}")))], 1_000, Compression::None),
            AppendOptions::default(),
        )
        .unwrap();
    }
    assert!(p.compact(&opts(10_000, 0)).unwrap().is_none());
    // min.compaction.lag.ms keeps segments with young records.
    let g = memory();
    g.store.create_topic("t", 1, BTreeMap::new()).unwrap();
    let q = g.store.partition("t", 0).unwrap();
    write_versions(&q, Compression::None);
    let mut o = opts(3_500, 0);
    o.min_compaction_lag_ms = 10_000;
    assert!(q.compact(&o).unwrap().is_none());
}

#[test]
fn segments_emptied_by_compaction_are_stepped_over() {
    let f = memory();
    f.store.create_topic("t", 1, BTreeMap::new()).unwrap();
    let p = f.store.partition("t", 0).unwrap();
    // Three segments of the same keys, then an active one.
    for round in 0..3 {
        let v = format!("v{round}");
        p.append(
            keyed(
                &[("a", Some(&v)), ("b", Some(&v))],
                1_000,
                Compression::None,
            ),
            small(),
        )
        .unwrap();
    }
    p.append(
        keyed(&[("z", Some("z"))], 1_000, Compression::None),
        small(),
    )
    .unwrap();
    p.compact(&opts(10_000, 1_000)).unwrap();
    assert_eq!(
        contents(&p),
        vec![
            (4, "a".into(), s("v2")),
            (5, "b".into(), s("v2")),
            (6, "z".into(), s("z"))
        ]
    );
    // A consumer at 0 (inside the emptied segments) gets the first kept batch.
    let r = p.read(0, 1 << 20).unwrap();
    assert_eq!(BatchHeader::parse(&r.batches[0]).unwrap().base_offset, 4);
}

#[test]
fn a_compacted_log_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_sled(dir.path(), test_options()).unwrap();
        store.create_topic("t", 1, BTreeMap::new()).unwrap();
        let p = store.partition("t", 0).unwrap();
        write_versions(&p, Compression::Lz4);
        p.compact(&opts(10_000, 1_000)).unwrap();
    }
    let store = Store::open_sled(dir.path(), test_options()).unwrap();
    let p = store.partition("t", 0).unwrap();
    assert_eq!(
        contents(&p),
        vec![
            (3, "a".into(), s("a2")),
            (5, "c".into(), s("c2")),
            (6, "d".into(), s("d1"))
        ]
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}

/// The crash compaction must survive: the cleaned segment renamed over the
/// old one, but the checkpoint that records its new size and index never
/// written. The image is the store as checkpointed before the clean, with
/// the segment files as they are after it. Opening it re-reads the changed
/// segments, and every record reads as after the clean.
#[test]
fn a_crash_between_the_swap_and_its_checkpoint_is_healed() {
    let dir = tempfile::tempdir().unwrap();
    let img = tempfile::tempdir().unwrap();
    let quiet = gregor_storage::StoreOptions {
        flush_interval_ms: 3_600_000,
        cache_capacity_bytes: 8 * 1024 * 1024,
        ..gregor_storage::StoreOptions::default()
    };
    let store = Store::open_sled(dir.path(), quiet.clone()).unwrap();
    store.create_topic("t", 1, BTreeMap::new()).unwrap();
    let p = store.partition("t", 0).unwrap();
    write_versions(&p, Compression::Zstd);
    store.flush_now().unwrap();
    // The image's engine: checkpointed before the clean.
    copy_dir(dir.path(), img.path());
    p.compact(&opts(10_000, 1_000)).unwrap().expect("cleaned");
    let want = contents(&p);
    // The image's segment files: after the clean (the renames happened).
    let pdir = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("t-0-"))
        .unwrap();
    for e in std::fs::read_dir(&pdir).unwrap() {
        let e = e.unwrap();
        std::fs::copy(
            e.path(),
            img.path()
                .join(pdir.file_name().unwrap())
                .join(e.file_name()),
        )
        .unwrap();
    }
    drop(p);
    drop(store);
    let store = Store::open_sled(img.path(), quiet).unwrap();
    let p = store.partition("t", 0).unwrap();
    assert!(p.quarantine_reason().is_none());
    assert_eq!(contents(&p), want);
    assert_eq!(p.high_watermark(), 7);
    // Reads from every offset land where they should.
    for at in 0..7 {
        let r = p.read(at, 1).unwrap();
        let h = BatchHeader::parse(&r.batches[0]).unwrap();
        assert!(
            h.last_offset() >= at,
            "read at {at} returned a batch ending at {}",
            h.last_offset()
        );
    }
}
