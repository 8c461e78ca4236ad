//! Test harness: a broker on 127.0.0.1:0 in this process, and a raw Kafka
//! client that speaks the wire protocol through the codec, byte for byte.
#![allow(clippy::unwrap_used)] // test harness: a failed step should stop the test loudly

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_broker::{Broker, BrokerConfig};
use gregor_storage::{Store, StoreOptions};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use kafka_protocol;

/// A broker running inside the test process.
pub struct TestBroker {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its store (to restart on the same data).
    pub store: Arc<Store>,
    /// Its shared state (faults, cluster, metrics).
    pub broker: Broker,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestBroker {
    /// Starts a broker on an in-memory store with `overrides` applied.
    pub async fn start(overrides: &[(&str, &str)]) -> TestBroker {
        Self::start_on(Store::open_memory(StoreOptions::default()), overrides).await
    }

    /// Starts a broker on the given store.
    pub async fn start_on(store: Arc<Store>, overrides: &[(&str, &str)]) -> TestBroker {
        let mut cfg = BrokerConfig::default();
        for (k, v) in overrides {
            cfg.set(k, v).unwrap();
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        cfg.listen = listener.local_addr().unwrap();
        let addr = cfg.listen;
        let broker = Broker::new(cfg, store.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(gregor_broker::server::run(
            listener,
            broker.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        TestBroker {
            addr,
            store,
            broker,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Graceful shutdown; waits until the server returned.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    /// A new client connection.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }
}

/// A raw protocol client on one connection.
pub struct Client {
    stream: TcpStream,
    next_corr: i32,
}

impl Client {
    /// Connects.
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            next_corr: 1,
        }
    }

    /// Sends a request; returns its correlation id.
    pub async fn send<R: Encodable + HeaderVersion>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &R,
    ) -> i32 {
        let corr = self.next_corr;
        self.next_corr += 1;
        let mut body = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(corr)
            .with_client_id(Some(StrBytes::from_static_str("gregor-e2e")))
            .encode(&mut body, R::header_version(version))
            .unwrap();
        req.encode(&mut body, version).unwrap();
        self.send_raw(&body).await;
        corr
    }

    /// Sends a frame body with its length prefix.
    pub async fn send_raw(&mut self, body: &[u8]) {
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.put_slice(body);
        self.stream.write_all(&frame).await.unwrap();
    }

    /// Sends raw bytes as they are (no length prefix added).
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one response frame; returns correlation id and the rest
    /// (header tagged fields still in front when the header is v1).
    pub async fn recv_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut buf).await.ok()?;
        Some(Bytes::from(buf))
    }

    /// Reads and decodes one response.
    pub async fn recv<R: Decodable + HeaderVersion>(&mut self, version: i16) -> (i32, R) {
        let mut frame = self.recv_frame().await.expect("connection closed");
        let header = ResponseHeader::decode(&mut frame, R::header_version(version)).unwrap();
        let resp = R::decode(&mut frame, version).unwrap();
        assert_eq!(frame.remaining(), 0, "trailing bytes in response");
        (header.correlation_id, resp)
    }

    /// Sends and waits for the response.
    pub async fn call<Req, Resp>(&mut self, key: ApiKey, version: i16, req: &Req) -> Resp
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        let corr = self.send(key, version, req).await;
        let (c, resp) = self.recv::<Resp>(version).await;
        assert_eq!(c, corr, "correlation id");
        resp
    }

    /// True once the broker has closed the connection (EOF or reset).
    pub async fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b).await, Ok(0) | Err(_))
    }
}

/// The highest version of a message type.
pub fn max_version<M: Message>() -> i16 {
    M::VERSIONS.max
}

/// A client record batch of `n` records, as a producer would send it.
/// `producer` is (id, epoch, base sequence) for idempotent batches.
pub fn batch(
    n: i64,
    base_ts: i64,
    producer: Option<(i64, i16, i32)>,
    compression: Compression,
) -> Bytes {
    let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i,
            // The encoder splits batches when offset - sequence changes.
            sequence: if seq >= 0 {
                seq + i as i32
            } else {
                i as i32 - 1
            },
            timestamp: base_ts + i,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    let mut b = out.to_vec();
    if seq < 0 {
        // Non-idempotent batches carry base sequence -1.
        b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    Bytes::from(b)
}

/// Requests the black-box tests build again and again.
mod requests {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, ProduceRequest,
        ProduceResponse, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;

    use super::Client;

    /// A topic name as the codec's type.
    pub fn tn(s: &str) -> TopicName {
        TopicName(StrBytes::from_string(s.to_string()))
    }

    /// A Produce request for one partition.
    pub fn produce_req(
        topic: &str,
        partition: i32,
        acks: i16,
        records: bytes::Bytes,
    ) -> ProduceRequest {
        ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(tn(topic))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records))])])
    }

    /// A sessionless Fetch of one partition (`partition_max_bytes` = `max_bytes`).
    pub fn fetch_req(
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> FetchRequest {
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(tn(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(max_bytes)])])
    }

    /// CreateTopics v7 for one topic; its error code.
    pub async fn create(
        c: &mut Client,
        topic: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> i16 {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(tn(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(1)
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(k.to_string()))
                                .with_value(Some(StrBytes::from_string(v.to_string())))
                        })
                        .collect(),
                )]);
        let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req).await;
        r.topics[0].error_code
    }

    /// An acks=all Produce v9 of one batch; its error code and base offset.
    pub async fn produce(
        c: &mut Client,
        topic: &str,
        partition: i32,
        records: bytes::Bytes,
    ) -> (i16, i64) {
        let r: ProduceResponse = c
            .call(
                ApiKey::Produce,
                9,
                &produce_req(topic, partition, -1, records),
            )
            .await;
        let p = &r.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    }
}

pub use requests::{create, fetch_req, produce, produce_req, tn};
