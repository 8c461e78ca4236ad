//! TxnOffsetCommit (28): offsets a transaction commits for a group. They
//! are staged in the transaction (durably) and become the group's
//! committed offsets only when the transaction commits; an abort drops
//! them. v3+ carries the consumer's generation (KIP-447), checked as an
//! OffsetCommit's is; v5+ (transaction version 2) adds the group to the
//! transaction implicitly.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ResponseKind, TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::init_producer_id::fenced_for;
use super::{Handled, Response};
use crate::context::{now_ms, Broker};
use crate::coordinator::code;
use crate::coordinator::txn::PendingOffset;
use crate::txn;
use kafka_protocol::ResponseError;

/// Kafka's `offset.metadata.max.bytes`.
const MAX_METADATA: usize = 4096;

pub fn handle(b: &Broker, req: TxnOffsetCommitRequest, version: i16) -> Handled {
    let b = b.clone();
    Handled::Later(Box::pin(async move {
        let code = commit(&b, &req, version).await;
        let topics = req
            .topics
            .iter()
            .map(|t| {
                TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                let c = match code {
                                    Ok(()) if too_large(p.committed_metadata.as_deref()) => {
                                        ResponseError::OffsetMetadataTooLarge.code()
                                    }
                                    Ok(()) => 0,
                                    Err(c) => c,
                                };
                                TxnOffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(c)
                            })
                            .collect(),
                    )
            })
            .collect();
        Response::Kind(Box::new(ResponseKind::TxnOffsetCommit(
            TxnOffsetCommitResponse::default().with_topics(topics),
        )))
    }))
}

fn too_large(m: Option<&str>) -> bool {
    m.is_some_and(|m| m.len() > MAX_METADATA)
}

async fn commit(b: &Broker, req: &TxnOffsetCommitRequest, version: i16) -> Result<(), i16> {
    let group = req.group_id.0.to_string();
    if group.is_empty() {
        return Err(code::INVALID_GROUP_ID);
    }
    // KIP-447: a consumer's generation and member id, when given, must be
    // current (checked like an OffsetCommit v8's). Without any of them a
    // transactional commit is accepted even by a group with members, as
    // Kafka's `validateOffsetCommit` does (sarama sends only the group).
    let identified =
        req.generation_id >= 0 || !req.member_id.is_empty() || req.group_instance_id.is_some();
    if version >= 3 && identified {
        b.coordinator().validate_commit(
            &group,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
            8,
        )?;
    }
    let offsets: Vec<PendingOffset> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| !too_large(p.committed_metadata.as_deref()))
                .map(|p| PendingOffset {
                    group: group.clone(),
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if version >= 2 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                })
        })
        .collect();
    let id = req.transactional_id.0.to_string();
    {
        let mut c = b.txns().lock();
        c.stage_offsets(
            &id,
            req.producer_id.0,
            req.producer_epoch,
            &group,
            offsets,
            version >= 5,
            now_ms(),
        )
        .and_then(|()| txn::persist(b, &c, &id))
        // The group coordinator reports a stale epoch as Kafka's does.
        .map_err(|e| fenced_for(e, version, i16::MAX).code())?;
    }
    txn::durable(b).await.map_err(|e| e.code())
}
