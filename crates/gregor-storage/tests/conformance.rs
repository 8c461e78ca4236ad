//! One behavioural suite, run against both engines (memory and sled).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use gregor_protocol::records::validate_client_batch;
use gregor_storage::{AppendOptions, CommittedOffset, StorageError, Store};

/// Inflate cap for timestamp lookups (Kafka's default max.message.bytes x 32).
const CAP: usize = 32 * 1_048_588;

fn new_topic(store: &Store, name: &str) -> Arc<gregor_storage::PartitionLog> {
    store.create_topic(name, 1, BTreeMap::new()).unwrap();
    store.partition(name, 0).unwrap()
}

/// One segment per batch: retention and DeleteRecords work on whole
/// segments, so this makes them batch-grained.
fn seg1() -> AppendOptions {
    AppendOptions {
        segment_bytes: 1,
        ..opts()
    }
}

fn assert_oor(r: gregor_storage::Result<impl std::fmt::Debug>, ls: i64, hw: i64) {
    match r {
        Err(StorageError::OffsetOutOfRange {
            log_start_offset,
            high_watermark,
        }) => assert_eq!((log_start_offset, high_watermark), (ls, hw)),
        other => panic!("expected OffsetOutOfRange({ls}, {hw}), got {other:?}"),
    }
}

pub fn append_assigns_offsets_and_patches_in_place(store: &Store) {
    let p = new_topic(store, "t");
    assert_eq!(
        (p.log_start_offset(), p.high_watermark(), p.size_bytes()),
        (0, 0, 0)
    );
    let sizes = [3usize, 1, 4];
    let mut sent = Vec::new();
    let mut total = 0u64;
    for (i, n) in sizes.iter().enumerate() {
        let b = batch_n(*n, 1000 + i as i64);
        total += b.len() as u64;
        let out = p
            .append(
                b.clone(),
                AppendOptions {
                    log_append_time_ms: None,
                    leader_epoch: 7,
                    ..opts()
                },
            )
            .unwrap();
        assert!(!out.duplicate);
        assert_eq!(out.log_append_time_ms, -1);
        assert_eq!(out.log_start_offset, 0);
        sent.push((out.base_offset, b));
    }
    assert_eq!(sent.iter().map(|s| s.0).collect::<Vec<_>>(), vec![0, 3, 4]);
    assert_eq!(p.high_watermark(), 8);
    assert_eq!(p.size_bytes(), total);

    // Stored bytes = sent bytes, except base offset and leader epoch.
    let r = p.read(0, usize::MAX).unwrap();
    assert_eq!((r.high_watermark, r.log_start_offset), (8, 0));
    assert_eq!(r.batches.len(), 3);
    for ((base, sent), got) in sent.iter().zip(&r.batches) {
        let h = validate_client_batch(got).expect("CRC still valid");
        assert_eq!(h.base_offset, *base);
        assert_eq!(h.partition_leader_epoch, 7);
        assert_eq!(got.len(), sent.len());
        assert_eq!(&got[8..12], &sent[8..12]);
        assert_eq!(&got[16..], &sent[16..]);
    }

    // Any offset inside a batch starts the read at that batch.
    for off in 0..8 {
        let r = p.read(off, 1).unwrap();
        assert_eq!(r.batches.len(), 1);
        let h = header(&r.batches[0]);
        assert!(
            h.base_offset <= off && off <= h.last_offset(),
            "offset {off} in {h:?}"
        );
    }
    assert_eq!(read_all(&p), vec![(0, 2), (3, 3), (4, 7)]);

    // At the high watermark: nothing; outside the log: out of range.
    let r = p.read(8, usize::MAX).unwrap();
    assert!(r.batches.is_empty());
    assert_eq!(r.high_watermark, 8);
    assert_oor(p.read(9, 100), 0, 8);
    assert_oor(p.read(-1, 100), 0, 8);
}

