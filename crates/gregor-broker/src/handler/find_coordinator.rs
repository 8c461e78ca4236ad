//! FindCoordinator (10): the cluster's coordinator (this node, or the
//! virtual broker chosen) coordinates every group and every transactional
//! id. Single key (v0–3) and the batch form (v4+).

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::context::Broker;
use kafka_protocol::ResponseError;

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

/// (error, message) for a key, or None when this node coordinates it.
fn check(key_type: i8) -> Option<(i16, &'static str)> {
    match key_type {
        GROUP | TRANSACTION => None,
        _ => Some((
            ResponseError::InvalidRequest.code(),
            "Unsupported key type.",
        )),
    }
}

pub fn handle(b: &Broker, req: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    match req.key_type {
        GROUP => b.ensure_offsets_topic(),
        TRANSACTION => b.ensure_txn_topic(),
        _ => {}
    }
    // Every broker names the same coordinator (virtual clusters).
    let coord = b.cluster().coordinator();
    let at = b.cluster().node(coord).cloned();
    let (host, port) = at.map_or_else(|| (b.host().to_string(), b.port()), |n| (n.host, n.port));
    let node = BrokerId(coord);
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key: StrBytes| {
                let c = Coordinator::default().with_key(key);
                match check(req.key_type) {
                    None => c
                        .with_node_id(node)
                        .with_host(str_bytes(&host))
                        .with_port(port)
                        .with_error_code(0),
                    Some((code, msg)) => c
                        .with_node_id(BrokerId(-1))
                        .with_host(str_bytes(""))
                        .with_port(-1)
                        .with_error_code(code)
                        .with_error_message(Some(str_bytes(msg))),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let r = FindCoordinatorResponse::default();
    match check(req.key_type) {
        None => r
            .with_error_code(0)
            .with_node_id(node)
            .with_host(str_bytes(&host))
            .with_port(port),
        Some((code, msg)) => {
            let r = r
                .with_error_code(code)
                .with_node_id(BrokerId(-1))
                .with_host(str_bytes(""))
                .with_port(-1);
            if version >= 1 {
                r.with_error_message(Some(str_bytes(msg)))
            } else {
                r
            }
        }
    }
}
