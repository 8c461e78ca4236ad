//! Produce (0): validate each partition's batch as Kafka's `LogValidator`
//! does (header and CRC, then every record, inflating compressed ones as a
//! bounded stream off the reactor), hand the client's bytes to the store's
//! writer thread (base offset patched, never re-encoded, header parsed
//! once, body never copied), and answer by `acks`: 0 never, 1 after the
//! write, -1 after the fdatasync that covers it (group commit).

use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::inflate;
use gregor_protocol::records::{self, BatchHeader};
use gregor_storage::{AppendOptions, PartitionLog};
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{
    BrokerId, ProduceRequest, ProduceResponse, ResponseKind, TopicName,
};
use tracing::{debug, warn};

use super::{str_bytes, Handled, Response};
use crate::context::{now_ms, Broker};
use crate::error::storage_error;
use crate::topics;
use kafka_protocol::ResponseError;

/// Compression codec id of zstd.
const ZSTD: i16 = 4;

/// Batches whose records are walked on the reactor: uncompressed and
/// this small, a walk costs microseconds.
const INLINE_WALK_BYTES: usize = 64 * 1024;

/// One partition's part of the request, checked up to its records.
struct Checked {
    log: Arc<PartitionLog>,
    data: Bytes,
    header: BatchHeader,
    log_append: bool,
    inflate_limit: usize,
    segment_bytes: u64,
    segment_ms: i64,
    /// `cleanup.policy` includes compact: records need keys.
    compacted: bool,
    /// The leader epoch the batch is stamped with.
    leader_epoch: i32,
}

/// `node`: the broker id the request was sent to.
pub async fn handle(b: &Broker, req: ProduceRequest, version: i16, node: i32) -> Handled {
    let acks = req.acks;
    let txn_id = req.transactional_id.as_ref().map(|t| t.0.to_string());
    // Phase 1, in request order: everything up to the records (topic,
    // auto-creation, size, batch header and CRC).
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for t in req.topic_data {
        let name = t.name.0.to_string();
        let mut parts = Vec::with_capacity(t.partition_data.len());
        for p in t.partition_data {
            let r = if !matches!(acks, -1..=1) {
                Err(err(p.index, ResponseError::InvalidRequiredAcks, None))
            } else {
                check(
                    b,
                    node,
                    &name,
                    p.index,
                    p.records,
                    version,
                    txn_id.as_deref(),
                )
            };
            parts.push((p.index, r));
        }
        topics.push((t.name, name, parts));
    }
    // Phase 2: the records themselves, as Kafka's LogValidator walks them.
    // Compressed or large batches go to the blocking pool, a bounded number
    // at a time, each inflating within its cap.
    let heavy = topics.iter().flat_map(|t| &t.2).any(|(_, r)| {
        r.as_ref()
            .is_ok_and(|c| c.header.compression() != 0 || c.data.len() > INLINE_WALK_BYTES)
    });
    let topics = if heavy {
        match b.inflate(move || validate_all(topics)).await {
            Ok(t) => t,
            Err(e) => {
                warn!(cause = %e, "record validation failed");
                return Handled::Now(Response::Close("record validation failed".into()));
            }
        }
    } else {
        validate_all(topics)
    };
    // KIP-951: a response naming a new leader also says where it is.
    // Kafka lists the brokers the response names as leaders.
    let named: std::collections::BTreeSet<i32> = topics
        .iter()
        .flat_map(|t| &t.2)
        .filter_map(|(_, r)| r.as_ref().err())
        .filter(|e| e.error_code == ResponseError::NotLeaderOrFollower.code())
        .map(|e| e.current_leader.leader_id.0)
        .collect();
    let moved = !named.is_empty();
    let endpoints: Vec<NodeEndpoint> = if moved {
        b.cluster()
            .live()
            .into_iter()
            .filter(|n| named.contains(&n.id))
            .map(|n| {
                NodeEndpoint::default()
                    .with_node_id(BrokerId(n.id))
                    .with_host(str_bytes(&n.host))
                    .with_port(n.port)
            })
            .collect()
    } else {
        Vec::new()
    };
    // Phase 3: hand every batch to the writer thread now, in request order
    // (so that later requests on this connection append after these), then
    // collect the outcomes. acks=all outcomes arrive once the group commit
    // has made them durable; the connection meanwhile reads on.
    let store = Arc::clone(b.store());
    let durable = acks == -1;
    let mut pending = Vec::with_capacity(topics.len());
    for (topic_name, name, parts) in topics {
        let mut ps = Vec::with_capacity(parts.len());
        for (_, r) in parts {
            ps.push(match r {
                Ok(c) => Ok(append(&store, c, durable)),
                Err(r) => Err(r),
            });
        }
        pending.push((topic_name, name, ps));
    }
    let finish = async move {
        let mut failed: Option<String> = None;
        let mut responses = Vec::with_capacity(pending.len());
        for (topic_name, name, parts) in pending {
            let mut out = Vec::with_capacity(parts.len());
            for r in parts {
                let r = match r {
                    Ok(fut) => fut.await,
                    Err(r) => r,
                };
                let index = r.index;
                if r.error_code != 0 {
                    debug!(topic = %name, partition = index, error_code = r.error_code, "produce refused");
                    failed.get_or_insert_with(|| {
                        format!(
                            "produce to {name}-{index} failed with error {}",
                            r.error_code
                        )
                    });
                }
                out.push(r);
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(topic_name)
                    .with_partition_responses(out),
            );
        }
        let mut r = ProduceResponse::default().with_responses(responses);
        if moved && version >= 10 {
            r = r.with_node_endpoints(endpoints);
        }
        (r, failed)
    };
    match acks {
        // acks=0 has no response; Kafka closes the connection on an error so
        // that the client notices (`KafkaApis.handleProduceRequest`).
        0 => match finish.await.1 {
            Some(reason) => Handled::Now(Response::Close(reason)),
            None => Handled::Now(Response::Nothing),
        },
        _ => Handled::Later(Box::pin(async move {
            Response::Kind(Box::new(ResponseKind::Produce(finish.await.0)))
        })),
    }
}

