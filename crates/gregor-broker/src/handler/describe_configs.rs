//! DescribeConfigs (32): topic configs (overrides and defaults) and this
//! broker's configs, with sources, synonyms and types as Kafka reports them.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::str_bytes;
use crate::context::Broker;
use crate::topics::{self, source, ConfigType};
use kafka_protocol::ResponseError;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

pub fn handle(b: &Broker, req: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|res| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let wanted = |name: &str| {
                res.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| &**k == name))
            };
            let entries: Vec<topics::ConfigEntry> = match res.resource_type {
                TOPIC => match b.store().topic(&res.resource_name) {
                    Some(meta) => topics::topic_config_entries(b.config(), &meta.configs),
                    None => {
                        return base
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes(&format!(
                                "Topic {} does not exist.",
                                &*res.resource_name
                            ))));
                    }
                },
                BROKER
                    if res.resource_name.is_empty()
                        || *res.resource_name == *b.node_id().to_string() =>
                {
                    broker_entries(b)
                }
                _ => {
                    return base
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes("Unsupported resource")));
                }
            };
            let read_only = res.resource_type == BROKER;
            let configs = entries
                .into_iter()
                .filter(|e| wanted(e.name))
                .map(|e| {
                    let mut r = DescribeConfigsResourceResult::default()
                        .with_name(str_bytes(e.name))
                        .with_value(Some(str_bytes(&e.value)))
                        .with_read_only(read_only)
                        .with_config_source(e.source)
                        .with_is_sensitive(false);
                    if req.include_synonyms {
                        r = r.with_synonyms(
                            e.synonyms
                                .iter()
                                .map(|(n, v, s)| {
                                    DescribeConfigsSynonym::default()
                                        .with_name(str_bytes(n))
                                        .with_value(Some(str_bytes(v)))
                                        .with_source(*s)
                                })
                                .collect(),
                        );
                    }
                    if version >= 3 {
                        r = r.with_config_type(e.kind as i8);
                    }
                    r
                })
                .collect();
            base.with_error_code(0).with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn broker_entries(b: &Broker) -> Vec<topics::ConfigEntry> {
    let cfg = b.config();
    cfg.describe()
        .into_iter()
        .map(|(name, value)| {
            let src = if cfg.explicit.contains(name) {
                source::STATIC_BROKER_CONFIG
            } else {
                source::DEFAULT_CONFIG
            };
            let kind = if value == "true" || value == "false" {
                ConfigType::Boolean
            } else if value.parse::<i64>().is_ok() {
                ConfigType::Long
            } else {
                ConfigType::String
            };
            topics::ConfigEntry {
                name,
                value: value.clone(),
                source: src,
                kind,
                synonyms: vec![(name.to_string(), value, src)],
            }
        })
        .collect()
}
