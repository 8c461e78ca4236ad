//! Power loss, not just kill -9: a store runs on a simulated disk that
//! records every write and sync; at random points a crash image is taken
//! (every write not covered by a completed fsync dropped or kept in order,
//! the last one kept possibly torn; file and directory creations whose
//! directory was not synced lost or not; sled-like engine state cut to a
//! prefix after its last flush). Each image is opened and checked:
//! - every acknowledged batch (appended, then `sync` resolved) is there,
//!   byte for byte, at its offset, unless the log start legitimately
//!   passed it;
//! - nothing else is half there: every batch served is whole, CRC-valid,
//!   contiguous, and is one that was appended at that offset;
//! - no partition is quarantined (a crash only ever tears a tail);
//! - the recovered store takes appends at its end, and they survive a
//!   clean reopen.
//!
//! `CRASH_POINTS` (default 1200) and `CRASH_SEED` make longer or replayed runs.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use common::*;
use gregor_protocol::records::{validate_client_batch, BatchHeader};
use gregor_storage::sim::{Rng, SimDisk};
use gregor_storage::{AppendOptions, Store, StoreOptions};

const TOPICS: [(&str, i32); 2] = [("a", 2), ("b", 1)];

fn options() -> StoreOptions {
    StoreOptions {
        // Frequent checkpoints, so crashes also land in the middle of one.
        flush_interval_ms: 3,
        index_interval_bytes: 200,
        ..StoreOptions::default()
    }
}

fn append_opts() -> AppendOptions {
    AppendOptions {
        // A few batches per segment: rolls, and crashes around them.
        segment_bytes: 700,
        ..AppendOptions::default()
    }
}

/// What the workload did to one partition.
#[derive(Default, Clone)]
struct Partition {
    /// Every batch ever appended: base offset -> stored bytes.
    appended: BTreeMap<i64, Vec<u8>>,
    /// Base offsets whose append a `sync` has since covered.
    acked: Vec<i64>,
    /// Highest log start ever set (DeleteRecords returned).
    log_start: i64,
}

type State = HashMap<(String, i32), Partition>;

/// A crash image and how many batches of each partition were acknowledged
/// when it was taken.
type Image = (Arc<SimDisk>, HashMap<(String, i32), usize>);

/// The bytes as stored: the client's with base offset and epoch patched.
fn stored_form(client: &[u8], base: i64) -> Vec<u8> {
    let mut v = client.to_vec();
    gregor_protocol::records::set_base_offset(&mut v, base);
    gregor_protocol::records::set_leader_epoch(&mut v, 0);
    v
}

fn check_image(img: &Arc<SimDisk>, state: &State, acked_upto: &HashMap<(String, i32), usize>) {
    let store = Store::open_sim(img, options()).unwrap_or_else(|e| panic!("open: {e}"));
    for ((t, p), want) in state {
        let Some(log) = store.partition(t, *p) else {
            // The topic's creation was synced before any append was
            // acknowledged, so it must be there if anything was acked.
            assert_eq!(acked_upto[&(t.clone(), *p)], 0, "{t}-{p} lost");
            continue;
        };
        assert!(
            log.quarantine_reason().is_none(),
            "{t}-{p} quarantined: {:?}",
            log.quarantine_reason()
        );
        let ls = log.log_start_offset();
        assert!(
            ls <= want.log_start,
            "{t}-{p}: log start {ls} beyond any set"
        );
        // Everything served is whole, valid, contiguous, and was appended.
        let mut next = ls;
        let hw = log.high_watermark();
        let mut seen = Vec::new();
        while next < hw {
            let r = log.read(next, 1 << 20).unwrap();
            assert!(!r.batches.is_empty(), "{t}-{p}: nothing at {next} < {hw}");
            for b in &r.batches {
                let h = validate_client_batch(b).expect("served batch is valid");
                assert!(h.base_offset <= next && next <= h.last_offset());
                let orig = want.appended.get(&h.base_offset).unwrap_or_else(|| {
                    panic!("{t}-{p}: batch at {} never appended", h.base_offset)
                });
                assert_eq!(
                    &b[..],
                    &orig[..],
                    "{t}-{p}: batch at {} differs",
                    h.base_offset
                );
                seen.push(h.base_offset);
                next = h.last_offset() + 1;
            }
        }
        // Every acknowledged batch at or above the log start is there.
        for base in want.acked.iter().take(acked_upto[&(t.clone(), *p)]) {
            let last = BatchHeader::parse(&want.appended[base])
                .unwrap()
                .last_offset();
            if last < ls {
                continue;
            }
            assert!(
                seen.contains(base),
                "{t}-{p}: acknowledged batch at {base} lost (log start {ls}, end {hw})"
            );
        }
    }
}

