//! IncrementalAlterConfigs (44): SET, DELETE, APPEND and SUBTRACT on a
//! topic's configs or on the broker's dynamic configs (this broker, or the
//! cluster default ""), validated whole per resource, in force at once,
//! answered after the durable flush (`kafka-configs.sh --alter`).

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ResponseKind,
};
use kafka_protocol::ResponseError;

use super::{str_bytes, Handled};
use crate::alter::{self, Op};
use crate::context::Broker;

pub fn handle(b: &Broker, req: IncrementalAlterConfigsRequest, _version: i16) -> Handled {
    let mut changed = false;
    let responses = req
        .resources
        .iter()
        .map(|res| {
            let base = AlterConfigsResourceResponse::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let ops: Option<Vec<_>> = res
                .configs
                .iter()
                .map(|c| {
                    Op::from_wire(c.config_operation).map(|op| {
                        (
                            c.name.to_string(),
                            op,
                            c.value.as_ref().map(|v| v.to_string()),
                        )
                    })
                })
                .collect();
            let mut names: Vec<&str> = res.configs.iter().map(|c| &*c.name).collect();
            names.sort_unstable();
            let duplicate = names.windows(2).any(|w| w[0] == w[1]);
            let r = match ops {
                // Kafka fails an unknown operation without a message.
                None => {
                    return base.with_error_code(ResponseError::UnknownServerError.code());
                }
                Some(_) if duplicate => Err((
                    ResponseError::InvalidRequest,
                    "Error due to duplicate config keys".to_string(),
                )),
                Some(ops) => alter::alter(
                    b,
                    res.resource_type,
                    &res.resource_name,
                    &ops,
                    false,
                    req.validate_only,
                ),
            };
            match r {
                Ok(()) => {
                    changed |= !req.validate_only;
                    base.with_error_code(0)
                }
                Err((code, msg)) => base
                    .with_error_code(code.code())
                    .with_error_message(Some(str_bytes(&msg))),
            }
        })
        .collect();
    let resp = IncrementalAlterConfigsResponse::default().with_responses(responses);
    super::durable_if(b, changed, ResponseKind::IncrementalAlterConfigs(resp))
}
