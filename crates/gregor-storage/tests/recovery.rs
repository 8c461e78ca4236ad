//! Restarts of a persistent store: what survives a reopen, recovery of a
//! torn segment tail, quarantine of damage that is not a tail.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use bytes::Bytes;
use common::*;
use gregor_storage::{AppendOptions, CommittedOffset, StorageError, Store, StoreOptions};

/// Inflate cap for timestamp lookups (Kafka's default max.message.bytes x 32).
const CAP: usize = 32 * 1_048_588;

/// No background flushing at all (ours nor sled's): only explicit syncs and
/// the final flush on drop make anything durable.
fn quiet() -> StoreOptions {
    StoreOptions {
        flush_interval_ms: 3_600_000,
        cache_capacity_bytes: 8 * 1024 * 1024,
        ..StoreOptions::default()
    }
}

fn copy_dir(from: &Path, to: &Path) {
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

fn all_batches(store: &Store, topic: &str, partition: i32) -> Vec<Bytes> {
    let p = store.partition(topic, partition).unwrap();
    read_all(&p);
    p.read(p.log_start_offset(), usize::MAX).unwrap().batches
}

#[test]
fn reopen_keeps_data_topics_producer_state_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = BTreeMap::new();
    cfg.insert("cleanup.policy".to_string(), "delete".to_string());
    let commit = CommittedOffset {
        topic: "a".into(),
        partition: 1,
        offset: 42,
        leader_epoch: 0,
        metadata: Some("meta".into()),
        commit_timestamp: 1_700_000_000_123,
    };

    let (meta, batches0, batches1, ls, hw, size, max_ts, by_ts, ids, last_dup_base);
    {
        let store = Store::open_sled(dir.path(), quiet()).unwrap();
        meta = store.create_topic("a", 2, cfg.clone()).unwrap();
        store.create_topic("gone", 1, BTreeMap::new()).unwrap();
        store
            .partition("gone", 0)
            .unwrap()
            .append(batch_n(5, 1), opts())
            .unwrap();
        let p = store.partition("a", 0).unwrap();
        p.append(batch(&[100, 200]), opts()).unwrap(); // 0-1
        p.append(idem(7, 2, 0, 3), opts()).unwrap(); // 2-4, seq 0-2
        p.append(
            batch(&[300, 150]),
            AppendOptions {
                log_append_time_ms: Some(9999),
                leader_epoch: 4,
                ..AppendOptions::default()
            },
        )
        .unwrap(); // 5-6
        last_dup_base = p.append(idem(7, 2, 3, 2), opts()).unwrap().base_offset; // 7-8, seq 3-4
        p.append(batch(&[50]), opts()).unwrap(); // 9
        assert_eq!(p.delete_records_before(1).unwrap(), 1);
        store
            .partition("a", 1)
            .unwrap()
            .append(batch_n(2, 7), opts())
            .unwrap();
        store
            .commit_offsets("grp", std::slice::from_ref(&commit))
            .unwrap();
        ids = (0..3)
            .map(|_| store.next_producer_id().unwrap())
            .collect::<Vec<_>>();
        store.delete_topic("gone").unwrap();

        batches0 = all_batches(&store, "a", 0);
        batches1 = all_batches(&store, "a", 1);
        (ls, hw, size) = (p.log_start_offset(), p.high_watermark(), p.size_bytes());
        max_ts = p.max_timestamp(CAP).unwrap();
        by_ts = [0, 150, 201, 5000, 10_000].map(|t| p.offset_for_timestamp(t, CAP).unwrap());
        block_on(store.sync()).unwrap();
    }

    let store = Store::open_sled(dir.path(), quiet()).unwrap();
    assert_eq!(store.topics(), vec![meta.clone()]);
    assert_eq!(store.topic_by_id(meta.id), Some(meta));
    assert_eq!(all_batches(&store, "a", 0), batches0);
    assert_eq!(all_batches(&store, "a", 1), batches1);
    let p = store.partition("a", 0).unwrap();
    assert_eq!(
        (p.log_start_offset(), p.high_watermark(), p.size_bytes()),
        (ls, hw, size)
    );
    assert_eq!(p.max_timestamp(CAP).unwrap(), max_ts);
    assert_eq!(max_ts, Some((5, 9999)));
    assert_eq!(
        [0, 150, 201, 5000, 10_000].map(|t| p.offset_for_timestamp(t, CAP).unwrap()),
        by_ts
    );
    assert_oor(p.read(0, 1));

    // Producer state came back: retries are duplicates, gaps are refused,
    // the next sequence is accepted, older epochs are fenced.
    let dup = p.append(idem(7, 2, 3, 2), opts()).unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.base_offset, last_dup_base);
    assert!(p.append(idem(7, 2, 0, 3), opts()).unwrap().duplicate);
    assert!(matches!(
        p.append(idem(7, 2, 9, 1), opts()),
        Err(StorageError::OutOfOrderSequence {
            expected: 5,
            got: 9
        })
    ));
    assert!(matches!(
        p.append(idem(7, 1, 0, 1), opts()),
        Err(StorageError::InvalidProducerEpoch { current: 2, got: 1 })
    ));
    assert_eq!(p.append(idem(7, 2, 5, 1), opts()).unwrap().base_offset, hw);

    assert_eq!(store.committed_offsets("grp").unwrap(), vec![commit]);
    assert_eq!(store.groups_with_offsets().unwrap(), vec!["grp"]);
    let next = store.next_producer_id().unwrap();
    assert!(ids.iter().all(|i| next > *i), "{next} after {ids:?}");
    // The deleted topic stays deleted; its name starts empty.
    assert_eq!(store.topic("gone"), None);
    store.create_topic("gone", 1, BTreeMap::new()).unwrap();
    assert_eq!(store.partition("gone", 0).unwrap().high_watermark(), 0);
}

