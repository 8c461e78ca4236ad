//! Heartbeat (12): REBALANCE_IN_PROGRESS tells a member to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::context::Broker;
use crate::coordinator::code;

pub fn handle(b: &Broker, req: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
    let error = if req.group_id.0.is_empty() {
        code::INVALID_GROUP_ID
    } else {
        b.coordinator().heartbeat(
            &req.group_id.0,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
        )
    };
    HeartbeatResponse::default().with_error_code(error)
}
