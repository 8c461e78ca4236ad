//! The state every handler shares: configuration and store. Cheap to clone.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use gregor_protocol::inflate;
use gregor_storage::{PartitionLog, StorageError, Store, TopicMeta};
use tokio::sync::Semaphore;

use crate::budget::Budget;
use crate::config::BrokerConfig;
use crate::coordinator::txn::TxnConfig;
use crate::coordinator::{Coordinator, GroupConfig};
use crate::topics;
use crate::txn::Transactions;
use kafka_protocol::ResponseError;

/// A handle on the broker's shared state.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Shared>,
}

struct Shared {
    config: BrokerConfig,
    store: Arc<Store>,
    /// `queued.max.request.bytes`.
    memory: Budget,
    /// Decompressions running at once (each on a blocking thread, each
    /// holding a decoder window): bounds their CPU and memory together.
    inflate_slots: Arc<Semaphore>,
    coordinator: Coordinator,
    txns: Transactions,
    advertised_host: String,
    advertised_port: i32,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("node_id", &self.inner.config.node_id)
            .finish()
    }
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
    pub fn new(config: BrokerConfig, store: Arc<Store>) -> Broker {
        let adv = config.advertised_or_listen();
        let (host, port) = match adv.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_matches(|c| c == '[' || c == ']').to_string(),
                p.parse().unwrap_or(9092),
            ),
            None => (adv.clone(), 9092),
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
        let memory = Budget::new(config.queued_max_request_bytes);
        let inflate_slots = Arc::new(Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        ));
        Broker {
            inner: Arc::new(Shared {
                config,
                store,
                memory,
                inflate_slots,
                coordinator,
                txns,
                advertised_host: host,
                advertised_port: port,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.inner.config
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
            self.config(),
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
    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.inner.config.node_id
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
    /// checked against the client's `current_leader_epoch` (KIP-320).
    /// Gregor's leader epoch is always 0: a larger one is from a future this
    /// broker has not seen; negative means "not checked".
    pub fn led_partition(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<Arc<PartitionLog>, ResponseError> {
        let log = self
            .store()
            .partition(topic, partition)
            .ok_or(ResponseError::UnknownTopicOrPartition)?;
        if current_leader_epoch > 0 {
            return Err(ResponseError::UnknownLeaderEpoch);
        }
        Ok(log)
    }

    /// Creates a topic with broker defaults (auto-creation).
    pub fn auto_create(&self, name: &str) -> Result<TopicMeta, CreateError> {
        topics::validate_name(name).map_err(CreateError::InvalidName)?;
        self.store()
            .create_topic(name, self.config().num_partitions, Default::default())
            .map_err(CreateError::Storage)
    }
}

/// Milliseconds since the epoch: the clock of timestamps and retention.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
