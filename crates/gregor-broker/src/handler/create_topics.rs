//! CreateTopics (19): configs validated as Kafka validates them,
//! `validate_only` honoured. A replication factor or replica assignment is
//! accepted up to the number of (virtual) brokers: every broker of one
//! process serves the one store, so every broker holds every partition.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use tracing::info;

use super::str_bytes;
use crate::context::Broker;
use crate::error::storage_error;
use crate::topics;
use kafka_protocol::ResponseError;

pub fn handle(b: &Broker, req: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    // A name given twice is refused once, and neither copy is created
    // (Kafka's ControllerApis).
    let mut counts = std::collections::HashMap::new();
    for t in &req.topics {
        *counts.entry(t.name.0.to_string()).or_insert(0usize) += 1;
    }
    let too_many = too_many_partitions(b, &req, &counts);
    let mut reported = std::collections::HashSet::new();
    let results = req
        .topics
        .into_iter()
        .filter(|t| counts[&*t.name.0] == 1 || reported.insert(t.name.0.to_string()))
        .map(|t| {
            let name = t.name.0.to_string();
            let result = CreatableTopicResult::default().with_name(t.name.clone());
            if counts[&name] > 1 {
                return fail(
                    result,
                    ResponseError::InvalidRequest.code(),
                    "Duplicate topic name.",
                );
            }
            if too_many {
                return fail(
                    result,
                    ResponseError::PolicyViolation.code(),
                    "Excessively large number of partitions per request.",
                );
            }
            match create(b, &name, &t, req.validate_only) {
                Ok((id, partitions, rf, configs)) => {
                    let mut r = result.with_topic_id(id).with_error_code(0);
                    if version >= 5 {
                        let entries = topics::topic_config_entries(
                            b.static_config(),
                            &b.dynamic_configs(),
                            &configs,
                        )
                        .into_iter()
                        .map(|e| {
                            CreatableTopicConfigs::default()
                                .with_name(str_bytes(e.name))
                                .with_value(Some(str_bytes(&e.value)))
                                .with_config_source(e.source)
                        })
                        .collect();
                        r = r
                            .with_num_partitions(partitions)
                            .with_replication_factor(rf)
                            .with_configs(Some(entries));
                    }
                    r
                }
                Err((code, msg)) => fail(result, code, &msg),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(results)
}

/// Kafka's controller refuses a request that would create more than this
/// many partitions in all (`ReplicationControlManager`), before creating
/// anything: one request must not be able to reserve gigabytes.
const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

/// Whether the request's topics (duplicates aside, as Kafka counts them)
/// ask for more than [`MAX_PARTITIONS_PER_REQUEST`].
fn too_many_partitions(
    b: &Broker,
    req: &CreateTopicsRequest,
    counts: &std::collections::HashMap<String, usize>,
) -> bool {
    let total: i64 = req
        .topics
        .iter()
        .filter(|t| counts[&*t.name.0] == 1)
        .map(|t| {
            if !t.assignments.is_empty() {
                i64::try_from(t.assignments.len()).unwrap_or(i64::MAX)
            } else if t.num_partitions == -1 {
                i64::from(b.config().num_partitions)
            } else {
                i64::from(t.num_partitions.max(0))
            }
        })
        .fold(0, i64::saturating_add);
    total > MAX_PARTITIONS_PER_REQUEST
}

fn fail(r: CreatableTopicResult, code: i16, msg: &str) -> CreatableTopicResult {
    r.with_error_code(code)
        .with_error_message(Some(str_bytes(msg)))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
}

type Created = (uuid::Uuid, i32, i16, BTreeMap<String, String>);

fn create(
    b: &Broker,
    name: &str,
    t: &CreatableTopic,
    validate_only: bool,
) -> Result<Created, (i16, String)> {
    topics::validate_name(name).map_err(|m| (ResponseError::InvalidTopicException.code(), m))?;
    if b.store().topic(name).is_some() {
        return Err((
            ResponseError::TopicAlreadyExists.code(),
            format!("Topic '{name}' already exists."),
        ));
    }
    if !t.assignments.is_empty() && (t.num_partitions != -1 || t.replication_factor != -1) {
        return Err((
            ResponseError::InvalidRequest.code(),
            "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
        ));
    }
    let brokers: Vec<i32> = b.cluster().nodes().iter().map(|n| n.id).collect();
    let partitions = if !t.assignments.is_empty() {
        let width = t.assignments.first().map_or(0, |a| a.broker_ids.len());
        for (i, a) in t.assignments.iter().enumerate() {
            let ids: Vec<i32> = a.broker_ids.iter().map(|id| id.0).collect();
            let distinct = ids.iter().collect::<std::collections::HashSet<_>>().len() == ids.len();
            if usize::try_from(a.partition_index) != Ok(i)
                || ids.is_empty()
                || ids.len() != width
                || !distinct
                || ids.iter().any(|id| !brokers.contains(id))
            {
                return Err((
                    ResponseError::InvalidReplicaAssignment.code(),
                    format!(
                        "Invalid replica assignment for partition {}: the brokers are {:?}; a partition names each at most once, and every partition as many.",
                        a.partition_index, brokers
                    ),
                ));
            }
        }
        i32::try_from(t.assignments.len()).unwrap_or(i32::MAX)
    } else if t.num_partitions == -1 {
        b.config().num_partitions
    } else if t.num_partitions <= 0 {
        return Err((
            ResponseError::InvalidPartitions.code(),
            "Number of partitions was set to an invalid non-positive value.".into(),
        ));
    } else {
        t.num_partitions
    };
    let rf = if !t.assignments.is_empty() {
        i16::try_from(t.assignments[0].broker_ids.len()).unwrap_or(i16::MAX)
    } else if t.replication_factor == -1 {
        b.config().default_replication_factor
    } else {
        t.replication_factor
    };
    if rf <= 0 {
        return Err((
            ResponseError::InvalidReplicationFactor.code(),
            "Replication factor must be larger than 0, or -1 to use the default value.".into(),
        ));
    }
    if usize::try_from(rf).unwrap_or(usize::MAX) > brokers.len() {
        return Err((
            ResponseError::InvalidReplicationFactor.code(),
            format!(
                "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.",
                brokers.len()
            ),
        ));
    }
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        topics::validate_config(&c.name, c.value.as_deref())
            .map_err(|m| (ResponseError::InvalidConfig.code(), m))?;
        if let Some(v) = &c.value {
            configs.insert(c.name.to_string(), v.to_string());
        }
    }
    if validate_only {
        return Ok((uuid::Uuid::nil(), partitions, rf, configs));
    }
    let meta = b
        .store()
        .create_topic(name, partitions, configs)
        .map_err(|e| (storage_error(&e).code(), e.to_string()))?;
    // An explicit assignment is what Metadata lists; its first replica
    // leads, as Kafka's preferred leader does.
    for (i, a) in t.assignments.iter().enumerate() {
        let replicas: Vec<i32> = a.broker_ids.iter().map(|id| id.0).collect();
        b.cluster()
            .place(name, i32::try_from(i).unwrap_or(i32::MAX), &replicas);
    }
    info!(
        topic = name,
        partitions,
        replication_factor = rf,
        "created topic"
    );
    Ok((meta.id, meta.partitions, rf, meta.configs))
}
