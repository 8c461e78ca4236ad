//! Synthetic error responses for injected faults, and the small response
//! surgery the fault layer needs (throttle, error codes, request targets).
//!
//! - [`error_response`]: the response Kafka would send had a request failed
//!   with one error code, echoing every topic, partition, group and key the
//!   request named (like `rd_kafka_mock_push_request_errors`).
//! - [`supports`]: the APIs [`error_response`] and [`targets`] cover.
//! - [`set_throttle`] / [`patch_raw_throttle`]: throttle_time_ms on a typed
//!   response, or in place in an already-encoded Fetch or Metadata frame.
//! - [`targets`]: what a request names, for fault filters.
//! - [`error_codes`]: every non-zero code in a typed response, for metrics.
//!
//! Pure functions: no state, no I/O.

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, TopicResponse};
use kafka_protocol::messages::describe_transactions_response::TransactionState;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// Fetch errors that only exist at the top level (fetch sessions, v7+):
/// FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH,
/// FETCH_SESSION_TOPIC_ID_ERROR. Kafka answers them with no partitions.
const FETCH_SESSION_ERRORS: [i16; 3] = [70, 71, 106];

/// DescribeConfigs resource type of a topic.
const RESOURCE_TOPIC: i8 = 2;

/// FindCoordinator key type of a transactional id (0 is a group).
const KEY_TRANSACTION: i8 = 1;

fn empty() -> StrBytes {
    StrBytes::default()
}

/// True exactly for the APIs [`error_response`], [`targets`] and
/// [`error_codes`] cover.
pub fn supports(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::Produce
            | ApiKey::Fetch
            | ApiKey::ListOffsets
            | ApiKey::Metadata
            | ApiKey::OffsetCommit
            | ApiKey::OffsetFetch
            | ApiKey::FindCoordinator
            | ApiKey::JoinGroup
            | ApiKey::Heartbeat
            | ApiKey::LeaveGroup
            | ApiKey::SyncGroup
            | ApiKey::DescribeGroups
            | ApiKey::ListGroups
            | ApiKey::InitProducerId
            | ApiKey::AddPartitionsToTxn
            | ApiKey::AddOffsetsToTxn
            | ApiKey::EndTxn
            | ApiKey::TxnOffsetCommit
            | ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::CreatePartitions
            | ApiKey::DeleteRecords
            | ApiKey::OffsetForLeaderEpoch
            | ApiKey::OffsetDelete
            | ApiKey::DescribeProducers
            | ApiKey::DescribeTransactions
            | ApiKey::ListTransactions
            | ApiKey::DeleteGroups
            | ApiKey::DescribeConfigs
    )
}

