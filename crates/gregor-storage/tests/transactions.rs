//! The partition side of transactions: open transactions hold the last
//! stable offset, markers close them, ABORT markers feed the aborted
//! transaction index; all of it survives a clean reopen and is rebuilt by
//! crash recovery from the log.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use gregor_protocol::records::{control_batch, BatchHeader};
use gregor_storage::{PartitionLog, StorageError, Store, StoreOptions};

fn marker(p: &PartitionLog, id: i64, epoch: i16, commit: bool) -> i64 {
    p.append(control_batch(id, epoch, commit, 0, 5_000), opts())
        .unwrap()
        .base_offset
}

/// pid 7: a committed transaction (0-1, marker 2); pid 8: an aborted one
/// (3-5, marker 9) interleaved with pid 7's second, still open (6-8).
fn scenario(p: &PartitionLog) {
    assert_eq!(
        p.append(txn_batch(7, 0, 0, 2), opts()).unwrap().base_offset,
        0
    );
    assert_eq!(p.last_stable_offset(), 0);
    assert_eq!(marker(p, 7, 0, true), 2);
    assert_eq!(p.last_stable_offset(), 3);
    assert_eq!(
        p.append(txn_batch(8, 0, 0, 3), opts()).unwrap().base_offset,
        3
    );
    assert_eq!(
        p.append(txn_batch(7, 0, 2, 3), opts()).unwrap().base_offset,
        6
    );
    assert_eq!(p.last_stable_offset(), 3);
    assert_eq!(marker(p, 8, 0, false), 9);
    // pid 7's open transaction (from 6) now holds the LSO.
    assert_eq!(p.last_stable_offset(), 6);
}

fn check_after(p: &PartitionLog) {
    assert_eq!(p.high_watermark(), 10);
    assert_eq!(p.last_stable_offset(), 6);
    assert_eq!(p.aborted_txns(0, 10), vec![(8, 3)]);
    // Only transactions overlapping the range: pid 8's ended at 9, started at 3.
    assert_eq!(p.aborted_txns(0, 3), Vec::<(i64, i64)>::new());
    assert_eq!(p.aborted_txns(10, 20), Vec::<(i64, i64)>::new());
    assert_eq!(p.aborted_txns(9, 10), vec![(8, 3)]);
    // read_committed stops at the LSO, a batch boundary.
    let r = p.read_below(0, usize::MAX, p.last_stable_offset()).unwrap();
    let bases: Vec<i64> = r
        .batches
        .iter()
        .map(|b| BatchHeader::parse(b).unwrap().base_offset)
        .collect();
    assert_eq!(bases, vec![0, 2, 3]);
    assert!(p.read_below(6, usize::MAX, 6).unwrap().batches.is_empty());
    let prods = p.producers();
    assert_eq!(
        prods
            .iter()
            .map(|s| (s.producer_id, s.txn_start_offset))
            .collect::<Vec<_>>(),
        vec![(7, 6), (8, -1)]
    );
    assert_eq!(prods[1].coordinator_epoch, 0);
}

#[test]
fn markers_move_the_lso_and_fill_the_aborted_index() {
    for f in [memory(), sled()] {
        f.store.create_topic("t", 1, BTreeMap::new()).unwrap();
        let p = f.store.partition("t", 0).unwrap();
        scenario(&p);
        check_after(&p);
        // The stored marker is a control batch with its key's type.
        let r = p.read(9, 1).unwrap();
        let b = &r.batches[0];
        assert!(BatchHeader::parse(b).unwrap().is_control());
        assert_eq!(gregor_protocol::records::control_type(b), Some(0));
        // Committing pid 7 frees the LSO.
        assert_eq!(marker(&p, 7, 0, true), 10);
        assert_eq!(p.last_stable_offset(), 11);
        assert_eq!(p.aborted_txns(0, 11), vec![(8, 3)]);
    }
}

#[test]
fn a_marker_from_an_older_epoch_is_refused() {
    let f = memory();
    f.store.create_topic("t", 1, BTreeMap::new()).unwrap();
    let p = f.store.partition("t", 0).unwrap();
    p.append(txn_batch(7, 3, 0, 1), opts()).unwrap();
    let e = p
        .append(control_batch(7, 2, true, 0, 5_000), opts())
        .unwrap_err();
    assert!(
        matches!(e, StorageError::InvalidProducerEpoch { current: 3, got: 2 }),
        "{e}"
    );
    // A marker with a bumped epoch (transaction version 2) closes it and
    // restarts the sequence at 0 for the new epoch.
    marker(&p, 7, 4, false);
    assert_eq!(p.last_stable_offset(), p.high_watermark());
    assert!(p.append(txn_batch(7, 4, 0, 1), opts()).is_ok());
}

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

#[test]
fn transaction_state_survives_a_clean_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_sled(dir.path(), quiet()).unwrap();
        store.create_topic("t", 1, BTreeMap::new()).unwrap();
        scenario(&store.partition("t", 0).unwrap());
    }
    let store = Store::open_sled(dir.path(), quiet()).unwrap();
    check_after(&store.partition("t", 0).unwrap());
}

#[test]
fn crash_recovery_rebuilds_open_and_aborted_transactions() {
    // Half the scenario checkpointed, the rest only synced: recovery must
    // rebuild the rest from the segment file.
    let dir = tempfile::tempdir().unwrap();
    let img = tempfile::tempdir().unwrap();
    let store = Store::open_sled(dir.path(), quiet()).unwrap();
    store.create_topic("t", 1, BTreeMap::new()).unwrap();
    let p = store.partition("t", 0).unwrap();
    p.append(txn_batch(7, 0, 0, 2), opts()).unwrap();
    marker(&p, 7, 0, true);
    p.append(txn_batch(8, 0, 0, 3), opts()).unwrap();
    store.flush_now().unwrap();
    p.append(txn_batch(7, 0, 2, 3), opts()).unwrap();
    marker(&p, 8, 0, false);
    let _: () = block_on(store.sync()).unwrap();
    copy_dir(dir.path(), img.path());
    drop(p);
    drop(store);
    let store = Store::open_sled(img.path(), quiet()).unwrap();
    let p = store.partition("t", 0).unwrap();
    check_after(&p);
}
