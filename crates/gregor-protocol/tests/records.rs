//! Record batches produced by the crate's encoder (as a client would) are
//! validated, patched in place and still decode with their CRC intact.

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{self, BatchHeader};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn encode(n: i64, compression: Compression, base_ts: i64) -> Vec<u8> {
    let recs: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: (i - 1) as i32,
            timestamp: base_ts + i * 10,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: IndexMap::<StrBytes, Option<Bytes>>::new(),
        })
        .collect();
    let mut out = BytesMut::new();
    let opts = RecordEncodeOptions {
        version: 2,
        compression,
    };
    assert!(RecordBatchEncoder::encode(&mut out, &recs, &opts).is_ok());
    out.to_vec()
}

#[test]
fn client_batches_validate_for_every_codec() {
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let b = encode(5, c, 1_000);
        let h = records::validate_client_batch(&b);
        assert!(h.is_ok(), "{c:?}: {h:?}");
        let h = h.unwrap_or_else(|_| unreachable!());
        assert_eq!(h.records_count, 5);
        assert_eq!(h.compression(), c as i16);
    }
}

#[test]
fn patching_offset_and_epoch_keeps_the_crc() {
    let mut b = encode(3, Compression::None, 1_000);
    records::set_base_offset(&mut b, 4242);
    records::set_leader_epoch(&mut b, 7);
    assert!(records::validate_client_batch(&b).is_ok());
    let mut bytes = Bytes::from(b);
    let set = RecordBatchDecoder::decode(&mut bytes).map_err(|e| e.to_string());
    let offsets: Vec<i64> = set
        .map(|s| s.records.iter().map(|r| r.offset).collect())
        .unwrap_or_default();
    assert_eq!(offsets, vec![4242, 4243, 4244]);
}

#[test]
fn log_append_time_rewrites_max_timestamp_and_crc() {
    let mut b = encode(2, Compression::Gzip, 1_000);
    records::set_log_append_time(&mut b, 99_999);
    let h = records::validate_client_batch(&b).map_err(|e| e.to_string());
    assert_eq!(
        h.as_ref()
            .map(|h| (h.is_log_append_time(), h.max_timestamp)),
        Ok((true, 99_999))
    );
    let mut bytes = Bytes::from(b);
    let set = RecordBatchDecoder::decode(&mut bytes).map_err(|e| e.to_string());
    assert!(set.is_ok(), "{set:?}");
}

#[test]
fn first_record_at_or_after_reads_inside_compressed_batches() {
    let b = Bytes::from(encode(5, Compression::Zstd, 1_000)); // ts 1000,1010,..,1040
    assert_eq!(
        records::first_record_at_or_after(&b, 0, 0, usize::MAX).ok(),
        Some(Some((0, 1_000)))
    );
    assert_eq!(
        records::first_record_at_or_after(&b, 1_015, 0, usize::MAX).ok(),
        Some(Some((2, 1_020)))
    );
    assert_eq!(
        records::first_record_at_or_after(&b, 1_041, 0, usize::MAX).ok(),
        Some(None)
    );
}

#[test]
fn batches_iterates_and_stops_at_a_torn_tail() {
    let mut all = encode(2, Compression::None, 0);
    let one = all.len();
    all.extend(encode(3, Compression::Lz4, 0));
    let two = all.len();
    all.extend_from_slice(&encode(1, Compression::None, 0)[..30]);
    let seen: Vec<(i32, std::ops::Range<usize>)> = records::batches(&all)
        .map(|(h, r)| (h.records_count, r))
        .collect();
    assert_eq!(seen, vec![(2, 0..one), (3, one..two)]);
    assert_eq!(
        BatchHeader::parse(&all).map(|h| h.total_len()).ok(),
        Some(one)
    );
}
