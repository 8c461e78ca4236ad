//! CreatePartitions (37): raises a topic's partition count (never lowers
//! it: INVALID_PARTITIONS, with Kafka's messages), `validate_only`, and
//! manual assignments, which on one node may only name this broker, one
//! replica per new partition. Answered after the durable flush; producers
//! and consumers see the new partitions at their next metadata refresh.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, ResponseKind};
use kafka_protocol::ResponseError;

use super::{str_bytes, Handled};
use crate::context::Broker;

pub fn handle(b: &Broker, req: CreatePartitionsRequest, _version: i16) -> Handled {
    let mut changed = false;
    // A topic named twice is refused once, and not changed (Kafka).
    let mut count: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for t in &req.topics {
        *count.entry(t.name.0.to_string()).or_default() += 1;
    }
    let mut reported = std::collections::BTreeSet::new();
    let mut results: Vec<CreatePartitionsTopicResult> = req
        .topics
        .iter()
        .filter(|t| reported.insert(t.name.0.to_string()))
        .map(|t| {
            let base = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            let fail = |code: ResponseError, msg: String| {
                base.clone()
                    .with_error_code(code.code())
                    .with_error_message(Some(str_bytes(&msg)))
            };
            let name = t.name.0.to_string();
            if count.get(&name).copied().unwrap_or(0) > 1 {
                return fail(
                    ResponseError::InvalidRequest,
                    "Duplicate topic in request.".to_string(),
                );
            }
            let Some(meta) = b.store().topic(&name) else {
                return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
            };
            if t.count < meta.partitions {
                return fail(
                    ResponseError::InvalidPartitions,
                    format!(
                        "The topic {name} currently has {} partition(s); {} would not be an increase.",
                        meta.partitions, t.count
                    ),
                );
            }
            if t.count == meta.partitions {
                return fail(
                    ResponseError::InvalidPartitions,
                    format!(
                        "The topic {name} currently has {} partition(s); {} would not be an increase.",
                        meta.partitions, t.count
                    ),
                );
            }
            if let Some(assignments) = &t.assignments {
                let want = usize::try_from(t.count - meta.partitions).unwrap_or(0);
                if assignments.len() != want {
                    return fail(
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "Increasing the number of partitions by {want} but {} assignments provided.",
                            assignments.len()
                        ),
                    );
                }
                for a in assignments {
                    if a.broker_ids.len() != 1 {
                        return fail(
                            ResponseError::InvalidReplicaAssignment,
                            "Inconsistent replication factor between partitions, partition 0 has 1 while partitions [new] have replication factors [many], respectively.".to_string(),
                        );
                    }
                    if a.broker_ids.iter().any(|id| id.0 != b.node_id()) {
                        return fail(
                            ResponseError::InvalidReplicaAssignment,
                            format!(
                                "Unknown broker(s) in assignment: {:?}",
                                a.broker_ids.iter().map(|x| x.0).collect::<Vec<_>>()
                            ),
                        );
                    }
                }
            }
            if req.validate_only {
                return base.with_error_code(0);
            }
            match b.store().add_partitions(&name, t.count) {
                Ok(_) => {
                    changed = true;
                    tracing::info!(topic = %name, partitions = t.count, "added partitions");
                    base.with_error_code(0)
                }
                Err(e) => fail(crate::error::storage_error(&e), e.to_string()),
            }
        })
        .collect();
    results.sort_by(|a, b| a.name.0.cmp(&b.name.0));
    let resp = CreatePartitionsResponse::default().with_results(results);
    super::durable_if(b, changed, ResponseKind::CreatePartitions(resp))
}
