//! Request dispatch: one `match`, one file per Kafka API.
//!
//! A handler applies its request's effects before returning, in request
//! order; what it returns is either the reply or a future of the reply (for
//! replies that wait on an fsync or on data).

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use bytes::Bytes;
use gregor_protocol::request::api_name;
use gregor_protocol::{encode_response, Request};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug_span, warn, Instrument};

use crate::context::Broker;
use crate::fault;
use kafka_protocol::ResponseError;

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod alter_configs;
mod alter_partition_reassignments;
mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
mod describe_topic_partitions;
mod describe_transactions;
mod elect_leaders;
mod end_txn;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_partition_reassignments;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;
mod txn_offset_commit;

/// What to send back for one request.
pub enum Reply {
    /// A whole response frame, in chunks, and the memory budget it holds
    /// until written (a Fetch response's record bytes).
    Frame(Vec<Bytes>, Option<OwnedSemaphorePermit>),
    /// No response (acks=0 Produce).
    Nothing,
    /// Close the connection, as Kafka does in this situation.
    Close(String),
}

/// A reply now or later.
pub enum Pending {
    /// Ready.
    Now(Reply),
    /// Resolves when the reply is ready; replies still go out in order.
    Later(Pin<Box<dyn Future<Output = Reply> + Send>>),
}

/// What a handler produces before encoding.
pub enum Response {
    /// A typed response for the codec to encode (boxed: the enum of every
    /// response type is large and replies move through queues).
    Kind(Box<ResponseKind>),
    /// Already-encoded chunks (Fetch), with the budget they hold.
    Raw(Vec<Bytes>, Option<OwnedSemaphorePermit>),
    /// No response.
    Nothing,
    /// Close the connection.
    Close(String),
}

/// A handler's result: the response, or a future of it.
pub enum Handled {
    /// Ready now.
    Now(Response),
    /// Ready later.
    Later(Pin<Box<dyn Future<Output = Response> + Send>>),
}

/// The request context handlers need to shape their response.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// Api key.
    pub api_key: ApiKey,
    /// Request version.
    pub version: i16,
    /// Correlation id.
    pub correlation_id: i32,
    /// The client's address.
    pub peer: std::net::SocketAddr,
    /// The broker id the client connected to (virtual clusters).
    pub node: i32,
}

/// Runs one request's handler, under the faults in force, and counts it.
pub async fn dispatch(
    broker: &Broker,
    peer: std::net::SocketAddr,
    node: i32,
    req: Request,
) -> Pending {
    let started = Instant::now();
    let ctx = Ctx {
        api_key: req.api_key,
        version: req.version,
        correlation_id: req.header.correlation_id,
        peer,
        node,
    };
    let client_id = req.header.client_id.as_deref().unwrap_or("").to_string();
    let span = debug_span!(
        "request",
        api = api_name(ctx.api_key),
        version = ctx.version,
        correlation_id = ctx.correlation_id,
        client_id = %client_id
    );
    let fault = broker
        .faults()
        .decide(node, ctx.api_key, &client_id, &req.body);
    let injected = fault.error.and_then(|code| {
        let kind = fault::response::error_response(&req.body, ctx.version, code);
        if kind.is_none() {
            tracing::info!(
                api = api_name(ctx.api_key),
                version = ctx.version,
                "fault: this request has no place for an error code; served normally"
            );
        }
        kind
    });
    let handled = if let Some(kind) = injected {
        broker.metrics().fault("error");
        match &req.body {
            // acks=0 has no response: Kafka closes the connection on an
            // error, so that the client notices.
            RequestKind::Produce(p) if p.acks == 0 => Handled::Now(Response::Close(
                "fault injected into an acks=0 Produce: connection closed".into(),
            )),
            _ => Handled::Now(Response::Kind(Box::new(kind))),
        }
    } else if let Some(kind) = elsewhere(broker, ctx, &req.body) {
        Handled::Now(Response::Kind(Box::new(kind)))
    } else {
        route(broker, ctx, &client_id, req.body)
            .instrument(span.clone())
            .await
    };
    let b = broker.clone();
    let throttle = fault.throttle_ms;
    let pending = match handled {
        Handled::Now(r) if fault.latency_ms == 0 && !fault.close => {
            return Pending::Now(finish(&b, ctx, r, started, throttle));
        }
        Handled::Now(r) => {
            Box::pin(async move { r }) as Pin<Box<dyn Future<Output = Response> + Send>>
        }
        Handled::Later(f) => f,
    };
    Pending::Later(Box::pin(
        async move {
            let r = pending.await;
            if fault.latency_ms > 0 {
                b.metrics().fault("latency");
                tokio::time::sleep(std::time::Duration::from_millis(fault.latency_ms)).await;
            }
            if fault.close {
                b.metrics().fault("close");
                return Reply::Close(format!(
                    "fault injected: connection closed before the {} response",
                    api_name(ctx.api_key)
                ));
            }
            finish(&b, ctx, r, started, throttle)
        }
        .instrument(span),
    ))
}

