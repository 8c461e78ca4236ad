//! SyncGroup (14): followers wait for the leader's assignment.

use kafka_protocol::messages::{ResponseKind, SyncGroupRequest, SyncGroupResponse};

use super::{str_bytes, Ctx, Handled, Response};
use crate::context::Broker;
use crate::coordinator::{code, SyncResult};

pub fn handle(b: &Broker, ctx: Ctx, req: SyncGroupRequest) -> Handled {
    let v = ctx.version;
    if req.group_id.0.is_empty() {
        return Handled::Now(reply(v, failed(code::INVALID_GROUP_ID)));
    }
    let assignments = req
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let rx = b.coordinator().sync(
        &req.group_id.0,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
        req.protocol_type.as_deref(),
        req.protocol_name.as_deref(),
        assignments,
    );
    Handled::Later(Box::pin(async move {
        // A dropped waiter: the member sent SyncGroup again meanwhile.
        let r = rx
            .await
            .unwrap_or_else(|_| failed(code::REBALANCE_IN_PROGRESS));
        reply(v, r)
    }))
}

fn failed(error: i16) -> SyncResult {
    SyncResult {
        error,
        protocol_type: None,
        protocol_name: None,
        assignment: bytes::Bytes::new(),
    }
}

fn reply(v: i16, r: SyncResult) -> Response {
    let mut resp = SyncGroupResponse::default()
        .with_error_code(r.error)
        .with_assignment(r.assignment);
    if v >= 5 {
        resp = resp
            .with_protocol_type(r.protocol_type.as_deref().map(str_bytes))
            .with_protocol_name(r.protocol_name.as_deref().map(str_bytes));
    }
    Response::Kind(Box::new(ResponseKind::SyncGroup(resp)))
}
