//! ListOffsets (2): earliest, latest, max timestamp, and by timestamp.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::context::Broker;
use crate::error::storage_error;
use kafka_protocol::ResponseError;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// Lookups by timestamp may decompress stored batches, so a request with
/// any runs on the blocking pool (bounded, see [`Broker::inflate`]).
pub async fn handle(
    b: &Broker,
    req: ListOffsetsRequest,
    version: i16,
    node: i32,
) -> ListOffsetsResponse {
    let by_time = req
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .any(|p| p.timestamp >= 0 || p.timestamp == MAX_TIMESTAMP);
    if !by_time {
        return answer(b, req, version, node);
    }
    let broker = b.clone();
    match b.inflate(move || answer(&broker, req, version, node)).await {
        Ok(resp) => resp,
        // The closure does not panic on any input; if it ever did, the
        // client gets an error rather than a dropped connection.
        Err(e) => {
            tracing::error!(cause = %e, "ListOffsets lookup failed");
            ListOffsetsResponse::default()
        }
    }
}

fn answer(b: &Broker, req: ListOffsetsRequest, version: i16, node: i32) -> ListOffsetsResponse {
    // read_committed sees the log up to the last stable offset only.
    let committed = version >= 2 && req.isolation_level == 1;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    let log = match b.led_partition(
                        node,
                        &t.name.0,
                        p.partition_index,
                        p.current_leader_epoch,
                    ) {
                        Ok((log, _)) => log,
                        Err(code) => return base.with_error_code(code.code()),
                    };
                    let cap = || {
                        b.store()
                            .topic(&t.name.0)
                            .map_or(usize::MAX, |m| b.inflate_limit(&m.configs))
                    };
                    let fetchable = if committed {
                        log.last_stable_offset()
                    } else {
                        log.high_watermark()
                    };
                    let found = match p.timestamp {
                        LATEST => Ok(Some((fetchable, -1))),
                        EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
                        MAX_TIMESTAMP if version >= 7 => log.max_timestamp(cap()),
                        // No tiered storage: nothing is tiered.
                        LATEST_TIERED if version >= 9 => Ok(None),
                        ts if ts >= 0 => log.offset_for_timestamp(ts, cap()),
                        _ => {
                            return base.with_error_code(ResponseError::UnsupportedVersion.code());
                        }
                    };
                    // A timestamp lookup never points past what this
                    // isolation level may read.
                    let by_ts = p.timestamp >= 0 || p.timestamp == MAX_TIMESTAMP;
                    let found = found.map(|f| f.filter(|(o, _)| !by_ts || *o < fetchable));
                    match found {
                        Ok(Some((offset, ts))) => base
                            .with_error_code(0)
                            .with_offset(offset)
                            .with_timestamp(ts)
                            // leader_epoch exists from v4; the codec refuses it before.
                            .with_leader_epoch(if version >= 4 {
                                b.cluster().epoch_at(&t.name.0, p.partition_index, offset)
                            } else {
                                -1
                            }),
                        Ok(None) => base.with_error_code(0),
                        Err(e) => base.with_error_code(storage_error(&e).code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