fn assert_oor<T: std::fmt::Debug>(r: gregor_storage::Result<T>) {
    assert!(
        matches!(r, Err(StorageError::OffsetOutOfRange { .. })),
        "{r:?}"
    );
}

#[test]
fn dropping_the_store_flushes_without_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_sled(dir.path(), quiet()).unwrap();
        store.create_topic("t", 1, BTreeMap::new()).unwrap();
        let p = store.partition("t", 0).unwrap();
        for _ in 0..10 {
            p.append(batch_n(3, 1), opts()).unwrap();
        }
    }
    let store = Store::open_sled(dir.path(), quiet()).unwrap();
    assert_eq!(store.partition("t", 0).unwrap().high_watermark(), 30);
}

#[test]
fn producer_ids_stay_unique_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let store = Store::open_sled(dir.path(), quiet()).unwrap();
        for _ in 0..5 {
            let id = store.next_producer_id().unwrap();
            assert!(seen.iter().all(|s| id > *s));
            seen.push(id);
        }
    }
}

/// Writes `n` batches of 2 records to a fresh topic `t`, each with
/// distinct timestamps; idempotent producer 5, sequences 2i..2i+1.
fn write_batches(store: &Store, from: usize, to: usize) {
    let p = store.partition("t", 0).unwrap();
    for i in from..to {
        let ts = 1000 + i as i64;
        let b = batch_with(
            &[ts, ts],
            Some(Producer {
                id: 5,
                epoch: 0,
                base_seq: 2 * i as i32,
            }),
            3000,
        );
        assert_eq!(p.append(b, opts()).unwrap().base_offset, 2 * i as i64);
    }
}

