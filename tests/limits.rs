//! Limits and failures, black-box over TCP: idle and stalled peers, the
//! per-IP limit, the memory budget, the broker's fetch cap, decompression
//! bombs, and acknowledgements after a failed flush.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use gregor_e2e::{batch, create, fetch_req, produce, tn, Client, TestBroker};
use gregor_storage::{Store, StoreOptions};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use tokio::time::timeout;

const STORAGE_ERROR: i16 = 56;

async fn api_versions_ok(c: &mut Client) {
    let r: ApiVersionsResponse = c
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    assert_eq!(r.error_code, 0);
}

/// Waits (bounded) for the broker to close `c`.
async fn closed_within(c: &mut Client, d: Duration) -> bool {
    timeout(d, c.is_closed()).await.unwrap_or(false)
}

#[tokio::test]
async fn idle_and_stalled_connections_are_closed() {
    let b = TestBroker::start(&[("connections.max.idle.ms", "300")]).await;
    // Idle after one request: closed.
    let mut idle = b.client().await;
    api_versions_ok(&mut idle).await;
    // Stalled in the length prefix, and in the body.
    let mut in_prefix = b.client().await;
    in_prefix.send_bytes(&[0, 0]).await;
    let mut in_body = b.client().await;
    in_body.send_bytes(&[0, 0, 0, 100, 0, 18]).await;
    // A client that keeps talking is served throughout.
    let mut busy = b.client().await;
    for _ in 0..8 {
        api_versions_ok(&mut busy).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (name, c) in [
        ("idle", &mut idle),
        ("prefix", &mut in_prefix),
        ("body", &mut in_body),
    ] {
        assert!(
            closed_within(c, Duration::from_secs(5)).await,
            "{name} connection still open"
        );
    }
    api_versions_ok(&mut busy).await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_long_poll_is_not_idle() {
    let b = TestBroker::start(&[("connections.max.idle.ms", "300")]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "lp", 1, &[]).await, 0);
    // A fetch that waits 1.5 s, five times the idle time, gets its answer.
    let req = fetch_req("lp", 0, 0, 1500, 1 << 20);
    let r: FetchResponse = c.call(ApiKey::Fetch, 4, &req).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    b.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_per_ip_limit_are_closed_at_once() {
    let b = TestBroker::start(&[("max.connections.per.ip", "2")]).await;
    let mut one = b.client().await;
    let mut two = b.client().await;
    api_versions_ok(&mut one).await;
    api_versions_ok(&mut two).await;
    let mut three = b.client().await;
    assert!(closed_within(&mut three, Duration::from_secs(5)).await);
    // A slot frees when a connection closes.
    drop(one);
    let mut again = loop {
        let mut c = b.client().await;
        c.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
            .await;
        if let Ok(Some(_)) = timeout(Duration::from_secs(5), c.recv_frame()).await {
            break c;
        }
        // The broker had not seen the close yet: the slot was still taken.
    };
    api_versions_ok(&mut again).await;
    api_versions_ok(&mut two).await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_frame_larger_than_the_budget_still_goes_through_and_gives_it_back() {
    // 64 KiB of budget; Produce frames of about 200 KiB.
    let b = TestBroker::start(&[("queued.max.request.bytes", "65536")]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "big", 1, &[]).await, 0);
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(b.client().await);
    }
    let mut tasks = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                let (code, _) = produce(&mut c, "big", 0, big_batch(200 * 1024, i as u8)).await;
                assert_eq!(code, 0);
            }
        }));
    }
    for t in tasks {
        timeout(Duration::from_secs(30), t).await.unwrap().unwrap();
    }
    b.shutdown().await;
}

/// The request's partition asks for everything: only the response limits
/// (the client's and the broker's) apply.
fn uncapped_partition(mut req: FetchRequest) -> FetchRequest {
    req.topics[0].partitions[0].partition_max_bytes = i32::MAX;
    req
}

/// One uncompressed record with a `len`-byte value.
fn big_batch(len: usize, fill: u8) -> Bytes {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let r = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_000,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from(vec![fill; len])),
        headers: Default::default(),
    };
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        [&r],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    out.freeze()
}