type Part = (i32, Result<Checked, PartitionProduceResponse>);

/// Walks the records of every checked batch; a batch that fails becomes
/// its partition's error, with Kafka's code for it.
fn validate_all(
    mut topics: Vec<(TopicName, String, Vec<Part>)>,
) -> Vec<(TopicName, String, Vec<Part>)> {
    for (_, name, parts) in &mut topics {
        for (index, r) in parts.iter_mut() {
            let Ok(c) = r else { continue };
            match records::validate_records(&c.data, c.inflate_limit) {
                Err(e) => {
                    debug!(topic = %name, partition = *index, error = %e, "records refused");
                    let start = c.log.log_start_offset();
                    *r = Err(err_code(*index, e.error_code(), Some(&e.to_string()))
                        .with_log_start_offset(start));
                }
                // Kafka's LogValidator: a compacted topic needs keys.
                Ok(sum) if c.compacted && sum.null_keys > 0 => {
                    let msg = format!(
                        "Compacted topic cannot accept message without key in topic partition {name}-{index}."
                    );
                    let start = c.log.log_start_offset();
                    *r = Err(err_code(*index, ResponseError::InvalidRecord.code(), Some(&msg))
                        .with_log_start_offset(start)
                        .with_record_errors(
                            sum.null_key_indexes
                                .iter()
                                .map(|i| {
                                    kafka_protocol::messages::produce_response::BatchIndexAndErrorMessage::default()
                                        .with_batch_index(*i)
                                        .with_batch_index_error_message(Some(str_bytes(
                                            "Compacted topic cannot accept message without key.",
                                        )))
                                })
                                .collect(),
                        ));
                }
                Ok(_) => {}
            }
        }
    }
    topics
}

