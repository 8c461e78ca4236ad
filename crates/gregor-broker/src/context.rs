//! The state every handler shares: configuration and store. Cheap to clone.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use gregor_protocol::inflate;
use gregor_storage::{PartitionLog, StorageError, Store, TopicMeta};
use tokio::sync::Semaphore;

use crate::budget::Budget;
use crate::cluster::{Cluster, Leader};
use crate::config::{BrokerConfig, ConfigError, DynamicConfigs};
use crate::coordinator::txn::TxnConfig;
use crate::coordinator::{Coordinator, GroupConfig};
use crate::fault::Faults;
use crate::metrics::Metrics;
use crate::topics;
use crate::txn::Transactions;
use kafka_protocol::ResponseError;

/// A handle on the broker's shared state.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Shared>,
}

struct Shared {
    /// From flags, environment and file: what a restart starts from.
    static_config: BrokerConfig,
    /// The static config with the dynamic broker configs applied
    /// (IncrementalAlterConfigs / AlterConfigs on the broker); swapped as a
    /// whole when they change, so a reader sees one consistent version.
    config: RwLock<Arc<BrokerConfig>>,
    dynamic: Mutex<DynamicConfigs>,
    store: Arc<Store>,
    /// `queued.max.request.bytes`.
    memory: Budget,
    /// Decompressions running at once (each on a blocking thread, each
    /// holding a decoder window): bounds their CPU and memory together.
    inflate_slots: Arc<Semaphore>,
    coordinator: Coordinator,
    txns: Transactions,
    cluster: Cluster,
    faults: Faults,
    metrics: Metrics,
    advertised_host: String,
    advertised_port: i32,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("node_id", &self.inner.static_config.node_id)
            .finish()
    }
}

/// Store key of the dynamic broker configs.
const DYNAMIC_KEY: &str = "dynamic.broker.configs";
/// Store key of the generated cluster id.
const CLUSTER_ID_KEY: &str = "cluster.id";

/// The static config with `d` applied (default first, then this broker's);
/// `explicit` stays the static one, so sources can tell them apart.
fn layered(base: &BrokerConfig, d: &DynamicConfigs) -> Result<BrokerConfig, ConfigError> {
    let mut c = base.clone();
    for (k, v) in d.default.iter().chain(d.node.iter()) {
        c.set(k, v)?;
    }
    c.explicit.clone_from(&base.explicit);
    Ok(c)
}

/// A Kafka cluster id: 16 random bytes in URL-safe base64 without padding
/// (22 characters), as `kafka-storage.sh random-uuid` prints.
fn random_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u32 = 0;
    let mut n = 0;
    let mut out = String::with_capacity(22);
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        n += 8;
        while n >= 6 {
            n -= 6;
            out.push(char::from(ALPHABET[((bits >> n) & 63) as usize]));
        }
    }
    if n > 0 {
        out.push(char::from(ALPHABET[((bits << (6 - n)) & 63) as usize]));
    }
    out
}

/// Why dynamic broker configs were refused.
#[derive(Debug)]
pub enum DynamicError {
    /// A value does not parse or is out of range.
    Invalid(ConfigError),
    /// The store refused.
    Storage(StorageError),
}

/// Why a topic could not be created.
#[derive(Debug)]
pub enum CreateError {
    /// Invalid name; message for INVALID_TOPIC_EXCEPTION.
    InvalidName(String),
    /// The store refused.
    Storage(StorageError),
}

