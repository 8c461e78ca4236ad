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
                // Every broker holds every partition (one store), so any
                // replica set of known, distinct brokers can be honoured;
                // Kafka's rule that all new partitions have as many holds.
                let brokers: Vec<i32> = b.cluster().nodes().iter().map(|n| n.id).collect();
                let width = assignments.first().map_or(0, |a| a.broker_ids.len());
                for a in assignments {
                    let ids: Vec<i32> = a.broker_ids.iter().map(|x| x.0).collect();
                    if ids.is_empty() || ids.len() != width {
                        return fail(
                            ResponseError::InvalidReplicaAssignment,
                            format!(
                                "Inconsistent replication factor between partitions: the new partitions have replication factors {:?}.",
                                assignments.iter().map(|a| a.broker_ids.len()).collect::<Vec<_>>()
                            ),
                        );
                    }
                    let distinct =
                        ids.iter().collect::<std::collections::HashSet<_>>().len() == ids.len();
                    if !distinct || ids.iter().any(|id| !brokers.contains(id)) {
                        return fail(
                            ResponseError::InvalidReplicaAssignment,
                            format!("Unknown or duplicate broker(s) in assignment: {ids:?}"),
                        );
                    }
                }
            }
            if req.validate_only {
                return base.with_error_code(0);
            }
            match b.store().add_partitions(&name, t.count) {
                Ok(_) => {
                    for (i, a) in t.assignments.iter().flatten().enumerate() {
                        let p = meta.partitions.saturating_add(i32::try_from(i).unwrap_or(0));
                        let replicas: Vec<i32> = a.broker_ids.iter().map(|x| x.0).collect();
                        b.cluster().place(&name, p, &replicas);
                    }
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
