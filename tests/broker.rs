//! Black-box tests: a broker on 127.0.0.1:0, driven with raw Kafka requests.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use gregor_e2e::{batch, create, fetch_req, produce, produce_req, tn, TestBroker};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

#[tokio::test]
async fn api_versions_every_version_and_kip511() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    for v in 0..=4 {
        let r: ApiVersionsResponse = c
            .call(
                ApiKey::ApiVersions,
                v,
                &ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("e2e"))
                    .with_client_software_version(StrBytes::from_static_str("1")),
            )
            .await;
        assert_eq!(r.error_code, 0);
        let produce = r.api_keys.iter().find(|k| k.api_key == 0).unwrap();
        assert_eq!((produce.min_version, produce.max_version), (0, 12));
        let fetch = r.api_keys.iter().find(|k| k.api_key == 1).unwrap();
        assert_eq!((fetch.min_version, fetch.max_version), (4, 12));
    }
    // An ApiVersions version from the future: error 35, header v0, body v0.
    let mut body = BytesMut::new();
    body.put_i16(18);
    body.put_i16(77);
    body.put_i32(4242);
    body.put_i16(-1);
    body.put_u8(0);
    c.send_raw(&body).await;
    let frame = c.recv_frame().await.unwrap();
    assert_eq!(
        &frame[..],
        &[0, 0, 0x10, 0x92, 0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 4][..]
    );
    b.shutdown().await;
}

/// Every API in the ApiVersions table is answered at its lowest and
/// highest version: nothing is advertised without a handler.
#[tokio::test]
async fn every_advertised_api_has_a_handler() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let r: ApiVersionsResponse = c
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    for k in &r.api_keys {
        let key = ApiKey::try_from(k.api_key).unwrap();
        let served_min = if key == ApiKey::Produce {
            3
        } else {
            k.min_version
        };
        for v in [served_min, k.max_version] {
            let mut conn = b.client().await;
            let body = RequestKind::default_for(key, v);
            let mut buf = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(k.api_key)
                .with_request_api_version(v)
                .with_correlation_id(9)
                .encode(&mut buf, key.request_header_version(v))
                .unwrap();
            body.encode(&mut buf, v).unwrap();
            conn.send_raw(&buf).await;
            let frame = conn.recv_frame().await;
            assert!(frame.is_some(), "{key:?} v{v} closed the connection");
        }
    }
    b.shutdown().await;
}

