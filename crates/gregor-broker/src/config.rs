//! The one broker configuration. Keys are Kafka's property names; the
//! binary fills it from a TOML file, `GREGOR_*` environment variables and
//! flags, in that order, all through [`BrokerConfig::set`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

/// A configuration value that cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The value does not parse for its key.
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        /// Property name.
        key: String,
        /// Offending value.
        value: String,
        /// Why.
        reason: String,
    },
}

/// Everything the broker can be told. Defaults are Kafka 4.x's unless the
/// field says otherwise.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Address to bind (`listen`). Gregor default 127.0.0.1:9092.
    pub listen: SocketAddr,
    /// `host:port` announced to clients (`advertised.listener`); the bound
    /// address when unset.
    pub advertised_listener: Option<String>,
    /// sled data directory (`data.dir`, Kafka's `log.dirs`). Default ./gregor-data.
    pub data_dir: PathBuf,
    /// Keep everything in memory (`ephemeral`); nothing survives a restart.
    pub ephemeral: bool,
    /// `node.id`. Default 1.
    pub node_id: i32,
    /// `virtual.brokers` (issue 11): broker ids `node.id ..` served by this
    /// process, each on its own listener. Default 1.
    pub virtual_brokers: u16,
    /// The bound address of every virtual broker, in id order; set by the
    /// binary once it has bound them (`listen` and the following ports).
    pub bound: Vec<SocketAddr>,
    /// `admin.listen`: the HTTP admin API (faults, inspection, metrics);
    /// off when unset.
    pub admin_listen: Option<SocketAddr>,
    /// `dev`: the test profile ([`DEV_PROFILE`]) was applied.
    pub dev: bool,
    /// `cluster.id`, reported in Metadata and DescribeCluster.
    pub cluster_id: String,
    /// `num.partitions`: partitions of an auto-created or default topic. Default 1.
    pub num_partitions: i32,
    /// `default.replication.factor`: up to the number of (virtual) brokers
    /// can be created.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`. Default true.
    pub auto_create_topics_enable: bool,
    /// `message.max.bytes`: largest record batch. Default 1048588.
    pub message_max_bytes: i32,
    /// `socket.request.max.bytes`: largest request frame. Default 100 MiB.
    pub socket_request_max_bytes: usize,
    /// `log.retention.ms` (or `.minutes`/`.hours`). Default 7 days; -1 keeps forever.
    pub log_retention_ms: i64,
    /// `log.retention.bytes` per partition. Default -1 (unlimited).
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms`. Default 300000.
    pub log_retention_check_interval_ms: u64,
    /// `producer.id.expiration.ms`: idle idempotent producers' state is
    /// dropped after this (checked with retention). Default 86400000.
    pub producer_id_expiration_ms: i64,
    /// `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a
    /// producer may ask for. Default 900000.
    pub transaction_max_timeout_ms: i32,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`.
    /// Default 50.
    pub offsets_topic_num_partitions: i32,
    /// `log.cleaner.backoff.ms`: the pause between passes of the log
    /// cleaner. Default 15000.
    pub log_cleaner_backoff_ms: u64,
    /// `log.cleaner.io.max.bytes.per.second`: the cleaner's I/O budget.
    /// Default unlimited, as Kafka's.
    pub log_cleaner_io_max_bytes_per_second: f64,
    /// `transaction.state.log.num.partitions`: partitions of
    /// `__transaction_state`. Default 50.
    pub transaction_state_log_num_partitions: i32,
    /// `transactional.id.expiration.ms`: an idle transactional id is
    /// forgotten after this. Default 604800000 (7 days).
    pub transactional_id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how
    /// often expired transactions are looked for. Default 10000.
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: u64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    /// Default 3600000.
    pub transaction_remove_expired_transaction_cleanup_interval_ms: u64,
    /// `gregor.test.txn.crash.at`: a test hook. The process aborts (as if
    /// killed -9) when an end of a transaction reaches this step:
    /// `prepared`, `first-marker`, `marked` or `completed`. Unset in use.
    pub test_txn_crash_at: Option<String>,
    /// `log.flush.interval.ms`: the longest acks=0/1 data waits for an fsync.
    /// Kafka leaves flushing to the OS; Gregor default 1000.
    pub log_flush_interval_ms: u64,
    /// `log.message.timestamp.type`: CreateTime or LogAppendTime.
    pub log_message_timestamp_type: String,
    /// `max.connections`. Default 10000 (Kafka: unlimited). Beyond it the
    /// broker stops accepting until a connection closes, as Kafka does.
    pub max_connections: usize,
    /// `max.connections.per.ip`. Default 2147483647, as Kafka. A connection
    /// beyond it is closed at once.
    pub max_connections_per_ip: usize,
    /// `connections.max.idle.ms`: a connection with nothing in flight and no
    /// bytes for this long is closed, and so is a peer that stalls this long
    /// in the middle of a frame. Default 600000, as Kafka.
    pub connections_max_idle_ms: u64,
    /// `queued.max.request.bytes`: bytes of requests read and not yet
    /// answered (plus Fetch responses not yet written), across all
    /// connections. A connection over budget is not read. Kafka's default
    /// is unbounded (-1); Gregor's is an eighth of the machine's memory,
    /// between 128 MiB and 1 GiB. -1 here means unbounded too.
    pub queued_max_request_bytes: usize,
    /// `fetch.max.bytes` (broker side): the most record bytes one Fetch
    /// response carries, whatever the client asks (KIP-74: the first batch
    /// goes out even if larger). Default 57671680, as Kafka.
    pub fetch_max_bytes: i32,
    /// `group.initial.rebalance.delay.ms`. Default 3000.
    pub group_initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms`. Default 6000.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`. Default 1800000.
    pub group_max_session_timeout_ms: i32,
    /// Keys set explicitly (by file, env or flag): DescribeConfigs reports
    /// them as STATIC_BROKER_CONFIG rather than DEFAULT_CONFIG.
    pub explicit: BTreeSet<String>,
    /// Broker-level defaults of topic configs with no field of their own
    /// (`log.segment.bytes`, `log.cleanup.policy`, `log.cleaner.*`, ...),
    /// by their broker name.
    pub log_defaults: BTreeMap<String, String>,
}

/// Dynamic broker configs: for this broker, and the cluster-wide default
/// (the `<default>` entity), as Kafka keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DynamicConfigs {
    /// For this broker id.
    pub node: BTreeMap<String, String>,
    /// Cluster default.
    pub default: BTreeMap<String, String>,
}

/// Broker configs Kafka lets `kafka-configs.sh` change on a running
/// broker (KIP-226's dynamic log and broker configs that Gregor honours),
/// for this broker and as the cluster default.
pub const DYNAMIC_BROKER_CONFIGS: &[&str] = &[
    "auto.create.topics.enable",
    "compression.type",
    "log.cleaner.backoff.ms",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.max.compaction.lag.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.threads",
    "log.cleanup.policy",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.index.interval.bytes",
    "log.message.timestamp.after.max.ms",
    "log.message.timestamp.before.max.ms",
    "log.message.timestamp.type",
    "log.retention.bytes",
    "log.retention.ms",
    "log.roll.ms",
    "log.segment.bytes",
    "log.segment.delete.delay.ms",
    "message.max.bytes",
    "min.insync.replicas",
    "num.partitions",
    "unclean.leader.election.enable",
];

/// `--dev`: test-friendly defaults in one go (as Redpanda's dev mode).
/// Each applies only where the property was not set explicitly, before or
/// after `--dev`. Kafka's production values slow a suite: a 3 s initial
/// rebalance delay per new group, retention and cleaner checks minutes
/// apart, 50-partition internal topics in every full Metadata answer.
pub const DEV_PROFILE: &[(&str, &str)] = &[
    ("group.initial.rebalance.delay.ms", "0"),
    ("log.retention.check.interval.ms", "1000"),
    ("log.cleaner.backoff.ms", "1000"),
    ("auto.create.topics.enable", "true"),
    ("offsets.topic.num.partitions", "1"),
    ("transaction.state.log.num.partitions", "1"),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "1000",
    ),
];

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised_listener: None,
            data_dir: PathBuf::from("./gregor-data"),
            ephemeral: false,
            node_id: 1,
            virtual_brokers: 1,
            bound: Vec::new(),
            admin_listen: None,
            dev: false,
            cluster_id: "gregor-local-cluster-0".into(),
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            message_max_bytes: 1_048_588,
            socket_request_max_bytes: 100 * 1024 * 1024,
            log_retention_ms: 7 * 24 * 3_600_000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            producer_id_expiration_ms: 86_400_000,
            transaction_max_timeout_ms: 900_000,
            offsets_topic_num_partitions: 50,
            log_cleaner_backoff_ms: 15_000,
            log_cleaner_io_max_bytes_per_second: f64::INFINITY,
            transaction_state_log_num_partitions: 50,
            transactional_id_expiration_ms: 604_800_000,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            transaction_remove_expired_transaction_cleanup_interval_ms: 3_600_000,
            test_txn_crash_at: None,
            log_flush_interval_ms: 1000,
            log_message_timestamp_type: "CreateTime".into(),
            max_connections: 10_000,
            max_connections_per_ip: i32::MAX as usize,
            connections_max_idle_ms: 600_000,
            queued_max_request_bytes: default_queued_max_request_bytes(),
            fetch_max_bytes: 57_671_680,
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            explicit: BTreeSet::new(),
            log_defaults: BTreeMap::new(),
        }
    }
}

/// An eighth of the machine's memory, between 128 MiB and 1 GiB: enough
/// for several maximum-size requests, small beside the machine.
fn default_queued_max_request_bytes() -> usize {
    const MIB: u64 = 1024 * 1024;
    // /proc/meminfo's first line: "MemTotal:  24567890 kB".
    let total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(4 * 1024 * 1024);
    let bytes = (total_kib.saturating_mul(1024) / 8).clamp(128 * MIB, 1024 * MIB);
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse::<T>().map_err(|e| ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: e.to_string(),
    })
}

/// What [`BrokerConfig::set`] did with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The key is known and was applied.
    Set,
    /// Gregor does not know the key (a Kafka property it does not implement);
    /// Kafka logs such keys and goes on, and so does Gregor.
    Unknown,
}

impl BrokerConfig {
    /// Sets one property from its text form, as in `server.properties`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<Applied, ConfigError> {
        let invalid = |reason: &str| ConfigError::Invalid {
            key: key.into(),
            value: value.into(),
            reason: reason.into(),
        };
        match key {
            "listen" | "listeners" => {
                // Accept Kafka's `PLAINTEXT://host:port` form too.
                let v = value.rsplit("://").next().unwrap_or(value);
                self.listen = parse(key, v)?;
            }
            "advertised.listener" | "advertised.listeners" => {
                let v = value.rsplit("://").next().unwrap_or(value).trim();
                if v.rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .is_none()
                {
                    return Err(invalid("expected host:port"));
                }
                self.advertised_listener = Some(v.to_string());
            }
            "data.dir" | "log.dirs" | "log.dir" => self.data_dir = PathBuf::from(value.trim()),
            "ephemeral" => self.ephemeral = parse(key, value)?,
            "node.id" | "broker.id" => self.node_id = parse(key, value)?,
            "virtual.brokers" => {
                self.virtual_brokers = parse(key, value)?;
                if !(1..=64).contains(&self.virtual_brokers) {
                    return Err(invalid("must be between 1 and 64"));
                }
            }
            "admin.listen" => {
                let v = value.trim();
                self.admin_listen = if v.is_empty() || v == "off" {
                    None
                } else {
                    Some(parse(key, v.rsplit("://").next().unwrap_or(v))?)
                };
            }
            "dev" => {
                self.dev = parse(key, value)?;
                if self.dev {
                    self.apply_dev_profile();
                }
            }
            "cluster.id" => self.cluster_id = value.trim().to_string(),
            "num.partitions" => {
                self.num_partitions = parse(key, value)?;
                if self.num_partitions < 1 {
                    return Err(invalid("must be at least 1"));
                }
            }
            "default.replication.factor" => {
                self.default_replication_factor = parse(key, value)?;
                // As Kafka: any positive value is taken; creating a topic
                // with more replicas than brokers is what fails.
                if self.default_replication_factor < 1 {
                    return Err(invalid("must be at least 1"));
                }
            }
            "auto.create.topics.enable" => self.auto_create_topics_enable = parse(key, value)?,
            "message.max.bytes" => {
                self.message_max_bytes = parse(key, value)?;
                if self.message_max_bytes < 0 {
                    return Err(invalid("must not be negative"));
                }
            }
            "socket.request.max.bytes" => self.socket_request_max_bytes = parse(key, value)?,
            "log.retention.ms" => self.log_retention_ms = parse(key, value)?,
            "log.retention.minutes" => {
                self.log_retention_ms = parse::<i64>(key, value)?.saturating_mul(60_000)
            }
            "log.retention.hours" => {
                self.log_retention_ms = parse::<i64>(key, value)?.saturating_mul(3_600_000)
            }
            "log.retention.bytes" => self.log_retention_bytes = parse(key, value)?,
            "log.retention.check.interval.ms" => {
                self.log_retention_check_interval_ms = parse(key, value)?
            }
            "log.flush.interval.ms" => self.log_flush_interval_ms = parse(key, value)?,
            "producer.id.expiration.ms" => self.producer_id_expiration_ms = parse(key, value)?,
            "gregor.test.txn.crash.at" => {
                let v = value.trim();
                if !["prepared", "first-marker", "marked", "completed"].contains(&v) {
                    return Err(invalid(
                        "expected prepared, first-marker, marked or completed",
                    ));
                }
                self.test_txn_crash_at = Some(v.to_string());
            }
            "transaction.max.timeout.ms" => self.transaction_max_timeout_ms = parse(key, value)?,
            "transaction.state.log.num.partitions" => {
                self.transaction_state_log_num_partitions = parse(key, value)?;
                if self.transaction_state_log_num_partitions < 1 {
                    return Err(invalid("must be at least 1"));
                }
            }
            "log.cleaner.backoff.ms" => self.log_cleaner_backoff_ms = parse(key, value)?,
            "log.cleaner.io.max.bytes.per.second" => {
                self.log_cleaner_io_max_bytes_per_second = parse(key, value)?;
                if self.log_cleaner_io_max_bytes_per_second <= 0.0 {
                    return Err(invalid("must be positive"));
                }
            }
            "offsets.topic.num.partitions" => {
                self.offsets_topic_num_partitions = parse(key, value)?;
                if self.offsets_topic_num_partitions < 1 {
                    return Err(invalid("must be at least 1"));
                }
            }
            "transactional.id.expiration.ms" => {
                self.transactional_id_expiration_ms = parse(key, value)?
            }
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                self.transaction_abort_timed_out_transaction_cleanup_interval_ms =
                    parse(key, value)?
            }
            "transaction.remove.expired.transaction.cleanup.interval.ms" => {
                self.transaction_remove_expired_transaction_cleanup_interval_ms = parse(key, value)?
            }
            "log.message.timestamp.type" => {
                let v = value.trim();
                if v != "CreateTime" && v != "LogAppendTime" {
                    return Err(invalid("expected CreateTime or LogAppendTime"));
                }
                self.log_message_timestamp_type = v.into();
            }
            "max.connections" => self.max_connections = parse(key, value)?,
            "max.connections.per.ip" => self.max_connections_per_ip = parse(key, value)?,
            "connections.max.idle.ms" => {
                let v: i64 = parse(key, value)?;
                // Kafka takes -1 for "never"; so does Gregor.
                self.connections_max_idle_ms = u64::try_from(v).unwrap_or(u64::MAX);
                if v == 0 {
                    return Err(invalid("must be positive, or -1 for never"));
                }
            }
            "queued.max.request.bytes" => {
                let v: i64 = parse(key, value)?;
                self.queued_max_request_bytes = if v <= 0 {
                    tokio::sync::Semaphore::MAX_PERMITS
                } else {
                    usize::try_from(v)
                        .unwrap_or(usize::MAX)
                        .min(tokio::sync::Semaphore::MAX_PERMITS)
                };
            }
            "fetch.max.bytes" => {
                self.fetch_max_bytes = parse(key, value)?;
                if self.fetch_max_bytes < 1024 {
                    return Err(invalid("must be at least 1024"));
                }
            }
            "group.initial.rebalance.delay.ms" => {
                self.group_initial_rebalance_delay_ms = parse(key, value)?
            }
            "group.min.session.timeout.ms" => {
                self.group_min_session_timeout_ms = parse(key, value)?
            }
            "group.max.session.timeout.ms" => {
                self.group_max_session_timeout_ms = parse(key, value)?
            }
            _ => {
                // A broker default of a topic config with no field of its
                // own: typed and checked as the topic config is.
                let Some(def) = crate::topics::TOPIC_CONFIGS
                    .iter()
                    .find(|d| d.broker_synonym == Some(key))
                else {
                    return Ok(Applied::Unknown);
                };
                crate::topics::validate_config(def.name, Some(value)).map_err(|e| invalid(&e))?;
                self.log_defaults
                    .insert(key.to_string(), value.trim().to_string());
            }
        }
        self.explicit.insert(key.to_string());
        Ok(Applied::Set)
    }

    /// Applies [`DEV_PROFILE`] under what was set explicitly; settings made
    /// after it still win, since they overwrite.
    fn apply_dev_profile(&mut self) {
        for (k, v) in DEV_PROFILE {
            if !self.explicit.contains(*k) {
                // The profile's values are valid by construction; like
                // lines of a server.properties, DescribeConfigs reports
                // them as STATIC_BROKER_CONFIG.
                let _ = self.set(k, v);
            }
        }
    }

    /// Broker properties reported by DescribeConfigs, as Kafka names and
    /// formats them.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            (
                "advertised.listeners",
                format!("PLAINTEXT://{}", self.advertised_or_listen()),
            ),
            (
                "auto.create.topics.enable",
                self.auto_create_topics_enable.to_string(),
            ),
            ("broker.id", self.node_id.to_string()),
            // One cleaner thread (crate::cleaner).
            ("log.cleaner.threads", "1".to_string()),
            (
                "default.replication.factor",
                self.default_replication_factor.to_string(),
            ),
            (
                "group.initial.rebalance.delay.ms",
                self.group_initial_rebalance_delay_ms.to_string(),
            ),
            (
                "group.max.session.timeout.ms",
                self.group_max_session_timeout_ms.to_string(),
            ),
            (
                "group.min.session.timeout.ms",
                self.group_min_session_timeout_ms.to_string(),
            ),
            ("listeners", format!("PLAINTEXT://{}", self.listen)),
            ("log.dirs", self.data_dir.display().to_string()),
            (
                "log.flush.interval.ms",
                self.log_flush_interval_ms.to_string(),
            ),
            (
                "log.message.timestamp.type",
                self.log_message_timestamp_type.clone(),
            ),
            ("log.retention.bytes", self.log_retention_bytes.to_string()),
            (
                "log.retention.check.interval.ms",
                self.log_retention_check_interval_ms.to_string(),
            ),
            ("log.retention.ms", self.log_retention_ms.to_string()),
            (
                "producer.id.expiration.ms",
                self.producer_id_expiration_ms.to_string(),
            ),
            (
                "transaction.state.log.num.partitions",
                self.transaction_state_log_num_partitions.to_string(),
            ),
            (
                "log.cleaner.io.max.bytes.per.second",
                if self.log_cleaner_io_max_bytes_per_second.is_finite() {
                    self.log_cleaner_io_max_bytes_per_second.to_string()
                } else {
                    "1.7976931348623157E308".to_string()
                },
            ),
            (
                "log.cleaner.backoff.ms",
                self.log_cleaner_backoff_ms.to_string(),
            ),
            (
                "offsets.topic.num.partitions",
                self.offsets_topic_num_partitions.to_string(),
            ),
            (
                "transaction.max.timeout.ms",
                self.transaction_max_timeout_ms.to_string(),
            ),
            (
                "transactional.id.expiration.ms",
                self.transactional_id_expiration_ms.to_string(),
            ),
            (
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                self.transaction_abort_timed_out_transaction_cleanup_interval_ms
                    .to_string(),
            ),
            (
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                self.transaction_remove_expired_transaction_cleanup_interval_ms
                    .to_string(),
            ),
            (
                "connections.max.idle.ms",
                self.connections_max_idle_ms.to_string(),
            ),
            ("fetch.max.bytes", self.fetch_max_bytes.to_string()),
            ("max.connections", self.max_connections.to_string()),
            (
                "max.connections.per.ip",
                self.max_connections_per_ip.to_string(),
            ),
            ("message.max.bytes", self.message_max_bytes.to_string()),
            ("node.id", self.node_id.to_string()),
            ("num.partitions", self.num_partitions.to_string()),
            (
                "queued.max.request.bytes",
                self.queued_max_request_bytes.to_string(),
            ),
            (
                "socket.request.max.bytes",
                self.socket_request_max_bytes.to_string(),
            ),
        ];
        // Broker defaults of topic configs (`log.segment.bytes`, ...).
        for d in crate::topics::TOPIC_CONFIGS {
            if let Some(syn) = d.broker_synonym {
                if !v.iter().any(|(n, _)| *n == syn) {
                    v.push((syn, crate::topics::broker_default(self, d)));
                }
            }
        }
        v.sort_by_key(|(n, _)| *n);
        v
    }

    /// The `host:port` clients are told to connect to.
    pub fn advertised_or_listen(&self) -> String {
        self.advertised_listener
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names_apply_and_unknown_names_are_reported() {
        let mut c = BrokerConfig::default();
        assert_eq!(c.set("num.partitions", "6").ok(), Some(Applied::Set));
        assert_eq!(c.num_partitions, 6);
        assert_eq!(c.set("log.retention.hours", "2").ok(), Some(Applied::Set));
        assert_eq!(c.log_retention_ms, 7_200_000);
        assert_eq!(
            c.set("listeners", "PLAINTEXT://0.0.0.0:9093").ok(),
            Some(Applied::Set)
        );
        assert_eq!(c.listen.port(), 9093);
        // A broker default of a topic config: kept by name, typed.
        assert_eq!(c.set("compression.type", "lz4").ok(), Some(Applied::Set));
        assert_eq!(
            c.log_defaults.get("compression.type").map(String::as_str),
            Some("lz4")
        );
        assert!(c.set("log.segment.bytes", "big").is_err());
        assert_eq!(
            c.set("sasl.enabled.mechanisms", "PLAIN").ok(),
            Some(Applied::Unknown)
        );
        assert!(c.set("num.partitions", "zero").is_err());
        assert!(c.set("default.replication.factor", "0").is_err());
        assert!(c.set("default.replication.factor", "3").is_ok());
        assert!(c.explicit.contains("num.partitions"));
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn dev_profile_fills_in_under_explicit_settings() {
        let mut c = BrokerConfig::default();
        // Set before --dev, and after: both win over the profile.
        c.set("group.initial.rebalance.delay.ms", "250").unwrap();
        c.set("dev", "true").unwrap();
        c.set("log.cleaner.backoff.ms", "5000").unwrap();
        assert!(c.dev);
        assert_eq!(c.group_initial_rebalance_delay_ms, 250);
        assert_eq!(c.log_cleaner_backoff_ms, 5000);
        assert_eq!(c.log_retention_check_interval_ms, 1000);
        assert_eq!(c.offsets_topic_num_partitions, 1);
        // Static configs for DescribeConfigs' sources, as if in a
        // server.properties.
        assert!(c.explicit.contains("log.retention.check.interval.ms"));
        let plain = BrokerConfig::default();
        assert_eq!(plain.group_initial_rebalance_delay_ms, 3000);
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn virtual_brokers_and_admin_listen_are_checked() {
        let mut c = BrokerConfig::default();
        c.set("virtual.brokers", "3").unwrap();
        assert_eq!(c.virtual_brokers, 3);
        assert!(c.set("virtual.brokers", "0").is_err());
        assert!(c.set("virtual.brokers", "65").is_err());
        c.set("admin.listen", "127.0.0.1:9644").unwrap();
        assert_eq!(c.admin_listen.map(|a| a.port()), Some(9644));
        c.set("admin.listen", "off").unwrap();
        assert!(c.admin_listen.is_none());
        assert!(c.set("admin.listen", "nowhere").is_err());
    }
}
