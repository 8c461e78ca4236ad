//! Fetch (1), v4–12: serve stored batches as they are; long-poll until
//! `min_bytes` arrive or `max_wait_ms` passes, woken by appends.

use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::fetch::{
    encode_fetch_response, FetchPartition, FetchResponseParts, FetchTopic,
};
use gregor_protocol::records::BatchHeader;
use kafka_protocol::messages::FetchRequest;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Ctx, Handled, Response};
use crate::context::Broker;
use crate::error::storage_error;
use kafka_protocol::ResponseError;

/// Sessionless fetch: Gregor never creates KIP-227 sessions (it answers
/// session id 0), so clients keep sending full fetch requests.
const NO_SESSION: i32 = 0;

pub async fn handle(b: &Broker, ctx: Ctx, req: FetchRequest) -> Handled {
    if req.session_id != NO_SESSION {
        let parts = FetchResponseParts {
            error_code: ResponseError::FetchSessionIdNotFound.code(),
            ..Default::default()
        };
        return Handled::Now(Response::Raw(
            encode_fetch_response(ctx.correlation_id, ctx.version, &parts),
            None,
        ));
    }
    let req = Arc::new(req);
    let (first, bytes) = read_off_reactor(b, &req, ctx.node).await;
    let max_wait = u64::try_from(req.max_wait_ms).unwrap_or(0);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    if bytes >= min_bytes || max_wait == 0 || has_error(&first) {
        return Handled::Now(respond(b, ctx, &first, bytes));
    }
    // Long poll: the reply waits; later requests on this connection still
    // get applied in order, and replies still leave in order.
    let b = b.clone();
    Handled::Later(Box::pin(async move {
        let deadline = Instant::now() + Duration::from_millis(max_wait);
        let waiter = Arc::new(Notify::new());
        // Register once, before re-reading, so that no append slips between:
        // `notify_one` leaves a permit when nobody is waiting yet.
        for t in &req.topics {
            for p in &t.partitions {
                if let Some(log) = b.store().partition(&t.topic.0, p.partition) {
                    log.register_waiter(&waiter);
                }
            }
        }
        let (parts, bytes) = loop {
            let (parts, bytes) = read_off_reactor(&b, &req, ctx.node).await;
            if bytes >= min_bytes || has_error(&parts) {
                break (parts, bytes);
            }
            if tokio::time::timeout_at(deadline, waiter.notified())
                .await
                .is_err()
            {
                // Deadline: answer with whatever is there now.
                break read_off_reactor(&b, &req, ctx.node).await;
            }
        };
        respond(&b, ctx, &parts, bytes)
    }))
}

/// Encodes the response and charges its record bytes to the memory
/// budget until written. `read_all` kept within what the budget had left,
/// so this only fails to charge when a KIP-74 first batch went beyond it
/// or another fetch raced for the same room: one batch, bounded by
/// `message.max.bytes`, goes out uncharged then.
fn respond(b: &Broker, ctx: Ctx, parts: &FetchResponseParts, bytes: usize) -> Response {
    let charge = b.memory().try_take(bytes);
    if bytes > 0 {
        for t in &parts.topics {
            let n: usize = t
                .partitions
                .iter()
                .flat_map(|p| &p.records)
                .map(|r| r.len())
                .sum();
            if n > 0 {
                b.metrics().bytes_out(&t.name, n);
            }
        }
    }
    Response::Raw(
        encode_fetch_response(ctx.correlation_id, ctx.version, parts),
        charge,
    )
}

fn has_error(parts: &FetchResponseParts) -> bool {
    parts
        .topics
        .iter()
        .any(|t| t.partitions.iter().any(|p| p.error_code != 0))
}