/// APIs of groups and transactional ids: only the coordinator answers.
fn coordinated(body: &RequestKind) -> bool {
    matches!(
        body,
        RequestKind::JoinGroup(_)
            | RequestKind::SyncGroup(_)
            | RequestKind::Heartbeat(_)
            | RequestKind::LeaveGroup(_)
            | RequestKind::OffsetCommit(_)
            | RequestKind::OffsetFetch(_)
            | RequestKind::DescribeGroups(_)
            | RequestKind::DeleteGroups(_)
            | RequestKind::OffsetDelete(_)
            | RequestKind::TxnOffsetCommit(_)
            | RequestKind::AddPartitionsToTxn(_)
            | RequestKind::AddOffsetsToTxn(_)
            | RequestKind::EndTxn(_)
            | RequestKind::DescribeTransactions(_)
    ) || matches!(body, RequestKind::InitProducerId(r) if r.transactional_id.is_some())
}

/// In a virtual cluster, what a broker other than the coordinator answers
/// to a coordinator's request: NOT_COORDINATOR, as Kafka; listings of
/// groups and transactions are empty there (each Kafka broker lists its
/// own, and admin clients ask them all).
fn elsewhere(b: &Broker, ctx: Ctx, body: &RequestKind) -> Option<ResponseKind> {
    let cluster = b.cluster();
    if !cluster.is_virtual() || cluster.coordinator() == ctx.node {
        return None;
    }
    match body {
        RequestKind::ListGroups(_) => Some(ResponseKind::ListGroups(Default::default())),
        RequestKind::ListTransactions(_) => {
            Some(ResponseKind::ListTransactions(Default::default()))
        }
        _ if coordinated(body) => {
            fault::response::error_response(body, ctx.version, ResponseError::NotCoordinator.code())
        }
        _ => None,
    }
}

async fn route(b: &Broker, ctx: Ctx, client_id: &str, body: RequestKind) -> Handled {
    let v = ctx.version;
    let now = |k: ResponseKind| Handled::Now(Response::Kind(Box::new(k)));
    match body {
        RequestKind::ApiVersions(r) => now(api_versions::handle(r, v).into()),
        RequestKind::Metadata(r) => metadata::handle(b, ctx, r),
        RequestKind::Produce(r) => produce::handle(b, r, v, ctx.node).await,
        RequestKind::Fetch(r) => fetch::handle(b, ctx, r).await,
        RequestKind::ListOffsets(r) => now(list_offsets::handle(b, r, v, ctx.node).await.into()),
        RequestKind::OffsetForLeaderEpoch(r) => {
            now(offset_for_leader_epoch::handle(b, r, v, ctx.node).into())
        }
        RequestKind::CreateTopics(r) => durable(b, create_topics::handle(b, r, v).into()),
        RequestKind::DeleteTopics(r) => durable(b, delete_topics::handle(b, r, v).into()),
        RequestKind::IncrementalAlterConfigs(r) => incremental_alter_configs::handle(b, r, v),
        RequestKind::AlterConfigs(r) => alter_configs::handle(b, r, v),
        RequestKind::DescribeTopicPartitions(r) => {
            now(describe_topic_partitions::handle(b, r, v).into())
        }
        RequestKind::DeleteRecords(r) => delete_records::handle(b, r, v),
        RequestKind::DescribeLogDirs(r) => now(describe_log_dirs::handle(b, r, v).into()),
        RequestKind::ElectLeaders(r) => now(elect_leaders::handle(b, r, v).into()),
        RequestKind::ListPartitionReassignments(r) => {
            now(list_partition_reassignments::handle(b, r, v).into())
        }
        RequestKind::AlterPartitionReassignments(r) => {
            now(alter_partition_reassignments::handle(b, r, v).into())
        }
        RequestKind::CreatePartitions(r) => create_partitions::handle(b, r, v),
        RequestKind::InitProducerId(r) => init_producer_id::handle(b, r, v),
        RequestKind::AddPartitionsToTxn(r) => add_partitions_to_txn::handle(b, r, v),
        RequestKind::AddOffsetsToTxn(r) => add_offsets_to_txn::handle(b, r, v),
        RequestKind::TxnOffsetCommit(r) => txn_offset_commit::handle(b, r, v),
        RequestKind::EndTxn(r) => end_txn::handle(b, r, v),
        RequestKind::DescribeTransactions(r) => now(describe_transactions::handle(b, r, v).into()),
        RequestKind::ListTransactions(r) => now(list_transactions::handle(b, r, v).into()),
        RequestKind::DescribeProducers(r) => now(describe_producers::handle(b, r, v).into()),
        RequestKind::DescribeConfigs(r) => now(describe_configs::handle(b, r, v).into()),
        RequestKind::DescribeCluster(r) => now(describe_cluster::handle(b, r, v).into()),
        RequestKind::FindCoordinator(r) => now(find_coordinator::handle(b, r, v).into()),
        RequestKind::JoinGroup(r) => join_group::handle(b, ctx, client_id, r),
        RequestKind::SyncGroup(r) => sync_group::handle(b, ctx, r),
        RequestKind::Heartbeat(r) => now(heartbeat::handle(b, r, v).into()),
        RequestKind::LeaveGroup(r) => now(leave_group::handle(b, r, v).into()),
        RequestKind::OffsetCommit(r) => offset_commit::handle(b, r, v),
        RequestKind::OffsetFetch(r) => now(offset_fetch::handle(b, r, v).into()),
        RequestKind::DescribeGroups(r) => now(describe_groups::handle(b, r, v).into()),
        RequestKind::ListGroups(r) => now(list_groups::handle(b, r, v).into()),
        RequestKind::DeleteGroups(r) => durable(b, delete_groups::handle(b, r, v).into()),
        RequestKind::OffsetDelete(r) => durable(b, offset_delete::handle(b, r, v).into()),
        // The decoder refuses APIs missing from the versions table, so this
        // only fires if the table and this match disagree.
        _ => Handled::Now(Response::Close(format!(
            "no handler for {}",
            api_name(ctx.api_key)
        ))),
    }
}

