//! Topic rules shared by the handlers: legal names, the topic configs Kafka
//! knows (with their defaults), and creation with broker defaults.

use std::collections::BTreeMap;

use crate::config::BrokerConfig;

/// Kafka's topic-name limit.
const MAX_NAME_LEN: usize = 249;

/// Why a topic name is refused; the message matches Kafka's `Topic.validate`.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {MAX_NAME_LEN} characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// The group coordinator's topic, as Kafka names it. Gregor keeps
/// committed offsets in its store; the topic exists (empty) so that tools
/// that look for it find it, as on Kafka once a group was coordinated.
pub const CONSUMER_OFFSETS: &str = "__consumer_offsets";

/// The transaction coordinator's topic, listed once transactions were
/// coordinated, as on Kafka (the state itself is in Gregor's store).
pub const TRANSACTION_STATE: &str = "__transaction_state";

/// Kafka's internal topics.
pub fn is_internal(name: &str) -> bool {
    name == CONSUMER_OFFSETS || name == TRANSACTION_STATE
}

/// Kafka's config types (DescribeConfigs v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    /// true/false.
    Boolean = 1,
    /// Free text.
    String = 2,
    /// i32.
    Int = 3,
    /// i64.
    Long = 5,
    /// f64.
    Double = 6,
    /// Comma-separated list.
    List = 7,
}

/// A topic config Kafka defines: name, type, and where its default comes from.
pub struct TopicConfigDef {
    /// Kafka's name.
    pub name: &'static str,
    /// Value type.
    pub kind: ConfigType,
    /// The broker property that supplies the default, if any (the synonym).
    pub broker_synonym: Option<&'static str>,
    /// Default when no broker property supplies it.
    pub default: &'static str,
    /// Enforced by Gregor (others are stored and reported only).
    pub enforced: bool,
}

const fn def(
    name: &'static str,
    kind: ConfigType,
    broker_synonym: Option<&'static str>,
    default: &'static str,
    enforced: bool,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        kind,
        broker_synonym,
        default,
        enforced,
    }
}

/// Topic configs of Kafka 4.x, sorted by name.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def(
        "cleanup.policy",
        ConfigType::List,
        Some("log.cleanup.policy"),
        "delete",
        false,
    ),
    def(
        "compression.gzip.level",
        ConfigType::Int,
        Some("compression.gzip.level"),
        "-1",
        false,
    ),
    def(
        "compression.lz4.level",
        ConfigType::Int,
        Some("compression.lz4.level"),
        "9",
        false,
    ),
    def(
        "compression.type",
        ConfigType::String,
        Some("compression.type"),
        "producer",
        false,
    ),
    def(
        "compression.zstd.level",
        ConfigType::Int,
        Some("compression.zstd.level"),
        "3",
        false,
    ),
    def(
        "delete.retention.ms",
        ConfigType::Long,
        Some("log.cleaner.delete.retention.ms"),
        "86400000",
        false,
    ),
    def(
        "file.delete.delay.ms",
        ConfigType::Long,
        Some("log.segment.delete.delay.ms"),
        "60000",
        false,
    ),
    def(
        "flush.messages",
        ConfigType::Long,
        Some("log.flush.interval.messages"),
        "9223372036854775807",
        false,
    ),
    def(
        "flush.ms",
        ConfigType::Long,
        Some("log.flush.interval.ms"),
        "9223372036854775807",
        false,
    ),
    def(
        "index.interval.bytes",
        ConfigType::Int,
        Some("log.index.interval.bytes"),
        "4096",
        false,
    ),
    def(
        "max.compaction.lag.ms",
        ConfigType::Long,
        Some("log.cleaner.max.compaction.lag.ms"),
        "9223372036854775807",
        false,
    ),
    def(
        "max.message.bytes",
        ConfigType::Int,
        Some("message.max.bytes"),
        "1048588",
        true,
    ),
    def(
        "message.timestamp.after.max.ms",
        ConfigType::Long,
        Some("log.message.timestamp.after.max.ms"),
        "3600000",
        false,
    ),
    def(
        "message.timestamp.before.max.ms",
        ConfigType::Long,
        Some("log.message.timestamp.before.max.ms"),
        "9223372036854775807",
        false,
    ),
    def(
        "message.timestamp.type",
        ConfigType::String,
        Some("log.message.timestamp.type"),
        "CreateTime",
        true,
    ),
    def(
        "min.cleanable.dirty.ratio",
        ConfigType::Double,
        Some("log.cleaner.min.cleanable.ratio"),
        "0.5",
        false,
    ),
    def(
        "min.compaction.lag.ms",
        ConfigType::Long,
        Some("log.cleaner.min.compaction.lag.ms"),
        "0",
        false,
    ),
    def(
        "min.insync.replicas",
        ConfigType::Int,
        Some("min.insync.replicas"),
        "1",
        false,
    ),
    def(
        "preallocate",
        ConfigType::Boolean,
        Some("log.preallocate"),
        "false",
        false,
    ),
    def(
        "retention.bytes",
        ConfigType::Long,
        Some("log.retention.bytes"),
        "-1",
        true,
    ),
    def(
        "retention.ms",
        ConfigType::Long,
        Some("log.retention.ms"),
        "604800000",
        true,
    ),
    def(
        "segment.bytes",
        ConfigType::Int,
        Some("log.segment.bytes"),
        "1073741824",
        false,
    ),
    def(
        "segment.index.bytes",
        ConfigType::Int,
        Some("log.index.size.max.bytes"),
        "10485760",
        false,
    ),
    def(
        "segment.jitter.ms",
        ConfigType::Long,
        Some("log.roll.jitter.ms"),
        "0",
        false,
    ),
    def(
        "segment.ms",
        ConfigType::Long,
        Some("log.roll.ms"),
        "604800000",
        false,
    ),
    def(
        "unclean.leader.election.enable",
        ConfigType::Boolean,
        Some("unclean.leader.election.enable"),
        "false",
        false,
    ),
];

