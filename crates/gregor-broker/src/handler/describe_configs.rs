//! DescribeConfigs (32): topic configs (overrides and defaults), group
//! configs (KIP-848, set or default) and this
//! broker's configs, with sources, synonyms and types as Kafka reports them.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use std::collections::BTreeMap;

use super::str_bytes;
use crate::config::DYNAMIC_BROKER_CONFIGS;
use crate::context::Broker;
use crate::topics::{self, source, ConfigType};
use kafka_protocol::ResponseError;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const GROUP: i8 = 32;

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
                    Some(meta) => topics::topic_config_entries(
                        b.static_config(),
                        &b.dynamic_configs(),
                        &meta.configs,
                    ),
                    None => {
                        // Kafka sends no message here.
                        return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    }
                },
                // The cluster-default entity holds only what was set on it.
                BROKER if res.resource_name.is_empty() => b
                    .dynamic_configs()
                    .default
                    .iter()
                    .filter_map(|(k, v)| {
                        let e = broker_entries(b)
                            .into_iter()
                            .find(|e| e.name == k.as_str())?;
                        Some(topics::ConfigEntry {
                            name: e.name,
                            value: v.clone(),
                            source: source::DYNAMIC_DEFAULT_BROKER_CONFIG,
                            kind: e.kind,
                            synonyms: vec![(
                                k.clone(),
                                v.clone(),
                                source::DYNAMIC_DEFAULT_BROKER_CONFIG,
                            )],
                        })
                    })
                    .collect(),
                // Virtual brokers share one configuration.
                BROKER
                    if b.cluster()
                        .nodes()
                        .iter()
                        .any(|n| *res.resource_name == *n.id.to_string()) =>
                {
                    broker_entries(b)
                }
                GROUP => {
                    crate::group_configs::entries(&crate::group_configs::get(b, &res.resource_name))
                }
                _ => {
                    return base
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes("Unsupported resource")));
                }
            };
            let is_broker = res.resource_type == BROKER;
            let configs = entries
                .into_iter()
                .filter(|e| wanted(e.name))
                .map(|e| {
                    // Broker configs are read-only unless Kafka lets them
                    // change at runtime.
                    let read_only = is_broker && !DYNAMIC_BROKER_CONFIGS.contains(&e.name);
                    // Kafka's log.retention.ms is null when only its default
                    // (log.retention.hours) applies.
                    let null = is_broker && e.name == "log.retention.ms" && e.synonyms.is_empty();
                    let mut r = DescribeConfigsResourceResult::default()
                        .with_name(str_bytes(e.name))
                        .with_value((!null).then(|| str_bytes(&e.value)))
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
    let effective = b.config();
    let st = b.static_config();
    let dynamic = b.dynamic_configs();
    let static_values: BTreeMap<&str, String> = st.describe().into_iter().collect();
    effective
        .describe()
        .into_iter()
        .map(|(name, value)| {
            let mut synonyms = Vec::new();
            if let Some(v) = dynamic.node.get(name) {
                synonyms.push((name.to_string(), v.clone(), source::DYNAMIC_BROKER_CONFIG));
            }
            if let Some(v) = dynamic.default.get(name) {
                synonyms.push((
                    name.to_string(),
                    v.clone(),
                    source::DYNAMIC_DEFAULT_BROKER_CONFIG,
                ));
            }
            let sv = static_values
                .get(name)
                .cloned()
                .unwrap_or_else(|| value.clone());
            let src = if st.explicit.contains(name) {
                source::STATIC_BROKER_CONFIG
            } else {
                source::DEFAULT_CONFIG
            };
            if name == "log.retention.ms" && src == source::DEFAULT_CONFIG {
                // Kafka's log.retention.ms has no default (null); the
                // default is log.retention.hours=168, listed under others.
                if !synonyms.is_empty() {
                    synonyms.push((topics::RETENTION_HOURS.to_string(), "168".to_string(), src));
                }
            } else {
                synonyms.push((name.to_string(), sv, src));
            }
            if synonyms.is_empty() {
                return topics::ConfigEntry {
                    name,
                    value: String::new(),
                    source: src,
                    kind: ConfigType::Long,
                    synonyms,
                };
            }
            let topic_kind = topics::TOPIC_CONFIGS
                .iter()
                .find(|d| d.broker_synonym == Some(name))
                .map(|d| d.kind);
            let kind = if let Some(k) = topic_kind {
                k
            } else if name == "log.cleaner.threads" || name == "num.partitions" {
                ConfigType::Int
            } else if value == "true" || value == "false" {
                ConfigType::Boolean
            } else if value.parse::<i64>().is_ok() {
                ConfigType::Long
            } else {
                ConfigType::String
            };
            topics::ConfigEntry {
                name,
                value,
                source: synonyms[0].2,
                kind,
                synonyms,
            }
        })
        .collect()
}
