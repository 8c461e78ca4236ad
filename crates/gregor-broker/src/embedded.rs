//! A broker inside a Rust test (issue 11): started on ephemeral ports with
//! the memory store (or a data dir), with the `--dev` profile, its faults
//! and virtual brokers driven directly, and stopped when dropped.
//!
//! It runs on a runtime and thread of its own, so it works the same from a
//! plain `#[test]` and from inside `#[tokio::test]`.
//!
//! ```
//! use std::time::Duration;
//! use gregor_broker::embedded::EmbeddedBroker;
//! use gregor_broker::fault::Filter;
//! use rdkafka::config::ClientConfig;
//! use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
//!
//! // Three broker ids on three ports, in memory, with the test profile.
//! let kafka = EmbeddedBroker::builder().virtual_brokers(3).start()?;
//!
//! let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
//!     .set("bootstrap.servers", kafka.bootstrap())
//!     .set("enable.idempotence", "true")
//!     .create()?;
//!
//! // The next two Produce requests fail with a retriable error, and the
//! // partition's leader moves to another broker: the client retries,
//! // follows the leader, and writes the record once.
//! kafka.faults().push_errors(
//!     "Produce",
//!     &["NOT_LEADER_OR_FOLLOWER".into(), "REQUEST_TIMED_OUT".into()],
//!     Filter::default(),
//! )?;
//! producer
//!     .send(BaseRecord::<str, str>::to("orders").key("k").payload("v1"))
//!     .map_err(|(e, _)| e)?;
//! producer.flush(Duration::from_secs(30))?;
//! let moved = kafka.move_leader("orders", 0, 2)?;
//! assert_eq!(moved.epoch, 1);
//! producer
//!     .send(BaseRecord::<str, str>::to("orders").key("k").payload("v2"))
//!     .map_err(|(e, _)| e)?;
//! producer.flush(Duration::from_secs(30))?;
//!
//! let log = kafka.broker().store().partition("orders", 0).expect("created");
//! assert_eq!(log.high_watermark(), 2);
//! assert!(kafka.faults().snapshot().errors.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use gregor_storage::{Store, StoreOptions};
use tokio::sync::oneshot;

use crate::cluster::{Cluster, ClusterError, Leader};
use crate::context::{Broker, ResetStats};
use crate::fault::Faults;
use crate::BrokerConfig;

/// How to start an [`EmbeddedBroker`].
#[derive(Debug, Clone)]
pub struct Builder {
    virtual_brokers: u16,
    data_dir: Option<PathBuf>,
    admin: bool,
    dev: bool,
    overrides: Vec<(String, String)>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            virtual_brokers: 1,
            data_dir: None,
            admin: false,
            dev: true,
            overrides: Vec::new(),
        }
    }
}

impl Builder {
    /// Broker ids presented (each on its own ephemeral port). Default 1.
    pub fn virtual_brokers(mut self, n: u16) -> Self {
        self.virtual_brokers = n;
        self
    }

    /// Keep data in this directory (survives a restart on the same
    /// directory) instead of memory.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Also serve the HTTP admin API on an ephemeral port
    /// ([`EmbeddedBroker::admin_url`]), e.g. for a tool the test runs.
    pub fn admin_api(mut self, on: bool) -> Self {
        self.admin = on;
        self
    }

    /// Without the `--dev` test profile: Kafka's production defaults.
    pub fn production_defaults(mut self) -> Self {
        self.dev = false;
        self
    }