#[tokio::test]
async fn the_broker_caps_fetch_responses_whatever_the_client_asks() {
    let b = TestBroker::start(&[
        ("fetch.max.bytes", "100000"),
        ("message.max.bytes", "400000"),
    ])
    .await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "capped", 1, &[]).await, 0);
    for i in 0..10 {
        assert_eq!(
            produce(&mut c, "capped", 0, big_batch(30_000, i)).await.0,
            0
        );
    }
    for max_bytes in [-1, 0, i32::MAX] {
        let req = uncapped_partition(fetch_req("capped", 0, 0, 0, max_bytes));
        let r: FetchResponse = c.call(ApiKey::Fetch, 4, &req).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        let n = p.records.as_ref().map_or(0, |r| r.len());
        assert!(
            n > 0 && n <= 100_000,
            "max_bytes {max_bytes}: {n} record bytes"
        );
    }
    // KIP-74: one batch over the cap still comes back alone.
    assert_eq!(
        produce(&mut c, "capped", 0, big_batch(300_000, 9)).await.0,
        0
    );
    let req = uncapped_partition(fetch_req("capped", 0, 10, 0, -1));
    let r: FetchResponse = c.call(ApiKey::Fetch, 4, &req).await;
    let n = r.responses[0].partitions[0]
        .records
        .as_ref()
        .map_or(0, |r| r.len());
    assert!(n > 300_000, "first batch missing: {n}");
    b.shutdown().await;
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_and_timestamps_still_answer() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    // max.message.bytes 1024: records may inflate to 32 KiB.
    assert_eq!(
        create(&mut c, "bomb", 1, &[("max.message.bytes", "1024")]).await,
        0
    );
    let good = batch(20, 1_000, None, Compression::Zstd);
    assert_eq!(produce(&mut c, "bomb", 0, good).await, (0, 0));
    // 20 records of 4 KiB zeros each: 80 KiB inflated, a few hundred bytes sent.
    let zeros: Vec<Bytes> = (0..20).map(|_| Bytes::from(vec![0u8; 4096])).collect();
    let bomb = encoded(&zeros, Compression::Zstd);
    assert!(bomb.len() < 1024, "{}", bomb.len());
    let (code, _) = produce(&mut c, "bomb", 0, bomb).await;
    assert_eq!(code, 87, "INVALID_RECORD");
    // Nothing appended; a lookup by timestamp still answers.
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            kafka_protocol::messages::list_offsets_request::ListOffsetsTopic::default()
                .with_name(tn("bomb"))
                .with_partitions(vec![
                    kafka_protocol::messages::list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(1_005),
                ]),
        ]);
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 5, &req).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.offset), (0, 5));
    assert_eq!(
        produce(&mut c, "bomb", 0, batch(1, 2_000, None, Compression::Lz4)).await,
        (0, 20)
    );
    b.shutdown().await;
}

fn encoded(values: &[Bytes], compression: Compression) -> Bytes {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let recs: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: 5_000,
            key: Some(Bytes::from_static(b"k")),
            value: Some(v.clone()),
            headers: Default::default(),
        })
        .collect();
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    let mut b = out.to_vec();
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

/// A broker on a sled store in a temp dir, whose next flush can be failed.
async fn durable_broker() -> (TestBroker, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sled(dir.path(), StoreOptions::default()).unwrap();
    (TestBroker::start_on(store, &[]).await, dir)
}

#[tokio::test]
async fn create_topics_after_a_failed_flush_is_not_acknowledged() {
    let (b, _dir) = durable_broker().await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "before", 1, &[]).await, 0);
    b.store.inject_flush_failure();
    assert_eq!(create(&mut c, "lost", 1, &[]).await, STORAGE_ERROR);
    // The store refuses writes from now on, acks=all produce included.
    assert_eq!(
        produce(&mut c, "before", 0, batch(1, 1, None, Compression::None))
            .await
            .0,
        STORAGE_ERROR
    );
    b.shutdown().await;
}

#[tokio::test]
async fn delete_topics_after_a_failed_flush_is_not_acknowledged() {
    let (b, _dir) = durable_broker().await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "doomed", 1, &[]).await, 0);
    b.store.inject_flush_failure();
    let req = DeleteTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            DeleteTopicState::default().with_name(Some(tn("doomed")))
        ]);
    let r: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 6, &req).await;
    assert_eq!(r.responses[0].error_code, STORAGE_ERROR);
    b.shutdown().await;
}

#[tokio::test]
async fn offset_commits_and_group_deletes_after_a_failed_flush_are_not_acknowledged() {
    let (b, _dir) = durable_broker().await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "t", 1, &[]).await, 0);
    let commit = |group: &str| {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(tn("t"))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(1)])])
    };
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &commit("kept")).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    b.store.inject_flush_failure();
    let r: DeleteGroupsResponse = c
        .call(
            ApiKey::DeleteGroups,
            2,
            &DeleteGroupsRequest::default()
                .with_groups_names(vec![GroupId(StrBytes::from_static_str("kept"))]),
        )
        .await;
    assert_eq!(r.results[0].error_code, STORAGE_ERROR);
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &commit("next")).await;
    assert_eq!(r.topics[0].partitions[0].error_code, STORAGE_ERROR);
    b.shutdown().await;
}

#[tokio::test]
async fn length_prefixes_alone_hold_no_budget() {
    // 1 MiB of budget; 50 peers each announce a 100 MiB frame and stop.
    let b = TestBroker::start(&[("queued.max.request.bytes", "1048576")]).await;
    let mut floods = Vec::new();
    for _ in 0..50 {
        let mut c = b.client().await;
        let mut p = BytesMut::new();
        p.put_i32(100 * 1024 * 1024);
        c.send_bytes(&p).await;
        floods.push(c);
    }
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "served", 1, &[]).await, 0);
    assert_eq!(
        produce(&mut c, "served", 0, big_batch(100_000, 1)).await.0,
        0
    );
    b.shutdown().await;
}

#[tokio::test]
async fn zstd_needs_produce_v7_as_in_kafka() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "z", 1, &[]).await, 0);
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(tn("z"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(3, 1, None, Compression::Zstd)))])]);
    let r: ProduceResponse = c.call(ApiKey::Produce, 6, &req).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 76);
    let r: ProduceResponse = c.call(ApiKey::Produce, 7, &req).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    b.shutdown().await;
}