/// A crash image taken after `synced` batches were synced and more were
/// written, with sled's file torn (truncated, junk, zeros) anywhere past
/// the synced length: the store opens and every synced batch is there,
/// intact and contiguous, and the store takes appends again.
#[test]
fn torn_sled_file_keeps_synced_batches() {
    let dir = tempfile::tempdir().unwrap();
    let img = tempfile::tempdir().unwrap();
    let synced = 50;
    let store = Store::open_sled(dir.path(), quiet()).unwrap();
    store.create_topic("t", 1, BTreeMap::new()).unwrap();
    write_batches(&store, 0, synced);
    block_on(store.sync()).unwrap();
    let synced_len = std::fs::metadata(dir.path().join("db")).unwrap().len();
    let want = all_batches(&store, "t", 0);
    write_batches(&store, synced, synced + 30);
    // A copy of the files while the store is open and idle is a crash image.
    copy_dir(dir.path(), img.path());
    drop(store);
    let crash_len = std::fs::metadata(img.path().join("db")).unwrap().len();
    assert!(crash_len >= synced_len);

    for i in 0..=8u64 {
        let cut = synced_len + (crash_len - synced_len) * i / 8;
        for mode in ["truncate", "junk", "zeros"] {
            let d = tempfile::tempdir().unwrap();
            copy_dir(img.path(), d.path());
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(d.path().join("db"))
                .unwrap();
            match mode {
                "truncate" => f.set_len(cut).unwrap(),
                "junk" => {
                    f.seek(SeekFrom::Start(cut)).unwrap();
                    let junk: Vec<u8> = (0..8192u32)
                        .map(|x| (x.wrapping_mul(2_654_435_761) >> 13) as u8)
                        .collect();
                    f.write_all(&junk).unwrap();
                }
                _ => {
                    f.seek(SeekFrom::Start(cut)).unwrap();
                    f.write_all(&[0u8; 8192]).unwrap();
                }
            }
            drop(f);
            let s = Store::open_sled(d.path(), quiet())
                .unwrap_or_else(|e| panic!("{mode} at {cut}: {e}"));
            let got = all_batches(&s, "t", 0); // checks CRCs and contiguity
            assert!(
                got.len() >= synced,
                "{mode} at {cut}: {} batches",
                got.len()
            );
            assert_eq!(&got[..synced], &want[..], "{mode} at {cut}");
            let p = s.partition("t", 0).unwrap();
            let hw = p.high_watermark();
            assert_eq!(p.append(batch_n(1, 1), opts()).unwrap().base_offset, hw);
        }
    }
}

/// The one segment file of partition `t`-0 under `dir`.
fn segment_file(dir: &Path) -> std::path::PathBuf {
    let part = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("t-0-"))
        })
        .expect("partition directory t-0-<topic id>");
    part.join("00000000000000000000.log")
}

/// (start, end) of each batch in a segment file.
fn batch_bounds(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push((at, at + 12 + len));
        at += 12 + len;
    }
    out
}