/// Everything Kafka checks before looking at the records. The error is
/// the partition's answer itself, built once: no point boxing it.
#[allow(clippy::result_large_err)]
fn check(
    b: &Broker,
    node: i32,
    topic: &str,
    partition: i32,
    data: Option<Bytes>,
    version: i16,
    txn_id: Option<&str>,
) -> Result<Checked, PartitionProduceResponse> {
    let store = b.store();
    // One snapshot of the configuration for the whole check.
    let cfg = b.config();
    let meta = match store.topic(topic) {
        Some(m) => m,
        None if cfg.auto_create_topics_enable => match b.auto_create(topic) {
            Ok(m) => m,
            Err(_) => match store.topic(topic) {
                Some(m) => m,
                None => return Err(err(partition, ResponseError::UnknownTopicOrPartition, None)),
            },
        },
        None => return Err(err(partition, ResponseError::UnknownTopicOrPartition, None)),
    };
    // Kafka's `internalTopicsAllowed = false` for client produce.
    if topics::is_internal(topic) {
        return Err(err(
            partition,
            ResponseError::InvalidTopicException,
            Some("Cannot append to internal topic"),
        ));
    }
    let Some(log) = store.partition(topic, partition) else {
        return Err(err(partition, ResponseError::UnknownTopicOrPartition, None));
    };
    let leader = b.cluster().leader(topic, partition);
    if leader.id != node {
        let r = err(partition, ResponseError::NotLeaderOrFollower, None);
        // KIP-951: the new leader, so the client need not ask Metadata.
        return Err(if version >= 10 {
            r.with_current_leader(
                LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(leader.id))
                    .with_leader_epoch(leader.epoch),
            )
        } else {
            r
        });
    }
    if b.faults().storage_failed() {
        return Err(err(
            partition,
            ResponseError::KafkaStorageError,
            Some("storage failure injected"),
        ));
    }
    let Some(data) = data.filter(|d| !d.is_empty()) else {
        return Err(err(
            partition,
            ResponseError::CorruptMessage,
            Some("no record batch"),
        ));
    };
    // Kafka checks the size first (`analyzeAndValidateRecords`), then the
    // CRC and the rest of the batch (`LogValidator`).
    let max = topics::effective_i64(&cfg, &meta.configs, "max.message.bytes", 1_048_588);
    let first_len = BatchHeader::parse(&data)
        .map(|h| h.total_len())
        .unwrap_or(data.len());
    if i64::try_from(first_len).unwrap_or(i64::MAX) > max {
        let msg = format!("The request included a message larger than the max message size the server will accept ({max} bytes).");
        return Err(err(partition, ResponseError::MessageTooLarge, Some(&msg)));
    }
    let header = match records::validate_client_batch(&data) {
        Ok(h) => h,
        Err(e @ gregor_protocol::BatchError::UnknownCompression(_)) => {
            // Kafka only trips over the codec inside the log append, so its
            // reply carries the log start like other append failures.
            return Err(err_code(partition, e.error_code(), None)
                .with_log_start_offset(log.log_start_offset()));
        }
        Err(e) => return Err(err_code(partition, e.error_code(), Some(&e.to_string()))),
    };
    // KIP-110: zstd needs Produce v7, so that old clients never fetch it.
    if header.compression() == ZSTD && version < 7 {
        return Err(err(
            partition,
            ResponseError::UnsupportedCompressionType,
            None,
        ));
    }
    if header.is_transactional() {
        in_transaction(b, txn_id, topic, partition, &header, version)
            .map_err(|(code, msg)| err(partition, code, Some(msg)))?;
    }
    let log_append = topics::effective(&cfg, &meta.configs, "message.timestamp.type")
        .is_some_and(|v| v == "LogAppendTime");
    let segment_bytes = topics::effective_i64(&cfg, &meta.configs, "segment.bytes", 1 << 30);
    let segment_ms = topics::effective_i64(&cfg, &meta.configs, "segment.ms", 604_800_000);
    let compacted = topics::effective(&cfg, &meta.configs, "cleanup.policy")
        .is_some_and(|p| p.split(',').any(|x| x.trim() == "compact"));
    b.metrics().bytes_in(topic, data.len());
    Ok(Checked {
        leader_epoch: leader.epoch,
        log,
        data,
        header,
        log_append,
        inflate_limit: inflate::inflate_limit(max),
        segment_bytes: u64::try_from(segment_bytes).unwrap_or(1 << 30).max(1),
        segment_ms,
        compacted,
    })
}

