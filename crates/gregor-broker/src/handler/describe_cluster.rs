//! DescribeCluster (60): the live brokers, the cluster id and the controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::str_bytes;
use crate::context::Broker;
use kafka_protocol::ResponseError;

/// `endpoint_type` 1: brokers (v1+); 2 would ask for controllers.
const BROKERS: i8 = 1;

pub fn handle(b: &Broker, req: DescribeClusterRequest, version: i16) -> DescribeClusterResponse {
    let mut r = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(&b.config().cluster_id))
        .with_controller_id(BrokerId(
            b.cluster().live().first().map_or(b.node_id(), |n| n.id),
        ))
        .with_brokers(
            b.cluster()
                .live()
                .iter()
                .map(|n| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(n.id))
                        .with_host(str_bytes(&n.host))
                        .with_port(n.port)
                })
                .collect(),
        );
    if version >= 1 {
        r = r.with_endpoint_type(BROKERS);
        if req.endpoint_type != BROKERS {
            return r
                .with_error_code(ResponseError::UnsupportedEndpointType.code())
                .with_error_message(Some(str_bytes("Only the broker endpoint type is served.")));
        }
    }
    if req.include_cluster_authorized_operations {
        r = r.with_cluster_authorized_operations(super::metadata::CLUSTER_OPERATIONS);
    }
    r.with_error_code(0)
}
