//! Metadata (3): brokers, cluster id, controller, and topics, auto-creating
//! requested topics when allowed.

use gregor_storage::TopicMeta;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::StrBytes;
use tracing::info;

use super::{str_bytes, topic_name};
use crate::context::{Broker, CreateError};
use kafka_protocol::ResponseError;

pub fn handle(b: &Broker, req: MetadataRequest, version: i16) -> MetadataResponse {
    let node = b.node_id();
    let store = b.store();
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    // v0–3 have no flag: Kafka auto-creates for them whenever enabled.
    let allow_create =
        b.config().auto_create_topics_enable && (version < 4 || req.allow_auto_topic_creation);
    let topics = match requested {
        None => store
            .topics()
            .iter()
            .map(|t| topic_entry(node, t))
            .collect(),
        Some(list) => list
            .into_iter()
            .map(|t| match t.name {
                Some(name) => by_name(b, &name.0, allow_create),
                None => match store.topic_by_id(t.topic_id) {
                    Some(meta) => topic_entry(node, &meta),
                    None => MetadataResponseTopic::default()
                        .with_topic_id(t.topic_id)
                        .with_error_code(ResponseError::UnknownTopicId.code()),
                },
            })
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(node))
            .with_host(str_bytes(b.host()))
            .with_port(b.port())])
        .with_cluster_id(Some(str_bytes(&b.config().cluster_id)))
        .with_controller_id(BrokerId(node))
        .with_topics(topics)
}

fn by_name(b: &Broker, name: &StrBytes, allow_create: bool) -> MetadataResponseTopic {
    if let Some(meta) = b.store().topic(name) {
        return topic_entry(b.node_id(), &meta);
    }
    let unknown = |code: ResponseError| {
        MetadataResponseTopic::default()
            .with_name(Some(topic_name(name)))
            .with_error_code(code.code())
    };
    if !allow_create {
        return unknown(ResponseError::UnknownTopicOrPartition);
    }
    match b.auto_create(name) {
        // Kafka 4 forwards the creation to its controller and answers the
        // request that triggered it with UNKNOWN_TOPIC_OR_PARTITION (not
        // ZooKeeper-era LEADER_NOT_AVAILABLE); clients retry and find it.
        Ok(meta) => {
            info!(topic = %meta.name, partitions = meta.partitions, "auto-created topic");
            unknown(ResponseError::UnknownTopicOrPartition)
        }
        Err(CreateError::InvalidName(_)) => unknown(ResponseError::InvalidTopicException),
        // Created concurrently by someone else: it exists now.
        Err(CreateError::Storage(_)) => match b.store().topic(name) {
            Some(meta) => topic_entry(b.node_id(), &meta),
            None => unknown(ResponseError::UnknownTopicOrPartition),
        },
    }
}

/// A topic led by this node: every partition has one replica, in sync.
pub fn topic_entry(node: i32, t: &TopicMeta) -> MetadataResponseTopic {
    let partitions = (0..t.partitions)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(node))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(node)])
                .with_isr_nodes(vec![BrokerId(node)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&t.name)))
        .with_topic_id(t.id)
        .with_partitions(partitions)
}
