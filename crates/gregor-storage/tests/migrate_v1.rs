//! A data dir written by Gregor before storage v2 (format 1: every batch in
//! sled) is migrated on first open: batches copied byte for byte into
//! segment files, log start, producer state and committed offsets kept, the
//! old keys removed; the next open finds format 2.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use gregor_storage::{Store, StoreOptions};

fn v1_key(tag: u8, pid: u32, off: i64) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(&pid.to_be_bytes());
    k.extend_from_slice(&off.to_be_bytes());
    k
}

/// Writes a format-1 store the way Gregor 0.1 laid it out.
fn write_v1(dir: &std::path::Path, id: &str, batches: &[Vec<u8>]) {
    // Format 1 created sled with 8 MiB segments.
    let db = sled::Config::new()
        .path(dir)
        .segment_size(8 << 20)
        .open()
        .unwrap();
    db.insert(b"Mv", b"1").unwrap();
    db.insert(b"Mcpid", &2i64.to_be_bytes()).unwrap();
    let topic = format!(
        r#"{{"name":"orders","id":"{id}","partitions":2,"configs":{{"retention.ms":"-1"}},"pids":[0,1]}}"#
    );
    db.insert(b"Mtorders", topic.as_bytes()).unwrap();
    for b in batches {
        let h = header(b);
        db.insert(v1_key(b'L', 0, h.base_offset), b.as_slice())
            .unwrap();
        let mut summary = Vec::new();
        summary.extend_from_slice(&h.last_offset_delta.to_be_bytes());
        summary.extend_from_slice(&h.max_timestamp.to_be_bytes());
        summary.extend_from_slice(&(b.len() as u32).to_be_bytes());
        db.insert(v1_key(b'I', 0, h.base_offset), summary).unwrap();
    }
    // Retention had moved the log start past the first batch's offsets.
    let mut ms = vec![b'M', b's'];
    ms.extend_from_slice(&0u32.to_be_bytes());
    db.insert(ms, &3i64.to_be_bytes()).unwrap();
    // Producer 9, epoch 0, one batch: seq 0-1 at offset 5 (see below).
    let mut ps = Vec::new();
    ps.extend_from_slice(&0i16.to_be_bytes());
    ps.extend_from_slice(&1_000i64.to_be_bytes());
    ps.push(1);
    ps.extend_from_slice(&0i32.to_be_bytes());
    ps.extend_from_slice(&1i32.to_be_bytes());
    ps.extend_from_slice(&5i64.to_be_bytes());
    ps.extend_from_slice(&1i32.to_be_bytes());
    db.insert(v1_key(b'P', 0, 9), ps).unwrap();
    // A committed offset of group g.
    let mut ok = vec![b'O'];
    ok.extend_from_slice(&1u16.to_be_bytes());
    ok.extend_from_slice(b"g");
    ok.extend_from_slice(&6u16.to_be_bytes());
    ok.extend_from_slice(b"orders");
    // Partition 0, sign-flipped so that partitions sort numerically.
    ok.extend_from_slice(&i32::MIN.to_be_bytes());
    let mut ov = Vec::new();
    ov.extend_from_slice(&4i64.to_be_bytes());
    ov.extend_from_slice(&(-1i32).to_be_bytes());
    ov.extend_from_slice(&123i64.to_be_bytes());
    ov.push(0);
    db.insert(ok, ov).unwrap();
    db.flush().unwrap();
}

#[test]
fn a_format_1_data_dir_is_migrated_once() {
    let dir = tempfile::tempdir().unwrap();
    let id = "6f1c8f0e-2a51-4d3b-9a57-0b7a1d2c3e4f";
    // Stored batches as format 1 kept them: offsets 2-4, 5-6 (producer 9,
    // seq 0-1), 7.
    let mut stored = Vec::new();
    for (base, b) in [
        (2, batch_n(3, 1_000)),
        (5, idem(9, 0, 0, 2)),
        (7, batch_n(1, 2_000)),
    ] {
        let mut b = b;
        gregor_protocol::records::set_base_offset(&mut b, base);
        stored.push(b);
    }
    write_v1(dir.path(), id, &stored);

    let opts = StoreOptions {
        flush_interval_ms: 0,
        ..StoreOptions::default()
    };
    {
        let store = Store::open_sled(dir.path(), opts.clone()).unwrap();
        let meta = store.topic("orders").unwrap();
        assert_eq!(meta.partitions, 2);
        assert_eq!(meta.id.to_string(), id);
        assert_eq!(meta.configs.get("retention.ms").unwrap(), "-1");
        let p = store.partition("orders", 0).unwrap();
        assert_eq!((p.log_start_offset(), p.high_watermark()), (3, 8));
        let r = p.read(3, usize::MAX).unwrap();
        let got: Vec<Vec<u8>> = r.batches.iter().map(|b| b.to_vec()).collect();
        assert_eq!(got, stored, "batches copied byte for byte");
        assert_eq!(read_all(&p), vec![(2, 4), (5, 6), (7, 7)]);
        // Producer state came along: a retry of seq 0-1 is a duplicate.
        let dup = p.append(idem(9, 0, 0, 2), opts_default()).unwrap();
        assert!(dup.duplicate);
        assert_eq!(dup.base_offset, 5);
        assert_eq!(store.committed_offsets("g").unwrap()[0].offset, 4);
        let q = store.partition("orders", 1).unwrap();
        assert_eq!(q.high_watermark(), 0);
        // Appends go on after the migrated data.
        assert_eq!(
            p.append(batch_n(1, 3_000), opts_default())
                .unwrap()
                .base_offset,
            8
        );
        // The segment file is where a person would look for it.
        let seg = dir
            .path()
            .join(format!("orders-0-{}", id.replace('-', "")))
            .join("00000000000000000002.log");
        assert!(seg.exists(), "{} missing", seg.display());
    }
    // The old keys are gone and the format says 2.
    {
        let db = sled::Config::new()
            .path(dir.path())
            .segment_size(8 << 20)
            .open()
            .unwrap();
        assert_eq!(db.get(b"Mv").unwrap().unwrap().as_ref(), b"2");
        for tag in [b'L', b'I', b'T'] {
            assert_eq!(db.scan_prefix([tag]).count(), 0, "tag {}", tag as char);
        }
    }
    let store = Store::open_sled(dir.path(), opts).unwrap();
    let p = store.partition("orders", 0).unwrap();
    assert_eq!(read_all(&p), vec![(2, 4), (5, 6), (7, 7), (8, 8)]);
    drop(p);
    drop(store);
}

fn opts_default() -> gregor_storage::AppendOptions {
    gregor_storage::AppendOptions::default()
}
