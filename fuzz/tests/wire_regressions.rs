//! Inputs the `wire` target found to wedge or crash a live broker, replayed
//! byte for byte against a broker in this process.

use std::time::Duration;

use bytes::Bytes;
use gregor_broker::BrokerConfig;
use gregor_protocol::kafka_protocol::messages::{CreateTopicsResponse, ResponseHeader};
use gregor_protocol::kafka_protocol::protocol::Decodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

async fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.expect("response length");
    let mut b = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut b).await.expect("response body");
    b
}

/// `wire` target, seed 21, 3 minutes into the run: the Java admin client's
/// captured CreateTopics v7 with `numPartitions` mutated to 1,660,944,385.
/// The broker reserved a 6.6 GB vector and then kept every worker busy
/// creating partitions: no connection was answered again. Kafka refuses a
/// CreateTopics asking for more than 10,000 partitions in total with
/// POLICY_VIOLATION ("Excessively large number of partitions per
/// request."), before creating anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_for_1_7e9_partitions_is_a_policy_violation() {
    let frame = unhex(
        "000000350013000700000003000d61646d696e636c69656e742d3100020d636170747572652d6a617061\
         630000010001010100000073810000",
    );
    let addr = gregor_fuzz::wire::spawn_broker(BrokerConfig::default()).await;

    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&frame).await.expect("send");
    let body = tokio::time::timeout(Duration::from_secs(10), read_frame(&mut s))
        .await
        .expect("answered within 10 s");
    let mut b = Bytes::from(body);
    let header = ResponseHeader::decode(&mut b, 1).expect("response header");
    assert_eq!(header.correlation_id, 3);
    let resp = CreateTopicsResponse::decode(&mut b, 7).expect("CreateTopics v7 response");
    assert_eq!(resp.topics.len(), 1);
    assert_eq!(resp.topics[0].error_code, 44, "POLICY_VIOLATION: {resp:?}");
}