pub fn kip74_first_batch_and_max_bytes(store: &Store) {
    let p = new_topic(store, "t");
    let mut lens = Vec::new();
    for i in 0..4 {
        let b = batch_with(&[i, i], None, 500);
        lens.push(b.len());
        p.append(b, opts()).unwrap();
    }
    let l = lens[0];
    assert!(lens.iter().all(|x| *x == l));
    // The first batch comes back even when larger than max_bytes.
    assert_eq!(p.read(0, 1).unwrap().batches.len(), 1);
    assert_eq!(p.read(0, 0).unwrap().batches.len(), 1);
    // Whole batches only, never more than max_bytes after the first.
    assert_eq!(p.read(0, l).unwrap().batches.len(), 1);
    assert_eq!(p.read(0, 2 * l - 1).unwrap().batches.len(), 1);
    assert_eq!(p.read(0, 2 * l).unwrap().batches.len(), 2);
    assert_eq!(p.read(0, 3 * l + 10).unwrap().batches.len(), 3);
    assert_eq!(p.read(3, 2 * l).unwrap().batches.len(), 2); // from batch 1 (offsets 2..3)
    assert_eq!(header(&p.read(3, 2 * l).unwrap().batches[0]).base_offset, 2);
    let all = p.read(0, usize::MAX).unwrap();
    assert_eq!(all.batches.len(), 4);
    assert_eq!(all.total_bytes(), 4 * l);
}

pub fn log_start_and_delete_records(store: &Store) {
    let p = new_topic(store, "t");
    for _ in 0..4 {
        p.append(batch_n(3, 10), seg1()).unwrap(); // 0-2, 3-5, 6-8, 9-11
    }
    let one = p.size_bytes() / 4;
    // Mid-batch: the straddling batch stays, the whole one below goes.
    assert_eq!(p.delete_records_before(4).unwrap(), 4);
    assert_eq!(p.log_start_offset(), 4);
    assert_eq!(p.size_bytes(), 3 * one);
    assert_oor(p.read(3, 100), 4, 12);
    assert_oor(p.read(0, 100), 4, 12);
    let r = p.read(4, 1).unwrap();
    assert_eq!(r.log_start_offset, 4);
    assert_eq!(header(&r.batches[0]).base_offset, 3);
    // Below the current start: no change. Past the high watermark: error.
    assert_eq!(p.delete_records_before(2).unwrap(), 4);
    assert_oor(p.delete_records_before(13), 4, 12);
    // Everything: log start = high watermark, nothing to read, appends go
    // on. As in Kafka, the active segment stays (with its batch below the
    // log start) until a newer one exists.
    assert_eq!(p.delete_records_before(12).unwrap(), 12);
    assert_eq!(p.size_bytes(), one);
    assert_eq!(p.segment_count(), 1);
    assert!(p.read(12, 100).unwrap().batches.is_empty());
    assert_oor(p.read(11, 100), 12, 12);
    assert_eq!(p.max_timestamp(CAP).unwrap(), None);
    assert_eq!(p.offset_for_timestamp(0, CAP).unwrap(), None);
    let out = p.append(batch_n(1, 10), seg1()).unwrap();
    assert_eq!((out.base_offset, out.log_start_offset), (12, 12));
    assert_eq!(read_all(&p), vec![(12, 12)]);
}

pub fn offsets_for_timestamps(store: &Store) {
    let p = new_topic(store, "t");
    assert_eq!(p.offset_for_timestamp(0, CAP).unwrap(), None);
    assert_eq!(p.max_timestamp(CAP).unwrap(), None);
    // offsets:     0    1    2  |  3    4  |  5  |  6    7    8
    for ts in [
        vec![100, 110, 120],
        vec![130, 140],
        vec![125],
        vec![10, 500, 20],
    ] {
        p.append(batch(&ts), opts()).unwrap();
    }
    let cases = [
        (i64::MIN, Some((0, 100))),
        (50, Some((0, 100))),
        (100, Some((0, 100))),
        (101, Some((1, 110))),
        (115, Some((2, 120))),
        (121, Some((3, 130))),
        (125, Some((3, 130))), // the first offset with ts >= 125, not offset 5
        (131, Some((4, 140))),
        (141, Some((7, 500))),
        (500, Some((7, 500))),
        (501, None),
    ];
    for (ts, want) in cases {
        assert_eq!(p.offset_for_timestamp(ts, CAP).unwrap(), want, "ts {ts}");
    }
    assert_eq!(p.max_timestamp(CAP).unwrap(), Some((7, 500)));
}