/// A transactional batch may only go to a partition of the producer's
/// ongoing transaction; Produce v12+ (transaction version 2) adds the
/// partition itself, as Kafka 4's leader does through its coordinator.
fn in_transaction(
    b: &Broker,
    txn_id: Option<&str>,
    topic: &str,
    partition: i32,
    h: &BatchHeader,
    version: i16,
) -> Result<(), (ResponseError, &'static str)> {
    let Some(id) = txn_id else {
        return Err((
            ResponseError::InvalidTxnState,
            "a transactional batch needs the request's transactional id",
        ));
    };
    let mut c = b.txns().lock();
    let part = (topic.to_string(), partition);
    match c.produce(
        id,
        h.producer_id,
        h.producer_epoch,
        &part,
        version >= 12,
        now_ms(),
    ) {
        Ok(false) => Ok(()),
        // The implicit add is durable with the data: acks=all waits for
        // the same flush.
        Ok(true) => crate::txn::persist(b, &c, id)
            .map_err(|e| (e, "the transaction state could not be stored")),
        // Retriable for every client version (Kafka maps it the same way
        // for the produce path).
        Err(ResponseError::ConcurrentTransactions) => Err((
            ResponseError::NotEnoughReplicas,
            "the transaction is being completed",
        )),
        // KIP-890 part 1: from v11 the client may abort and go on.
        Err(ResponseError::InvalidTxnState) => Err((
            if version >= 11 {
                ResponseError::TransactionAbortable
            } else {
                ResponseError::InvalidTxnState
            },
            "the partition is not in the producer's transaction",
        )),
        Err(e) => Err((e, "the transactional producer is not current")),
    }
}

/// Submits one checked batch to the writer thread; the future answers the
/// partition.
fn append(
    store: &Arc<gregor_storage::Store>,
    c: Checked,
    durable: bool,
) -> impl std::future::Future<Output = PartitionProduceResponse> + Send + 'static {
    let opts = AppendOptions {
        log_append_time_ms: c.log_append.then(now_ms),
        leader_epoch: c.leader_epoch,
        segment_bytes: c.segment_bytes,
        segment_ms: c.segment_ms,
    };
    let log = c.log;
    let partition = log.partition();
    // The request's bytes go to the writer as they are: no copy.
    let done = store.append(&log, c.data, c.header, opts, durable);
    async move {
        match done.await {
            Ok(out) => PartitionProduceResponse::default()
                .with_index(partition)
                .with_error_code(0)
                .with_base_offset(out.base_offset)
                .with_log_append_time_ms(out.log_append_time_ms)
                .with_log_start_offset(out.log_start_offset),
            Err(e) => {
                if !e.is_protocol() {
                    // After a failed write or fsync nothing may be
                    // acknowledged: KAFKA_STORAGE_ERROR (storage_error).
                    warn!(topic = %log.topic(), partition, cause = %e, "append failed");
                }
                // The log exists: Kafka reports its start even on an error.
                err_code(partition, storage_error(&e).code(), Some(&e.to_string()))
                    .with_log_start_offset(log.log_start_offset())
            }
        }
    }
}

fn err(partition: i32, code: ResponseError, msg: Option<&str>) -> PartitionProduceResponse {
    err_code(partition, code.code(), msg)
}

fn err_code(partition: i32, code: i16, msg: Option<&str>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(partition)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(msg.map(str_bytes))
}
