//! ElectLeaders (43): one node leads every partition, which is always its
//! preferred leader: ELECTION_NOT_NEEDED for each named partition, as
//! Kafka answers when the preferred replica already leads;
//! UNKNOWN_TOPIC_OR_PARTITION for partitions that do not exist. Without a
//! list (all partitions) nothing needs an election: an empty result.

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, topic_name};
use crate::context::Broker;

pub fn handle(b: &Broker, req: ElectLeadersRequest, _version: i16) -> ElectLeadersResponse {
    // 0 preferred, 1 unclean.
    let bad_type = !matches!(req.election_type, 0 | 1);
    let Some(asked) = req.topic_partitions else {
        // Every partition: none needs an election, so each topic is
        // listed with no partition results, as Kafka answers.
        let results = b
            .store()
            .topics()
            .into_iter()
            .map(|m| ReplicaElectionResult::default().with_topic(topic_name(&m.name)))
            .collect();
        return ElectLeadersResponse::default()
            .with_error_code(0)
            .with_replica_election_results(results);
    };
    let results = asked
        .into_iter()
        .map(|t| {
            let partition_result = t
                .partitions
                .iter()
                .map(|p| {
                    let r = PartitionResult::default().with_partition_id(*p);
                    if bad_type {
                        r.with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes("Unknown election type")))
                    } else if b.store().partition(&t.topic.0, *p).is_some() {
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
        .with_error_code(if bad_type {
            ResponseError::InvalidRequest.code()
        } else {
            0
        })
        .with_replica_election_results(results)
}
