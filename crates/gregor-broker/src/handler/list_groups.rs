//! ListGroups (16): live groups and groups that only have committed offsets.

use std::collections::BTreeMap;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::str_bytes;
use crate::context::Broker;

pub fn handle(b: &Broker, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let mut all: BTreeMap<String, (String, String)> = BTreeMap::new();
    for g in b.store().groups_with_offsets().unwrap_or_default() {
        all.insert(g, (String::new(), "Empty".to_string()));
    }
    for (id, protocol_type, state) in b.coordinator().list() {
        all.insert(id, (protocol_type, state.name().to_string()));
    }
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let groups = all
        .into_iter()
        .filter(|(_, (_, state))| {
            version < 4 || states.is_empty() || states.contains(&state.to_lowercase())
        })
        .filter(|_| version < 5 || types.is_empty() || types.iter().any(|t| t == "classic"))
        .map(|(id, (protocol_type, state))| {
            let mut g = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(&id)))
                .with_protocol_type(str_bytes(&protocol_type));
            if version >= 4 {
                g = g.with_group_state(str_bytes(&state));
            }
            if version >= 5 {
                g = g.with_group_type(str_bytes("classic"));
            }
            g
        })
        .collect();
    ListGroupsResponse::default()
        .with_error_code(0)
        .with_groups(groups)
}