pub fn log_append_time(store: &Store) {
    let p = new_topic(store, "t");
    p.append(batch(&[1, 2]), opts()).unwrap();
    let out = p
        .append(
            batch(&[3, 4, 5]),
            AppendOptions {
                log_append_time_ms: Some(5555),
                leader_epoch: 2,
                ..opts()
            },
        )
        .unwrap();
    assert_eq!((out.base_offset, out.log_append_time_ms), (2, 5555));
    let r = p.read(2, usize::MAX).unwrap();
    let h = validate_client_batch(&r.batches[0]).expect("CRC recomputed after the patch");
    assert!(h.is_log_append_time());
    assert_eq!(
        (h.max_timestamp, h.partition_leader_epoch, h.base_offset),
        (5555, 2, 2)
    );
    assert_eq!(p.offset_for_timestamp(3, CAP).unwrap(), Some((2, 5555)));
    assert_eq!(p.offset_for_timestamp(2, CAP).unwrap(), Some((1, 2)));
    assert_eq!(p.max_timestamp(CAP).unwrap(), Some((2, 5555)));
    assert_eq!(p.offset_for_timestamp(5556, CAP).unwrap(), None);
}

pub fn idempotent_producer(store: &Store) {
    let p = new_topic(store, "t");
    // New producer: any first sequence.
    assert_eq!(p.append(idem(1, 0, 0, 3), opts()).unwrap().base_offset, 0); // seq 0..2
    assert_eq!(p.append(idem(1, 0, 3, 2), opts()).unwrap().base_offset, 3); // seq 3..4
                                                                            // A retry: original offset, nothing written.
    let hw = p.high_watermark();
    let dup = p.append(idem(1, 0, 0, 3), opts()).unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.base_offset, dup.log_append_time_ms), (0, -1));
    assert_eq!(p.high_watermark(), hw);
    assert!(p.append(idem(1, 0, 3, 2), opts()).unwrap().duplicate);
    // Same first sequence, different range: not a duplicate, and out of order.
    assert!(matches!(
        p.append(idem(1, 0, 0, 2), opts()),
        Err(StorageError::OutOfOrderSequence {
            expected: 5,
            got: 0
        })
    ));
    // A gap.
    assert!(matches!(
        p.append(idem(1, 0, 7, 1), opts()),
        Err(StorageError::OutOfOrderSequence {
            expected: 5,
            got: 7
        })
    ));
    assert_eq!(p.high_watermark(), hw);
    // Only the last 5 batches are remembered.
    for i in 0..5 {
        p.append(idem(1, 0, 5 + i, 1), opts()).unwrap();
    }
    assert!(p.append(idem(1, 0, 5, 1), opts()).unwrap().duplicate);
    assert!(matches!(
        p.append(idem(1, 0, 3, 2), opts()),
        Err(StorageError::OutOfOrderSequence {
            expected: 10,
            got: 3
        })
    ));
    // Epoch bump: must restart at 0.
    assert!(matches!(
        p.append(idem(1, 1, 10, 1), opts()),
        Err(StorageError::OutOfOrderSequence {
            expected: 0,
            got: 10
        })
    ));
    let bumped = p.append(idem(1, 1, 0, 1), opts()).unwrap();
    assert!(!bumped.duplicate);
    // The old epoch is fenced, even for what used to be a duplicate.
    assert!(matches!(
        p.append(idem(1, 0, 5, 1), opts()),
        Err(StorageError::InvalidProducerEpoch { current: 1, got: 0 })
    ));
    // Another producer is independent and may start anywhere.
    assert!(!p.append(idem(2, 0, 42, 1), opts()).unwrap().duplicate);
    assert!(p.append(idem(2, 0, 42, 1), opts()).unwrap().duplicate);
    // Sequence wraps at i32::MAX.
    p.append(idem(3, 0, i32::MAX - 1, 2), opts()).unwrap();
    p.append(idem(3, 0, 0, 1), opts()).unwrap();
    // Non-idempotent batches skip all of it: the same bytes twice are two appends.
    let b = batch_n(1, 1);
    let a1 = p.append(b.clone(), opts()).unwrap();
    let a2 = p.append(b, opts()).unwrap();
    assert!(!a1.duplicate && !a2.duplicate);
    assert_eq!(a2.base_offset, a1.base_offset + 1);
    read_all(&p);
}