trait DefaultFor {
    fn default_for(key: ApiKey, version: i16) -> RequestKind;
}
impl DefaultFor for RequestKind {
    fn default_for(key: ApiKey, version: i16) -> RequestKind {
        let g = || StrBytes::from_static_str("g");
        match key {
            ApiKey::Produce => RequestKind::Produce(ProduceRequest::default().with_acks(1)),
            ApiKey::Fetch => RequestKind::Fetch(FetchRequest::default().with_max_wait_ms(0)),
            ApiKey::ListOffsets => RequestKind::ListOffsets(ListOffsetsRequest::default()),
            ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default()),
            ApiKey::OffsetForLeaderEpoch => {
                RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default())
            }
            ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
            ApiKey::CreateTopics => RequestKind::CreateTopics(CreateTopicsRequest::default()),
            ApiKey::DeleteTopics => RequestKind::DeleteTopics(DeleteTopicsRequest::default()),
            ApiKey::InitProducerId => RequestKind::InitProducerId(InitProducerIdRequest::default()),
            ApiKey::DescribeConfigs => {
                RequestKind::DescribeConfigs(DescribeConfigsRequest::default())
            }
            ApiKey::DescribeCluster => RequestKind::DescribeCluster(
                DescribeClusterRequest::default().with_endpoint_type(1),
            ),
            ApiKey::OffsetCommit => RequestKind::OffsetCommit(OffsetCommitRequest::default().with_generation_id_or_member_epoch(-1)),
            ApiKey::OffsetFetch if version >= 8 => RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(vec![
                kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup::default().with_group_id(GroupId(g())),
            ])),
            ApiKey::OffsetFetch => RequestKind::OffsetFetch(OffsetFetchRequest::default().with_group_id(GroupId(g()))),
            ApiKey::FindCoordinator if version >= 4 => {
                RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_coordinator_keys(vec![g()]))
            }
            ApiKey::FindCoordinator => RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_key(g())),
            ApiKey::JoinGroup => RequestKind::JoinGroup(JoinGroupRequest::default()),
            ApiKey::Heartbeat => RequestKind::Heartbeat(HeartbeatRequest::default()),
            ApiKey::LeaveGroup => RequestKind::LeaveGroup(LeaveGroupRequest::default()),
            ApiKey::SyncGroup => RequestKind::SyncGroup(SyncGroupRequest::default()),
            ApiKey::DescribeGroups => RequestKind::DescribeGroups(DescribeGroupsRequest::default()),
            ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
            ApiKey::DeleteGroups => RequestKind::DeleteGroups(DeleteGroupsRequest::default()),
            ApiKey::OffsetDelete => RequestKind::OffsetDelete(OffsetDeleteRequest::default()),
            ApiKey::IncrementalAlterConfigs => {
                RequestKind::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::default())
            }
            ApiKey::AlterConfigs => RequestKind::AlterConfigs(AlterConfigsRequest::default()),
            ApiKey::CreatePartitions => {
                RequestKind::CreatePartitions(CreatePartitionsRequest::default())
            }
            ApiKey::DeleteRecords => RequestKind::DeleteRecords(DeleteRecordsRequest::default()),
            ApiKey::DescribeLogDirs => {
                RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default())
            }
            ApiKey::ElectLeaders => RequestKind::ElectLeaders(ElectLeadersRequest::default()),
            ApiKey::ListPartitionReassignments => RequestKind::ListPartitionReassignments(
                ListPartitionReassignmentsRequest::default(),
            ),
            ApiKey::AlterPartitionReassignments => RequestKind::AlterPartitionReassignments(
                AlterPartitionReassignmentsRequest::default(),
            ),
            ApiKey::DescribeTopicPartitions => RequestKind::DescribeTopicPartitions(
                DescribeTopicPartitionsRequest::default(),
            ),
            ApiKey::AddPartitionsToTxn => {
                RequestKind::AddPartitionsToTxn(AddPartitionsToTxnRequest::default())
            }
            ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(AddOffsetsToTxnRequest::default()),
            ApiKey::EndTxn => RequestKind::EndTxn(EndTxnRequest::default()),
            ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(TxnOffsetCommitRequest::default().with_group_id(GroupId(g()))),
            ApiKey::DescribeProducers => {
                RequestKind::DescribeProducers(DescribeProducersRequest::default())
            }
            ApiKey::DescribeTransactions => {
                RequestKind::DescribeTransactions(DescribeTransactionsRequest::default())
            }
            ApiKey::ListTransactions => {
                RequestKind::ListTransactions(ListTransactionsRequest::default())
            }
            other => panic!("advertised {other:?} has no test request"),
        }
    }
}

use kafka_protocol::protocol::Encodable;

#[tokio::test]
async fn metadata_auto_create_and_unknown_topics() {
    let b = TestBroker::start(&[("num.partitions", "3")]).await;
    let mut c = b.client().await;
    let req = |name: &str, auto: bool| {
        MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(tn(name)))
            ]))
            .with_allow_auto_topic_creation(auto)
    };
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &req("nope", false)).await;
    assert_eq!(r.topics[0].error_code, 3);
    assert_eq!(r.brokers.len(), 1);
    assert_eq!(r.brokers[0].port, b.addr.port() as i32);
    assert!(r.cluster_id.is_some());
    // The request that creates it gets UNKNOWN_TOPIC_OR_PARTITION, as from
    // Kafka 4 (its creation goes through the controller); the next finds it.
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &req("auto", true)).await;
    assert_eq!(r.topics[0].error_code, 3);
    assert!(b.store.topic("auto").is_some());
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &req("auto", true)).await;
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(r.topics[0].partitions.len(), 3);
    assert_eq!(r.topics[0].partitions[2].leader_id, BrokerId(1));
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &req("bad name!", true)).await;
    assert_eq!(r.topics[0].error_code, 17);
    // Null topics lists all; v0 and v1 decode too.
    let all: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            1,
            &MetadataRequest::default().with_topics(None),
        )
        .await;
    assert_eq!(all.topics.len(), 1);
    let none: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(vec![])),
        )
        .await;
    assert!(none.topics.is_empty());
    b.shutdown().await;
}