    /// Sets a Kafka broker property, as `-o key=value` does.
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.overrides.push((key.to_string(), value.to_string()));
        self
    }

    /// Starts the broker; returns once every listener is bound.
    pub fn start(self) -> std::io::Result<EmbeddedBroker> {
        let invalid = |e: crate::config::ConfigError| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
        };
        let mut config = BrokerConfig::default();
        config.set("listen", "127.0.0.1:0").map_err(invalid)?;
        config
            .set("virtual.brokers", &self.virtual_brokers.to_string())
            .map_err(invalid)?;
        match &self.data_dir {
            Some(d) => {
                config.data_dir.clone_from(d);
            }
            None => config.ephemeral = true,
        }
        for (k, v) in &self.overrides {
            config.set(k, v).map_err(invalid)?;
        }
        if self.dev {
            config.set("dev", "true").map_err(invalid)?;
        }
        let admin = self.admin;
        let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<(Broker, Option<SocketAddr>)>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("gregor-embedded".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let started = async {
                        let store = if config.ephemeral {
                            Store::open_memory(StoreOptions::default())
                        } else {
                            std::fs::create_dir_all(&config.data_dir)?;
                            Store::open_sled(&config.data_dir, StoreOptions::default())
                                .map_err(std::io::Error::other)?
                        };
                        let listeners = crate::server::bind_all(&config).await?;
                        let admin = if admin {
                            Some(tokio::net::TcpListener::bind("127.0.0.1:0").await?)
                        } else {
                            None
                        };
                        let mut config = config;
                        config.bound = listeners
                            .iter()
                            .map(tokio::net::TcpListener::local_addr)
                            .collect::<std::io::Result<_>>()?;
                        config.listen = config.bound[0];
                        let admin_addr = admin
                            .as_ref()
                            .map(tokio::net::TcpListener::local_addr)
                            .transpose()?;
                        let broker = Broker::new(config, store);
                        Ok::<_, std::io::Error>((broker, listeners, admin, admin_addr))
                    };
                    match started.await {
                        Ok((broker, listeners, admin, admin_addr)) => {
                            let _ = ready_tx.send(Ok((broker.clone(), admin_addr)));
                            crate::server::serve_all(listeners, admin, broker, async {
                                let _ = stop_rx.await;
                            })
                            .await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })?;
        let (broker, admin) = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the embedded broker's thread ended"))??;
        Ok(EmbeddedBroker {
            broker,
            admin,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

/// A running broker; stopped (gracefully, store flushed) when dropped.
pub struct EmbeddedBroker {
    broker: Broker,
    admin: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("bootstrap", &self.bootstrap())
            .finish()
    }
}

impl EmbeddedBroker {
    /// How to start one.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// One broker, in memory, with the test profile.
    pub fn start() -> std::io::Result<EmbeddedBroker> {
        Builder::default().start()
    }

    /// `bootstrap.servers` for a client: every broker, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.cluster()
            .nodes()
            .iter()
            .map(|n| format!("{}:{}", n.host, n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The HTTP admin API's base URL, if [`Builder::admin_api`] was set.
    pub fn admin_url(&self) -> Option<String> {
        self.admin.map(|a| format!("http://{a}"))
    }

    /// The broker's shared state (store, coordinators, configuration).
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The faults: push errors, latency, cuts, storage failure, throttling.
    pub fn faults(&self) -> &Faults {
        self.broker.faults()
    }

    /// The virtual cluster: brokers, leaders, coordinator.
    pub fn cluster(&self) -> &Cluster {
        self.broker.cluster()
    }

    /// Moves a partition's leadership to broker `to` (epoch + 1).
    pub fn move_leader(
        &self,
        topic: &str,
        partition: i32,
        to: i32,
    ) -> Result<Leader, ClusterError> {
        let end = self
            .broker
            .store()
            .partition(topic, partition)
            .ok_or_else(|| ClusterError::NoSuchPartition(topic.to_string(), partition))?
            .high_watermark();
        self.cluster().move_partition(topic, partition, to, end)
    }

    /// Takes broker `id` down: its connections close, connects are refused,
    /// its partitions and the coordinator move. Returns how many moved.
    pub fn broker_down(&self, id: i32) -> Result<usize, ClusterError> {
        self.cluster().down(id, &self.broker.partition_ends())
    }

    /// Brings broker `id` back up.
    pub fn broker_up(&self, id: i32) -> Result<(), ClusterError> {
        self.cluster().up(id, &self.broker.partition_ends())
    }

    /// Moves the group and transaction coordinator to broker `id`.
    pub fn set_coordinator(&self, id: i32) -> Result<(), ClusterError> {
        self.cluster().set_coordinator(id)
    }

    /// Wipes topics, groups and transactions, clears faults (between tests
    /// that share one broker).
    pub fn reset(&self) -> Result<ResetStats, String> {
        self.broker.reset()
    }

    /// Stops the broker and waits for it (what dropping it does).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.shutdown();
    }
}
