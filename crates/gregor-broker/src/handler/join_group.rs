//! JoinGroup (11): thin; the coordinator's state machine decides, the
//! reply waits for the join phase to end.

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, ResponseKind};

use super::{str_bytes, Ctx, Handled, Response};
use crate::context::Broker;
use crate::coordinator::{code, JoinRequest, JoinResult};

pub fn handle(b: &Broker, ctx: Ctx, client_id: &str, req: JoinGroupRequest) -> Handled {
    let v = ctx.version;
    if req.group_id.0.is_empty() {
        return Handled::Now(reply(v, error(code::INVALID_GROUP_ID, &req.member_id)));
    }
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client_id.to_string(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if v >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: v >= 4,
        supports_skip_assignment: v >= 9,
    };
    let rx = b.coordinator().join(&req.group_id.0, join);
    let member = req.member_id.to_string();
    Handled::Later(Box::pin(async move {
        let r = rx
            .await
            .unwrap_or_else(|_| error(code::NOT_COORDINATOR, &member));
        reply(v, r)
    }))
}

fn error(code: i16, member_id: &str) -> JoinResult {
    JoinResult {
        error: code,
        generation: -1,
        protocol_type: None,
        protocol_name: None,
        leader: String::new(),
        member_id: member_id.to_string(),
        skip_assignment: false,
        members: Vec::new(),
    }
}

fn reply(v: i16, r: JoinResult) -> Response {
    let mut resp = JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation)
        .with_leader(str_bytes(&r.leader))
        .with_member_id(str_bytes(&r.member_id))
        .with_members(
            r.members
                .iter()
                .map(|m| {
                    let mut jm = JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(&m.member_id))
                        .with_metadata(m.metadata.clone());
                    if v >= 5 {
                        jm = jm.with_group_instance_id(m.instance_id.as_deref().map(str_bytes));
                    }
                    jm
                })
                .collect(),
        );
    // protocol_name is nullable from v7; before that, "" stands for none.
    resp = resp.with_protocol_name(match (&r.protocol_name, v >= 7) {
        (Some(n), _) => Some(str_bytes(n)),
        (None, true) => None,
        (None, false) => Some(str_bytes("")),
    });
    if v >= 7 {
        resp = resp.with_protocol_type(r.protocol_type.as_deref().map(str_bytes));
    }
    if v >= 9 {
        resp = resp.with_skip_assignment(r.skip_assignment);
    }
    Response::Kind(Box::new(ResponseKind::JoinGroup(resp)))
}