#[tokio::test]
async fn auto_create_disabled_refuses_unknown_topics() {
    let b = TestBroker::start(&[("auto.create.topics.enable", "false")]).await;
    let mut c = b.client().await;
    let r: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(tn("x")))
                ]))
                .with_allow_auto_topic_creation(true),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 3);
    assert_eq!(
        produce(&mut c, "x", 0, batch(1, 0, None, Compression::None))
            .await
            .0,
        3
    );
    b.shutdown().await;
}

#[tokio::test]
async fn produce_then_fetch_returns_the_stored_bytes() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "t", 2, &[]).await, 0);
    let b1 = batch(5, 1000, None, Compression::Lz4);
    let b2 = batch(3, 2000, None, Compression::None);
    assert_eq!(produce(&mut c, "t", 1, b1.clone()).await, (0, 0));
    assert_eq!(produce(&mut c, "t", 1, b2.clone()).await, (0, 5));
    for v in [4i16, 11, 12] {
        let r: FetchResponse = c
            .call(ApiKey::Fetch, v, &fetch_req("t", 1, 0, 0, 1 << 20))
            .await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(
            (p.error_code, p.high_watermark, p.last_stable_offset),
            (0, 8, 8)
        );
        let recs = p.records.clone().unwrap();
        // Served exactly as produced, except the broker-assigned base
        // offset (bytes 0..8) and leader epoch (12..16), outside the CRC.
        assert_eq!(recs.len(), b1.len() + b2.len());
        let (s1, s2) = recs.split_at(b1.len());
        assert_eq!((&s1[8..12], &s1[16..]), (&b1[8..12], &b1[16..]));
        assert_eq!((&s2[8..12], &s2[16..]), (&b2[8..12], &b2[16..]));
        assert_eq!(
            (&s2[..8], &s2[12..16]),
            (&5i64.to_be_bytes()[..], &0i32.to_be_bytes()[..])
        );
    }
    // From inside the second batch: it starts with the batch containing offset 6.
    let r: FetchResponse = c
        .call(ApiKey::Fetch, 12, &fetch_req("t", 1, 6, 0, 1 << 20))
        .await;
    assert_eq!(
        r.responses[0].partitions[0].records.as_ref().unwrap().len(),
        b2.len()
    );
    // At the end: empty; past it: OFFSET_OUT_OF_RANGE.
    let r: FetchResponse = c
        .call(ApiKey::Fetch, 12, &fetch_req("t", 1, 8, 0, 1 << 20))
        .await;
    assert_eq!(
        r.responses[0].partitions[0]
            .records
            .as_ref()
            .map(|r| r.len()),
        Some(0)
    );
    let r: FetchResponse = c
        .call(ApiKey::Fetch, 12, &fetch_req("t", 1, 9, 0, 1 << 20))
        .await;
    assert_eq!(r.responses[0].partitions[0].error_code, 1);
    // KIP-74: a tiny max_bytes still returns the first batch, only it.
    let r: FetchResponse = c
        .call(ApiKey::Fetch, 12, &fetch_req("t", 1, 0, 0, 10))
        .await;
    assert_eq!(
        r.responses[0].partitions[0].records.as_ref().unwrap().len(),
        b1.len()
    );
    b.shutdown().await;
}