pub fn topics_create_delete_recreate(store: &Store) {
    let mut cfg = BTreeMap::new();
    cfg.insert("retention.ms".to_string(), "1000".to_string());
    let b = store.create_topic("b", 3, cfg.clone()).unwrap();
    let a = store.create_topic("a", 1, BTreeMap::new()).unwrap();
    assert_eq!((b.name.as_str(), b.partitions, &b.configs), ("b", 3, &cfg));
    assert_ne!(a.id, b.id);
    assert!(matches!(
        store.create_topic("a", 1, BTreeMap::new()),
        Err(StorageError::TopicExists)
    ));
    assert!(matches!(
        store.create_topic("c", 0, BTreeMap::new()),
        Err(StorageError::InvalidPartitions(0))
    ));
    assert_eq!(
        store
            .topics()
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    assert_eq!(store.topic("b"), Some(b.clone()));
    assert_eq!(store.topic_by_id(b.id), Some(b.clone()));
    assert_eq!(store.topic_by_id(uuid::Uuid::new_v4()), None);
    assert!(store.partition("b", 2).is_some());
    assert!(store.partition("b", 3).is_none());
    assert!(store.partition("b", -1).is_none());
    assert!(store.partition("zz", 0).is_none());

    // Data in every partition, kept apart.
    for i in 0..3 {
        let p = store.partition("b", i).unwrap();
        for _ in 0..=i {
            p.append(batch_n(2, 5), opts()).unwrap();
        }
    }
    for i in 0..3 {
        assert_eq!(
            store.partition("b", i).unwrap().high_watermark(),
            2 * (i as i64 + 1)
        );
    }
    let old = store.partition("b", 1).unwrap();

    assert_eq!(store.delete_topic("b").unwrap(), b);
    assert!(matches!(
        store.delete_topic("b"),
        Err(StorageError::UnknownTopic)
    ));
    assert_eq!(store.topic("b"), None);
    assert!(store.partition("b", 0).is_none());
    // A handle taken before the delete refuses to work.
    assert!(matches!(
        old.append(batch_n(1, 1), opts()),
        Err(StorageError::UnknownTopic)
    ));
    assert!(matches!(old.read(0, 100), Err(StorageError::UnknownTopic)));

    // Recreated: new id, empty, offsets from 0 (purge pending or not).
    let b2 = store.create_topic("b", 2, BTreeMap::new()).unwrap();
    assert_ne!(b2.id, b.id);
    for i in 0..2 {
        let p = store.partition("b", i).unwrap();
        assert_eq!(
            (p.high_watermark(), p.log_start_offset(), p.size_bytes()),
            (0, 0, 0)
        );
        assert!(p.read(0, usize::MAX).unwrap().batches.is_empty());
        assert_eq!(p.max_timestamp(CAP).unwrap(), None);
        assert_eq!(p.append(batch_n(1, 1), opts()).unwrap().base_offset, 0);
        // Producer state did not survive either.
        assert!(!p.append(idem(9, 0, 17, 1), opts()).unwrap().duplicate);
    }
    store.purge_deleted_topics().unwrap();
    assert_eq!(store.partition("b", 0).unwrap().high_watermark(), 2);
    assert_eq!(store.topics().len(), 2);
}

fn co(topic: &str, partition: i32, offset: i64, metadata: Option<&str>) -> CommittedOffset {
    CommittedOffset {
        topic: topic.into(),
        partition,
        offset,
        leader_epoch: 3,
        metadata: metadata.map(String::from),
        commit_timestamp: 1_700_000_000_000 + offset,
    }
}

pub fn group_offsets(store: &Store) {
    assert!(store.groups_with_offsets().unwrap().is_empty());
    assert!(store.committed_offsets("g").unwrap().is_empty());
    store
        .commit_offsets(
            "g",
            &[
                co("t", 1, 10, Some("m")),
                co("t", 0, 5, None),
                co("a", 0, 1, Some("")),
            ],
        )
        .unwrap();
    store.commit_offsets("g2", &[co("t", 0, 99, None)]).unwrap();
    store.commit_offsets("f", &[co("t", 0, 7, None)]).unwrap();
    assert_eq!(
        store.committed_offsets("g").unwrap(),
        vec![
            co("a", 0, 1, Some("")),
            co("t", 0, 5, None),
            co("t", 1, 10, Some("m"))
        ]
    );
    assert_eq!(store.groups_with_offsets().unwrap(), vec!["f", "g", "g2"]);
    // A newer commit replaces the older one.
    store
        .commit_offsets("g", &[co("t", 0, 6, Some("x"))])
        .unwrap();
    assert_eq!(
        store.committed_offsets("g").unwrap()[1],
        co("t", 0, 6, Some("x"))
    );
    // Delete some partitions, then a whole group.
    store
        .delete_committed_offsets("g", Some(&[("t".to_string(), 0), ("nope".to_string(), 3)]))
        .unwrap();
    assert_eq!(
        store.committed_offsets("g").unwrap(),
        vec![co("a", 0, 1, Some("")), co("t", 1, 10, Some("m"))]
    );
    store.delete_committed_offsets("g", None).unwrap();
    assert!(store.committed_offsets("g").unwrap().is_empty());
    assert_eq!(store.groups_with_offsets().unwrap(), vec!["f", "g2"]);
    assert_eq!(
        store.committed_offsets("g2").unwrap(),
        vec![co("t", 0, 99, None)]
    );
}

pub fn retention(store: &Store) {
    let p = new_topic(store, "t");
    for ts in [1000, 2000, 3000, 4000] {
        p.append(batch(&[ts - 1, ts]), seg1()).unwrap(); // 2 records each
    }
    let one = p.size_bytes() / 4;
    assert_eq!(p.segment_count(), 4);
    assert_eq!(p.enforce_retention(4500, -1, -1).unwrap(), 0);
    // Time: max ts < 4500 - 2000 = 2500 -> the first two segments.
    assert_eq!(p.enforce_retention(4500, 2000, -1).unwrap(), 4);
    assert_eq!((p.log_start_offset(), p.size_bytes()), (4, 2 * one));
    assert_oor(p.read(3, 100), 4, 8);
    assert_eq!(p.offset_for_timestamp(0, CAP).unwrap(), Some((4, 2999)));
    // Everything expired: as Kafka, an empty segment is rolled so that
    // the active one can go too; the log start moves to the end.
    assert_eq!(p.enforce_retention(i64::MAX / 2, 0, -1).unwrap(), 4);
    assert_eq!(p.enforce_retention(i64::MAX / 2, 0, -1).unwrap(), 0);
    assert_eq!((p.log_start_offset(), p.high_watermark()), (8, 8));
    assert_eq!((p.size_bytes(), p.segment_count()), (0, 1));
    assert!(read_all(&p).is_empty());
    assert_eq!(p.max_timestamp(CAP).unwrap(), None);
    // Size: oldest first while the rest still holds retention.bytes.
    for ts in [5000, 6000, 7000, 8000] {
        p.append(batch(&[ts - 1, ts]), seg1()).unwrap();
    }
    assert_eq!(p.size_bytes(), 4 * one);
    assert_eq!(p.enforce_retention(0, -1, (2 * one) as i64).unwrap(), 4);
    assert_eq!(read_all(&p), vec![(12, 13), (14, 15)]);
    assert_eq!(p.enforce_retention(0, -1, (2 * one) as i64).unwrap(), 0);
    assert_eq!(p.enforce_retention(0, -1, (one + 1) as i64).unwrap(), 0);
    assert_eq!(p.enforce_retention(0, -1, one as i64).unwrap(), 2);
    assert_eq!(read_all(&p), vec![(14, 15)]);
    assert_eq!(p.size_bytes(), one);
    assert_eq!(p.max_timestamp(CAP).unwrap(), Some((15, 8000)));
    // Many batches in one segment: only whole segments go.
    let q = new_topic(store, "big");
    for ts in [1000, 2000, 3000] {
        q.append(batch(&[ts]), opts()).unwrap();
    }
    assert_eq!(
        q.enforce_retention(2500, 0, -1).unwrap(),
        0,
        "one segment, newest record not expired"
    );
}

pub fn time_index_after_the_max_batch_is_deleted(store: &Store) {
    let p = new_topic(store, "t");
    // offsets: 0..1 (max 5000) | 2 (100) | 3 (200) | 4..5 (150, 180)
    for ts in [vec![4000, 5000], vec![100], vec![200], vec![150, 180]] {
        p.append(batch(&ts), seg1()).unwrap();
    }
    assert_eq!(p.max_timestamp(CAP).unwrap(), Some((1, 5000)));
    assert_eq!(p.offset_for_timestamp(150, CAP).unwrap(), Some((0, 4000)));
    p.delete_records_before(2).unwrap();
    // The survivors must be found although none raised the old running max.
    assert_eq!(p.max_timestamp(CAP).unwrap(), Some((3, 200)));
    assert_eq!(p.offset_for_timestamp(0, CAP).unwrap(), Some((2, 100)));
    assert_eq!(p.offset_for_timestamp(101, CAP).unwrap(), Some((3, 200)));
    assert_eq!(p.offset_for_timestamp(201, CAP).unwrap(), None);
    // The running max dropped with it: a new 300 is the max.
    p.append(batch(&[300]), seg1()).unwrap();
    assert_eq!(p.max_timestamp(CAP).unwrap(), Some((6, 300)));
    assert_eq!(p.offset_for_timestamp(201, CAP).unwrap(), Some((6, 300)));
    // Straddling log start: records before it are not answered.
    p.delete_records_before(5).unwrap();
    assert_eq!(p.offset_for_timestamp(0, CAP).unwrap(), Some((5, 180)));
    assert_eq!(p.max_timestamp(CAP).unwrap(), Some((6, 300)));
}

pub fn producer_ids_are_unique(store: &Store) {
    let ids: Vec<i64> = (0..2500)
        .map(|_| store.next_producer_id().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[1] > w[0]));
    assert!(ids[0] >= 0);
}

