//! LeaveGroup (13): one member (v0–2) or a batch with per-member errors (v3+).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use crate::context::Broker;
use crate::coordinator::code;

pub fn handle(b: &Broker, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    if req.group_id.0.is_empty() {
        return LeaveGroupResponse::default().with_error_code(code::INVALID_GROUP_ID);
    }
    if version < 3 {
        let errors = b
            .coordinator()
            .leave(&req.group_id.0, &[(req.member_id.to_string(), None)]);
        return LeaveGroupResponse::default().with_error_code(errors.first().copied().unwrap_or(0));
    }
    let who: Vec<(String, Option<String>)> = req
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.as_ref().map(|s| s.to_string()),
            )
        })
        .collect();
    let errors = b.coordinator().leave(&req.group_id.0, &who);
    let members = req
        .members
        .into_iter()
        .zip(errors)
        .map(|(m, e)| {
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(e)
        })
        .collect();
    LeaveGroupResponse::default()
        .with_error_code(0)
        .with_members(members)
}