#[test]
fn acknowledged_batches_survive_every_crash_image() {
    let points: usize = std::env::var("CRASH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1200);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = Rng::new(seed);
    let disk = SimDisk::new(true);
    let store = Store::open_sim(&disk, options()).unwrap();
    let mut state: State = HashMap::new();
    for (t, n) in TOPICS {
        store.create_topic(t, n, BTreeMap::new()).unwrap();
        for p in 0..n {
            state.insert((t.to_string(), p), Partition::default());
        }
    }
    block_on(store.sync()).unwrap();
    let keys: Vec<(String, i32)> = {
        let mut k: Vec<_> = state.keys().cloned().collect();
        k.sort();
        k
    };
    let mut images: Vec<Image> = Vec::new();
    let mut unsynced: Vec<((String, i32), i64)> = Vec::new();
    let mut seqs: HashMap<(String, i32), i32> = HashMap::new();
    let mut step = 0u64;
    while images.len() < points {
        step += 1;
        let key = keys[usize::try_from(rng.upto(keys.len() as u64 - 1)).unwrap()].clone();
        let log = store.partition(&key.0, key.1).unwrap();
        match rng.upto(9) {
            // DeleteRecords now and then (durable before it returns).
            0 if step.is_multiple_of(7) => {
                let hw = log.high_watermark();
                let to = hw - i64::try_from(rng.upto(3)).unwrap();
                if to > 0 {
                    let ls = log.delete_records_before(to).unwrap();
                    let part = state.get_mut(&key).unwrap();
                    part.log_start = part.log_start.max(ls);
                }
            }
            // A sync: everything appended so far is acknowledged.
            1..=3 => {
                block_on(store.sync()).unwrap();
                for (k, base) in unsynced.drain(..) {
                    state.get_mut(&k).unwrap().acked.push(base);
                }
            }
            // An append: plain or idempotent, 1-4 records.
            _ => {
                let n = usize::try_from(rng.upto(3)).unwrap() + 1;
                let client = if rng.coin() {
                    let seq = seqs.entry(key.clone()).or_insert(0);
                    let b = batch_with(
                        &vec![1_000 + i64::try_from(step).unwrap(); n],
                        Some(Producer {
                            id: 77,
                            epoch: 0,
                            base_seq: *seq,
                        }),
                        16,
                    );
                    *seq += i32::try_from(n).unwrap();
                    b
                } else {
                    batch_with(&vec![i64::try_from(step).unwrap(); n], None, 16)
                };
                let h = BatchHeader::parse(&client).unwrap();
                // Half of them as acks=all: answered once durable.
                let durable = rng.coin();
                let out =
                    block_on(store.append(&log, client.clone().into(), h, append_opts(), durable))
                        .unwrap();
                assert!(!out.duplicate);
                let part = state.get_mut(&key).unwrap();
                part.appended
                    .insert(out.base_offset, stored_form(&client, out.base_offset));
                if durable {
                    part.acked.push(out.base_offset);
                } else {
                    unsynced.push((key.clone(), out.base_offset));
                }
            }
        }
        // A crash image most steps; the background checkpoint thread runs
        // meanwhile, so some land inside one.
        if rng.upto(3) != 0 {
            let acked: HashMap<(String, i32), usize> = state
                .iter()
                .map(|(k, p)| (k.clone(), p.acked.len()))
                .collect();
            images.push((disk.crash_image(rng.next_u64()), acked));
        }
    }
    let final_state = state.clone();
    drop(store);
    for (i, (img, acked)) in images.iter().enumerate() {
        check_image(img, &final_state, acked);
        if i % 100 == 0 {
            // The recovered store goes on: appends at its end, kept across
            // a clean reopen.
            let s = Store::open_sim(img, options()).unwrap();
            for k in &keys {
                let log = s.partition(&k.0, k.1).unwrap();
                let hw = log.high_watermark();
                let out = log.append(batch_n(1, 1), append_opts()).unwrap();
                assert_eq!(out.base_offset, hw);
            }
            drop(s);
            let s = Store::open_sim(img, options()).unwrap();
            for k in &keys {
                let log = s.partition(&k.0, k.1).unwrap();
                assert!(log.read(log.high_watermark() - 1, 1).is_ok());
            }
        }
    }
    eprintln!(
        "checked {} crash images over {step} steps (seed {seed}); file syncs: {}",
        images.len(),
        disk.file_syncs()
    );
}
