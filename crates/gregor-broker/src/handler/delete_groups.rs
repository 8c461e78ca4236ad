//! DeleteGroups (42): only Empty groups; their committed offsets go too.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use tracing::info;

use crate::context::Broker;
use crate::coordinator::code;
use crate::error::storage_error;

pub fn handle(b: &Broker, req: DeleteGroupsRequest, _version: i16) -> DeleteGroupsResponse {
    let results = req
        .groups_names
        .into_iter()
        .map(|g| {
            let r = DeletableGroupResult::default().with_group_id(g.clone());
            if g.0.is_empty() {
                return r.with_error_code(code::INVALID_GROUP_ID);
            }
            let had_offsets = b
                .store()
                .committed_offsets(&g.0)
                .is_ok_and(|o| !o.is_empty());
            match b.coordinator().delete(&g.0) {
                Err(e) => r.with_error_code(e),
                Ok(false) if !had_offsets => r.with_error_code(code::GROUP_ID_NOT_FOUND),
                Ok(_) => match b.store().delete_committed_offsets(&g.0, None) {
                    Ok(()) => {
                        info!(group = %&*g.0, "deleted group");
                        r.with_error_code(0)
                    }
                    Err(e) => r.with_error_code(storage_error(&e).code()),
                },
            }
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