pub fn waiters_are_woken_by_appends(store: &Store) {
    let p = new_topic(store, "t");
    let n = Arc::new(tokio::sync::Notify::new());
    p.register_waiter(&n);
    p.register_waiter(&n); // idempotent
    let dropped = Arc::new(tokio::sync::Notify::new());
    p.register_waiter(&dropped);
    drop(dropped);
    assert!(!has_permit(&n));
    p.append(batch_n(1, 1), opts()).unwrap();
    // notify_one stores a permit: the append must have left one.
    assert!(has_permit(&n), "append notifies registered waiters");
    assert!(!has_permit(&n), "one permit per append");
    // Still registered: the next append wakes it too.
    p.append(batch_n(1, 1), opts()).unwrap();
    assert!(has_permit(&n));
}

/// Polls `notified()` once: true if a permit was waiting.
fn has_permit(n: &tokio::sync::Notify) -> bool {
    block_on(async {
        tokio::select! {
            biased;
            _ = n.notified() => true,
            _ = std::future::ready(()) => false,
        }
    })
}

pub fn sync_resolves(store: &Store) {
    let p = new_topic(store, "t");
    p.append(batch_n(1, 1), opts()).unwrap();
    let fut = store.sync();
    block_on(fut).unwrap();
    store.flush_now().unwrap();
    block_on(async {
        let (a, b) = tokio::join!(store.sync(), store.sync());
        a.unwrap();
        b.unwrap();
    });
}