/// Answers after the store's next durable flush, so that an acknowledged
/// change (a created or deleted topic or group) survives a crash. If that
/// flush failed, nothing in the answer claims success: what would have
/// said "done" says KAFKA_STORAGE_ERROR, as a Produce does.
fn durable(b: &Broker, mut kind: ResponseKind) -> Handled {
    let sync = b.store().sync();
    Handled::Later(Box::pin(async move {
        if let Err(e) = sync.await {
            warn!(cause = %e, "durable flush failed; the change is not acknowledged");
            storage_failed(&mut kind);
        }
        Response::Kind(Box::new(kind))
    }))
}

/// [`durable`] when something changed, else the answer now.
pub(crate) fn durable_if(b: &Broker, changed: bool, kind: ResponseKind) -> Handled {
    if changed {
        durable(b, kind)
    } else {
        Handled::Now(Response::Kind(Box::new(kind)))
    }
}

fn storage_failed(kind: &mut ResponseKind) {
    let code = ResponseError::KafkaStorageError.code();
    let msg = || Some(str_bytes("the change could not be made durable"));
    match kind {
        ResponseKind::CreateTopics(r) => {
            for t in r.topics.iter_mut().filter(|t| t.error_code == 0) {
                t.error_code = code;
                t.error_message = msg();
            }
        }
        ResponseKind::DeleteTopics(r) => {
            for t in r.responses.iter_mut().filter(|t| t.error_code == 0) {
                t.error_code = code;
                t.error_message = msg();
            }
        }
        ResponseKind::IncrementalAlterConfigs(r) => {
            for x in r.responses.iter_mut().filter(|x| x.error_code == 0) {
                x.error_code = code;
                x.error_message = msg();
            }
        }
        ResponseKind::AlterConfigs(r) => {
            for x in r.responses.iter_mut().filter(|x| x.error_code == 0) {
                x.error_code = code;
                x.error_message = msg();
            }
        }
        ResponseKind::CreatePartitions(r) => {
            for x in r.results.iter_mut().filter(|x| x.error_code == 0) {
                x.error_code = code;
                x.error_message = msg();
            }
        }
        ResponseKind::DeleteGroups(r) => {
            for g in r.results.iter_mut().filter(|g| g.error_code == 0) {
                g.error_code = code;
            }
        }
        ResponseKind::OffsetDelete(r) if r.error_code == 0 => {
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                if p.error_code == 0 {
                    p.error_code = code;
                }
            }
        }
        _ => {}
    }
}

fn finish(b: &Broker, ctx: Ctx, r: Response, started: Instant, throttle_ms: i32) -> Reply {
    let api = api_name(ctx.api_key);
    let reply = match r {
        Response::Kind(mut kind) => {
            if throttle_ms > 0 {
                fault::response::set_throttle(&mut kind, throttle_ms);
            }
            let mut codes = Vec::new();
            fault::response::error_codes(&kind, &mut codes);
            if !codes.is_empty() {
                b.metrics().errors(api, ctx.version, &codes);
            }
            match encode_response(ctx.correlation_id, ctx.api_key, ctx.version, &kind) {
                Ok(frame) => Reply::Frame(vec![frame.freeze()], None),
                Err(e) => {
                    warn!(cause = %e, "response encoding failed");
                    Reply::Close(e.to_string())
                }
            }
        }
        Response::Raw(mut chunks, budget) => {
            if throttle_ms > 0 {
                if let Some(first) = chunks.first_mut() {
                    let mut head = bytes::BytesMut::from(&first[..]);
                    if fault::response::patch_raw_throttle(
                        ctx.api_key,
                        ctx.version,
                        &mut head,
                        throttle_ms,
                    ) {
                        *first = head.freeze();
                    }
                }
            }
            Reply::Frame(chunks, budget)
        }
        Response::Nothing => Reply::Nothing,
        Response::Close(reason) => Reply::Close(reason),
    };
    b.metrics().request(api, ctx.version, started.elapsed());
    reply
}

/// Topic name as the codec's type.
pub(crate) fn topic_name(s: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(kafka_protocol::protocol::StrBytes::from_string(
        s.to_string(),
    ))
}

/// A string as the codec's type.
pub(crate) fn str_bytes(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_string())
}
