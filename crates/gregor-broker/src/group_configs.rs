//! Group configs (config resource type GROUP, KIP-848's dynamic group
//! configs): the names, defaults and checks of Kafka 4.3's `GroupConfig`,
//! stored per group and reported by DescribeConfigs. Gregor serves classic
//! groups only, which these configs do not govern (as on Kafka); they are
//! kept so that admin clients and tools that set or read them work.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use crate::alter::Refusal;
use crate::context::Broker;
use crate::topics::{ConfigEntry, ConfigType};

/// DescribeConfigs source of a value set on the group.
pub const GROUP_CONFIG: i8 = 8;
/// DescribeConfigs source of a default.
const DEFAULT_CONFIG: i8 = crate::topics::source::DEFAULT_CONFIG;

/// Store key of every group's configs (one JSON map of maps: few groups
/// have any, and `POST /reset` clears them in one write).
const STORE_KEY: &str = "group.configs";

/// How a value is checked before Kafka's cross-checks.
enum Check {
    /// An int at least this.
    AtLeast(i64),
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// true or false.
    Bool,
    /// `latest`, `earliest` or `by_duration:<ISO-8601 duration>`.
    OffsetReset,
}

/// One group config: name, default, the broker property that supplies the
/// default (its synonym), the first check, and the broker bounds Kafka's
/// `GroupConfig.validateValues` holds it within.
struct Def {
    name: &'static str,
    default: &'static str,
    synonym: &'static str,
    check: Check,
    min: Option<(i64, &'static str)>,
    max: Option<(i64, &'static str)>,
}

const fn int(
    name: &'static str,
    default: &'static str,
    synonym: &'static str,
    at_least: i64,
    min: Option<(i64, &'static str)>,
    max: Option<(i64, &'static str)>,
) -> Def {
    Def {
        name,
        default,
        synonym,
        check: Check::AtLeast(at_least),
        min,
        max,
    }
}

/// Kafka 4.3.1's group configs, in its order (`kafka-configs.sh
/// --entity-type groups --describe --all` against the reference), with
/// the broker defaults of their bounds.
const DEFS: &[Def] = &[
    int(
        "consumer.assignment.interval.ms",
        "1000",
        "group.consumer.assignment.interval.ms",
        0,
        None,
        None,
    ),
    int(
        "consumer.heartbeat.interval.ms",
        "5000",
        "group.consumer.heartbeat.interval.ms",
        1,
        Some((5000, "group.consumer.min.heartbeat.interval.ms")),
        Some((15000, "group.consumer.max.heartbeat.interval.ms")),
    ),
    int(
        "consumer.session.timeout.ms",
        "45000",
        "group.consumer.session.timeout.ms",
        1,
        Some((45000, "group.consumer.min.session.timeout.ms")),
        Some((60000, "group.consumer.max.session.timeout.ms")),
    ),
    int(
        "share.assignment.interval.ms",
        "1000",
        "group.share.assignment.interval.ms",
        0,
        None,
        None,
    ),
    Def {
        name: "share.auto.offset.reset",
        default: "latest",
        synonym: "share.auto.offset.reset",
        check: Check::OffsetReset,
        min: None,
        max: None,
    },
    int(
        "share.delivery.count.limit",
        "5",
        "group.share.delivery.count.limit",
        2,
        None,
        Some((10, "group.share.max.delivery.count.limit")),
    ),
    int(
        "share.heartbeat.interval.ms",
        "5000",
        "group.share.heartbeat.interval.ms",
        1,
        Some((5000, "group.share.min.heartbeat.interval.ms")),
        Some((15000, "group.share.max.heartbeat.interval.ms")),
    ),
    Def {
        name: "share.isolation.level",
        default: "read_uncommitted",
        synonym: "share.isolation.level",
        check: Check::OneOf(&["read_committed", "read_uncommitted"]),
        min: None,
        max: None,
    },
    int(
        "share.partition.max.record.locks",
        "2000",
        "group.share.partition.max.record.locks",
        100,
        None,
        Some((4000, "group.share.max.partition.max.record.locks")),
    ),
    int(
        "share.record.lock.duration.ms",
        "30000",
        "group.share.record.lock.duration.ms",
        1000,
        Some((15000, "group.share.min.record.lock.duration.ms")),
        Some((60000, "group.share.max.record.lock.duration.ms")),
    ),
    Def {
        name: "share.renew.acknowledge.enable",
        default: "true",
        synonym: "share.renew.acknowledge.enable",
        check: Check::Bool,
        min: None,
        max: None,
    },
    int(
        "share.session.timeout.ms",
        "45000",
        "group.share.session.timeout.ms",
        1,
        Some((45000, "group.share.min.session.timeout.ms")),
        Some((60000, "group.share.max.session.timeout.ms")),
    ),
    int(
        "streams.assignment.interval.ms",
        "1000",
        "group.streams.assignment.interval.ms",
        0,
        None,
        None,
    ),
    int(
        "streams.heartbeat.interval.ms",
        "5000",
        "group.streams.heartbeat.interval.ms",
        1,
        Some((5000, "group.streams.min.heartbeat.interval.ms")),
        Some((15000, "group.streams.max.heartbeat.interval.ms")),
    ),
    int(
        "streams.initial.rebalance.delay.ms",
        "3000",
        "group.streams.initial.rebalance.delay.ms",
        0,
        None,
        None,
    ),
    int(
        "streams.num.standby.replicas",
        "0",
        "group.streams.num.standby.replicas",
        0,
        None,
        Some((2, "group.streams.max.standby.replicas")),
    ),
    int(
        "streams.session.timeout.ms",
        "45000",
        "group.streams.session.timeout.ms",
        1,
        Some((45000, "group.streams.min.session.timeout.ms")),
        Some((60000, "group.streams.max.session.timeout.ms")),
    ),
];

fn def(name: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.name == name)
}

/// A group config's type, None for a name Kafka does not define.
pub fn kind(name: &str) -> Option<ConfigType> {
    def(name).map(|d| match d.check {
        Check::AtLeast(_) => ConfigType::Int,
        Check::Bool => ConfigType::Boolean,
        Check::OneOf(_) | Check::OffsetReset => ConfigType::String,
    })
}

/// A config's default.
pub fn default_of(name: &str) -> String {
    def(name).map(|d| d.default.to_string()).unwrap_or_default()
}

fn invalid(msg: String) -> Refusal {
    (ResponseError::InvalidConfig, msg)
}

fn iso_duration(s: &str) -> bool {
    // PnDTnHnMn.nS, as java.time.Duration.parse reads it (enough to tell
    // a duration from a typo).
    let s = s.strip_prefix('-').unwrap_or(s);
    let Some(rest) = s.strip_prefix('P').or_else(|| s.strip_prefix('p')) else {
        return false;
    };
    !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_digit() || ".DdTtHhMmSs".contains(c))
        && rest.chars().any(|c| c.is_ascii_digit())
}

/// Checks a group's whole config set (overrides over defaults) as Kafka's
/// `GroupConfig.validate` does: names, then each value, then the bounds.
pub fn validate(configs: &BTreeMap<String, String>) -> Result<(), Refusal> {
    for name in configs.keys() {
        if def(name).is_none() {
            return Err(invalid(format!("Unknown group config name: {name}")));
        }
    }
    let mut ints: BTreeMap<&str, i64> = BTreeMap::new();
    for d in DEFS {
        let value = configs.get(d.name).map_or(d.default, String::as_str);
        let bad = |why: &str| {
            invalid(format!(
                "Invalid value {value} for configuration {}: {why}",
                d.name
            ))
        };
        match d.check {
            Check::AtLeast(least) => {
                let v: i64 = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|v| i32::try_from(*v).is_ok())
                    .ok_or_else(|| bad("Not a number of type INT"))?;
                if v < least {
                    return Err(bad(&format!("Value must be at least {least}")));
                }
                ints.insert(d.name, v);
            }
            Check::OneOf(options) => {
                if !options.contains(&value) {
                    return Err(bad(&format!(
                        "String must be one of: {}",
                        options.join(", ")
                    )));
                }
            }
            Check::Bool => {
                if !value.trim().eq_ignore_ascii_case("true")
                    && !value.trim().eq_ignore_ascii_case("false")
                {
                    return Err(bad("Expected value to be either true or false"));
                }
            }
            Check::OffsetReset => {
                let ok = value == "latest"
                    || value == "earliest"
                    || value.strip_prefix("by_duration:").is_some_and(iso_duration);
                if !ok {
                    return Err(bad(&format!(
                        "Invalid value `{value}` for configuration {}. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'.",
                        d.name
                    )));
                }
            }
        }
    }
    for d in DEFS {
        let Some(v) = ints.get(d.name).copied() else {
            continue;
        };
        if let Some((min, bound)) = d.min {
            if v < min {
                return Err(invalid(format!(
                    "{} must be greater than or equal to {bound}",
                    d.name
                )));
            }
        }
        if let Some((max, bound)) = d.max {
            if v > max {
                return Err(invalid(format!(
                    "{} must be less than or equal to {bound}",
                    d.name
                )));
            }
        }
    }
    for kind in ["consumer", "share", "streams"] {
        let session = ints.get(format!("{kind}.session.timeout.ms").as_str());
        let heartbeat = ints.get(format!("{kind}.heartbeat.interval.ms").as_str());
        if let (Some(s), Some(h)) = (session, heartbeat) {
            if s <= h {
                return Err(invalid(format!(
                    "{kind}.session.timeout.ms must be greater than {kind}.heartbeat.interval.ms"
                )));
            }
        }
    }
    Ok(())
}

type All = BTreeMap<String, BTreeMap<String, String>>;

fn load(b: &Broker) -> All {
    match b.store().meta_value(STORE_KEY) {
        Ok(Some(v)) => serde_json::from_slice(&v).unwrap_or_else(|e| {
            tracing::warn!(cause = %e, "unreadable group configs ignored");
            All::new()
        }),
        _ => All::new(),
    }
}

/// The configs set on a group (empty if none).
pub fn get(b: &Broker, group: &str) -> BTreeMap<String, String> {
    load(b).remove(group).unwrap_or_default()
}

/// Stores a group's configs (an empty set removes them); durable at the
/// next store sync.
pub fn set(b: &Broker, group: &str, configs: BTreeMap<String, String>) -> Result<(), Refusal> {
    let mut all = load(b);
    if configs.is_empty() {
        all.remove(group);
    } else {
        all.insert(group.to_string(), configs);
    }
    let json =
        serde_json::to_vec(&all).map_err(|e| (ResponseError::UnknownServerError, e.to_string()))?;
    b.store()
        .set_meta_value(STORE_KEY, Some(&json))
        .map_err(|e| (crate::error::storage_error(&e), e.to_string()))
}

/// Forgets every group's configs (`POST /reset`).
pub fn clear(b: &Broker) -> Result<(), String> {
    b.store()
        .set_meta_value(STORE_KEY, None)
        .map_err(|e| e.to_string())
}

/// Every group config with its value and source, as DescribeConfigs
/// reports it: the group's value (GROUP_CONFIG) over Kafka's default
/// (DEFAULT_CONFIG, named by its broker property).
pub fn entries(set: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    DEFS.iter()
        .map(|d| {
            let mut synonyms = Vec::new();
            if let Some(v) = set.get(d.name) {
                synonyms.push((d.name.to_string(), v.clone(), GROUP_CONFIG));
            }
            synonyms.push((d.synonym.to_string(), d.default.to_string(), DEFAULT_CONFIG));
            ConfigEntry {
                name: d.name,
                value: set
                    .get(d.name)
                    .cloned()
                    .unwrap_or_else(|| d.default.to_string()),
                source: if set.contains_key(d.name) {
                    GROUP_CONFIG
                } else {
                    DEFAULT_CONFIG
                },
                kind: kind(d.name).unwrap_or(ConfigType::String),
                synonyms,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    /// The answers Kafka 4.3.1 gave to `kafka-configs.sh --entity-type
    /// groups --alter --add-config ...`.
    #[test]
    fn checks_answer_as_kafka_does() {
        let msg = |pairs: &[(&str, &str)]| validate(&with(pairs)).err().map(|e| e.1);
        assert_eq!(msg(&[("consumer.session.timeout.ms", "50000")]), None);
        assert_eq!(msg(&[("consumer.assignment.interval.ms", "1")]), None);
        assert_eq!(
            msg(&[("share.auto.offset.reset", "by_duration:PT1H")]),
            None
        );
        assert_eq!(
            msg(&[("consumer.session.timeout.ms", "5")]).unwrap(),
            "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"
        );
        assert_eq!(
            msg(&[("foo.bar", "5")]).unwrap(),
            "Unknown group config name: foo.bar"
        );
        assert_eq!(
            msg(&[("streams.num.standby.replicas", "5")]).unwrap(),
            "streams.num.standby.replicas must be less than or equal to group.streams.max.standby.replicas"
        );
        assert_eq!(
            msg(&[("share.delivery.count.limit", "1")]).unwrap(),
            "Invalid value 1 for configuration share.delivery.count.limit: Value must be at least 2"
        );
        assert_eq!(
            msg(&[("share.isolation.level", "foo")]).unwrap(),
            "Invalid value foo for configuration share.isolation.level: String must be one of: read_committed, read_uncommitted"
        );
        assert_eq!(
            msg(&[("share.renew.acknowledge.enable", "maybe")]).unwrap(),
            "Invalid value maybe for configuration share.renew.acknowledge.enable: Expected value to be either true or false"
        );
        assert_eq!(
            msg(&[("consumer.heartbeat.interval.ms", "50000")]).unwrap(),
            "consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms"
        );
    }

    #[test]
    fn entries_are_defaults_under_what_was_set() {
        let e = entries(&with(&[("consumer.session.timeout.ms", "50000")]));
        assert_eq!(e.len(), 17);
        let s = e
            .iter()
            .find(|e| e.name == "consumer.session.timeout.ms")
            .unwrap();
        assert_eq!((s.value.as_str(), s.source), ("50000", GROUP_CONFIG));
        assert_eq!(s.synonyms[1].0, "group.consumer.session.timeout.ms");
        let h = e
            .iter()
            .find(|e| e.name == "share.isolation.level")
            .unwrap();
        assert_eq!(
            (h.value.as_str(), h.source),
            ("read_uncommitted", DEFAULT_CONFIG)
        );
    }
}
