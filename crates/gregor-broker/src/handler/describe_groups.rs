//! DescribeGroups (15): state, protocol and members of each group.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::str_bytes;
use crate::context::Broker;
use crate::coordinator::code;

/// Without an authorizer every operation on a group is allowed: READ,
/// DELETE, DESCRIBE, DESCRIBE_CONFIGS and ALTER_CONFIGS, as Kafka reports
/// them (bits by `AclOperation` code).
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);

pub fn handle(b: &Broker, req: DescribeGroupsRequest, version: i16) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let mut d = DescribedGroup::default().with_group_id(id.clone());
            if version >= 3 && req.include_authorized_operations {
                d = d.with_authorized_operations(GROUP_OPERATIONS);
            }
            if id.0.is_empty() {
                return d
                    .with_error_code(code::INVALID_GROUP_ID)
                    .with_group_state(str_bytes("Dead"));
            }
            match b.coordinator().describe(&id.0) {
                Some(s) => d
                    .with_error_code(0)
                    .with_group_state(str_bytes(s.state.name()))
                    .with_protocol_type(str_bytes(&s.protocol_type))
                    .with_protocol_data(str_bytes(&s.protocol))
                    .with_members(
                        s.members
                            .into_iter()
                            .map(|m| {
                                let mut dm = DescribedGroupMember::default()
                                    .with_member_id(str_bytes(&m.member_id))
                                    .with_client_id(str_bytes(&m.client_id))
                                    .with_client_host(str_bytes(&m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment);
                                if version >= 4 {
                                    dm = dm.with_group_instance_id(
                                        m.instance_id.as_deref().map(str_bytes),
                                    );
                                }
                                dm
                            })
                            .collect(),
                    ),
                // A group known only by its committed offsets is Empty.
                None if b
                    .store()
                    .committed_offsets(&id.0)
                    .is_ok_and(|o| !o.is_empty()) =>
                {
                    d.with_error_code(0)
                        .with_group_state(str_bytes("Empty"))
                        .with_protocol_type(str_bytes(""))
                }
                // Unknown: Dead; v6+ also says GROUP_ID_NOT_FOUND (KIP-1043).
                None => {
                    let d = d.with_group_state(str_bytes("Dead"));
                    if version >= 6 {
                        d.with_error_code(code::GROUP_ID_NOT_FOUND)
                            .with_error_message(Some(str_bytes(&format!(
                                "Group {} not found.",
                                &*id.0
                            ))))
                    } else {
                        d.with_error_code(0)
                    }
                }
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
