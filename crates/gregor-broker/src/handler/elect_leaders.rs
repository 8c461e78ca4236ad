//! ElectLeaders (43): one node leads every partition, which is always its
//! preferred leader: ELECTION_NOT_NEEDED for each named partition, as
//! Kafka answers when the preferred replica already leads;
//! UNKNOWN_TOPIC_OR_PARTITION for partitions that do not exist. Without a
//! list (all partitions) nothing needs an election: an empty result.

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::context::Broker;

pub fn handle(b: &Broker, req: ElectLeadersRequest, _version: i16) -> ElectLeadersResponse {
    let results = req
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let partition_result = t
                .partitions
                .iter()
                .map(|p| {
                    let r = PartitionResult::default().with_partition_id(*p);
                    if b.store().partition(&t.topic.0, *p).is_some() {
                        r.with_error_code(ResponseError::ElectionNotNeeded.code())
                            .with_error_message(Some(str_bytes(
                                "Leader election not needed for topic partition.",
                            )))
                    } else {
                        r.with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes("The partition does not exist.")))
                    }
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(t.topic)
                .with_partition_result(partition_result)
        })
        .collect();
    ElectLeadersResponse::default()
        .with_error_code(0)
        .with_replica_election_results(results)
}