#[tokio::test]
async fn fetch_long_poll_is_woken_by_an_append() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "lp", 1, &[]).await, 0);
    let mut consumer = b.client().await;
    let corr = consumer
        .send(ApiKey::Fetch, 12, &fetch_req("lp", 0, 0, 60_000, 1 << 20))
        .await;
    let recv = tokio::spawn(async move { consumer.recv::<FetchResponse>(12).await });
    assert_eq!(
        produce(&mut c, "lp", 0, batch(2, 0, None, Compression::None))
            .await
            .0,
        0
    );
    // Far below max_wait: only a wake-up can answer in time.
    let (got, r) = tokio::time::timeout(Duration::from_secs(20), recv)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, corr);
    assert_eq!(r.responses[0].partitions[0].high_watermark, 2);
    b.shutdown().await;
}

#[tokio::test]
async fn produce_errors_follow_kafka() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(
        create(&mut c, "e", 1, &[("max.message.bytes", "200")]).await,
        0
    );
    // Missing partition.
    assert_eq!(
        produce(&mut c, "e", 5, batch(1, 0, None, Compression::None))
            .await
            .0,
        3
    );
    // Corrupt CRC.
    let mut bad = batch(2, 0, None, Compression::None).to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert_eq!(produce(&mut c, "e", 0, bad.into()).await.0, 2);
    // Too large for the topic's max.message.bytes.
    assert_eq!(
        produce(&mut c, "e", 0, batch(20, 0, None, Compression::None))
            .await
            .0,
        10
    );
    // Invalid acks.
    let r: ProduceResponse = c
        .call(
            ApiKey::Produce,
            9,
            &produce_req("e", 0, 2, batch(1, 0, None, Compression::None)),
        )
        .await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 21);
    // Nothing was appended by any of those.
    let r: FetchResponse = c
        .call(ApiKey::Fetch, 12, &fetch_req("e", 0, 0, 0, 1 << 20))
        .await;
    assert_eq!(r.responses[0].partitions[0].high_watermark, 0);
    b.shutdown().await;
}

#[tokio::test]
async fn acks_zero_gets_no_response_and_order_holds() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "a0", 1, &[]).await, 0);
    c.send(
        ApiKey::Produce,
        9,
        &produce_req("a0", 0, 0, batch(4, 0, None, Compression::None)),
    )
    .await;
    let corr = c
        .send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    let (got, _) = c.recv::<ApiVersionsResponse>(3).await;
    assert_eq!(got, corr, "the acks=0 produce must not be answered");
    let r: ListOffsetsResponse = c
        .call(
            ApiKey::ListOffsets,
            7,
            &ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(tn("a0"))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1)])]),
        )
        .await;
    assert_eq!(r.topics[0].partitions[0].offset, 4);
    // An acks=0 produce that fails closes the connection, as in Kafka.
    c.send(
        ApiKey::Produce,
        9,
        &produce_req("a0", 9, 0, batch(1, 0, None, Compression::None)),
    )
    .await;
    assert!(c.is_closed().await);
    b.shutdown().await;
}

#[tokio::test]
async fn list_offsets_by_timestamp() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "ts", 1, &[]).await, 0);
    produce(&mut c, "ts", 0, batch(3, 1000, None, Compression::None)).await; // 0..2 at 1000..1002
    produce(&mut c, "ts", 0, batch(3, 5000, None, Compression::Gzip)).await; // 3..5 at 5000..5002
    let ask = |ts: i64| {
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(tn("ts"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(ts)])])
    };
    let mut q = async |ts: i64| {
        let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 8, &ask(ts)).await;
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.offset, p.timestamp)
    };
    assert_eq!(q(0).await, (0, 0, 1000));
    assert_eq!(q(1001).await, (0, 1, 1001));
    assert_eq!(q(3000).await, (0, 3, 5000));
    assert_eq!(q(5002).await, (0, 5, 5002));
    assert_eq!(q(9999).await, (0, -1, -1));
    assert_eq!(q(-2).await, (0, 0, -1));
    assert_eq!(q(-1).await, (0, 6, -1));
    assert_eq!(q(-3).await, (0, 5, 5002));
    // Every version answers (v1–3 carry no leader epoch).
    for v in 1..=gregor_e2e::max_version::<ListOffsetsRequest>() {
        let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, v, &ask(1001)).await;
        assert_eq!(r.topics[0].partitions[0].offset, 1, "v{v}");
    }
    b.shutdown().await;
}