pub fn concurrent_appends_are_contiguous(store: &Store) {
    let p = new_topic(store, "t");
    std::thread::scope(|s| {
        for t in 0..4 {
            let p = Arc::clone(&p);
            s.spawn(move || {
                for i in 0..50 {
                    p.append(idem(100 + t, 0, 2 * i, 2), opts()).unwrap();
                }
            });
        }
        // Reads run alongside and only ever see whole, published batches.
        let p = Arc::clone(&p);
        s.spawn(move || {
            for _ in 0..50 {
                read_all(&p);
            }
        });
    });
    assert_eq!(p.high_watermark(), 400);
    assert_eq!(read_all(&p).len(), 200);
}

macro_rules! conformance {
    ($engine:ident: $($test:ident),* $(,)?) => {
        mod $engine {
            $(
                #[test]
                fn $test() {
                    let f = super::common::$engine();
                    super::$test(&f.store);
                }
            )*
        }
    };
}

macro_rules! both_engines {
    ($($test:ident),* $(,)?) => {
        conformance!(memory: $($test),*);
        conformance!(sled: $($test),*);
    };
}

both_engines!(
    append_assigns_offsets_and_patches_in_place,
    kip74_first_batch_and_max_bytes,
    log_start_and_delete_records,
    offsets_for_timestamps,
    log_append_time,
    idempotent_producer,
    topics_create_delete_recreate,
    group_offsets,
    retention,
    time_index_after_the_max_batch_is_deleted,
    producer_ids_are_unique,
    waiters_are_woken_by_appends,
    sync_resolves,
    concurrent_appends_are_contiguous,
);