/// The definition of a topic config, if Kafka has one by that name.
pub fn config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// The broker-level default of a topic config, honouring broker settings.
pub fn broker_default(cfg: &BrokerConfig, d: &TopicConfigDef) -> String {
    match d.name {
        "max.message.bytes" => cfg.message_max_bytes.to_string(),
        "message.timestamp.type" => cfg.log_message_timestamp_type.clone(),
        "retention.bytes" => cfg.log_retention_bytes.to_string(),
        "retention.ms" => cfg.log_retention_ms.to_string(),
        _ => d
            .broker_synonym
            .and_then(|syn| cfg.log_defaults.get(syn))
            .cloned()
            .unwrap_or_else(|| d.default.to_string()),
    }
}

/// Checks a topic config override as Kafka's `LogConfig.validate` would.
/// The error text becomes the INVALID_CONFIG message.
pub fn validate_config(name: &str, value: Option<&str>) -> Result<(), String> {
    let Some(d) = config_def(name) else {
        return Err(format!("Unknown topic config name: {name}"));
    };
    let Some(value) = value else {
        return Err(format!(
            "Null value not supported for topic configs: {name}"
        ));
    };
    let v = value.trim();
    let ok = match d.kind {
        ConfigType::Boolean => v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"),
        ConfigType::Int => v.parse::<i32>().is_ok(),
        ConfigType::Long => v.parse::<i64>().is_ok(),
        ConfigType::Double => v.parse::<f64>().is_ok(),
        ConfigType::String | ConfigType::List => true,
    };
    if !ok {
        return Err(format!("Invalid value {value} for configuration {name}"));
    }
    // Kafka's lower bounds (`LogConfig`'s `atLeast` validators).
    let min: Option<f64> = match name {
        "max.message.bytes"
        | "delete.retention.ms"
        | "min.compaction.lag.ms"
        | "index.interval.bytes"
        | "file.delete.delay.ms"
        | "flush.messages"
        | "flush.ms"
        | "segment.jitter.ms" => Some(0.0),
        // segment.bytes: Kafka 4 wants 1 MiB; Gregor accepts smaller
        // segments (documented; tests use one batch per segment).
        "segment.ms" | "max.compaction.lag.ms" | "min.insync.replicas" | "segment.bytes" => {
            Some(1.0)
        }
        "segment.index.bytes" => Some(4.0),
        "retention.ms" | "retention.bytes" => Some(-1.0),
        "min.cleanable.dirty.ratio" => Some(0.0),
        _ => None,
    };
    if let (Some(min), Ok(n)) = (min, v.parse::<f64>()) {
        let too_big = name == "min.cleanable.dirty.ratio" && n > 1.0;
        if n < min || too_big {
            return Err(format!(
                "Invalid value {value} for configuration {name}: Value must be at least {min}"
            ));
        }
    }
    let allowed: Option<&[&str]> = match name {
        "message.timestamp.type" => Some(&["CreateTime", "LogAppendTime"]),
        "cleanup.policy" => Some(&["delete", "compact", "compact,delete", "delete,compact"]),
        "compression.type" => Some(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        _ => None,
    };
    if let Some(allowed) = allowed {
        if !allowed.contains(&v) {
            return Err(format!(
                "Invalid value {value} for configuration {name}: String must be one of: {}",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

/// The effective value of a topic config: the topic's override, else the
/// broker default.
pub fn effective(
    cfg: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
    name: &str,
) -> Option<String> {
    overrides
        .get(name)
        .cloned()
        .or_else(|| config_def(name).map(|d| broker_default(cfg, d)))
}

/// An effective numeric topic config, falling back to `fallback` when unset
/// or unparsable (values were validated on the way in).
pub fn effective_i64(
    cfg: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
    name: &str,
    fallback: i64,
) -> i64 {
    effective(cfg, overrides, name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka_rules() {
        assert!(validate_name("orders.v1_x-2").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("..").is_err());
        assert!(validate_name("has space").is_err());
        assert!(validate_name(&"a".repeat(250)).is_err());
        assert!(validate_name(&"a".repeat(249)).is_ok());
    }

    #[test]
    fn configs_are_typed() {
        assert!(validate_config("retention.ms", Some("1000")).is_ok());
        assert!(validate_config("retention.ms", Some("soon")).is_err());
        assert!(validate_config("no.such.config", Some("1")).is_err());
        assert!(validate_config("message.timestamp.type", Some("LogAppendTime")).is_ok());
        assert!(validate_config("message.timestamp.type", Some("Wallclock")).is_err());
        let cfg = BrokerConfig::default();
        let mut o = BTreeMap::new();
        assert_eq!(effective_i64(&cfg, &o, "retention.ms", 0), 604_800_000);
        o.insert("retention.ms".to_string(), "5".to_string());
        assert_eq!(effective_i64(&cfg, &o, "retention.ms", 0), 5);
    }
}

/// Kafka's default for retention, of which `log.retention.ms` is the
/// millisecond synonym.
pub const RETENTION_HOURS: &str = "log.retention.hours";

/// Topic configs whose broker default Kafka keeps in hours (the ms broker
/// setting has no default): the hours setting and its default.
fn hours_default(topic_config: &str) -> Option<(&'static str, &'static str)> {
    match topic_config {
        "retention.ms" => Some((RETENTION_HOURS, "168")),
        "segment.ms" => Some(("log.roll.hours", "168")),
        _ => None,
    }
}

/// Kafka's `ConfigSource` values.
pub mod source {
    /// A topic override.
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    /// Set on this broker at runtime.
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    /// Set as the cluster default at runtime.
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    /// Set in the broker's configuration.
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    /// Kafka's default.
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// One effective config of a topic, as DescribeConfigs and CreateTopics
/// (v5+) report it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigEntry {
    /// Name.
    pub name: &'static str,
    /// Effective value.
    pub value: String,
    /// Where the value comes from.
    pub source: i8,
    /// Type (DescribeConfigs v3+).
    pub kind: ConfigType,
    /// The chain of values that could apply, highest precedence first.
    pub synonyms: Vec<(String, String, i8)>,
}

/// Every topic config with its effective value and source: the topic's
/// override, then the broker's dynamic, dynamic default and static
/// settings of its broker synonym, then Kafka's default.
pub fn topic_config_entries(
    cfg: &BrokerConfig,
    dynamic: &crate::config::DynamicConfigs,
    overrides: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    TOPIC_CONFIGS
        .iter()
        .map(|d| {
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(d.name) {
                synonyms.push((d.name.to_string(), v.clone(), source::DYNAMIC_TOPIC_CONFIG));
            }
            if let Some(syn) = d.broker_synonym {
                if let Some(v) = dynamic.node.get(syn) {
                    synonyms.push((syn.to_string(), v.clone(), source::DYNAMIC_BROKER_CONFIG));
                }
                if let Some(v) = dynamic.default.get(syn) {
                    synonyms.push((
                        syn.to_string(),
                        v.clone(),
                        source::DYNAMIC_DEFAULT_BROKER_CONFIG,
                    ));
                }
                if cfg.explicit.contains(syn) {
                    synonyms.push((
                        syn.to_string(),
                        broker_default(cfg, d),
                        source::STATIC_BROKER_CONFIG,
                    ));
                }
            }
            if let Some((hours, default_hours)) = hours_default(d.name) {
                // Kafka's default is log.retention.hours / log.roll.hours
                // (the ms settings have none), listed only under another
                // synonym.
                if synonyms.is_empty() {
                    return ConfigEntry {
                        name: d.name,
                        value: d.default.to_string(),
                        source: source::DEFAULT_CONFIG,
                        kind: d.kind,
                        synonyms,
                    };
                }
                if synonyms.iter().any(|s| s.0 != d.name) {
                    synonyms.push((
                        hours.to_string(),
                        default_hours.to_string(),
                        source::DEFAULT_CONFIG,
                    ));
                }
            } else {
                synonyms.push((
                    d.broker_synonym.unwrap_or(d.name).to_string(),
                    d.default.to_string(),
                    source::DEFAULT_CONFIG,
                ));
            }
            let (_, value, source) = synonyms[0].clone();
            ConfigEntry {
                name: d.name,
                value,
                source,
                kind: d.kind,
                synonyms,
            }
        })
        .collect()
}