#[tokio::test]
async fn idempotent_duplicates_and_gaps() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "idem", 1, &[]).await, 0);
    let r: InitProducerIdResponse = c
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_eq!(r.error_code, 0);
    let pid = r.producer_id.0;
    assert!(pid >= 0);
    let first = batch(3, 0, Some((pid, 0, 0)), Compression::None);
    assert_eq!(produce(&mut c, "idem", 0, first.clone()).await, (0, 0));
    assert_eq!(
        produce(
            &mut c,
            "idem",
            0,
            batch(2, 0, Some((pid, 0, 3)), Compression::None)
        )
        .await,
        (0, 3)
    );
    // A retry of the first batch: success with its original offset, not appended again.
    assert_eq!(produce(&mut c, "idem", 0, first).await, (0, 0));
    // A gap in the sequence.
    assert_eq!(
        produce(
            &mut c,
            "idem",
            0,
            batch(1, 0, Some((pid, 0, 9)), Compression::None)
        )
        .await
        .0,
        45
    );
    let r: FetchResponse = c
        .call(ApiKey::Fetch, 12, &fetch_req("idem", 0, 0, 0, 1 << 20))
        .await;
    assert_eq!(r.responses[0].partitions[0].high_watermark, 5);
    // A second producer gets another id.
    let r2: InitProducerIdResponse = c
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_ne!(r2.producer_id.0, pid);
    b.shutdown().await;
}

#[tokio::test]
async fn create_and_delete_topics_errors() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "dup", 1, &[]).await, 0);
    assert_eq!(create(&mut c, "dup", 1, &[]).await, 36);
    assert_eq!(create(&mut c, "zero", 0, &[]).await, 37);
    assert_eq!(create(&mut c, "cfg", 1, &[("no.such", "1")]).await, 40);
    assert_eq!(
        create(&mut c, "cfg", 1, &[("retention.ms", "soon")]).await,
        40
    );
    assert_eq!(create(&mut c, "bad/name", 1, &[]).await, 17);
    let rf3: CreateTopicsResponse = c
        .call(
            ApiKey::CreateTopics,
            7,
            &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
                .with_name(tn("rf3"))
                .with_num_partitions(1)
                .with_replication_factor(3)]),
        )
        .await;
    assert_eq!(rf3.topics[0].error_code, 38);
    // validate_only creates nothing.
    let v: CreateTopicsResponse = c
        .call(
            ApiKey::CreateTopics,
            7,
            &CreateTopicsRequest::default()
                .with_validate_only(true)
                .with_topics(vec![CreatableTopic::default()
                    .with_name(tn("dry"))
                    .with_num_partitions(4)
                    .with_replication_factor(-1)]),
        )
        .await;
    assert_eq!((v.topics[0].error_code, v.topics[0].num_partitions), (0, 4));
    assert!(b.store.topic("dry").is_none());
    let del = |names: &[&str]| {
        DeleteTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topic_names(names.iter().map(|n| tn(n)).collect())
    };
    let r: DeleteTopicsResponse = c
        .call(ApiKey::DeleteTopics, 5, &del(&["dup", "missing"]))
        .await;
    assert_eq!(
        r.responses.iter().map(|r| r.error_code).collect::<Vec<_>>(),
        vec![0, 3]
    );
    b.shutdown().await;
}

