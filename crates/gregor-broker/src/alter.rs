//! Config changes of IncrementalAlterConfigs and AlterConfigs, for a topic
//! (its overrides, in the store) or for the broker (the dynamic broker
//! configs, this broker's or the cluster default), validated as Kafka
//! validates them and in force as soon as they are stored.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use crate::config::DYNAMIC_BROKER_CONFIGS;
use crate::context::{Broker, DynamicError};
use crate::topics::{self, ConfigType};

/// Resource types.
pub const TOPIC: i8 = 2;
/// Resource types.
pub const BROKER: i8 = 4;
/// Resource types (KIP-848 group configs).
pub const GROUP: i8 = 32;

/// IncrementalAlterConfigs operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Set the value.
    Set,
    /// Remove the override.
    Delete,
    /// Add items to a list.
    Append,
    /// Remove items from a list.
    Subtract,
}

impl Op {
    /// From the wire.
    pub fn from_wire(v: i8) -> Option<Op> {
        match v {
            0 => Some(Op::Set),
            1 => Some(Op::Delete),
            2 => Some(Op::Append),
            3 => Some(Op::Subtract),
            _ => None,
        }
    }
}

/// A refused change: the error code and its message.
pub type Refusal = (ResponseError, String);

/// Applies `ops` to `current` (the overrides or dynamic configs). `kind_of`
/// gives a config's type (None: unknown name) and `default_of` its value
/// when not overridden, which APPEND and SUBTRACT start from.
fn apply_ops(
    current: &BTreeMap<String, String>,
    ops: &[(String, Op, Option<String>)],
    kind_of: &dyn Fn(&str) -> Option<ConfigType>,
    default_of: &dyn Fn(&str) -> String,
) -> Result<BTreeMap<String, String>, Refusal> {
    let mut next = current.clone();
    for (name, op, value) in ops {
        let Some(kind) = kind_of(name) else {
            return Err((
                ResponseError::InvalidConfig,
                format!("Unknown config name: {name}"),
            ));
        };
        match op {
            Op::Set => {
                let Some(v) = value else {
                    return Err((
                        ResponseError::InvalidRequest,
                        format!("Null value not supported for : {name}"),
                    ));
                };
                next.insert(name.clone(), v.clone());
            }
            Op::Delete => {
                next.remove(name);
            }
            Op::Append | Op::Subtract => {
                if kind != ConfigType::List {
                    return Err((
                        ResponseError::InvalidConfig,
                        format!("Config value append is not allowed for config key: {name}"),
                    ));
                }
                let base = next.get(name).cloned().unwrap_or_else(|| default_of(name));
                let mut items: Vec<String> = base
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                let given: Vec<String> = value
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if *op == Op::Append {
                    for g in given {
                        if !items.contains(&g) {
                            items.push(g);
                        }
                    }
                } else {
                    items.retain(|i| !given.contains(i));
                }
                next.insert(name.clone(), items.join(","));
            }
        }
    }
    Ok(next)
}

/// Changes the configs of one resource of IncrementalAlterConfigs (`ops`
/// applied) or AlterConfigs (`replace`: the set becomes exactly `ops`).
pub fn alter(
    b: &Broker,
    resource_type: i8,
    name: &str,
    ops: &[(String, Op, Option<String>)],
    replace: bool,
    validate_only: bool,
) -> Result<(), Refusal> {
    match resource_type {
        TOPIC => alter_topic(b, name, ops, replace, validate_only),
        BROKER => alter_broker(b, name, ops, replace, validate_only),
        GROUP => alter_group(b, name, ops, replace, validate_only),
        _ => Err((
            ResponseError::InvalidRequest,
            format!("Unsupported resource type {resource_type}"),
        )),
    }
}