/// The response Kafka would send had `req` (decoded at `version`) failed
/// with error `code`: every topic/partition/group/key the request named is
/// echoed with that code, top-level error codes are set where the response
/// has them (except Fetch, whose partition errors stay per partition).
///
/// `None` for APIs not covered (see [`supports`]), and for a Metadata
/// request below v13 that names no topic (there is nowhere to put the code).
/// The Metadata answer has an empty broker list and controller -1: the
/// caller should fill in `brokers`/`controller_id`/`cluster_id` from the
/// live cluster, since the Java client ignores a Metadata response without
/// brokers.
pub fn error_response(req: &RequestKind, version: i16, code: i16) -> Option<ResponseKind> {
    Some(match req {
        RequestKind::Produce(r) => ResponseKind::Produce(produce(r, code)),
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch(r, version, code)),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(list_offsets(r, code)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata(r, version, code)?),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(offset_commit(r, code)),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(offset_fetch(r, version, code)),
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(find_coordinator(r, version, code))
        }
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(
            JoinGroupResponse::default()
                .with_error_code(code)
                .with_generation_id(-1)
                .with_member_id(r.member_id.clone())
                .with_leader(empty())
                .with_protocol_type(None)
                .with_protocol_name(if version >= 7 { None } else { Some(empty()) }),
        ),
        RequestKind::Heartbeat(_) => {
            ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(code))
        }
        RequestKind::LeaveGroup(r) => {
            let members = if version >= 3 {
                r.members
                    .iter()
                    .map(|m| {
                        MemberResponse::default()
                            .with_member_id(m.member_id.clone())
                            .with_group_instance_id(m.group_instance_id.clone())
                            .with_error_code(code)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            ResponseKind::LeaveGroup(
                LeaveGroupResponse::default()
                    .with_error_code(code)
                    .with_members(members),
            )
        }
        RequestKind::SyncGroup(_) => ResponseKind::SyncGroup(
            SyncGroupResponse::default()
                .with_error_code(code)
                .with_assignment(Bytes::new()),
        ),
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(
            DescribeGroupsResponse::default().with_groups(
                r.groups
                    .iter()
                    .map(|g| {
                        DescribedGroup::default()
                            .with_error_code(code)
                            .with_group_id(g.clone())
                            .with_group_state(empty())
                            .with_protocol_type(empty())
                            .with_protocol_data(empty())
                    })
                    .collect(),
            ),
        ),
        RequestKind::ListGroups(_) => {
            ResponseKind::ListGroups(ListGroupsResponse::default().with_error_code(code))
        }
        RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(
            DeleteGroupsResponse::default().with_results(
                r.groups_names
                    .iter()
                    .map(|g| {
                        DeletableGroupResult::default()
                            .with_group_id(g.clone())
                            .with_error_code(code)
                    })
                    .collect(),
            ),
        ),
        RequestKind::InitProducerId(_) => ResponseKind::InitProducerId(
            InitProducerIdResponse::default()
                .with_error_code(code)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ),
        RequestKind::AddPartitionsToTxn(r) => {
            ResponseKind::AddPartitionsToTxn(add_partitions_to_txn(r, version, code))
        }
        RequestKind::AddOffsetsToTxn(_) => {
            ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code))
        }
        RequestKind::EndTxn(_) => ResponseKind::EndTxn(
            EndTxnResponse::default()
                .with_error_code(code)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ),
        RequestKind::TxnOffsetCommit(r) => ResponseKind::TxnOffsetCommit(
            TxnOffsetCommitResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        TxnOffsetCommitResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        TxnOffsetCommitResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(
            CreateTopicsResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        CreatableTopicResult::default()
                            .with_name(t.name.clone())
                            .with_error_code(code)
                            .with_error_message(None)
                            .with_num_partitions(-1)
                            .with_replication_factor(-1)
                            .with_configs(None)
                    })
                    .collect(),
            ),
        ),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(delete_topics(r, version, code)),
        RequestKind::CreatePartitions(r) => ResponseKind::CreatePartitions(
            CreatePartitionsResponse::default().with_results(
                r.topics
                    .iter()
                    .map(|t| {
                        CreatePartitionsTopicResult::default()
                            .with_name(t.name.clone())
                            .with_error_code(code)
                            .with_error_message(None)
                    })
                    .collect(),
            ),
        ),
        RequestKind::DeleteRecords(r) => ResponseKind::DeleteRecords(
            DeleteRecordsResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        DeleteRecordsTopicResult::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        DeleteRecordsPartitionResult::default()
                                            .with_partition_index(p.partition_index)
                                            .with_low_watermark(-1)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::OffsetForLeaderEpoch(r) => ResponseKind::OffsetForLeaderEpoch(
            OffsetForLeaderEpochResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        OffsetForLeaderTopicResult::default()
                            .with_topic(t.topic.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        EpochEndOffset::default()
                                            .with_error_code(code)
                                            .with_partition(p.partition)
                                            .with_leader_epoch(-1)
                                            .with_end_offset(-1)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::OffsetDelete(r) => ResponseKind::OffsetDelete(
            OffsetDeleteResponse::default()
                .with_error_code(code)
                .with_topics(
                    r.topics
                        .iter()
                        .map(|t| {
                            OffsetDeleteResponseTopic::default()
                                .with_name(t.name.clone())
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            OffsetDeleteResponsePartition::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        ),
        RequestKind::DescribeProducers(r) => ResponseKind::DescribeProducers(
            DescribeProducersResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        TopicResponse::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partition_indexes
                                    .iter()
                                    .map(|&p| {
                                        PartitionResponse::default()
                                            .with_partition_index(p)
                                            .with_error_code(code)
                                            .with_error_message(None)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::DescribeTransactions(r) => ResponseKind::DescribeTransactions(
            DescribeTransactionsResponse::default().with_transaction_states(
                r.transactional_ids
                    .iter()
                    .map(|id| {
                        TransactionState::default()
                            .with_error_code(code)
                            .with_transactional_id(id.clone())
                            .with_transaction_state(empty())
                            .with_transaction_timeout_ms(0)
                            .with_transaction_start_time_ms(-1)
                            .with_producer_id(ProducerId(-1))
                            .with_producer_epoch(-1)
                    })
                    .collect(),
            ),
        ),
        RequestKind::ListTransactions(_) => ResponseKind::ListTransactions(
            ListTransactionsResponse::default().with_error_code(code),
        ),
        RequestKind::DescribeConfigs(r) => ResponseKind::DescribeConfigs(
            DescribeConfigsResponse::default().with_results(
                r.resources
                    .iter()
                    .map(|res| {
                        DescribeConfigsResult::default()
                            .with_error_code(code)
                            .with_error_message(None)
                            .with_resource_type(res.resource_type)
                            .with_resource_name(res.resource_name.clone())
                    })
                    .collect(),
            ),
        ),
        _ => return None,
    })
}

fn produce(r: &ProduceRequest, code: i16) -> ProduceResponse {
    ProduceResponse::default().with_responses(
        r.topic_data
            .iter()
            .map(|t| {
                TopicProduceResponse::default()
                    .with_name(t.name.clone())
                    .with_topic_id(t.topic_id)
                    .with_partition_responses(
                        t.partition_data
                            .iter()
                            .map(|p| {
                                PartitionProduceResponse::default()
                                    .with_index(p.index)
                                    .with_error_code(code)
                                    .with_base_offset(-1)
                                    .with_log_append_time_ms(-1)
                                    .with_log_start_offset(-1)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

fn fetch(r: &FetchRequest, version: i16, code: i16) -> FetchResponse {
    if version >= 7 && FETCH_SESSION_ERRORS.contains(&code) {
        // A fetch-session error: top level only, no partitions, no session.
        return FetchResponse::default()
            .with_error_code(code)
            .with_session_id(0);
    }
    FetchResponse::default()
        .with_error_code(0)
        .with_session_id(r.session_id)
        .with_responses(
            r.topics
                .iter()
                .map(|t| {
                    FetchableTopicResponse::default()
                        .with_topic(t.topic.clone())
                        .with_topic_id(t.topic_id)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    PartitionData::default()
                                        .with_partition_index(p.partition)
                                        .with_error_code(code)
                                        .with_high_watermark(-1)
                                        .with_last_stable_offset(-1)
                                        .with_log_start_offset(-1)
                                        .with_aborted_transactions(None)
                                        .with_records(Some(Bytes::new()))
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

fn list_offsets(r: &ListOffsetsRequest, code: i16) -> ListOffsetsResponse {
    ListOffsetsResponse::default().with_topics(
        r.topics
            .iter()
            .map(|t| {
                ListOffsetsTopicResponse::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                ListOffsetsPartitionResponse::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code)
                                    .with_timestamp(-1)
                                    .with_offset(-1)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

fn metadata(r: &MetadataRequest, version: i16, code: i16) -> Option<MetadataResponse> {
    let named = r.topics.as_deref().unwrap_or_default();
    let base = MetadataResponse::default()
        .with_controller_id(BrokerId(-1))
        .with_cluster_id(None);
    if named.is_empty() {
        // All topics (or none): only v13 has a top-level error code.
        return (version >= 13).then(|| base.with_error_code(code));
    }
    let topics = named
        .iter()
        .map(|t| {
            // A request may name a topic by id only (v10+); the response's
            // name is nullable only from v12.
            let name = match &t.name {
                None if version < 12 => Some(TopicName(empty())),
                other => other.clone(),
            };
            MetadataResponseTopic::default()
                .with_error_code(code)
                .with_name(name)
                .with_topic_id(t.topic_id)
                .with_is_internal(false)
        })
        .collect();
    Some(base.with_topics(topics))
}

fn offset_commit(r: &OffsetCommitRequest, code: i16) -> OffsetCommitResponse {
    OffsetCommitResponse::default().with_topics(
        r.topics
            .iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

fn offset_fetch(r: &OffsetFetchRequest, version: i16, code: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = r
            .groups
            .iter()
            .map(|g| {
                let topics = g
                    .topics
                    .iter()
                    .flatten()
                    .map(|t| {
                        OffsetFetchResponseTopics::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partition_indexes
                                    .iter()
                                    .map(|&p| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(-1)
                                            .with_committed_leader_epoch(-1)
                                            .with_metadata(Some(empty()))
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(code)
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics = r
        .topics
        .iter()
        .flatten()
        .map(|t| {
            OffsetFetchResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partition_indexes
                        .iter()
                        .map(|&p| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(-1)
                                .with_committed_leader_epoch(-1)
                                .with_metadata(Some(empty()))
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default()
        .with_error_code(if version >= 2 { code } else { 0 })
        .with_topics(topics)
}

fn find_coordinator(
    r: &FindCoordinatorRequest,
    version: i16,
    code: i16,
) -> FindCoordinatorResponse {
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(
            r.coordinator_keys
                .iter()
                .map(|k| {
                    Coordinator::default()
                        .with_key(k.clone())
                        .with_node_id(BrokerId(-1))
                        .with_host(empty())
                        .with_port(-1)
                        .with_error_code(code)
                        .with_error_message(None)
                })
                .collect(),
        );
    }
    FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_error_message(None)
        .with_node_id(BrokerId(-1))
        .with_host(empty())
        .with_port(-1)
}

fn add_partitions_to_txn(
    r: &AddPartitionsToTxnRequest,
    version: i16,
    code: i16,
) -> AddPartitionsToTxnResponse {
    let topic_results = |topics: &[add_partitions_to_txn_request::AddPartitionsToTxnTopic]| {
        topics
            .iter()
            .map(|t| {
                AddPartitionsToTxnTopicResult::default()
                    .with_name(t.name.clone())
                    .with_results_by_partition(
                        t.partitions
                            .iter()
                            .map(|&p| {
                                AddPartitionsToTxnPartitionResult::default()
                                    .with_partition_index(p)
                                    .with_partition_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect::<Vec<_>>()
    };
    if version >= 4 {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(code)
            .with_results_by_transaction(
                r.transactions
                    .iter()
                    .map(|t| {
                        AddPartitionsToTxnResult::default()
                            .with_transactional_id(t.transactional_id.clone())
                            .with_topic_results(topic_results(&t.topics))
                    })
                    .collect(),
            );
    }
    AddPartitionsToTxnResponse::default()
        .with_results_by_topic_v3_and_below(topic_results(&r.v3_and_below_topics))
}

fn delete_topics(r: &DeleteTopicsRequest, version: i16, code: i16) -> DeleteTopicsResponse {
    let responses = if version >= 6 {
        r.topics
            .iter()
            .map(|t| {
                DeletableTopicResult::default()
                    .with_name(t.name.clone())
                    .with_topic_id(t.topic_id)
                    .with_error_code(code)
                    .with_error_message(None)
            })
            .collect()
    } else {
        r.topic_names
            .iter()
            .map(|n| {
                DeletableTopicResult::default()
                    .with_name(Some(n.clone()))
                    .with_error_code(code)
                    .with_error_message(None)
            })
            .collect()
    };
    DeleteTopicsResponse::default().with_responses(responses)
}

macro_rules! throttled {
    ($kind:expr, $ms:expr; $($v:ident),* $(,)?) => {
        match $kind {
            $(ResponseKind::$v(r) => r.throttle_time_ms = $ms,)*
            _ => {}
        }
    };
}

/// Sets throttle_time_ms on every response type that has the field. A
/// version without the field simply does not encode it (the codec skips it
/// silently), so this is safe whatever version the response goes out at.
pub fn set_throttle(kind: &mut ResponseKind, ms: i32) {
    throttled!(kind, ms;
        Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch, FindCoordinator,
        JoinGroup, Heartbeat, LeaveGroup, SyncGroup, DescribeGroups, ListGroups, ApiVersions,
        CreateTopics, DeleteTopics, DeleteRecords, InitProducerId, OffsetForLeaderEpoch,
        AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit, DescribeAcls, CreateAcls,
        DeleteAcls, DescribeConfigs, AlterConfigs, AlterReplicaLogDirs, DescribeLogDirs,
        CreatePartitions, CreateDelegationToken, RenewDelegationToken, ExpireDelegationToken,
        DescribeDelegationToken, DeleteGroups, ElectLeaders, IncrementalAlterConfigs,
        AlterPartitionReassignments, ListPartitionReassignments, OffsetDelete,
        DescribeClientQuotas, AlterClientQuotas, DescribeUserScramCredentials,
        AlterUserScramCredentials, AlterPartition, UpdateFeatures, FetchSnapshot,
        DescribeCluster, DescribeProducers, BrokerRegistration, BrokerHeartbeat,
        UnregisterBroker, DescribeTransactions, ListTransactions, AllocateProducerIds,
        ConsumerGroupHeartbeat, ConsumerGroupDescribe, ControllerRegistration,
        GetTelemetrySubscriptions, PushTelemetry, AssignReplicasToDirs, ListConfigResources,
        DescribeTopicPartitions, ShareGroupHeartbeat, ShareGroupDescribe, ShareFetch,
        ShareAcknowledge, AddRaftVoter, RemoveRaftVoter, UpdateRaftVoter,
        DescribeShareGroupOffsets, AlterShareGroupOffsets, DeleteShareGroupOffsets
    );
}

/// Patches throttle_time_ms in place in an encoded response frame (length
/// prefix, correlation id, a 0x00 tagged-fields byte for flexible headers,
/// then the body) of Fetch (v1+, flexible header from v12) or Metadata
/// (v3+, flexible header from v9). False for other APIs and versions, or a
/// frame too short to hold the field.
pub fn patch_raw_throttle(api: ApiKey, version: i16, frame: &mut [u8], ms: i32) -> bool {
    let (first, flexible) = match api {
        ApiKey::Fetch => (1, 12),
        ApiKey::Metadata => (3, 9),
        _ => return false,
    };
    if version < first {
        return false;
    }
    // Length prefix (4) and correlation id (4), then the header's tagged
    // fields byte when the header is flexible.
    let at = 8 + usize::from(version >= flexible);
    match frame.get_mut(at..at + 4) {
        Some(field) => {
            field.copy_from_slice(&ms.to_be_bytes());
            true
        }
        None => false,
    }
}

/// What a request names, for fault filters. A topic with an empty
/// partition list is named as a whole (Metadata, CreateTopics, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// Topics by name, with the partitions named.
    pub topics: Vec<(String, Vec<i32>)>,
    /// Topics named only by id (Fetch/Produce v13+, Metadata v10+, DeleteTopics v6).
    pub topic_ids: Vec<[u8; 16]>,
    /// Consumer groups.
    pub groups: Vec<String>,
    /// The transactional id (the first one, for requests naming several).
    pub transactional_id: Option<String>,
}

impl Targets {
    fn topic(&mut self, name: &str, partitions: impl IntoIterator<Item = i32>) {
        self.topics
            .push((name.to_owned(), partitions.into_iter().collect()));
    }

    fn topic_id(&mut self, id: &uuid::Uuid) {
        if !id.is_nil() {
            self.topic_ids.push(*id.as_bytes());
        }
    }

    fn group(&mut self, g: &str) {
        self.groups.push(g.to_owned());
    }

    fn txn(&mut self, id: &str) {
        if self.transactional_id.is_none() {
            self.transactional_id = Some(id.to_owned());
        }
    }
}

/// Which topics/partitions, groups and transactional id a request names.
/// Empty for APIs outside [`supports`].
pub fn targets(req: &RequestKind) -> Targets {
    let mut t = Targets::default();
    match req {
        RequestKind::Produce(r) => {
            if let Some(id) = &r.transactional_id {
                t.txn(id);
            }
            for x in &r.topic_data {
                if x.name.is_empty() {
                    t.topic_id(&x.topic_id);
                } else {
                    t.topic(&x.name, x.partition_data.iter().map(|p| p.index));
                }
            }
        }
        RequestKind::Fetch(r) => {
            for x in &r.topics {
                if x.topic.is_empty() {
                    t.topic_id(&x.topic_id);
                } else {
                    t.topic(&x.topic, x.partitions.iter().map(|p| p.partition));
                }
            }
        }
        RequestKind::ListOffsets(r) => {
            for x in &r.topics {
                t.topic(&x.name, x.partitions.iter().map(|p| p.partition_index));
            }
        }
        RequestKind::Metadata(r) => {
            for x in r.topics.iter().flatten() {
                match &x.name {
                    Some(n) => t.topic(n, []),
                    None => t.topic_id(&x.topic_id),
                }
            }
        }
        RequestKind::OffsetCommit(r) => {
            t.group(&r.group_id);
            for x in &r.topics {
                t.topic(&x.name, x.partitions.iter().map(|p| p.partition_index));
            }
        }
        RequestKind::OffsetFetch(r) => {
            if !r.group_id.is_empty() {
                t.group(&r.group_id);
            }
            for x in r.topics.iter().flatten() {
                t.topic(&x.name, x.partition_indexes.iter().copied());
            }
            for g in &r.groups {
                t.group(&g.group_id);
                for x in g.topics.iter().flatten() {
                    t.topic(&x.name, x.partition_indexes.iter().copied());
                }
            }
        }
        RequestKind::FindCoordinator(r) => {
            let keys = std::iter::once(&r.key)
                .filter(|k| !k.is_empty())
                .chain(&r.coordinator_keys);
            for k in keys {
                if r.key_type == KEY_TRANSACTION {
                    t.txn(k);
                } else {
                    t.group(k);
                }
            }
        }
        RequestKind::JoinGroup(r) => t.group(&r.group_id),
        RequestKind::Heartbeat(r) => t.group(&r.group_id),
        RequestKind::LeaveGroup(r) => t.group(&r.group_id),
        RequestKind::SyncGroup(r) => t.group(&r.group_id),
        RequestKind::DescribeGroups(r) => r.groups.iter().for_each(|g| t.group(g)),
        RequestKind::DeleteGroups(r) => r.groups_names.iter().for_each(|g| t.group(g)),
        RequestKind::InitProducerId(r) => {
            if let Some(id) = &r.transactional_id {
                t.txn(id);
            }
        }
        RequestKind::AddPartitionsToTxn(r) => {
            if !r.v3_and_below_transactional_id.is_empty() {
                t.txn(&r.v3_and_below_transactional_id);
            }
            for x in &r.v3_and_below_topics {
                t.topic(&x.name, x.partitions.iter().copied());
            }
            for txn in &r.transactions {
                t.txn(&txn.transactional_id);
                for x in &txn.topics {
                    t.topic(&x.name, x.partitions.iter().copied());
                }
            }
        }
        RequestKind::AddOffsetsToTxn(r) => {
            t.txn(&r.transactional_id);
            t.group(&r.group_id);
        }
        RequestKind::EndTxn(r) => t.txn(&r.transactional_id),
        RequestKind::TxnOffsetCommit(r) => {
            t.txn(&r.transactional_id);
            t.group(&r.group_id);
            for x in &r.topics {
                t.topic(&x.name, x.partitions.iter().map(|p| p.partition_index));
            }
        }
        RequestKind::CreateTopics(r) => r.topics.iter().for_each(|x| t.topic(&x.name, [])),
        RequestKind::DeleteTopics(r) => {
            r.topic_names.iter().for_each(|n| t.topic(n, []));
            for x in &r.topics {
                match &x.name {
                    Some(n) => t.topic(n, []),
                    None => t.topic_id(&x.topic_id),
                }
            }
        }
        RequestKind::CreatePartitions(r) => r.topics.iter().for_each(|x| t.topic(&x.name, [])),
        RequestKind::DeleteRecords(r) => {
            for x in &r.topics {
                t.topic(&x.name, x.partitions.iter().map(|p| p.partition_index));
            }
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            for x in &r.topics {
                t.topic(&x.topic, x.partitions.iter().map(|p| p.partition));
            }
        }
        RequestKind::OffsetDelete(r) => {
            t.group(&r.group_id);
            for x in &r.topics {
                t.topic(&x.name, x.partitions.iter().map(|p| p.partition_index));
            }
        }
        RequestKind::DescribeProducers(r) => {
            for x in &r.topics {
                t.topic(&x.name, x.partition_indexes.iter().copied());
            }
        }
        RequestKind::DescribeTransactions(r) => r.transactional_ids.iter().for_each(|id| t.txn(id)),
        RequestKind::DescribeConfigs(r) => {
            for res in &r.resources {
                if res.resource_type == RESOURCE_TOPIC {
                    t.topic(&res.resource_name, []);
                }
            }
        }
        _ => {}
    }
    t
}

/// Pushes every non-zero error code in a typed response (top level and
/// nested per topic/partition/group/member), for the response types of the
/// APIs in [`supports`]; other types push nothing.
pub fn error_codes(kind: &ResponseKind, out: &mut Vec<i16>) {
    let mut push = |code: i16| {
        if code != 0 {
            out.push(code);
        }
    };
    match kind {
        ResponseKind::Produce(r) => r
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .for_each(|p| push(p.error_code)),
        ResponseKind::Fetch(r) => {
            push(r.error_code);
            r.responses
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| push(p.error_code));
        }
        ResponseKind::ListOffsets(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| push(p.error_code)),
        ResponseKind::Metadata(r) => {
            push(r.error_code);
            for t in &r.topics {
                push(t.error_code);
                t.partitions.iter().for_each(|p| push(p.error_code));
            }
        }
        ResponseKind::OffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| push(p.error_code)),
        ResponseKind::OffsetFetch(r) => {
            push(r.error_code);
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| push(p.error_code));
            for g in &r.groups {
                push(g.error_code);
                g.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .for_each(|p| push(p.error_code));
            }
        }
        ResponseKind::FindCoordinator(r) => {
            push(r.error_code);
            r.coordinators.iter().for_each(|c| push(c.error_code));
        }
        ResponseKind::JoinGroup(r) => push(r.error_code),
        ResponseKind::Heartbeat(r) => push(r.error_code),
        ResponseKind::LeaveGroup(r) => {
            push(r.error_code);
            r.members.iter().for_each(|m| push(m.error_code));
        }
        ResponseKind::SyncGroup(r) => push(r.error_code),
        ResponseKind::DescribeGroups(r) => r.groups.iter().for_each(|g| push(g.error_code)),
        ResponseKind::ListGroups(r) => push(r.error_code),
        ResponseKind::DeleteGroups(r) => r.results.iter().for_each(|g| push(g.error_code)),
        ResponseKind::InitProducerId(r) => push(r.error_code),
        ResponseKind::AddPartitionsToTxn(r) => {
            push(r.error_code);
            r.results_by_topic_v3_and_below
                .iter()
                .chain(
                    r.results_by_transaction
                        .iter()
                        .flat_map(|x| &x.topic_results),
                )
                .flat_map(|t| &t.results_by_partition)
                .for_each(|p| push(p.partition_error_code));
        }
        ResponseKind::AddOffsetsToTxn(r) => push(r.error_code),
        ResponseKind::EndTxn(r) => push(r.error_code),
        ResponseKind::TxnOffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| push(p.error_code)),
        ResponseKind::CreateTopics(r) => r.topics.iter().for_each(|t| {
            push(t.error_code);
            push(t.topic_config_error_code);
        }),
        ResponseKind::DeleteTopics(r) => r.responses.iter().for_each(|t| push(t.error_code)),
        ResponseKind::CreatePartitions(r) => r.results.iter().for_each(|t| push(t.error_code)),
        ResponseKind::DeleteRecords(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| push(p.error_code)),
        ResponseKind::OffsetForLeaderEpoch(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| push(p.error_code)),
        ResponseKind::OffsetDelete(r) => {
            push(r.error_code);
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| push(p.error_code));
        }
        ResponseKind::DescribeProducers(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| push(p.error_code)),
        ResponseKind::DescribeTransactions(r) => {
            r.transaction_states.iter().for_each(|s| push(s.error_code))
        }
        ResponseKind::ListTransactions(r) => push(r.error_code),
        ResponseKind::DescribeConfigs(r) => r.results.iter().for_each(|x| push(x.error_code)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Buf;
    use gregor_protocol::encode_response;
    use kafka_protocol::protocol::Decodable;

    /// NOT_LEADER_OR_FOLLOWER.
    const CODE: i16 = 6;

    type Tp = Vec<(String, Vec<(i32, i16)>)>;

    fn s(x: &str) -> StrBytes {
        StrBytes::from_string(x.to_owned())
    }

    fn tn(x: &str) -> TopicName {
        TopicName(s(x))
    }

    fn gid(x: &str) -> GroupId {
        GroupId(s(x))
    }

    fn txid(x: &str) -> TransactionalId {
        TransactionalId(s(x))
    }

    /// Two topics, two partitions each, all with CODE.
    fn want_tp() -> Tp {
        ["a", "b"]
            .iter()
            .map(|t| (t.to_string(), vec![(0, CODE), (1, CODE)]))
            .collect()
    }

    fn want_targets() -> Vec<(String, Vec<i32>)> {
        vec![("a".into(), vec![0, 1]), ("b".into(), vec![0, 1])]
    }

    fn served(api: ApiKey) -> std::ops::RangeInclusive<i16> {
        let r = gregor_protocol::versions::range(api).unwrap();
        r.served_min..=r.max
    }

    fn codes(kind: &ResponseKind) -> Vec<i16> {
        let mut out = Vec::new();
        error_codes(kind, &mut out);
        out
    }

    /// Encodes `kind` as Gregor would send it and decodes it back as `R`.
    fn decode_kind<R: Decodable>(api: ApiKey, version: i16, kind: &ResponseKind) -> R {
        let frame = encode_response(42, api, version, kind)
            .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
        let mut b = Bytes::from(frame.to_vec());
        let len = b.get_i32();
        assert_eq!(usize::try_from(len).unwrap(), b.len());
        let header = ResponseHeader::decode(&mut b, kind.header_version(version)).unwrap();
        assert_eq!(header.correlation_id, 42);
        let r = R::decode(&mut b, version).unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
        assert!(b.is_empty(), "{api:?} v{version}: trailing bytes");
        r
    }

    /// error_response, checked against error_codes, then round-tripped.
    fn roundtrip<R: Decodable>(api: ApiKey, version: i16, req: &RequestKind, n_codes: usize) -> R {
        assert!(supports(api));
        let kind = error_response(req, version, CODE)
            .unwrap_or_else(|| panic!("{api:?} v{version}: no response"));
        assert_eq!(codes(&kind), vec![CODE; n_codes], "{api:?} v{version}");
        decode_kind(api, version, &kind)
    }

    const TESTED: [ApiKey; 29] = [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::FindCoordinator,
        ApiKey::JoinGroup,
        ApiKey::Heartbeat,
        ApiKey::LeaveGroup,
        ApiKey::SyncGroup,
        ApiKey::DescribeGroups,
        ApiKey::ListGroups,
        ApiKey::InitProducerId,
        ApiKey::AddPartitionsToTxn,
        ApiKey::AddOffsetsToTxn,
        ApiKey::EndTxn,
        ApiKey::TxnOffsetCommit,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::CreatePartitions,
        ApiKey::DeleteRecords,
        ApiKey::OffsetForLeaderEpoch,
        ApiKey::OffsetDelete,
        ApiKey::DescribeProducers,
        ApiKey::DescribeTransactions,
        ApiKey::ListTransactions,
        ApiKey::DeleteGroups,
        ApiKey::DescribeConfigs,
    ];

    #[test]
    fn supports_exactly_the_tested_apis() {
        for r in gregor_protocol::versions::supported() {
            assert_eq!(supports(r.key), TESTED.contains(&r.key), "{:?}", r.key);
        }
        for key in TESTED {
            assert!(supports(key), "{key:?}");
            assert!(gregor_protocol::versions::range(key).is_some(), "{key:?}");
        }
        assert!(!supports(ApiKey::ApiVersions));
        assert!(!supports(ApiKey::SaslHandshake));
        let req = RequestKind::ApiVersions(ApiVersionsRequest::default());
        assert!(error_response(&req, 3, CODE).is_none());
        assert_eq!(targets(&req), Targets::default());
    }

    #[test]
    fn produce() {
        let req = RequestKind::Produce(
            ProduceRequest::default()
                .with_transactional_id(Some(txid("tx")))
                .with_acks(-1)
                .with_topic_data(
                    ["a", "b"]
                        .iter()
                        .map(|t| {
                            produce_request::TopicProduceData::default()
                                .with_name(tn(t))
                                .with_partition_data(
                                    (0..2)
                                        .map(|p| {
                                            produce_request::PartitionProduceData::default()
                                                .with_index(p)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        );
        let t = targets(&req);
        assert_eq!(t.topics, want_targets());
        assert_eq!(t.transactional_id.as_deref(), Some("tx"));
        for v in served(ApiKey::Produce) {
            let r: ProduceResponse = roundtrip(ApiKey::Produce, v, &req, 4);
            let got: Tp = r
                .responses
                .iter()
                .map(|t| {
                    let ps = t.partition_responses.iter();
                    (
                        t.name.to_string(),
                        ps.map(|p| (p.index, p.error_code)).collect(),
                    )
                })
                .collect();
            assert_eq!(got, want_tp(), "v{v}");
            for p in r.responses.iter().flat_map(|t| &t.partition_responses) {
                assert_eq!(p.base_offset, -1);
                assert_eq!(p.log_append_time_ms, -1);
                if v >= 5 {
                    assert_eq!(p.log_start_offset, -1);
                }
            }
        }
    }

    fn fetch_request(by_id: bool) -> RequestKind {
        RequestKind::Fetch(
            FetchRequest::default().with_topics(
                ["a", "b"]
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let topic = fetch_request::FetchTopic::default();
                        let topic = if by_id {
                            let n = u8::try_from(i).unwrap() + 1;
                            topic.with_topic_id(uuid::Uuid::from_bytes([n; 16]))
                        } else {
                            topic.with_topic(tn(t))
                        };
                        topic.with_partitions(
                            (0..2)
                                .map(|p| fetch_request::FetchPartition::default().with_partition(p))
                                .collect(),
                        )
                    })
                    .collect(),
            ),
        )
    }

    #[test]
    fn fetch() {
        let req = fetch_request(false);
        assert_eq!(targets(&req).topics, want_targets());
        for v in served(ApiKey::Fetch) {
            let r: FetchResponse = roundtrip(ApiKey::Fetch, v, &req, 4);
            assert_eq!(r.error_code, 0);
            let got: Tp = r
                .responses
                .iter()
                .map(|t| {
                    let ps = t.partitions.iter();
                    (
                        t.topic.to_string(),
                        ps.map(|p| (p.partition_index, p.error_code)).collect(),
                    )
                })
                .collect();
            assert_eq!(got, want_tp(), "v{v}");
            for p in r.responses.iter().flat_map(|t| &t.partitions) {
                assert_eq!(p.high_watermark, -1);
                assert_eq!(p.last_stable_offset, -1);
                assert_eq!(p.records.as_ref().map(Bytes::len), Some(0));
            }
        }
    }

    #[test]
    fn fetch_by_topic_id() {
        // Beyond Gregor's served range (12), but the codec has v13-18.
        let req = fetch_request(true);
        let t = targets(&req);
        assert!(t.topics.is_empty());
        assert_eq!(t.topic_ids, vec![[1u8; 16], [2u8; 16]]);
        for v in 13..=18 {
            let r: FetchResponse = roundtrip(ApiKey::Fetch, v, &req, 4);
            let ids: Vec<_> = r.responses.iter().map(|t| *t.topic_id.as_bytes()).collect();
            assert_eq!(ids, vec![[1u8; 16], [2u8; 16]], "v{v}");
            assert!(r.responses.iter().all(|t| t.partitions.len() == 2));
        }
    }

    #[test]
    fn fetch_session_error_is_top_level() {
        let req = fetch_request(false);
        for v in served(ApiKey::Fetch) {
            let kind = error_response(&req, v, 70).unwrap();
            let r: FetchResponse = decode_kind(ApiKey::Fetch, v, &kind);
            if v >= 7 {
                assert_eq!(r.error_code, 70);
                assert!(r.responses.is_empty());
            } else {
                assert_eq!(r.responses.len(), 2);
            }
        }
    }

    #[test]
    fn list_offsets() {
        let req = RequestKind::ListOffsets(
            ListOffsetsRequest::default().with_topics(
                ["a", "b"]
                    .iter()
                    .map(|t| {
                        list_offsets_request::ListOffsetsTopic::default()
                            .with_name(tn(t))
                            .with_partitions(
                                (0..2)
                                    .map(|p| {
                                        list_offsets_request::ListOffsetsPartition::default()
                                            .with_partition_index(p)
                                            .with_timestamp(-1)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        );
        assert_eq!(targets(&req).topics, want_targets());
        for v in served(ApiKey::ListOffsets) {
            let r: ListOffsetsResponse = roundtrip(ApiKey::ListOffsets, v, &req, 4);
            let got: Tp = r
                .topics
                .iter()
                .map(|t| {
                    let ps = t.partitions.iter();
                    (
                        t.name.to_string(),
                        ps.map(|p| (p.partition_index, p.error_code)).collect(),
                    )
                })
                .collect();
            assert_eq!(got, want_tp(), "v{v}");
            for p in r.topics.iter().flat_map(|t| &t.partitions) {
                assert_eq!((p.offset, p.timestamp), (-1, -1));
            }
        }
    }

    #[test]
    fn metadata() {
        let topics = |by_id: bool| {
            ["a", "b"]
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let x = metadata_request::MetadataRequestTopic::default();
                    if by_id {
                        let n = u8::try_from(i).unwrap() + 1;
                        x.with_topic_id(uuid::Uuid::from_bytes([n; 16]))
                            .with_name(None)
                    } else {
                        x.with_name(Some(tn(t)))
                    }
                })
                .collect::<Vec<_>>()
        };
        let req =
            RequestKind::Metadata(MetadataRequest::default().with_topics(Some(topics(false))));
        let t = targets(&req);
        assert_eq!(t.topics, vec![("a".into(), vec![]), ("b".into(), vec![])]);
        for v in served(ApiKey::Metadata) {
            let r: MetadataResponse = roundtrip(ApiKey::Metadata, v, &req, 2);
            let got: Vec<_> = r
                .topics
                .iter()
                .map(|t| (t.name.as_deref().map(|n| n.to_string()), t.error_code))
                .collect();
            assert_eq!(
                got,
                vec![(Some("a".into()), CODE), (Some("b".into()), CODE)],
                "v{v}"
            );
            assert!(r.brokers.is_empty());
            assert_eq!(r.error_code, 0);
            assert!(r.topics.iter().all(|t| t.partitions.is_empty()));
        }
        // By id (v10+): the id is echoed; the name is "" until v12 and null after.
        let req = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(topics(true))));
        assert_eq!(targets(&req).topic_ids, vec![[1u8; 16], [2u8; 16]]);
        for v in 10..=13 {
            let r: MetadataResponse = roundtrip(ApiKey::Metadata, v, &req, 2);
            let ids: Vec<_> = r.topics.iter().map(|t| *t.topic_id.as_bytes()).collect();
            assert_eq!(ids, vec![[1u8; 16], [2u8; 16]], "v{v}");
            let name = r.topics[0].name.as_deref().map(|n| n.to_string());
            let want = if v < 12 { Some(String::new()) } else { None };
            assert_eq!(name, want, "v{v}");
        }
        // All topics: only v13 can carry the code.
        for topics in [None, Some(vec![])] {
            let req = RequestKind::Metadata(MetadataRequest::default().with_topics(topics));
            for v in served(ApiKey::Metadata) {
                let kind = error_response(&req, v, CODE);
                if v < 13 {
                    assert!(kind.is_none(), "v{v}");
                } else {
                    let kind = kind.unwrap();
                    let r: MetadataResponse = decode_kind(ApiKey::Metadata, v, &kind);
                    assert_eq!(r.error_code, CODE);
                }
            }
        }
    }

    #[test]
    fn offset_commit() {
        let req = RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(gid("g1"))
                .with_topics(
                    ["a", "b"]
                        .iter()
                        .map(|t| {
                            offset_commit_request::OffsetCommitRequestTopic::default()
                                .with_name(tn(t))
                                .with_partitions(
                                    (0..2)
                                        .map(|p| {
                                            offset_commit_request::OffsetCommitRequestPartition::default()
                                                .with_partition_index(p)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        );
        let t = targets(&req);
        assert_eq!(t.topics, want_targets());
        assert_eq!(t.groups, vec!["g1".to_string()]);
        for v in served(ApiKey::OffsetCommit) {
            let r: OffsetCommitResponse = roundtrip(ApiKey::OffsetCommit, v, &req, 4);
            let got: Tp = r
                .topics
                .iter()
                .map(|t| {
                    let ps = t.partitions.iter();
                    (
                        t.name.to_string(),
                        ps.map(|p| (p.partition_index, p.error_code)).collect(),
                    )
                })
                .collect();
            assert_eq!(got, want_tp(), "v{v}");
        }
    }

    #[test]
    fn offset_fetch() {
        for v in served(ApiKey::OffsetFetch) {
            let req = if v >= 8 {
                OffsetFetchRequest::default().with_groups(
                    ["g1", "g2"]
                        .iter()
                        .map(|g| {
                            offset_fetch_request::OffsetFetchRequestGroup::default()
                                .with_group_id(gid(g))
                                .with_topics(Some(
                                    ["a", "b"]
                                        .iter()
                                        .map(|t| {
                                            offset_fetch_request::OffsetFetchRequestTopics::default(
                                            )
                                            .with_name(tn(t))
                                            .with_partition_indexes(vec![0, 1])
                                        })
                                        .collect(),
                                ))
                        })
                        .collect(),
                )
            } else {
                OffsetFetchRequest::default()
                    .with_group_id(gid("g1"))
                    .with_topics(Some(
                        ["a", "b"]
                            .iter()
                            .map(|t| {
                                offset_fetch_request::OffsetFetchRequestTopic::default()
                                    .with_name(tn(t))
                                    .with_partition_indexes(vec![0, 1])
                            })
                            .collect(),
                    ))
            };
            let req = RequestKind::OffsetFetch(req);
            let t = targets(&req);
            if v >= 8 {
                assert_eq!(t.groups, vec!["g1".to_string(), "g2".to_string()]);
                let mut want = want_targets();
                want.extend(want_targets());
                assert_eq!(t.topics, want);
                // Per group: 1 group code + 4 partition codes.
                let r: OffsetFetchResponse = roundtrip(ApiKey::OffsetFetch, v, &req, 10);
                let groups: Vec<_> = r
                    .groups
                    .iter()
                    .map(|g| (g.group_id.to_string(), g.error_code))
                    .collect();
                assert_eq!(
                    groups,
                    vec![("g1".into(), CODE), ("g2".into(), CODE)],
                    "v{v}"
                );
                for g in &r.groups {
                    let got: Tp = g
                        .topics
                        .iter()
                        .map(|t| {
                            let ps = t.partitions.iter();
                            (
                                t.name.to_string(),
                                ps.map(|p| (p.partition_index, p.error_code)).collect(),
                            )
                        })
                        .collect();
                    assert_eq!(got, want_tp(), "v{v}");
                    assert!(g
                        .topics
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .all(|p| p.committed_offset == -1));
                }
            } else {
                assert_eq!(t.groups, vec!["g1".to_string()]);
                assert_eq!(t.topics, want_targets());
                let n = if v >= 2 { 5 } else { 4 };
                let r: OffsetFetchResponse = roundtrip(ApiKey::OffsetFetch, v, &req, n);
                assert_eq!(r.error_code, if v >= 2 { CODE } else { 0 }, "v{v}");
                let got: Tp = r
                    .topics
                    .iter()
                    .map(|t| {
                        let ps = t.partitions.iter();
                        (
                            t.name.to_string(),
                            ps.map(|p| (p.partition_index, p.error_code)).collect(),
                        )
                    })
                    .collect();
                assert_eq!(got, want_tp(), "v{v}");
                assert!(r
                    .topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .all(|p| p.committed_offset == -1));
            }
        }
    }

    #[test]
    fn find_coordinator() {
        for v in served(ApiKey::FindCoordinator) {
            let req = if v >= 4 {
                FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g1"), s("g2")])
            } else {
                FindCoordinatorRequest::default().with_key(s("g1"))
            };
            let req = RequestKind::FindCoordinator(req);
            let t = targets(&req);
            if v >= 4 {
                assert_eq!(t.groups, vec!["g1".to_string(), "g2".to_string()]);
                let r: FindCoordinatorResponse = roundtrip(ApiKey::FindCoordinator, v, &req, 2);
                let got: Vec<_> = r
                    .coordinators
                    .iter()
                    .map(|c| {
                        (
                            c.key.to_string(),
                            c.error_code,
                            c.node_id.0,
                            c.port,
                            c.host.to_string(),
                        )
                    })
                    .collect();
                assert_eq!(
                    got,
                    vec![
                        ("g1".into(), CODE, -1, -1, String::new()),
                        ("g2".into(), CODE, -1, -1, String::new())
                    ],
                    "v{v}"
                );
            } else {
                assert_eq!(t.groups, vec!["g1".to_string()]);
                let r: FindCoordinatorResponse = roundtrip(ApiKey::FindCoordinator, v, &req, 1);
                assert_eq!((r.error_code, r.node_id.0, r.port), (CODE, -1, -1), "v{v}");
            }
        }
        // A transactional id.
        let req = RequestKind::FindCoordinator(
            FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![s("tx")]),
        );
        let t = targets(&req);
        assert_eq!(t.transactional_id.as_deref(), Some("tx"));
        assert!(t.groups.is_empty());
    }

    #[test]
    fn join_group() {
        let req = RequestKind::JoinGroup(
            JoinGroupRequest::default()
                .with_group_id(gid("g1"))
                .with_member_id(s("m1"))
                .with_protocol_type(s("consumer")),
        );
        assert_eq!(targets(&req).groups, vec!["g1".to_string()]);
        for v in served(ApiKey::JoinGroup) {
            let r: JoinGroupResponse = roundtrip(ApiKey::JoinGroup, v, &req, 1);
            assert_eq!(r.error_code, CODE, "v{v}");
            assert_eq!(r.generation_id, -1);
            assert_eq!(&*r.member_id, "m1");
            assert_eq!(&*r.leader, "");
            assert!(r.members.is_empty());
            if v >= 7 {
                assert!(r.protocol_name.is_none());
            } else {
                assert_eq!(r.protocol_name.as_deref(), Some(""));
            }
        }
    }

    #[test]
    fn heartbeat_sync_list_groups() {
        let req = RequestKind::Heartbeat(HeartbeatRequest::default().with_group_id(gid("g1")));
        assert_eq!(targets(&req).groups, vec!["g1".to_string()]);
        for v in served(ApiKey::Heartbeat) {
            let r: HeartbeatResponse = roundtrip(ApiKey::Heartbeat, v, &req, 1);
            assert_eq!(r.error_code, CODE, "v{v}");
        }
        let req = RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(gid("g1"))
                .with_member_id(s("m1")),
        );
        assert_eq!(targets(&req).groups, vec!["g1".to_string()]);
        for v in served(ApiKey::SyncGroup) {
            let r: SyncGroupResponse = roundtrip(ApiKey::SyncGroup, v, &req, 1);
            assert_eq!(r.error_code, CODE, "v{v}");
            assert!(r.assignment.is_empty());
        }
        let req = RequestKind::ListGroups(ListGroupsRequest::default());
        assert_eq!(targets(&req), Targets::default());
        for v in served(ApiKey::ListGroups) {
            let r: ListGroupsResponse = roundtrip(ApiKey::ListGroups, v, &req, 1);
            assert_eq!(r.error_code, CODE, "v{v}");
            assert!(r.groups.is_empty());
        }
    }

    #[test]
    fn leave_group() {
        for v in served(ApiKey::LeaveGroup) {
            let req = if v >= 3 {
                LeaveGroupRequest::default()
                    .with_group_id(gid("g1"))
                    .with_members(
                        ["m1", "m2"]
                            .iter()
                            .map(|m| {
                                leave_group_request::MemberIdentity::default().with_member_id(s(m))
                            })
                            .collect(),
                    )
            } else {
                LeaveGroupRequest::default()
                    .with_group_id(gid("g1"))
                    .with_member_id(s("m1"))
            };
            let req = RequestKind::LeaveGroup(req);
            assert_eq!(targets(&req).groups, vec!["g1".to_string()]);
            let n = if v >= 3 { 3 } else { 1 };
            let r: LeaveGroupResponse = roundtrip(ApiKey::LeaveGroup, v, &req, n);
            assert_eq!(r.error_code, CODE, "v{v}");
            if v >= 3 {
                let got: Vec<_> = r
                    .members
                    .iter()
                    .map(|m| (m.member_id.to_string(), m.error_code))
                    .collect();
                assert_eq!(got, vec![("m1".into(), CODE), ("m2".into(), CODE)], "v{v}");
            }
        }
    }

    #[test]
    fn describe_and_delete_groups() {
        let req = RequestKind::DescribeGroups(
            DescribeGroupsRequest::default().with_groups(vec![gid("g1"), gid("g2")]),
        );
        assert_eq!(
            targets(&req).groups,
            vec!["g1".to_string(), "g2".to_string()]
        );
        for v in served(ApiKey::DescribeGroups) {
            let r: DescribeGroupsResponse = roundtrip(ApiKey::DescribeGroups, v, &req, 2);
            let got: Vec<_> = r
                .groups
                .iter()
                .map(|g| (g.group_id.to_string(), g.error_code))
                .collect();
            assert_eq!(got, vec![("g1".into(), CODE), ("g2".into(), CODE)], "v{v}");
            assert!(r.groups.iter().all(|g| g.members.is_empty()));
        }
        let req = RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![gid("g1"), gid("g2")]),
        );
        assert_eq!(
            targets(&req).groups,
            vec!["g1".to_string(), "g2".to_string()]
        );
        for v in served(ApiKey::DeleteGroups) {
            let r: DeleteGroupsResponse = roundtrip(ApiKey::DeleteGroups, v, &req, 2);
            let got: Vec<_> = r
                .results
                .iter()
                .map(|g| (g.group_id.to_string(), g.error_code))
                .collect();
            assert_eq!(got, vec![("g1".into(), CODE), ("g2".into(), CODE)], "v{v}");
        }
    }

    #[test]
    fn init_producer_id_add_offsets_end_txn() {
        let req = RequestKind::InitProducerId(
            InitProducerIdRequest::default().with_transactional_id(Some(txid("tx"))),
        );
        assert_eq!(targets(&req).transactional_id.as_deref(), Some("tx"));
        for v in served(ApiKey::InitProducerId) {
            let r: InitProducerIdResponse = roundtrip(ApiKey::InitProducerId, v, &req, 1);
            assert_eq!(
                (r.error_code, r.producer_id.0, r.producer_epoch),
                (CODE, -1, -1),
                "v{v}"
            );
        }
        let req = RequestKind::AddOffsetsToTxn(
            AddOffsetsToTxnRequest::default()
                .with_transactional_id(txid("tx"))
                .with_group_id(gid("g1")),
        );
        let t = targets(&req);
        assert_eq!(t.transactional_id.as_deref(), Some("tx"));
        assert_eq!(t.groups, vec!["g1".to_string()]);
        for v in served(ApiKey::AddOffsetsToTxn) {
            let r: AddOffsetsToTxnResponse = roundtrip(ApiKey::AddOffsetsToTxn, v, &req, 1);
            assert_eq!(r.error_code, CODE, "v{v}");
        }
        let req = RequestKind::EndTxn(EndTxnRequest::default().with_transactional_id(txid("tx")));
        assert_eq!(targets(&req).transactional_id.as_deref(), Some("tx"));
        for v in served(ApiKey::EndTxn) {
            let r: EndTxnResponse = roundtrip(ApiKey::EndTxn, v, &req, 1);
            assert_eq!(r.error_code, CODE, "v{v}");
        }
    }

    fn txn_topics() -> Vec<add_partitions_to_txn_request::AddPartitionsToTxnTopic> {
        ["a", "b"]
            .iter()
            .map(|t| {
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(tn(t))
                    .with_partitions(vec![0, 1])
            })
            .collect()
    }

    fn apt_tp(ts: &[AddPartitionsToTxnTopicResult]) -> Tp {
        ts.iter()
            .map(|t| {
                let ps = t.results_by_partition.iter();
                (
                    t.name.to_string(),
                    ps.map(|p| (p.partition_index, p.partition_error_code))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn add_partitions_to_txn() {
        for v in served(ApiKey::AddPartitionsToTxn) {
            let req = if v >= 4 {
                AddPartitionsToTxnRequest::default().with_transactions(
                    ["tx1", "tx2"]
                        .iter()
                        .map(|x| {
                            add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                                .with_transactional_id(txid(x))
                                .with_topics(txn_topics())
                        })
                        .collect(),
                )
            } else {
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(txid("tx1"))
                    .with_v3_and_below_topics(txn_topics())
            };
            let req = RequestKind::AddPartitionsToTxn(req);
            let t = targets(&req);
            assert_eq!(t.transactional_id.as_deref(), Some("tx1"));
            if v >= 4 {
                let r: AddPartitionsToTxnResponse =
                    roundtrip(ApiKey::AddPartitionsToTxn, v, &req, 9);
                assert_eq!(r.error_code, CODE, "v{v}");
                let ids: Vec<_> = r
                    .results_by_transaction
                    .iter()
                    .map(|x| x.transactional_id.to_string())
                    .collect();
                assert_eq!(ids, vec!["tx1".to_string(), "tx2".to_string()]);
                for x in &r.results_by_transaction {
                    assert_eq!(apt_tp(&x.topic_results), want_tp(), "v{v}");
                }
            } else {
                assert_eq!(t.topics, want_targets());
                let r: AddPartitionsToTxnResponse =
                    roundtrip(ApiKey::AddPartitionsToTxn, v, &req, 4);
                assert_eq!(apt_tp(&r.results_by_topic_v3_and_below), want_tp(), "v{v}");
            }
        }
    }

    #[test]
    fn txn_offset_commit() {
        let req = RequestKind::TxnOffsetCommit(
            TxnOffsetCommitRequest::default()
                .with_transactional_id(txid("tx"))
                .with_group_id(gid("g1"))
                .with_topics(
                    ["a", "b"]
                        .iter()
                        .map(|t| {
                            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                                .with_name(tn(t))
                                .with_partitions(
                                    (0..2)
                                        .map(|p| {
                                            txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                                .with_partition_index(p)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        );
        let t = targets(&req);
        assert_eq!(t.topics, want_targets());
        assert_eq!(t.groups, vec!["g1".to_string()]);
        assert_eq!(t.transactional_id.as_deref(), Some("tx"));
        for v in served(ApiKey::TxnOffsetCommit) {
            let r: TxnOffsetCommitResponse = roundtrip(ApiKey::TxnOffsetCommit, v, &req, 4);
            let got: Tp = r
                .topics
                .iter()
                .map(|t| {
                    let ps = t.partitions.iter();
                    (
                        t.name.to_string(),
                        ps.map(|p| (p.partition_index, p.error_code)).collect(),
                    )
                })
                .collect();
            assert_eq!(got, want_tp(), "v{v}");
        }
    }

    #[test]
    fn create_delete_topics_and_partitions() {
        let whole = vec![("a".to_string(), vec![]), ("b".to_string(), vec![])];
        let req = RequestKind::CreateTopics(
            CreateTopicsRequest::default().with_topics(
                ["a", "b"]
                    .iter()
                    .map(|t| create_topics_request::CreatableTopic::default().with_name(tn(t)))
                    .collect(),
            ),
        );
        assert_eq!(targets(&req).topics, whole);
        for v in served(ApiKey::CreateTopics) {
            let r: CreateTopicsResponse = roundtrip(ApiKey::CreateTopics, v, &req, 2);
            let got: Vec<_> = r
                .topics
                .iter()
                .map(|t| (t.name.to_string(), t.error_code))
                .collect();
            assert_eq!(got, vec![("a".into(), CODE), ("b".into(), CODE)], "v{v}");
            if v >= 5 {
                assert!(r
                    .topics
                    .iter()
                    .all(|t| t.num_partitions == -1 && t.replication_factor == -1));
            }
        }
        for v in served(ApiKey::DeleteTopics) {
            let req = if v >= 6 {
                DeleteTopicsRequest::default().with_topics(
                    ["a", "b"]
                        .iter()
                        .map(|t| {
                            delete_topics_request::DeleteTopicState::default()
                                .with_name(Some(tn(t)))
                        })
                        .collect(),
                )
            } else {
                DeleteTopicsRequest::default().with_topic_names(vec![tn("a"), tn("b")])
            };
            let req = RequestKind::DeleteTopics(req);
            assert_eq!(targets(&req).topics, whole);
            let r: DeleteTopicsResponse = roundtrip(ApiKey::DeleteTopics, v, &req, 2);
            let got: Vec<_> = r
                .responses
                .iter()
                .map(|t| (t.name.as_deref().map(|n| n.to_string()), t.error_code))
                .collect();
            assert_eq!(
                got,
                vec![(Some("a".into()), CODE), (Some("b".into()), CODE)],
                "v{v}"
            );
        }
        let req = RequestKind::CreatePartitions(
            CreatePartitionsRequest::default().with_topics(
                ["a", "b"]
                    .iter()
                    .map(|t| {
                        create_partitions_request::CreatePartitionsTopic::default()
                            .with_name(tn(t))
                            .with_count(4)
                    })
                    .collect(),
            ),
        );
        assert_eq!(targets(&req).topics, whole);
        for v in served(ApiKey::CreatePartitions) {
            let r: CreatePartitionsResponse = roundtrip(ApiKey::CreatePartitions, v, &req, 2);
            let got: Vec<_> = r
                .results
                .iter()
                .map(|t| (t.name.to_string(), t.error_code))
                .collect();
            assert_eq!(got, vec![("a".into(), CODE), ("b".into(), CODE)], "v{v}");
        }
    }

    #[test]
    fn delete_records() {
        let req = RequestKind::DeleteRecords(
            DeleteRecordsRequest::default().with_topics(
                ["a", "b"]
                    .iter()
                    .map(|t| {
                        delete_records_request::DeleteRecordsTopic::default()
                            .with_name(tn(t))
                            .with_partitions(
                                (0..2)
                                    .map(|p| {
                                        delete_records_request::DeleteRecordsPartition::default()
                                            .with_partition_index(p)
                                            .with_offset(5)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        );
        assert_eq!(targets(&req).topics, want_targets());
        for v in served(ApiKey::DeleteRecords) {
            let r: DeleteRecordsResponse = roundtrip(ApiKey::DeleteRecords, v, &req, 4);
            let got: Tp = r
                .topics
                .iter()
                .map(|t| {
                    let ps = t.partitions.iter();
                    (
                        t.name.to_string(),
                        ps.map(|p| (p.partition_index, p.error_code)).collect(),
                    )
                })
                .collect();
            assert_eq!(got, want_tp(), "v{v}");
            assert!(r
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .all(|p| p.low_watermark == -1));
        }
    }

    #[test]
    fn offset_for_leader_epoch() {
        let req = RequestKind::OffsetForLeaderEpoch(
            OffsetForLeaderEpochRequest::default().with_topics(
                ["a", "b"]
                    .iter()
                    .map(|t| {
                        offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                            .with_topic(tn(t))
                            .with_partitions(
                                (0..2)
                                    .map(|p| {
                                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                                            .with_partition(p)
                                            .with_leader_epoch(3)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        );
        assert_eq!(targets(&req).topics, want_targets());
        for v in served(ApiKey::OffsetForLeaderEpoch) {
            let r: OffsetForLeaderEpochResponse =
                roundtrip(ApiKey::OffsetForLeaderEpoch, v, &req, 4);
            let got: Tp = r
                .topics
                .iter()
                .map(|t| {
                    let ps = t.partitions.iter();
                    (
                        t.topic.to_string(),
                        ps.map(|p| (p.partition, p.error_code)).collect(),
                    )
                })
                .collect();
            assert_eq!(got, want_tp(), "v{v}");
            assert!(r
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .all(|p| p.leader_epoch == -1 && p.end_offset == -1));
        }
    }

    #[test]
    fn offset_delete() {
        let req = RequestKind::OffsetDelete(
            OffsetDeleteRequest::default()
                .with_group_id(gid("g1"))
                .with_topics(
                    ["a", "b"]
                        .iter()
                        .map(|t| {
                            offset_delete_request::OffsetDeleteRequestTopic::default()
                                .with_name(tn(t))
                                .with_partitions(
                                    (0..2)
                                        .map(|p| {
                                            offset_delete_request::OffsetDeleteRequestPartition::default()
                                                .with_partition_index(p)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        );
        let t = targets(&req);
        assert_eq!(t.topics, want_targets());
        assert_eq!(t.groups, vec!["g1".to_string()]);
        for v in served(ApiKey::OffsetDelete) {
            let r: OffsetDeleteResponse = roundtrip(ApiKey::OffsetDelete, v, &req, 5);
            assert_eq!(r.error_code, CODE);
            let got: Tp = r
                .topics
                .iter()
                .map(|t| {
                    let ps = t.partitions.iter();
                    (
                        t.name.to_string(),
                        ps.map(|p| (p.partition_index, p.error_code)).collect(),
                    )
                })
                .collect();
            assert_eq!(got, want_tp(), "v{v}");
        }
    }

    #[test]
    fn describe_producers() {
        let req = RequestKind::DescribeProducers(
            DescribeProducersRequest::default().with_topics(
                ["a", "b"]
                    .iter()
                    .map(|t| {
                        describe_producers_request::TopicRequest::default()
                            .with_name(tn(t))
                            .with_partition_indexes(vec![0, 1])
                    })
                    .collect(),
            ),
        );
        assert_eq!(targets(&req).topics, want_targets());
        for v in served(ApiKey::DescribeProducers) {
            let r: DescribeProducersResponse = roundtrip(ApiKey::DescribeProducers, v, &req, 4);
            let got: Tp = r
                .topics
                .iter()
                .map(|t| {
                    let ps = t.partitions.iter();
                    (
                        t.name.to_string(),
                        ps.map(|p| (p.partition_index, p.error_code)).collect(),
                    )
                })
                .collect();
            assert_eq!(got, want_tp(), "v{v}");
        }
    }

    #[test]
    fn describe_and_list_transactions() {
        let req = RequestKind::DescribeTransactions(
            DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![txid("tx1"), txid("tx2")]),
        );
        assert_eq!(targets(&req).transactional_id.as_deref(), Some("tx1"));
        for v in served(ApiKey::DescribeTransactions) {
            let r: DescribeTransactionsResponse =
                roundtrip(ApiKey::DescribeTransactions, v, &req, 2);
            let got: Vec<_> = r
                .transaction_states
                .iter()
                .map(|x| {
                    (
                        x.transactional_id.to_string(),
                        x.error_code,
                        x.producer_id.0,
                    )
                })
                .collect();
            assert_eq!(
                got,
                vec![("tx1".into(), CODE, -1), ("tx2".into(), CODE, -1)],
                "v{v}"
            );
        }
        let req = RequestKind::ListTransactions(ListTransactionsRequest::default());
        assert_eq!(targets(&req), Targets::default());
        for v in served(ApiKey::ListTransactions) {
            let r: ListTransactionsResponse = roundtrip(ApiKey::ListTransactions, v, &req, 1);
            assert_eq!(r.error_code, CODE, "v{v}");
        }
    }

    #[test]
    fn describe_configs() {
        let req =
            RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("a")),
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(s("1")),
            ]));
        assert_eq!(targets(&req).topics, vec![("a".to_string(), vec![])]);
        for v in served(ApiKey::DescribeConfigs) {
            let r: DescribeConfigsResponse = roundtrip(ApiKey::DescribeConfigs, v, &req, 2);
            let got: Vec<_> = r
                .results
                .iter()
                .map(|x| (x.resource_type, x.resource_name.to_string(), x.error_code))
                .collect();
            assert_eq!(
                got,
                vec![(2, "a".into(), CODE), (4, "1".into(), CODE)],
                "v{v}"
            );
            assert!(r.results.iter().all(|x| x.configs.is_empty()));
        }
    }

    #[test]
    fn patch_raw_throttle_fetch_and_metadata() {
        let fetch = error_response(&fetch_request(false), 4, CODE).unwrap();
        for v in served(ApiKey::Fetch) {
            let mut frame = encode_response(9, ApiKey::Fetch, v, &fetch).unwrap();
            assert!(
                patch_raw_throttle(ApiKey::Fetch, v, &mut frame, 1234),
                "v{v}"
            );
            let r: FetchResponse = {
                let mut b = Bytes::from(frame.to_vec());
                b.advance(4);
                ResponseHeader::decode(&mut b, fetch.header_version(v)).unwrap();
                FetchResponse::decode(&mut b, v).unwrap()
            };
            assert_eq!(r.throttle_time_ms, 1234, "v{v}");
            assert_eq!(r.responses.len(), 2);
        }
        let req = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(tn("a"))),
        ])));
        for v in served(ApiKey::Metadata) {
            let kind = error_response(&req, v, CODE).unwrap();
            let mut frame = encode_response(9, ApiKey::Metadata, v, &kind).unwrap();
            let before = frame.to_vec();
            let patched = patch_raw_throttle(ApiKey::Metadata, v, &mut frame, 77);
            assert_eq!(patched, v >= 3, "v{v}");
            if !patched {
                assert_eq!(&frame[..], &before[..]);
                continue;
            }
            let mut b = Bytes::from(frame.to_vec());
            b.advance(4);
            let h = ResponseHeader::decode(&mut b, kind.header_version(v)).unwrap();
            assert_eq!(h.correlation_id, 9);
            let r = MetadataResponse::decode(&mut b, v).unwrap();
            assert_eq!(r.throttle_time_ms, 77, "v{v}");
            assert_eq!(r.topics.len(), 1);
        }
        let mut short = [0u8; 10];
        assert!(!patch_raw_throttle(ApiKey::Fetch, 4, &mut short, 1));
        let mut frame = vec![0u8; 64];
        assert!(!patch_raw_throttle(ApiKey::Produce, 9, &mut frame, 1));
        assert!(!patch_raw_throttle(ApiKey::Fetch, 0, &mut frame, 1));
    }

    #[test]
    fn set_throttle_encodes() {
        let req = RequestKind::Heartbeat(HeartbeatRequest::default().with_group_id(gid("g1")));
        let mut kind = error_response(&req, 4, CODE).unwrap();
        set_throttle(&mut kind, 250);
        for v in served(ApiKey::Heartbeat) {
            let r: HeartbeatResponse = decode_kind(ApiKey::Heartbeat, v, &kind);
            // v0 has no throttle field: silently not encoded.
            assert_eq!(r.throttle_time_ms, if v >= 1 { 250 } else { 0 }, "v{v}");
        }
        let mut kind = error_response(&fetch_request(false), 12, CODE).unwrap();
        set_throttle(&mut kind, 99);
        let r: FetchResponse = decode_kind(ApiKey::Fetch, 12, &kind);
        assert_eq!(r.throttle_time_ms, 99);
        let mut kind = ResponseKind::ApiVersions(ApiVersionsResponse::default());
        set_throttle(&mut kind, 5);
        let ResponseKind::ApiVersions(r) = &kind else {
            panic!()
        };
        assert_eq!(r.throttle_time_ms, 5);
        // A type without the field is left alone.
        let mut kind = ResponseKind::SaslHandshake(SaslHandshakeResponse::default());
        set_throttle(&mut kind, 5);
    }

    #[test]
    fn error_codes_nested_and_zero() {
        let ok = ResponseKind::Produce(ProduceResponse::default().with_responses(vec![
            TopicProduceResponse::default().with_partition_responses(vec![
                PartitionProduceResponse::default(),
                PartitionProduceResponse::default().with_error_code(56),
            ]),
        ]));
        assert_eq!(codes(&ok), vec![56]);
        let m = ResponseKind::Metadata(MetadataResponse::default().with_topics(vec![
            MetadataResponseTopic::default().with_error_code(3).with_partitions(vec![
                metadata_response::MetadataResponsePartition::default().with_error_code(5),
            ]),
        ]));
        assert_eq!(codes(&m), vec![3, 5]);
        let lg = ResponseKind::LeaveGroup(LeaveGroupResponse::default().with_members(vec![
            MemberResponse::default().with_error_code(25),
            MemberResponse::default(),
        ]));
        assert_eq!(codes(&lg), vec![25]);
        assert!(codes(&ResponseKind::ApiVersions(
            ApiVersionsResponse::default().with_error_code(35)
        ))
        .is_empty());
    }
}
