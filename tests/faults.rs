//! Injected faults at the wire (issue 11), byte for byte: what a client
//! gets back for each kind, and that an injected error leaves the log
//! untouched while a cut connection does not.
#![allow(clippy::unwrap_used)] // test code: a failed step should stop loudly

use gregor_broker::fault::Filter;
use gregor_e2e::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsTopic,
};
use gregor_e2e::kafka_protocol::messages::{
    ApiKey, BrokerId, ListOffsetsRequest, ListOffsetsResponse, ProduceResponse,
};
use gregor_e2e::{batch, create, produce_req, tn, Client, TestBroker};
use kafka_protocol::records::Compression;

async fn latest(c: &mut Client, topic: &str) -> i64 {
    let r: ListOffsetsResponse = c
        .call(
            ApiKey::ListOffsets,
            7,
            &ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(tn(topic))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1)])]),
        )
        .await;
    r.topics[0].partitions[0].offset
}

fn errors(codes: &[&str]) -> Vec<String> {
    codes.iter().map(|c| c.to_string()).collect()
}

#[tokio::test]
async fn an_injected_error_is_answered_and_nothing_is_appended() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "f", 1, &[]).await, 0);
    b.broker
        .faults()
        .push_errors(
            "Produce",
            &errors(&["NOT_LEADER_OR_FOLLOWER", "KAFKA_STORAGE_ERROR"]),
            Filter::default(),
        )
        .unwrap();
    for want in [6, 56, 0] {
        let r: ProduceResponse = c
            .call(
                ApiKey::Produce,
                9,
                &produce_req("f", 0, -1, batch(2, 0, None, Compression::None)),
            )
            .await;
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(
            (&*r.responses[0].name.0, p.index, p.error_code),
            ("f", 0, want)
        );
    }
    // Only the last, unfaulted, produce was appended.
    assert_eq!(latest(&mut c, "f").await, 2);
    assert!(b.broker.faults().snapshot().errors.is_empty());
    b.shutdown().await;
}

#[tokio::test]
async fn an_injected_error_on_an_acks_zero_produce_closes_the_connection() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "z", 1, &[]).await, 0);
    b.broker
        .faults()
        .push_errors(
            "Produce",
            &errors(&["NOT_LEADER_OR_FOLLOWER"]),
            Filter::default(),
        )
        .unwrap();
    c.send(
        ApiKey::Produce,
        9,
        &produce_req("z", 0, 0, batch(1, 0, None, Compression::None)),
    )
    .await;
    // acks=0 has no response to carry the error: Kafka closes instead.
    assert!(c.is_closed().await);
    let mut c = b.client().await;
    assert_eq!(latest(&mut c, "z").await, 0);
    b.shutdown().await;
}

#[tokio::test]
async fn a_cut_connection_loses_the_answer_not_the_append() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "cut", 1, &[]).await, 0);
    b.broker
        .faults()
        .close_before_response(Some("Produce"), 1, Filter::default())
        .unwrap();
    c.send(
        ApiKey::Produce,
        9,
        &produce_req("cut", 0, -1, batch(3, 0, None, Compression::None)),
    )
    .await;
    assert!(c.recv_frame().await.is_none(), "the answer must not arrive");
    let mut c = b.client().await;
    assert_eq!(
        latest(&mut c, "cut").await,
        3,
        "the batch was appended (and synced) before the cut"
    );
    b.shutdown().await;
}

#[tokio::test]
async fn filters_and_throttle() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(create(&mut c, "a", 1, &[]).await, 0);
    assert_eq!(create(&mut c, "other", 1, &[]).await, 0);
    let only_a = Filter {
        topic: Some("a".into()),
        ..Filter::default()
    };
    b.broker
        .faults()
        .push_errors("Produce", &errors(&["INVALID_REQUEST"]), only_a)
        .unwrap();
    b.broker
        .faults()
        .set_throttle(250, Some("Produce"), None, Some(1))
        .unwrap();
    let r: ProduceResponse = c
        .call(
            ApiKey::Produce,
            9,
            &produce_req("other", 0, -1, batch(1, 0, None, Compression::None)),
        )
        .await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code, 0,
        "another topic is not hit"
    );
    assert_eq!(r.throttle_time_ms, 250);
    let r: ProduceResponse = c
        .call(
            ApiKey::Produce,
            9,
            &produce_req("a", 0, -1, batch(1, 0, None, Compression::None)),
        )
        .await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 42);
    assert_eq!(r.throttle_time_ms, 0, "the throttle was for one response");
    b.shutdown().await;
}
