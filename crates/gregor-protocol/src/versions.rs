//! The supported-versions table: what ApiVersions advertises and what the
//! decoder accepts. Honest by construction: each range is the crate's
//! request ∩ response versions, capped by what Gregor's handler serves.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Message, VersionRange};

/// One advertised API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    /// The API.
    pub key: ApiKey,
    /// Lowest version advertised.
    pub min: i16,
    /// Highest version advertised.
    pub max: i16,
    /// Lowest version actually served. Produce advertises 0 like Kafka 4 so
    /// that librdkafka < 2.11.1 keeps its codecs (librdkafka#4956), but
    /// v0–2 close the connection, as Kafka 4 does (KAFKA-18659).
    pub served_min: i16,
}

fn codec<Req: Message, Resp: Message>() -> VersionRange {
    Req::VERSIONS.intersect(&Resp::VERSIONS)
}

/// `(key, codec range, cap)`: the cap is the (min, max) the handler
/// implements; `None` keeps the codec's range.
type Row = (ApiKey, VersionRange, Option<(i16, i16)>);

fn table() -> Vec<Row> {
    vec![
        // Produce/Fetch v13+ name topics only by id: capped at 12.
        (
            ApiKey::Produce,
            codec::<ProduceRequest, ProduceResponse>(),
            Some((0, 12)),
        ),
        (
            ApiKey::Fetch,
            codec::<FetchRequest, FetchResponse>(),
            Some((4, 12)),
        ),
        (
            ApiKey::ListOffsets,
            codec::<ListOffsetsRequest, ListOffsetsResponse>(),
            None,
        ),
        (
            ApiKey::Metadata,
            codec::<MetadataRequest, MetadataResponse>(),
            None,
        ),
        (
            ApiKey::OffsetForLeaderEpoch,
            codec::<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>(),
            None,
        ),
        (
            ApiKey::ApiVersions,
            codec::<ApiVersionsRequest, ApiVersionsResponse>(),
            None,
        ),
        (
            ApiKey::CreateTopics,
            codec::<CreateTopicsRequest, CreateTopicsResponse>(),
            None,
        ),
        (
            ApiKey::DeleteTopics,
            codec::<DeleteTopicsRequest, DeleteTopicsResponse>(),
            None,
        ),
        (
            ApiKey::InitProducerId,
            codec::<InitProducerIdRequest, InitProducerIdResponse>(),
            None,
        ),
        (
            ApiKey::DescribeConfigs,
            codec::<DescribeConfigsRequest, DescribeConfigsResponse>(),
            None,
        ),
        (
            ApiKey::DescribeCluster,
            codec::<DescribeClusterRequest, DescribeClusterResponse>(),
            None,
        ),
        // The classic consumer-group protocol.
        (
            ApiKey::OffsetCommit,
            codec::<OffsetCommitRequest, OffsetCommitResponse>(),
            None,
        ),
        (
            ApiKey::OffsetFetch,
            codec::<OffsetFetchRequest, OffsetFetchResponse>(),
            None,
        ),
        (
            ApiKey::FindCoordinator,
            codec::<FindCoordinatorRequest, FindCoordinatorResponse>(),
            None,
        ),
        (
            ApiKey::JoinGroup,
            codec::<JoinGroupRequest, JoinGroupResponse>(),
            None,
        ),
        (
            ApiKey::Heartbeat,
            codec::<HeartbeatRequest, HeartbeatResponse>(),
            None,
        ),
        (
            ApiKey::LeaveGroup,
            codec::<LeaveGroupRequest, LeaveGroupResponse>(),
            None,
        ),
        (
            ApiKey::SyncGroup,
            codec::<SyncGroupRequest, SyncGroupResponse>(),
            None,
        ),
        (
            ApiKey::DescribeGroups,
            codec::<DescribeGroupsRequest, DescribeGroupsResponse>(),
            None,
        ),
        (
            ApiKey::ListGroups,
            codec::<ListGroupsRequest, ListGroupsResponse>(),
            None,
        ),
        (
            ApiKey::DeleteGroups,
            codec::<DeleteGroupsRequest, DeleteGroupsResponse>(),
            None,
        ),
        (
            ApiKey::OffsetDelete,
            codec::<OffsetDeleteRequest, OffsetDeleteResponse>(),
            None,
        ),
        (
            ApiKey::AddPartitionsToTxn,
            codec::<AddPartitionsToTxnRequest, AddPartitionsToTxnResponse>(),
            None,
        ),
        (
            ApiKey::AddOffsetsToTxn,
            codec::<AddOffsetsToTxnRequest, AddOffsetsToTxnResponse>(),
            None,
        ),
        (
            ApiKey::EndTxn,
            codec::<EndTxnRequest, EndTxnResponse>(),
            None,
        ),
        (
            ApiKey::TxnOffsetCommit,
            codec::<TxnOffsetCommitRequest, TxnOffsetCommitResponse>(),
            None,
        ),
        (
            ApiKey::DescribeProducers,
            codec::<DescribeProducersRequest, DescribeProducersResponse>(),
            None,
        ),
        (
            ApiKey::DescribeTransactions,
            codec::<DescribeTransactionsRequest, DescribeTransactionsResponse>(),
            None,
        ),
        (
            ApiKey::IncrementalAlterConfigs,
            codec::<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(),
            None,
        ),
        (
            ApiKey::AlterConfigs,
            codec::<AlterConfigsRequest, AlterConfigsResponse>(),
            None,
        ),
        (
            ApiKey::CreatePartitions,
            codec::<CreatePartitionsRequest, CreatePartitionsResponse>(),
            None,
        ),
        (
            ApiKey::DeleteRecords,
            codec::<DeleteRecordsRequest, DeleteRecordsResponse>(),
            None,
        ),
        (
            ApiKey::DescribeLogDirs,
            codec::<DescribeLogDirsRequest, DescribeLogDirsResponse>(),
            None,
        ),
        (
            ApiKey::ElectLeaders,
            codec::<ElectLeadersRequest, ElectLeadersResponse>(),
            None,
        ),
        (
            ApiKey::ListPartitionReassignments,
            codec::<ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse>(),
            None,
        ),
        (
            ApiKey::AlterPartitionReassignments,
            codec::<AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse>(),
            None,
        ),
        (
            ApiKey::DescribeTopicPartitions,
            codec::<DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse>(),
            None,
        ),
        (
            ApiKey::ListTransactions,
            codec::<ListTransactionsRequest, ListTransactionsResponse>(),
            None,
        ),
    ]
}

/// Every API Gregor serves, in api-key order. Computed once: it only
/// depends on the codec's constants.
pub fn supported() -> &'static [ApiRange] {
    static TABLE: std::sync::OnceLock<Vec<ApiRange>> = std::sync::OnceLock::new();
    TABLE.get_or_init(build)
}

fn build() -> Vec<ApiRange> {
    let mut out: Vec<ApiRange> = table()
        .into_iter()
        .map(|(key, codec, cap)| {
            let (min, max, served_min) = match cap {
                Some((cmin, cmax)) => (
                    cmin.min(codec.min),
                    cmax.min(codec.max),
                    codec.min.max(cmin),
                ),
                None => (codec.min, codec.max, codec.min),
            };
            ApiRange {
                key,
                min,
                max,
                served_min,
            }
        })
        .collect();
    out.sort_by_key(|r| r.key as i16);
    out
}

/// The advertised range of one API, if served.
pub fn range(key: ApiKey) -> Option<ApiRange> {
    supported().iter().find(|r| r.key == key).copied()
}
