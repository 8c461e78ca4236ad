//! Shared helpers: test batches built with kafka-protocol's encoder, and
//! store fixtures for both engines.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{validate_client_batch, BatchHeader};
use gregor_storage::{AppendOptions, PartitionLog, Store, StoreOptions};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Idempotent producer fields of a test batch.
#[derive(Clone, Copy, Debug)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub base_seq: i32,
}

/// One client batch v2, one record per timestamp, values of `value_len` bytes.
pub fn batch_with(timestamps: &[i64], producer: Option<Producer>, value_len: usize) -> Vec<u8> {
    batch_full(timestamps, producer, value_len, false)
}

/// A transactional batch of `n` records.
pub fn txn_batch(id: i64, epoch: i16, base_seq: i32, n: usize) -> Vec<u8> {
    batch_full(
        &vec![1_000; n],
        Some(Producer {
            id,
            epoch,
            base_seq,
        }),
        8,
        true,
    )
}

fn batch_full(
    timestamps: &[i64],
    producer: Option<Producer>,
    value_len: usize,
    transactional: bool,
) -> Vec<u8> {
    assert!(!timestamps.is_empty());
    let records: Vec<Record> = timestamps
        .iter()
        .enumerate()
        .map(|(i, ts)| {
            let i = i as i32;
            // The encoder splits batches when offset - sequence changes, so
            // keep it constant: sequence = base_seq + i, or offset - 1 for a
            // non-idempotent batch (base sequence -1).
            let (producer_id, producer_epoch, sequence) = match producer {
                Some(p) => (p.id, p.epoch, p.base_seq.wrapping_add(i)),
                None => (-1, -1, i - 1),
            };
            Record {
                transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                sequence,
                timestamp: *ts,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(vec![b'v'; value_len])),
                headers: IndexMap::new(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    let v = buf.to_vec();
    let h = validate_client_batch(&v).expect("test batch must be a valid single client batch");
    assert_eq!(h.records_count as usize, timestamps.len());
    v
}

/// A non-idempotent batch.
pub fn batch(timestamps: &[i64]) -> Vec<u8> {
    batch_with(timestamps, None, 8)
}

/// A non-idempotent batch of `n` records all stamped `ts`.
pub fn batch_n(n: usize, ts: i64) -> Vec<u8> {
    batch(&vec![ts; n])
}

/// An idempotent batch of `n` records.
pub fn idem(id: i64, epoch: i16, base_seq: i32, n: usize) -> Vec<u8> {
    batch_with(
        &vec![1_000; n],
        Some(Producer {
            id,
            epoch,
            base_seq,
        }),
        8,
    )
}

pub fn opts() -> AppendOptions {
    AppendOptions::default()
}

pub fn header(b: &[u8]) -> BatchHeader {
    BatchHeader::parse(b).unwrap()
}

/// Every batch of the partition from its log start, checked to be intact
/// and contiguous; returns (base, last) per batch.
pub fn read_all(p: &PartitionLog) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut next = p.log_start_offset();
    let hw = p.high_watermark();
    while next < hw {
        let r = p.read(next, 1).unwrap();
        assert_eq!(
            r.batches.len(),
            1,
            "a read below the high watermark returns a batch"
        );
        let b = &r.batches[0];
        let h = validate_client_batch(b).expect("stored batch keeps a valid CRC");
        assert!(
            h.base_offset <= next && next <= h.last_offset(),
            "batch contains the offset read"
        );
        if let Some(&(_, last)) = out.last() {
            assert_eq!(h.base_offset, last + 1, "batches are contiguous");
        }
        out.push((h.base_offset, h.last_offset()));
        next = h.last_offset() + 1;
    }
    assert_eq!(next, hw, "the last batch ends at the high watermark");
    out
}

/// A store under test; the directory (sled) outlives the store.
pub struct Fixture {
    pub store: Arc<Store>,
    pub dir: Option<tempfile::TempDir>,
}

pub fn memory() -> Fixture {
    Fixture {
        store: Store::open_memory(StoreOptions::default()),
        dir: None,
    }
}

pub fn sled() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sled(dir.path(), test_options()).unwrap();
    Fixture {
        store,
        dir: Some(dir),
    }
}

/// Small cache; no periodic flush, so tests control durability.
pub fn test_options() -> StoreOptions {
    StoreOptions {
        flush_interval_ms: 0,
        cache_capacity_bytes: 8 * 1024 * 1024,
        ..StoreOptions::default()
    }
}

/// Runs a future to completion on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
