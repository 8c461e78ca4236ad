//! AlterConfigs (33), the legacy form: replaces every override of a
//! topic, or every dynamic config of the broker (this broker, or the
//! cluster default ""), validated whole per resource, in force at once,
//! answered after the durable flush (`kafka-configs.sh --alter`).

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ResponseKind};

use super::{str_bytes, Handled};
use crate::alter::{self, Op};
use crate::context::Broker;

pub fn handle(b: &Broker, req: AlterConfigsRequest, _version: i16) -> Handled {
    let mut changed = false;
    let responses = req
        .resources
        .iter()
        .map(|res| {
            let base = AlterConfigsResourceResponse::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let ops: Vec<_> = res
                .configs
                .iter()
                .map(|c| {
                    (
                        c.name.to_string(),
                        Op::Set,
                        c.value.as_ref().map(|v| v.to_string()),
                    )
                })
                .collect();
            let r = alter::alter(
                b,
                res.resource_type,
                &res.resource_name,
                &ops,
                true,
                req.validate_only,
            );
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
    let resp = AlterConfigsResponse::default().with_responses(responses);
    super::durable_if(b, changed, ResponseKind::AlterConfigs(resp))
}