/// [`read_all`] on the blocking pool: segment reads may wait for the disk.
/// Memory stores read in place.
async fn read_off_reactor(
    b: &Broker,
    req: &Arc<FetchRequest>,
    node: i32,
) -> (FetchResponseParts, usize) {
    if !b.store().is_persistent() {
        return read_all(b, req, node);
    }
    let (b2, r2) = (b.clone(), Arc::clone(req));
    match tokio::task::spawn_blocking(move || read_all(&b2, &r2, node)).await {
        Ok(out) => out,
        // A panic inside read_all (a bug): fail this request, not the broker.
        Err(e) => {
            tracing::error!(cause = %e, "fetch read failed");
            (
                FetchResponseParts {
                    error_code: ResponseError::UnknownServerError.code(),
                    ..Default::default()
                },
                0,
            )
        }
    }
}

/// Reads every requested partition, in request order, within the response
/// and partition byte limits. Returns the response and its record bytes.
fn read_all(b: &Broker, req: &FetchRequest, node: i32) -> (FetchResponseParts, usize) {
    // The broker's fetch.max.bytes caps whatever the client asks (0 and
    // negative included), and so does what is left of the memory budget.
    let cap = usize::try_from(b.config().fetch_max_bytes).unwrap_or(0);
    let asked = usize::try_from(req.max_bytes).ok().filter(|n| *n > 0);
    let mut budget = asked.unwrap_or(cap).min(cap).min(b.memory().available());
    let mut total = 0usize;
    let committed = req.isolation_level == 1;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = t.topic.0.to_string();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let mut out = FetchPartition {
                partition: p.partition,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                ..Default::default()
            };
            let log = match b.led_partition(node, &name, p.partition, p.current_leader_epoch) {
                Ok((log, _)) => log,
                Err(code) => {
                    out.error_code = code.code();
                    if matches!(
                        code,
                        ResponseError::NotLeaderOrFollower | ResponseError::FencedLeaderEpoch
                    ) {
                        let l = b.cluster().leader(&name, p.partition);
                        out.current_leader = Some((l.id, l.epoch));
                    }
                    // Kafka lists no aborted transactions (rather than null)
                    // for partitions it could not look up.
                    if code == ResponseError::UnknownTopicOrPartition {
                        out.aborted = Some(Vec::new());
                    }
                    partitions.push(out);
                    continue;
                }
            };
            let limit = usize::try_from(p.partition_max_bytes)
                .unwrap_or(0)
                .min(budget);
            // read_committed stops at the last stable offset, which is
            // always a batch boundary (the first batch of an open
            // transaction) or the high watermark.
            let lso = log.last_stable_offset();
            let read = if committed {
                log.read_below(p.fetch_offset, limit.max(1), lso)
            } else {
                log.read(p.fetch_offset, limit.max(1))
            };
            match read {
                Ok(r) => {
                    out.high_watermark = r.high_watermark;
                    out.last_stable_offset = lso.min(r.high_watermark);
                    out.log_start_offset = r.log_start_offset;
                    let mut batches = r.batches;
                    let size: usize = batches.iter().map(|x| x.len()).sum();
                    // KIP-74: only the first batch of the whole response may
                    // exceed the limits; later partitions keep to them.
                    if total > 0 && size > limit {
                        batches.clear();
                    }
                    let size: usize = batches.iter().map(|x| x.len()).sum();
                    total += size;
                    budget = budget.saturating_sub(size);
                    if committed {
                        // The aborted transactions a consumer must hide
                        // within what it gets (Kafka's `collectAbortedTxns`).
                        let upto = batches
                            .last()
                            .and_then(|x| BatchHeader::parse(x).ok())
                            .map_or(p.fetch_offset, |h| h.last_offset() + 1);
                        out.aborted = Some(log.aborted_txns(p.fetch_offset, upto));
                    }
                    out.records = batches;
                }
                // Like Kafka, an error (OFFSET_OUT_OF_RANGE included) carries
                // no offsets: the client asks ListOffsets to reset.
                Err(e) => out.error_code = storage_error(&e).code(),
            }
            partitions.push(out);
        }
        topics.push(FetchTopic { name, partitions });
    }
    (
        FetchResponseParts {
            session_id: NO_SESSION,
            topics,
            ..Default::default()
        },
        total,
    )
}