impl Broker {
    /// Builds the shared state. `config.listen` must be the bound address
    /// (the real port when 0 was asked for).
    pub fn new(mut config: BrokerConfig, store: Arc<Store>) -> Broker {
        // A cluster id made at first start and kept, unless configured.
        if !config.explicit.contains("cluster.id") {
            match store.meta_value(CLUSTER_ID_KEY) {
                Ok(Some(v)) => config.cluster_id = String::from_utf8_lossy(&v).into_owned(),
                _ => {
                    let id = random_cluster_id();
                    if let Err(e) = store.set_meta_value(CLUSTER_ID_KEY, Some(id.as_bytes())) {
                        tracing::warn!(cause = %e, "cannot store the cluster id");
                    }
                    config.cluster_id = id;
                }
            }
        }
        let dynamic: DynamicConfigs = match store.meta_value(DYNAMIC_KEY) {
            Ok(Some(v)) => serde_json::from_slice(&v).unwrap_or_else(|e| {
                tracing::warn!(cause = %e, "unreadable dynamic broker configs ignored");
                DynamicConfigs::default()
            }),
            _ => DynamicConfigs::default(),
        };
        let effective = layered(&config, &dynamic).unwrap_or_else(|e| {
            tracing::warn!(cause = %e, "stored dynamic broker configs no longer apply; ignored");
            config.clone()
        });
        let bound = if config.bound.is_empty() {
            vec![config.listen]
        } else {
            config.bound.clone()
        };
        let cluster = Cluster::new(
            crate::cluster::nodes(
                config.node_id,
                &bound,
                config.advertised_listener.as_deref(),
            ),
            Arc::clone(&store),
        );
        let (host, port) = {
            let first = &cluster.nodes()[0];
            (first.host.clone(), first.port)
        };
        let coordinator = Coordinator::new(GroupConfig {
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
        });
        let txns = Transactions::load(
            &store,
            TxnConfig {
                max_timeout_ms: config.transaction_max_timeout_ms,
                id_expiration_ms: config.transactional_id_expiration_ms,
            },
        );
        let metrics = Metrics::default();
        let observed = metrics.clone();
        store.set_sync_observer(Box::new(move |took, waiters| {
            observed.group_commit(took, waiters);
        }));
        let memory = Budget::new(config.queued_max_request_bytes);
        let inflate_slots = Arc::new(Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        ));
        Broker {
            inner: Arc::new(Shared {
                static_config: config,
                config: RwLock::new(Arc::new(effective)),
                dynamic: Mutex::new(dynamic),
                store,
                memory,
                inflate_slots,
                coordinator,
                txns,
                cluster,
                faults: Faults::default(),
                metrics,
                advertised_host: host,
                advertised_port: port,
            }),
        }
    }

    /// The configuration in force: static, with the dynamic broker configs.
    pub fn config(&self) -> Arc<BrokerConfig> {
        Arc::clone(&self.inner.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The configuration the broker was started with.
    pub fn static_config(&self) -> &BrokerConfig {
        &self.inner.static_config
    }

    /// The dynamic broker configs.
    pub fn dynamic_configs(&self) -> DynamicConfigs {
        self.inner
            .dynamic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the dynamic broker configs: checked by applying them,
    /// stored (durable at the next flush), then in force at once.
    /// `validate_only` checks without changing anything.
    pub fn set_dynamic_configs(
        &self,
        next: DynamicConfigs,
        validate_only: bool,
    ) -> Result<(), DynamicError> {
        let mut cur = self.inner.dynamic.lock().unwrap_or_else(|e| e.into_inner());
        let effective = layered(&self.inner.static_config, &next).map_err(DynamicError::Invalid)?;
        if validate_only {
            return Ok(());
        }
        let json = serde_json::to_vec(&next).unwrap_or_default();
        self.store()
            .set_meta_value(DYNAMIC_KEY, Some(&json))
            .map_err(DynamicError::Storage)?;
        *cur = next;
        *self.inner.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(effective);
        Ok(())
    }
    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }
    /// The request memory budget (`queued.max.request.bytes`).
    pub fn memory(&self) -> &Budget {
        &self.inner.memory
    }

    /// Runs `f`, which looks inside record batches (decompression), on a
    /// blocking thread, with at most one such job per core at a time.
    pub async fn inflate<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = self.inner.inflate_slots.clone().acquire_owned().await;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
    }

    /// The cap on the inflated records of one batch of a topic with these
    /// configs: its `max.message.bytes` times [`inflate::INFLATE_FACTOR`].
    pub fn inflate_limit(
        &self,
        topic_configs: &std::collections::BTreeMap<String, String>,
    ) -> usize {
        let max = topics::effective_i64(
            &self.config(),
            topic_configs,
            "max.message.bytes",
            i64::from(self.config().message_max_bytes),
        );
        inflate::inflate_limit(max)
    }

    /// The group coordinator.
    pub fn coordinator(&self) -> &Coordinator {
        &self.inner.coordinator
    }
    /// The transaction coordinator.
    pub fn txns(&self) -> &Transactions {
        &self.inner.txns
    }
    /// The virtual cluster: brokers, leadership, coordinator.
    pub fn cluster(&self) -> &Cluster {
        &self.inner.cluster
    }
    /// Injected faults.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }
    /// Request and storage metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
    /// Every partition of the store with its log end offset (what a
    /// leadership change needs to start the new epoch).
    pub fn partition_ends(&self) -> Vec<(String, i32, i64)> {
        let store = self.store();
        let mut out = Vec::new();
        for t in store.topics() {
            for p in 0..t.partitions {
                let end = store
                    .partition(&t.name, p)
                    .map_or(0, |l| l.high_watermark());
                out.push((t.name.clone(), p, end));
            }
        }
        out
    }
    /// The first broker's id (`node.id`).
    pub fn node_id(&self) -> i32 {
        self.inner.static_config.node_id
    }
    /// Host clients connect to.
    pub fn host(&self) -> &str {
        &self.inner.advertised_host
    }
    /// Port clients connect to.
    pub fn port(&self) -> i32 {
        self.inner.advertised_port
    }

    /// The partition a Fetch, ListOffsets or OffsetForLeaderEpoch names,
    /// as broker `node` sees it: NOT_LEADER_OR_FOLLOWER unless it leads
    /// it, then checked against the client's `current_leader_epoch`
    /// (KIP-320): an older epoch is fenced, a newer one unknown to this
    /// leader; negative means "not checked".
    pub fn led_partition(
        &self,
        node: i32,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<(Arc<PartitionLog>, Leader), ResponseError> {
        let log = self
            .store()
            .partition(topic, partition)
            .ok_or(ResponseError::UnknownTopicOrPartition)?;
        let leader = self.cluster().leader(topic, partition);
        if leader.id != node {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        if current_leader_epoch >= 0 && current_leader_epoch < leader.epoch {
            return Err(ResponseError::FencedLeaderEpoch);
        }
        if current_leader_epoch > leader.epoch {
            return Err(ResponseError::UnknownLeaderEpoch);
        }
        Ok((log, leader))
    }

    /// Creates `__consumer_offsets` (empty, compacted, as Kafka creates it)
    /// the first time the group coordinator is used, so that Metadata lists
    /// it as Kafka does from then on.
    pub fn ensure_offsets_topic(&self) {
        self.ensure_internal_topic(
            topics::CONSUMER_OFFSETS,
            self.config().offsets_topic_num_partitions,
            "104857600",
        );
    }

    /// Creates `__transaction_state` the first time the transaction
    /// coordinator is found, likewise.
    pub fn ensure_txn_topic(&self) {
        self.ensure_internal_topic(
            topics::TRANSACTION_STATE,
            self.config().transaction_state_log_num_partitions,
            "104857600",
        );
    }

    fn ensure_internal_topic(&self, name: &str, partitions: i32, segment_bytes: &str) {
        if self.store().topic(name).is_some() {
            return;
        }
        let mut configs = std::collections::BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        configs.insert("compression.type".to_string(), "producer".to_string());
        configs.insert("segment.bytes".to_string(), segment_bytes.to_string());
        match self.store().create_topic(name, partitions, configs) {
            Ok(_) => tracing::info!(topic = name, partitions, "created internal topic"),
            Err(StorageError::TopicExists) => {}
            Err(e) => tracing::warn!(topic = name, cause = %e, "cannot create internal topic"),
        }
    }

    /// Creates a topic with broker defaults (auto-creation).
    pub fn auto_create(&self, name: &str) -> Result<TopicMeta, CreateError> {
        topics::validate_name(name).map_err(CreateError::InvalidName)?;
        self.store()
            .create_topic(name, self.config().num_partitions, Default::default())
            .map_err(CreateError::Storage)
    }
}

/// What a reset removed.
#[derive(Debug, Default, serde::Serialize)]
pub struct ResetStats {
    /// Topics deleted.
    pub topics: usize,
    /// Groups forgotten (with members or committed offsets).
    pub groups: usize,
    /// Transactional ids forgotten.
    pub transactions: usize,
    /// Milliseconds it took.
    pub took_ms: f64,
}

impl Broker {
    /// Wipes topics, groups, committed offsets and transactions, clears the
    /// faults and gives the virtual cluster its fresh shape, so that a test
    /// suite can reuse one broker. Blocking (store I/O): call it off the
    /// reactor. Only for brokers that hold nothing worth keeping
    /// (`ephemeral` or `dev`).
    pub fn reset(&self) -> Result<ResetStats, String> {
        let cfg = self.static_config();
        if !cfg.ephemeral && !cfg.dev {
            return Err(
                "reset wipes every topic and group: only allowed with --ephemeral or --dev".into(),
            );
        }
        let started = std::time::Instant::now();
        let mut stats = ResetStats::default();
        self.faults().clear();
        let store = self.store();
        let mut groups: std::collections::BTreeSet<String> =
            self.coordinator().list().into_iter().map(|g| g.0).collect();
        self.coordinator().clear();
        let with_offsets = store.groups_with_offsets().map_err(|e| e.to_string())?;
        for g in &with_offsets {
            store
                .delete_committed_offsets(g, None)
                .map_err(|e| e.to_string())?;
        }
        groups.extend(with_offsets);
        stats.groups = groups.len();
        let ids: Vec<String> = {
            let mut c = self.txns().lock();
            let ids = c.all().map(|(id, _)| id.clone()).collect();
            c.clear();
            ids
        };
        for id in &ids {
            store.write_txn(id, None, &[]).map_err(|e| e.to_string())?;
        }
        stats.transactions = ids.len();
        for t in store.topics() {
            store.delete_topic(&t.name).map_err(|e| e.to_string())?;
            stats.topics += 1;
        }
        crate::group_configs::clear(self)?;
        self.cluster().reset();
        self.metrics().clear_topics();
        stats.took_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
        tracing::info!(
            topics = stats.topics,
            groups = stats.groups,
            transactions = stats.transactions,
            took_ms = stats.took_ms,
            "reset: everything wiped"
        );
        Ok(stats)
    }
}

/// Milliseconds since the epoch: the clock of timestamps and retention.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
