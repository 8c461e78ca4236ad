//! DescribeTopicPartitions (75, KIP-966): topics and their partitions,
//! which `kafka-topics.sh --describe` prefers in Kafka 4. Topics in name
//! order (all of them for an empty list), at most
//! `response_partition_limit` partitions per response, and a cursor to
//! the next partition when there are more.

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
};
use kafka_protocol::ResponseError;

use super::topic_name;
use crate::context::Broker;
use crate::topics;

/// Kafka's limit when the request asks for more (or for nothing).
const MAX_PARTITIONS: i32 = 2000;

/// The topic operations Kafka reports without an authorizer, which it
/// fills in even though v0 has no flag asking for them.
const ALL_OPERATIONS: i32 = super::metadata::TOPIC_OPERATIONS;

pub fn handle(
    b: &Broker,
    req: DescribeTopicPartitionsRequest,
    _version: i16,
) -> DescribeTopicPartitionsResponse {
    // Kafka serves at least one partition per page.
    let limit = req.response_partition_limit.clamp(1, MAX_PARTITIONS);
    let mut names: Vec<String> = if req.topics.is_empty() {
        b.store().topics().into_iter().map(|m| m.name).collect()
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (from_topic, from_partition) = match &req.cursor {
        Some(c) => (Some(c.topic_name.0.to_string()), c.partition_index.max(0)),
        None => (None, 0),
    };
    // A cursor on a topic the request does not name is refused for every
    // topic named, as Kafka refuses it.
    if let Some(f) = &from_topic {
        if !req.topics.is_empty() && !names.contains(f) {
            let topics = names
                .iter()
                .map(|n| {
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_name(Some(topic_name(n)))
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_topic_authorized_operations(i32::MIN)
                })
                .collect();
            return DescribeTopicPartitionsResponse::default().with_topics(topics);
        }
    }
    // Leaders, replicas and ISR as Metadata gives them (virtual clusters).
    let cluster = b.cluster();
    let single = !cluster.is_virtual();
    let replicas: Vec<BrokerId> = cluster.nodes().iter().map(|n| BrokerId(n.id)).collect();
    let isr: Vec<BrokerId> = cluster.live().iter().map(|n| BrokerId(n.id)).collect();
    let offline: Vec<BrokerId> = cluster.down_ids().into_iter().map(BrokerId).collect();
    let mut left = limit;
    let mut topics_out = Vec::new();
    let mut next_cursor = None;
    for name in names {
        if from_topic.as_ref().is_some_and(|f| name < *f) {
            continue;
        }
        let base = DescribeTopicPartitionsResponseTopic::default()
            .with_name(Some(topic_name(&name)))
            .with_topic_authorized_operations(ALL_OPERATIONS);
        let Some(meta) = b.store().topic(&name) else {
            topics_out.push(base.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
            continue;
        };
        if left == 0 {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(topic_name(&name))
                    .with_partition_index(0),
            );
            break;
        }
        let start = if from_topic.as_deref() == Some(name.as_str()) {
            from_partition
        } else {
            0
        };
        let mut partitions = Vec::new();
        let mut p = start;
        while p < meta.partitions && left > 0 {
            let leader = cluster.leader(&name, p);
            let own = if single {
                None
            } else {
                cluster.replicas(&name, p)
            };
            let (reps, in_sync, off) = match own {
                _ if single => (
                    vec![BrokerId(leader.id)],
                    vec![BrokerId(leader.id)],
                    Vec::new(),
                ),
                // An assigned replica set: its members that are up / down.
                Some(own) => {
                    let ids: Vec<BrokerId> = own.into_iter().map(BrokerId).collect();
                    let of = |set: &[BrokerId]| -> Vec<BrokerId> {
                        ids.iter().copied().filter(|id| set.contains(id)).collect()
                    };
                    (ids.clone(), of(&isr), of(&offline))
                }
                None => (replicas.clone(), isr.clone(), offline.clone()),
            };
            partitions.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_error_code(0)
                    .with_partition_index(p)
                    .with_leader_id(BrokerId(leader.id))
                    .with_leader_epoch(leader.epoch)
                    .with_replica_nodes(reps)
                    .with_isr_nodes(in_sync)
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
                    .with_offline_replicas(off),
            );
            p += 1;
            left -= 1;
        }
        topics_out.push(
            base.with_error_code(0)
                .with_topic_id(meta.id)
                .with_is_internal(topics::is_internal(&name))
                .with_partitions(partitions),
        );
        if p < meta.partitions {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(topic_name(&name))
                    .with_partition_index(p),
            );
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics_out)
        .with_next_cursor(next_cursor)
}
