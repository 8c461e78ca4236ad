//! AlterPartitionReassignments (45): on one node the only possible
//! assignment is the current one. Asking for it changes nothing (success);
//! cancelling (no replicas) finds no reassignment in progress; any other
//! broker id is refused as Kafka refuses brokers that do not exist.

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::context::Broker;

pub fn handle(
    b: &Broker,
    req: AlterPartitionReassignmentsRequest,
    _version: i16,
) -> AlterPartitionReassignmentsResponse {
    let allow = req.allow_replication_factor_change;
    let responses = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let (code, msg): (i16, Option<String>) = if b.store().partition(&t.name.0, p.partition_index).is_none() {
                        (ResponseError::UnknownTopicOrPartition.code(), Some("The partition does not exist.".to_string()))
                    } else {
                        match &p.replicas {
                            None => (ResponseError::NoReassignmentInProgress.code(), None),
                            Some(r) if r.len() == 1 && r[0].0 == b.node_id() => (0, None),
                            Some(r) => (
                                ResponseError::InvalidReplicaAssignment.code(),
                                Some(format!(
                                    "The manual partition assignment includes broker(s) that are not registered or a replication factor this cluster cannot hold: {:?}",
                                    r.iter().map(|x| x.0).collect::<Vec<_>>()
                                )),
                            ),
                        }
                    };
                    r.with_error_code(code)
                        .with_error_message(msg.as_deref().map(str_bytes))
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow)
        .with_error_code(0)
        .with_responses(responses)
}