#[tokio::test]
async fn describe_configs_and_cluster() {
    let b = TestBroker::start(&[("log.retention.ms", "1234")]).await;
    let mut c = b.client().await;
    assert_eq!(
        create(&mut c, "dc", 1, &[("cleanup.policy", "compact")]).await,
        0
    );
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    let r: DescribeConfigsResponse = c
        .call(
            ApiKey::DescribeConfigs,
            4,
            &DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_resources(vec![
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_static_str("dc"))
                        .with_configuration_keys(None),
                    DescribeConfigsResource::default()
                        .with_resource_type(4)
                        .with_resource_name(StrBytes::from_static_str("1"))
                        .with_configuration_keys(None),
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_static_str("none")),
                ]),
        )
        .await;
    let topic = &r.results[0];
    let get = |name: &str| topic.configs.iter().find(|c| &*c.name == name).unwrap();
    assert_eq!(get("cleanup.policy").value.as_deref(), Some("compact"));
    assert_eq!(get("cleanup.policy").config_source, 1);
    assert_eq!(get("retention.ms").value.as_deref(), Some("1234"));
    assert_eq!(get("retention.ms").config_source, 4);
    assert!(r.results[1]
        .configs
        .iter()
        .any(|c| &*c.name == "num.partitions"));
    assert_eq!(r.results[2].error_code, 3);
    let d: DescribeClusterResponse = c
        .call(
            ApiKey::DescribeCluster,
            1,
            &DescribeClusterRequest::default().with_endpoint_type(1),
        )
        .await;
    assert_eq!(
        (d.error_code, d.brokers.len(), d.controller_id),
        (0, 1, BrokerId(1))
    );
    b.shutdown().await;
}

/// Hostile bytes on one connection close that connection only.
#[tokio::test]
async fn hostile_connections_do_not_disturb_others() {
    let b = TestBroker::start(&[]).await;
    let mut good = b.client().await;
    assert_eq!(create(&mut good, "h", 1, &[]).await, 0);
    let attacks: Vec<Vec<u8>> = vec![
        // Metadata v1 whose topic array claims i32::MAX entries.
        vec![
            0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
        ],
        (-5i32).to_be_bytes().to_vec(),
        i32::MAX.to_be_bytes().to_vec(),
        vec![0, 0, 0, 3, 1, 2, 3],
        vec![0, 0, 0, 8, 0x7f, 0x7f, 0, 0, 0, 0, 0, 1],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    ];
    for a in attacks {
        let mut evil = b.client().await;
        evil.send_bytes(&a).await;
        assert!(evil.is_closed().await, "connection not closed after {a:?}");
        assert_eq!(
            produce(&mut good, "h", 0, batch(1, 0, None, Compression::None))
                .await
                .0,
            0
        );
    }
    b.shutdown().await;
}

/// Graceful shutdown answers what was already read: an acks=all produce
/// in flight is acknowledged and durable.
#[tokio::test]
async fn restart_on_the_same_store_keeps_data() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "keep", 1, &[]).await, 0);
    produce(&mut c, "keep", 0, batch(10, 0, None, Compression::Snappy)).await;
    let store = b.store.clone();
    b.shutdown().await;
    let b = TestBroker::start_on(store, &[]).await;
    let mut c = b.client().await;
    let r: FetchResponse = c
        .call(ApiKey::Fetch, 12, &fetch_req("keep", 0, 0, 0, 1 << 20))
        .await;
    assert_eq!(r.responses[0].partitions[0].high_watermark, 10);
    b.shutdown().await;
}