/// Writes 20 batches and syncs, then takes a crash image (a copy of the
/// files while the store is open: no clean close, so opening it recovers)
/// and lets `damage` change its segment file.
fn crashed_after_sync(damage: impl Fn(&mut Vec<u8>)) -> (tempfile::TempDir, Vec<Bytes>) {
    let dir = tempfile::tempdir().unwrap();
    let img = tempfile::tempdir().unwrap();
    let store = Store::open_sled(dir.path(), quiet()).unwrap();
    store.create_topic("t", 1, BTreeMap::new()).unwrap();
    store.create_topic("other", 1, BTreeMap::new()).unwrap();
    write_batches(&store, 0, 20);
    let p = store.partition("other", 0).unwrap();
    p.append(batch_n(1, 1), opts()).unwrap();
    block_on(store.sync()).unwrap();
    let want = all_batches(&store, "t", 0);
    copy_dir(dir.path(), img.path());
    drop(p);
    drop(store);
    let seg = segment_file(img.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    damage(&mut bytes);
    std::fs::write(&seg, &bytes).unwrap();
    (img, want)
}

fn damaged_tail_is_dropped(k: usize, damage: impl Fn(&mut Vec<u8>, &[(usize, usize)])) {
    let total = 20;
    let (dir, want) = crashed_after_sync(|b| {
        let bounds = batch_bounds(b);
        damage(b, &bounds[bounds.len() - k..]);
    });
    let store = Store::open_sled(dir.path(), quiet()).unwrap();
    let keep = total - k;
    assert_eq!(all_batches(&store, "t", 0), want[..keep].to_vec());
    let p = store.partition("t", 0).unwrap();
    assert_eq!(p.high_watermark(), 2 * keep as i64);
    assert_eq!(
        p.size_bytes(),
        want[..keep].iter().map(|b| b.len() as u64).sum::<u64>()
    );
    assert_eq!(
        std::fs::metadata(segment_file(dir.path())).unwrap().len(),
        p.size_bytes(),
        "the torn tail is cut from the file"
    );
    assert_eq!(
        p.max_timestamp(CAP).unwrap(),
        Some((2 * keep as i64 - 2, 1000 + keep as i64 - 1))
    );
    assert_eq!(
        p.offset_for_timestamp(1000 + keep as i64, CAP).unwrap(),
        None
    );
    // Producer state forgot the dropped batches: their sequences are
    // accepted again (not duplicates of lost data) at the same offsets.
    write_batches(&store, keep, total);
    assert_eq!(all_batches(&store, "t", 0).len(), total);
    drop(p);
    drop(store);
    // And the repair itself persisted.
    let store = Store::open_sled(dir.path(), quiet()).unwrap();
    assert_eq!(all_batches(&store, "t", 0).len(), total);
}

#[test]
fn garbled_last_batch_is_dropped() {
    damaged_tail_is_dropped(1, |b, last| {
        let (s, e) = last[0];
        b[(s + e) / 2] ^= 0x5a;
    });
}

#[test]
fn torn_last_batch_is_dropped() {
    damaged_tail_is_dropped(1, |b, last| {
        let (s, e) = last[0];
        b.truncate((s + e) / 2);
    });
}

#[test]
fn zeros_after_the_last_batch_are_dropped() {
    // A file extended but not written before the power went.
    damaged_tail_is_dropped(0, |b, _| b.extend_from_slice(&[0u8; 4096]));
}

#[test]
fn a_run_of_damaged_batches_at_the_end_is_dropped() {
    damaged_tail_is_dropped(10, |b, last| {
        for (_, e) in last {
            b[e - 1] ^= 1;
        }
    });
}

/// Damage with intact batches after it is not a torn write: the partition
/// is quarantined (reads and writes refused, the file left as found), not
/// cut; the other partitions serve as usual.
#[test]
fn damage_before_intact_batches_quarantines_the_partition() {
    let (dir, _) = crashed_after_sync(|b| {
        let bounds = batch_bounds(b);
        let (s, e) = bounds[5];
        b[(s + e) / 2] ^= 0x5a;
    });
    let seg = segment_file(dir.path());
    let before = std::fs::read(&seg).unwrap();
    let store = Store::open_sled(dir.path(), quiet()).unwrap();
    let p = store.partition("t", 0).unwrap();
    assert!(p.quarantine_reason().is_some());
    assert!(matches!(p.read(0, 100), Err(StorageError::Corrupt(_))));
    assert!(matches!(
        p.append(batch_n(1, 1), opts()),
        Err(StorageError::Corrupt(_))
    ));
    let other = store.partition("other", 0).unwrap();
    assert_eq!(all_batches(&store, "other", 0).len(), 1);
    assert_eq!(other.append(batch_n(1, 1), opts()).unwrap().base_offset, 1);
    drop((p, other));
    drop(store);
    assert_eq!(std::fs::read(&seg).unwrap(), before, "left as found");
    // Still quarantined on the next open: a close never claims it clean.
    let store = Store::open_sled(dir.path(), quiet()).unwrap();
    assert!(store
        .partition("t", 0)
        .unwrap()
        .quarantine_reason()
        .is_some());
}
