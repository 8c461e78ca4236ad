//! DescribeCluster (60): this node, the cluster id and the controller.

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
        .with_controller_id(BrokerId(b.node_id()))
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(b.node_id()))
            .with_host(str_bytes(b.host()))
            .with_port(b.port())]);
    if version >= 1 {
        r = r.with_endpoint_type(BROKERS);
        if req.endpoint_type != BROKERS {
            return r
                .with_error_code(ResponseError::UnsupportedEndpointType.code())
                .with_error_message(Some(str_bytes("Only the broker endpoint type is served.")));
        }
    }
    r.with_error_code(0)
}
