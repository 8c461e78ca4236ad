//! The hand-encoded Fetch response must decode with the codec, for every
//! version served, and carry the stored bytes untouched.

use bytes::{Buf, Bytes, BytesMut};
use gregor_protocol::fetch::{
    encode_fetch_response, FetchPartition, FetchResponseParts, FetchTopic,
};
use kafka_protocol::messages::{FetchResponse, ResponseHeader};
use kafka_protocol::protocol::Decodable;

#[test]
fn decodes_with_the_codec_for_v4_to_v12() {
    let stored = vec![
        Bytes::from_static(b"first-batch-bytes"),
        Bytes::from_static(b"second"),
    ];
    let parts = FetchResponseParts {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 0,
        topics: vec![FetchTopic {
            name: "orders".into(),
            partitions: vec![
                FetchPartition {
                    partition: 0,
                    error_code: 0,
                    high_watermark: 10,
                    last_stable_offset: 10,
                    log_start_offset: 2,
                    records: stored.clone(),
                    aborted: None,
                    current_leader: None,
                },
                FetchPartition {
                    partition: 1,
                    error_code: 1,
                    high_watermark: 5,
                    last_stable_offset: 5,
                    log_start_offset: 0,
                    records: vec![],
                    aborted: Some(vec![(7, 3)]),
                    // KIP-951's tagged field (v12+): the codec must read it.
                    current_leader: Some((3, 9)),
                },
            ],
        }],
    };
    for v in 4..=12i16 {
        let chunks = encode_fetch_response(77, v, &parts);
        let mut frame = BytesMut::new();
        for c in &chunks {
            frame.extend_from_slice(c);
        }
        let mut frame = frame.freeze();
        let len = frame.get_i32();
        assert_eq!(len as usize, frame.len(), "v{v} length prefix");
        let header_version = if v >= 12 { 1 } else { 0 };
        let h = ResponseHeader::decode(&mut frame, header_version).map_err(|e| e.to_string());
        assert_eq!(h.map(|h| h.correlation_id), Ok(77));
        let r = FetchResponse::decode(&mut frame, v).map_err(|e| e.to_string());
        let r = match r {
            Ok(r) => r,
            Err(e) => panic!("v{v}: {e}"),
        };
        assert_eq!(frame.remaining(), 0, "v{v} trailing bytes");
        let t = &r.responses[0];
        assert_eq!(&*t.topic.0, "orders");
        let p0 = &t.partitions[0];
        assert_eq!((p0.high_watermark, p0.last_stable_offset), (10, 10));
        if v >= 5 {
            assert_eq!(p0.log_start_offset, 2);
        }
        assert_eq!(p0.records.as_deref(), Some(&b"first-batch-bytessecond"[..]));
        assert_eq!(t.partitions[1].error_code, 1);
        let leader = &t.partitions[1].current_leader;
        if v >= 12 {
            assert_eq!((leader.leader_id.0, leader.leader_epoch), (3, 9), "v{v}");
        }
        assert_eq!(t.partitions[0].current_leader.leader_id.0, -1, "v{v}");
        assert_eq!(t.partitions[1].records.as_deref(), Some(&b""[..]));
        // Null for read_uncommitted; a list, per version's encoding, otherwise.
        assert!(p0.aborted_transactions.is_none(), "v{v}");
        let ab = t.partitions[1].aborted_transactions.as_ref().expect("list");
        assert_eq!(
            ab.iter()
                .map(|a| (a.producer_id.0, a.first_offset))
                .collect::<Vec<_>>(),
            vec![(7, 3)],
            "v{v}"
        );
        // The stored batches are the very same allocations, not copies.
        assert!(chunks.iter().any(|c| c.as_ptr() == stored[0].as_ptr()));
    }
}
