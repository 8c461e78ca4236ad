//! Metadata (3): brokers, cluster id, controller, and topics, auto-creating
//! requested topics when allowed.
//!
//! The answer is written straight to bytes ([`encode_metadata_response`]):
//! its cost is one short loop per partition listed, which matters because
//! librdkafka asks for hundreds of topics at a time, again and again, while
//! it produces to many partitions (issue 8).

use gregor_protocol::metadata::{
    encode_metadata_response, MetadataBroker, MetadataParts, MetadataTopic, NO_OPERATIONS,
};
use gregor_storage::TopicMeta;
use kafka_protocol::messages::MetadataRequest;
use kafka_protocol::protocol::StrBytes;
use tracing::info;

use super::{Ctx, Handled, Response};
use crate::context::{Broker, CreateError};
use kafka_protocol::ResponseError;

/// Leader epoch of every partition: a single node never elects another.
const LEADER_EPOCH: i32 = 0;

/// What Kafka without an authorizer reports a client may do to a topic
/// (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS,
/// ALTER_CONFIGS: every operation of the resource type) ...
pub const TOPIC_OPERATIONS: i32 = 3576;
/// ... and to the cluster (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE).
pub const CLUSTER_OPERATIONS: i32 = 8096;

pub fn handle(b: &Broker, ctx: Ctx, req: MetadataRequest) -> Handled {
    let version = ctx.version;
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
    let topics: Vec<MetadataTopic> = match requested {
        None => store.topics().iter().map(topic_entry).collect(),
        Some(list) => list
            .into_iter()
            .map(|t| match t.name {
                Some(name) => by_name(b, &name.0, allow_create),
                None => match store.topic_by_id(t.topic_id) {
                    Some(meta) => topic_entry(&meta),
                    None => MetadataTopic {
                        error_code: ResponseError::UnknownTopicId.code(),
                        name: None,
                        topic_id: *t.topic_id.as_bytes(),
                        is_internal: false,
                        partitions: 0,
                        leaders: Vec::new(),
                        replicas: Vec::new(),
                    },
                },
            })
            .collect(),
    };
    let cluster = b.cluster();
    let live = cluster.live();
    let replicas: Vec<i32> = cluster.nodes().iter().map(|n| n.id).collect();
    let isr: Vec<i32> = live.iter().map(|n| n.id).collect();
    let offline = cluster.down_ids();
    let mut topics = topics;
    // Leaders and epochs of their own: a virtual cluster, or a single
    // broker whose partitions were moved in an earlier virtual run.
    if cluster.is_virtual() || !cluster.is_plain() {
        for t in topics.iter_mut().filter(|t| t.error_code == 0) {
            if let Some(name) = &t.name {
                t.leaders = (0..t.partitions)
                    .map(|p| {
                        let l = cluster.leader(name, p);
                        (l.id, l.epoch)
                    })
                    .collect();
                // Assigned replica sets; most topics have none.
                let own: Vec<Vec<i32>> = (0..t.partitions)
                    .map(|p| cluster.replicas(name, p).unwrap_or_default())
                    .collect();
                if own.iter().any(|r| !r.is_empty()) {
                    t.replicas = own;
                }
            }
        }
    }
    let node = b.node_id();
    let parts = MetadataParts {
        throttle_time_ms: 0,
        brokers: live
            .iter()
            .map(|n| MetadataBroker {
                node_id: n.id,
                host: n.host.clone(),
                port: n.port,
                rack: None,
            })
            .collect(),
        cluster_id: Some(b.config().cluster_id.clone()),
        controller_id: live.first().map_or(node, |n| n.id),
        leader_id: node,
        leader_epoch: LEADER_EPOCH,
        topics,
        replicas,
        isr,
        offline,
        // Asked for by admin clients describing topics (v8+) or the
        // cluster (v8-v10).
        topic_operations: if version >= 8 && req.include_topic_authorized_operations {
            TOPIC_OPERATIONS
        } else {
            NO_OPERATIONS
        },
        cluster_operations: if (8..=10).contains(&version)
            && req.include_cluster_authorized_operations
        {
            CLUSTER_OPERATIONS
        } else {
            NO_OPERATIONS
        },
    };
    let frame = encode_metadata_response(ctx.correlation_id, version, &parts);
    Handled::Now(Response::Raw(vec![frame.freeze()], None))
}

fn by_name(b: &Broker, name: &StrBytes, allow_create: bool) -> MetadataTopic {
    if let Some(meta) = b.store().topic(name) {
        return topic_entry(&meta);
    }
    let unknown = |code: ResponseError| MetadataTopic {
        error_code: code.code(),
        name: Some(name.to_string()),
        topic_id: [0; 16],
        is_internal: false,
        partitions: 0,
        leaders: Vec::new(),
        replicas: Vec::new(),
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
            Some(meta) => topic_entry(&meta),
            None => unknown(ResponseError::UnknownTopicOrPartition),
        },
    }
}

/// A topic led by this node: every partition has one replica, in sync.
fn topic_entry(t: &TopicMeta) -> MetadataTopic {
    MetadataTopic {
        error_code: 0,
        name: Some(t.name.clone()),
        topic_id: *t.id.as_bytes(),
        is_internal: crate::topics::is_internal(&t.name),
        partitions: t.partitions,
        leaders: Vec::new(),
        replicas: Vec::new(),
    }
}