/// Realistic requests at every served version of the data-path APIs: the
/// responses must encode (a field set outside its versions fails encoding).
#[tokio::test]
async fn every_version_of_the_data_path_encodes() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    for v in 2..=7 {
        let t = format!("ct{v}");
        let r: CreateTopicsResponse = c
            .call(
                ApiKey::CreateTopics,
                v,
                &CreateTopicsRequest::default()
                    .with_timeout_ms(1000)
                    .with_topics(vec![CreatableTopic::default()
                        .with_name(tn(&t))
                        .with_num_partitions(2)
                        .with_replication_factor(1)]),
            )
            .await;
        assert_eq!(r.topics[0].error_code, 0, "CreateTopics v{v}");
    }
    assert_eq!(create(&mut c, "data", 2, &[]).await, 0);
    for v in 3..=12 {
        let r: ProduceResponse = c
            .call(
                ApiKey::Produce,
                v,
                &produce_req("data", 0, 1, batch(2, 0, None, Compression::None)),
            )
            .await;
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(
            (p.error_code, p.base_offset),
            (0, 2 * (i64::from(v) - 3)),
            "Produce v{v}"
        );
    }
    for v in 4..=12 {
        let r: FetchResponse = c
            .call(ApiKey::Fetch, v, &fetch_req("data", 0, 0, 0, 1 << 20))
            .await;
        assert_eq!(
            r.responses[0].partitions[0].high_watermark, 20,
            "Fetch v{v}"
        );
    }
    for v in 0..=13 {
        let topics = vec![MetadataRequestTopic::default().with_name(Some(tn("data")))];
        let r: MetadataResponse = c
            .call(
                ApiKey::Metadata,
                v,
                &MetadataRequest::default().with_topics(Some(topics)),
            )
            .await;
        assert_eq!(r.topics[0].partitions.len(), 2, "Metadata v{v}");
    }
    for v in 1..=6 {
        let t = format!("ct{}", v + 1);
        let req = if v < 6 {
            DeleteTopicsRequest::default().with_topic_names(vec![tn(&t)])
        } else {
            DeleteTopicsRequest::default().with_topics(vec![
                kafka_protocol::messages::delete_topics_request::DeleteTopicState::default()
                    .with_name(Some(tn(&t))),
            ])
        };
        let r: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, v, &req).await;
        assert_eq!(r.responses[0].error_code, 0, "DeleteTopics v{v}");
    }
    for v in 0..=5 {
        let r: InitProducerIdResponse = c
            .call(
                ApiKey::InitProducerId,
                v,
                &InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            )
            .await;
        assert_eq!(r.error_code, 0, "InitProducerId v{v}");
    }
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    for v in 1..=4 {
        let r: DescribeConfigsResponse = c
            .call(
                ApiKey::DescribeConfigs,
                v,
                &DescribeConfigsRequest::default()
                    .with_include_synonyms(true)
                    .with_resources(vec![DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_static_str("data"))
                        .with_configuration_keys(None)]),
            )
            .await;
        assert!(r.results[0].configs.len() > 10, "DescribeConfigs v{v}");
    }
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    for v in 2..=4 {
        let r: OffsetForLeaderEpochResponse = c
            .call(
                ApiKey::OffsetForLeaderEpoch,
                v,
                &OffsetForLeaderEpochRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![OffsetForLeaderTopic::default()
                        .with_topic(tn("data"))
                        .with_partitions(vec![OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_leader_epoch(0)
                            .with_current_leader_epoch(0)])]),
            )
            .await;
        assert_eq!(
            r.topics[0].partitions[0].end_offset, 20,
            "OffsetForLeaderEpoch v{v}"
        );
    }
    b.shutdown().await;
}

/// `message.timestamp.type=LogAppendTime`: the broker stamps the batch
/// (attribute bit and max timestamp, CRC recomputed) and says so.
#[tokio::test]
async fn log_append_time_topics_are_stamped_by_the_broker() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(
        create(
            &mut c,
            "lat",
            1,
            &[("message.timestamp.type", "LogAppendTime")]
        )
        .await,
        0
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let r: ProduceResponse = c
        .call(
            ApiKey::Produce,
            9,
            &produce_req("lat", 0, -1, batch(3, 1_000, None, Compression::Gzip)),
        )
        .await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0);
    assert!(
        p.log_append_time_ms >= before,
        "log_append_time_ms {}",
        p.log_append_time_ms
    );
    let f: FetchResponse = c
        .call(ApiKey::Fetch, 12, &fetch_req("lat", 0, 0, 0, 1 << 20))
        .await;
    let recs = f.responses[0].partitions[0].records.clone().unwrap();
    let h = gregor_protocol::records::validate_client_batch(&recs).unwrap();
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, p.log_append_time_ms);
    b.shutdown().await;
}

