//! DeleteRecords (21): moves a partition's log start offset up to the
//! given offset (-1: the high watermark), as `kafka-delete-records.sh` and
//! Kafka Streams (trimming its repartition topics) use it. Fetch and
//! ListOffsets earliest follow at once; whole segments below the new start
//! are deleted. The new start is durable before the answer.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, ResponseKind};
use kafka_protocol::ResponseError;
use tracing::warn;

use super::{Handled, Response};
use crate::context::Broker;
use crate::error::storage_error;

/// Kafka's `DeleteRecordsRequest.HIGH_WATERMARK`.
const HIGH_WATERMARK: i64 = -1;

pub fn handle(b: &Broker, req: DeleteRecordsRequest, _version: i16) -> Handled {
    let b = b.clone();
    Handled::Later(Box::pin(async move {
        // Each partition's deletion syncs the store: off the reactor.
        let b2 = b.clone();
        let topics = tokio::task::spawn_blocking(move || delete_all(&b2, &req))
            .await
            .unwrap_or_else(|e| {
                warn!(cause = %e, "DeleteRecords failed");
                Vec::new()
            });
        Response::Kind(Box::new(ResponseKind::DeleteRecords(
            DeleteRecordsResponse::default().with_topics(topics),
        )))
    }))
}

fn delete_all(b: &Broker, req: &DeleteRecordsRequest) -> Vec<DeleteRecordsTopicResult> {
    req.topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    let Some(log) = b.store().partition(&t.name.0, p.partition_index) else {
                        return r.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let hw = log.high_watermark();
                    let target = if p.offset == HIGH_WATERMARK { hw } else { p.offset };
                    if target < 0 || target > hw {
                        return r.with_error_code(ResponseError::OffsetOutOfRange.code());
                    }
                    match log.delete_records_before(target) {
                        Ok(low) => r.with_error_code(0).with_low_watermark(low),
                        Err(e) => {
                            warn!(topic = %&*t.name.0, partition = p.partition_index, cause = %e, "DeleteRecords failed");
                            r.with_error_code(storage_error(&e).code())
                        }
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect()
}
