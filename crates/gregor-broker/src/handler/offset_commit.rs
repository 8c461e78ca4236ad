//! OffsetCommit (8), v2–9: member and generation checks in the
//! coordinator; the offsets are stored durably before the reply.

use gregor_storage::CommittedOffset;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, ResponseKind};
use tracing::warn;

use super::{Handled, Response};
use crate::context::{now_ms, Broker};
use crate::coordinator::code;
use crate::error::storage_error;
use kafka_protocol::ResponseError;

/// Kafka's `offset.metadata.max.bytes` default.
const MAX_METADATA: usize = 4096;

pub fn handle(b: &Broker, req: OffsetCommitRequest, version: i16) -> Handled {
    let all = |error: i16, req: &OffsetCommitRequest| {
        let topics = req
            .topics
            .iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(error)
                            })
                            .collect(),
                    )
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    };
    b.ensure_offsets_topic();
    let group = req.group_id.0.to_string();
    if group.is_empty() {
        return now(all(code::INVALID_GROUP_ID, &req));
    }
    if let Err(e) = b.coordinator().validate_commit(
        &group,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id_or_member_epoch,
        version,
    ) {
        return now(all(e, &req));
    }
    let ts = now_ms();
    let mut to_store = Vec::new();
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let meta = b.store().topic(&t.name.0);
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let error = match &meta {
                None => ResponseError::UnknownTopicOrPartition.code(),
                Some(m) if p.partition_index < 0 || p.partition_index >= m.partitions => {
                    ResponseError::UnknownTopicOrPartition.code()
                }
                _ if p
                    .committed_metadata
                    .as_ref()
                    .is_some_and(|m| m.len() > MAX_METADATA) =>
                {
                    ResponseError::OffsetMetadataTooLarge.code()
                }
                _ => {
                    to_store.push(CommittedOffset {
                        topic: t.name.0.to_string(),
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: if version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                        commit_timestamp: ts,
                    });
                    0
                }
            };
            parts.push(
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(error),
            );
        }
        topics.push(
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(parts),
        );
    }
    let mut resp = OffsetCommitResponse::default().with_topics(topics);
    if to_store.is_empty() {
        return now(resp);
    }
    if let Err(e) = b.store().commit_offsets(&group, &to_store) {
        warn!(group, cause = %e, "offset commit failed");
        return now(all(storage_error(&e).code(), &req));
    }
    // Answer once the commit is on disk: a restarted consumer resumes here.
    let sync = b.store().sync();
    Handled::Later(Box::pin(async move {
        if let Err(e) = sync.await {
            warn!(cause = %e, "offset commit not durable");
            for t in &mut resp.topics {
                for p in &mut t.partitions {
                    if p.error_code == 0 {
                        p.error_code = ResponseError::KafkaStorageError.code();
                    }
                }
            }
        }
        Response::Kind(Box::new(ResponseKind::OffsetCommit(resp)))
    }))
}

fn now(r: OffsetCommitResponse) -> Handled {
    Handled::Now(Response::Kind(Box::new(ResponseKind::OffsetCommit(r))))
}