/// Time retention deletes whole old segments and moves the log start;
/// fetching below it is OFFSET_OUT_OF_RANGE. (segment.bytes=1 puts each
/// batch in a segment of its own.)
#[tokio::test]
async fn retention_by_time_moves_the_log_start() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(
        create(
            &mut c,
            "ret",
            1,
            &[("retention.ms", "60000"), ("segment.bytes", "1")]
        )
        .await,
        0
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    produce(
        &mut c,
        "ret",
        0,
        batch(4, now - 3_600_000, None, Compression::None),
    )
    .await;
    produce(&mut c, "ret", 0, batch(2, now, None, Compression::None)).await;
    let broker =
        gregor_broker::Broker::new(gregor_broker::BrokerConfig::default(), b.store.clone());
    assert_eq!(gregor_broker::retention::enforce_once(&broker), 4);
    let r: FetchResponse = c
        .call(ApiKey::Fetch, 12, &fetch_req("ret", 0, 0, 0, 1 << 20))
        .await;
    assert_eq!(r.responses[0].partitions[0].error_code, 1);
    let r: FetchResponse = c
        .call(ApiKey::Fetch, 12, &fetch_req("ret", 0, 4, 0, 1 << 20))
        .await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(
        (p.error_code, p.log_start_offset, p.high_watermark),
        (0, 4, 6)
    );
    b.shutdown().await;
}

/// assign() users commit with generation -1 and no member id; OffsetFetch
/// returns it (v1–7 and the v8+ multi-group form), -1 when nothing is
/// committed, and the commit survives a restart on the same store.
#[tokio::test]
async fn offsets_commit_and_fetch_for_simple_consumers() {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "oc", 2, &[]).await, 0);
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("simple")))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(tn("oc"))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(1)
                    .with_committed_offset(42)
                    .with_committed_leader_epoch(0)
                    .with_committed_metadata(Some(StrBytes::from_static_str("meta")))]),
            OffsetCommitRequestTopic::default()
                .with_name(tn("missing"))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(1)]),
        ]);
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &commit).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(r.topics[1].partitions[0].error_code, 3);
    // A commit with a generation for a group that does not exist.
    let r: OffsetCommitResponse = c
        .call(
            ApiKey::OffsetCommit,
            8,
            &commit
                .clone()
                .with_group_id(GroupId(StrBytes::from_static_str("nobody")))
                .with_generation_id_or_member_epoch(3),
        )
        .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 22);
    let store = b.store.clone();
    b.shutdown().await;
    let b = TestBroker::start_on(store, &[]).await;
    let mut c = b.client().await;
    let v7 = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("simple")))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(tn("oc"))
            .with_partition_indexes(vec![0, 1])]));
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 7, &v7).await;
    let ps = &r.topics[0].partitions;
    assert_eq!((ps[0].committed_offset, ps[1].committed_offset), (-1, 42));
    assert_eq!(ps[1].metadata.as_deref(), Some("meta"));
    let v9 = OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_static_str("simple")))
            .with_topics(None),
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_static_str("other")))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(tn("oc"))
                .with_partition_indexes(vec![0])])),
    ]);
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 9, &v9).await;
    assert_eq!(r.groups[0].topics[0].partitions[0].committed_offset, 42);
    assert_eq!(r.groups[1].topics[0].partitions[0].committed_offset, -1);
    let l: ListGroupsResponse = c
        .call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())
        .await;
    assert!(l
        .groups
        .iter()
        .any(|g| &*g.group_id.0 == "simple" && &*g.group_state == "Empty"));
    let d: DeleteGroupsResponse = c
        .call(
            ApiKey::DeleteGroups,
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![
                GroupId(StrBytes::from_static_str("simple")),
                GroupId(StrBytes::from_static_str("ghost")),
            ]),
        )
        .await;
    assert_eq!(
        d.results.iter().map(|r| r.error_code).collect::<Vec<_>>(),
        vec![0, 69]
    );
    b.shutdown().await;
}