/// Changes a topic's overrides: `ops` applied to them (incremental), or
/// `replace` them all (legacy AlterConfigs). Validated whole before
/// anything is stored.
pub fn alter_topic(
    b: &Broker,
    topic: &str,
    ops: &[(String, Op, Option<String>)],
    replace: bool,
    validate_only: bool,
) -> Result<(), Refusal> {
    let Some(meta) = b.store().topic(topic) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("Topic {topic} does not exist."),
        ));
    };
    let cfg = b.config();
    let base = if replace {
        BTreeMap::new()
    } else {
        meta.configs.clone()
    };
    let next = apply_ops(
        &base,
        ops,
        &|n| topics::config_def(n).map(|d| d.kind),
        &|n| topics::effective(&cfg, &BTreeMap::new(), n).unwrap_or_default(),
    )?;
    for (k, v) in &next {
        topics::validate_config(k, Some(v)).map_err(|e| (ResponseError::InvalidConfig, e))?;
    }
    if validate_only || next == meta.configs {
        return Ok(());
    }
    b.store()
        .set_topic_configs(topic, next)
        .map(|_| ())
        .map_err(|e| (crate::error::storage_error(&e), e.to_string()))
}

/// Changes a group's configs (any group id, existing or not, as Kafka).
fn alter_group(
    b: &Broker,
    group: &str,
    ops: &[(String, Op, Option<String>)],
    replace: bool,
    validate_only: bool,
) -> Result<(), Refusal> {
    let current = crate::group_configs::get(b, group);
    let base = if replace {
        BTreeMap::new()
    } else {
        current.clone()
    };
    let next = apply_ops(
        &base,
        ops,
        &|n| crate::group_configs::kind(n).or(Some(ConfigType::String)),
        &crate::group_configs::default_of,
    )?;
    crate::group_configs::validate(&next)?;
    if validate_only || next == current {
        return Ok(());
    }
    crate::group_configs::set(b, group, next)
}

/// Changes the dynamic broker configs of `resource`: "" is the cluster
/// default, this node's id this broker.
pub fn alter_broker(
    b: &Broker,
    resource: &str,
    ops: &[(String, Op, Option<String>)],
    replace: bool,
    validate_only: bool,
) -> Result<(), Refusal> {
    let default = resource.is_empty();
    // Virtual brokers share one configuration: a change to any of them is
    // a change to all.
    let ours = b
        .cluster()
        .nodes()
        .iter()
        .any(|n| resource == n.id.to_string());
    if !default && !ours {
        let known = resource.parse::<i32>().is_ok();
        return Err(if known {
            (
                ResponseError::InvalidRequest,
                format!(
                    "Unexpected broker id, expected {} or empty string, but received {resource}",
                    b.node_id()
                ),
            )
        } else {
            (
                ResponseError::InvalidRequest,
                format!("Invalid broker id {resource}"),
            )
        });
    }
    for (name, _, value) in ops {
        // Kafka refuses its static configs but stores names it does not
        // know; so does Gregor for the configs it knows.
        let mut probe = b.static_config().clone();
        let known = !matches!(
            probe.set(name, value.as_deref().unwrap_or("")),
            Ok(crate::config::Applied::Unknown)
        );
        if known && !DYNAMIC_BROKER_CONFIGS.contains(&name.as_str()) {
            return Err((
                ResponseError::InvalidRequest,
                format!("Cannot update these configs dynamically: [{name}]"),
            ));
        }
    }
    let mut dynamic = b.dynamic_configs();
    let cfg = b.config();
    let current = if replace {
        BTreeMap::new()
    } else if default {
        dynamic.default.clone()
    } else {
        dynamic.node.clone()
    };
    let kind_of = |n: &str| -> Option<ConfigType> {
        Some(
            topics::TOPIC_CONFIGS
                .iter()
                .find(|d| d.broker_synonym == Some(n))
                .map_or(ConfigType::String, |d| d.kind),
        )
    };
    let default_of = |n: &str| -> String {
        cfg.describe()
            .into_iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v)
            .unwrap_or_default()
    };
    let next = apply_ops(&current, ops, &kind_of, &default_of)?;
    if default {
        dynamic.default = next;
    } else {
        dynamic.node = next;
    }
    b.set_dynamic_configs(dynamic, validate_only)
        .map_err(|e| match e {
            // Kafka answers a bad broker value with INVALID_REQUEST.
            DynamicError::Invalid(crate::config::ConfigError::Invalid { key, value, reason }) => (
                ResponseError::InvalidRequest,
                format!("Invalid value {value} for configuration {key}: {reason}"),
            ),
            DynamicError::Storage(e) => (crate::error::storage_error(&e), e.to_string()),
        })
}
