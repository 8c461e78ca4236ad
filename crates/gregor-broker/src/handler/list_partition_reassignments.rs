//! ListPartitionReassignments (46): one node never reassigns: the list is
//! empty.

use kafka_protocol::messages::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use crate::context::Broker;

pub fn handle(
    _b: &Broker,
    _req: ListPartitionReassignmentsRequest,
    _version: i16,
) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default().with_error_code(0)
}
