//! Prometheus metrics (issue 11), served at `/metrics` on the admin
//! listener. Counters and histograms are updated as requests pass; the
//! state of logs and groups (sizes, offsets, lag) is read when scraped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::context::Broker;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiVersion {
    api: &'static str,
    version: i16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiError {
    api: &'static str,
    version: i16,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Api {
    api: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Topic {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Partition {
    topic: String,
    partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupPartition {
    group: String,
    topic: String,
    partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Group {
    group: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: String,
}

fn latency_histogram() -> Histogram {
    // 50 us .. ~27 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

/// The broker's long-lived metrics (cheap to clone: every family is an
/// `Arc` inside).
#[derive(Clone, Debug)]
pub struct Metrics {
    requests: Family<ApiVersion, Counter>,
    errors: Family<ApiError, Counter>,
    latency: Family<Api, Histogram, fn() -> Histogram>,
    bytes_in: PerTopic,
    bytes_out: PerTopic,
    connections: Gauge,
    connections_total: Counter,
    faults: Family<Kind, Counter>,
    fsync: Histogram,
    group_commit: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            bytes_in: PerTopic::default(),
            bytes_out: PerTopic::default(),
            connections: Gauge::default(),
            connections_total: Counter::default(),
            faults: Family::default(),
            fsync: latency_histogram(),
            group_commit: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
        }
    }
}

impl Metrics {
    /// One request answered.
    pub fn request(&self, api: &'static str, version: i16, took: Duration) {
        self.requests
            .get_or_create(&ApiVersion { api, version })
            .inc();
        self.latency
            .get_or_create(&Api { api })
            .observe(took.as_secs_f64());
    }

    /// Error codes in one answer.
    pub fn errors(&self, api: &'static str, version: i16, codes: &[i16]) {
        for c in codes {
            self.errors
                .get_or_create(&ApiError {
                    api,
                    version,
                    error: crate::fault::error_name(*c),
                })
                .inc();
        }
    }

    /// Record bytes produced to a topic.
    pub fn bytes_in(&self, topic: &str, n: usize) {
        self.bytes_in.add(topic, n);
    }

    /// Record bytes fetched from a topic.
    pub fn bytes_out(&self, topic: &str, n: usize) {
        self.bytes_out.add(topic, n);
    }

    /// A connection opened; the guard counts it closed when dropped.
    pub fn connection(&self) -> ConnectionGuard {
        self.connections.inc();
        self.connections_total.inc();
        ConnectionGuard(self.connections.clone())
    }

    /// An injected fault hit a request.
    pub fn fault(&self, kind: &str) {
        self.faults
            .get_or_create(&Kind {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// A group-commit cycle: how long it took and how many acks=all
    /// requests it answered.
    pub fn group_commit(&self, took: Duration, waiters: usize) {
        self.fsync.observe(took.as_secs_f64());
        self.group_commit
            .observe(f64::from(u32::try_from(waiters).unwrap_or(u32::MAX)));
    }

    /// Forgets per-topic series (after a reset).
    pub fn clear_topics(&self) {
        self.bytes_in.clear();
        self.bytes_out.clear();
    }

    /// The exposition text: these metrics, plus the state of every log and
    /// group read now.
    pub fn render(&self, b: &Broker) -> String {
        let mut r = Registry::default();
        r.register(
            "gregor_requests",
            "Requests answered, by API and version",
            self.requests.clone(),
        );
        r.register(
            "gregor_request_errors",
            "Error codes in responses, by API, version and error",
            self.errors.clone(),
        );
        r.register(
            "gregor_request_duration_seconds",
            "Time from a request read to its response ready, by API",
            self.latency.clone(),
        );
        r.register(
            "gregor_topic_bytes_in",
            "Record bytes produced, by topic",
            self.bytes_in.family(),
        );
        r.register(
            "gregor_topic_bytes_out",
            "Record bytes fetched, by topic",
            self.bytes_out.family(),
        );
        r.register(
            "gregor_connections",
            "Open client connections",
            self.connections.clone(),
        );
        r.register(
            "gregor_connections_opened",
            "Client connections accepted",
            self.connections_total.clone(),
        );
        r.register(
            "gregor_faults_injected",
            "Injected faults that hit a request, by kind",
            self.faults.clone(),
        );
        r.register("gregor_fsync_duration_seconds", "Duration of group-commit cycles (fdatasync of segments and index flush) that answered acks=all produces", self.fsync.clone());
        r.register(
            "gregor_group_commit_size",
            "acks=all requests answered per group-commit cycle",
            self.group_commit.clone(),
        );

        let size = Family::<Partition, Gauge>::default();
        let start = Family::<Partition, Gauge>::default();
        let hw = Family::<Partition, Gauge>::default();
        let lso = Family::<Partition, Gauge>::default();
        let leader = Family::<Partition, Gauge>::default();
        let store = b.store();
        for t in store.topics() {
            for p in 0..t.partitions {
                let Some(log) = store.partition(&t.name, p) else {
                    continue;
                };
                let l = Partition {
                    topic: t.name.clone(),
                    partition: p,
                };
                size.get_or_create(&l)
                    .set(i64::try_from(log.size_bytes()).unwrap_or(i64::MAX));
                start.get_or_create(&l).set(log.log_start_offset());
                hw.get_or_create(&l).set(log.high_watermark());
                lso.get_or_create(&l).set(log.last_stable_offset());
                leader
                    .get_or_create(&l)
                    .set(i64::from(b.cluster().leader(&t.name, p).id));
            }
        }
        r.register(
            "gregor_partition_size_bytes",
            "Bytes of a partition's segment files",
            size,
        );
        r.register(
            "gregor_partition_log_start_offset",
            "A partition's log start offset",
            start,
        );
        r.register(
            "gregor_partition_high_watermark",
            "A partition's high watermark (log end)",
            hw,
        );
        r.register(
            "gregor_partition_last_stable_offset",
            "A partition's last stable offset",
            lso,
        );
        r.register(
            "gregor_partition_leader",
            "The broker id leading a partition",
            leader,
        );

        let lag = Family::<GroupPartition, Gauge>::default();
        let committed = Family::<GroupPartition, Gauge>::default();
        let members = Family::<Group, Gauge>::default();
        for g in crate::inspect::groups(b) {
            members
                .get_or_create(&Group {
                    group: g.group_id.clone(),
                    state: g.state.clone(),
                })
                .set(i64::try_from(g.members.len()).unwrap_or(i64::MAX));
            for o in &g.offsets {
                let l = GroupPartition {
                    group: g.group_id.clone(),
                    topic: o.topic.clone(),
                    partition: o.partition,
                };
                committed.get_or_create(&l).set(o.committed);
                if let Some(x) = o.lag {
                    lag.get_or_create(&l).set(x);
                }
            }
        }
        r.register(
            "gregor_consumer_group_members",
            "Members of a consumer group, by state",
            members,
        );
        r.register(
            "gregor_consumer_group_committed_offset",
            "A group's committed offset",
            committed,
        );
        r.register(
            "gregor_consumer_group_lag",
            "High watermark minus the committed offset",
            lag,
        );

        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &r) {
            tracing::warn!(cause = %e, "metrics encoding failed");
        }
        out
    }
}

/// Byte counters per topic, found by `&str`: the produce and fetch paths
/// count without building a label (an allocation) per request; the
/// exposition family is built from them at scrape.
#[derive(Clone, Debug, Default)]
struct PerTopic(Arc<RwLock<HashMap<String, Arc<AtomicU64>>>>);

impl PerTopic {
    fn add(&self, topic: &str, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        if let Some(c) = self.0.read().unwrap_or_else(|e| e.into_inner()).get(topic) {
            c.fetch_add(n, Ordering::Relaxed);
            return;
        }
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(topic.to_string())
            .or_default()
            .fetch_add(n, Ordering::Relaxed);
    }

    fn clear(&self) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn family(&self) -> Family<Topic, Counter> {
        let f = Family::<Topic, Counter>::default();
        for (topic, n) in self.0.read().unwrap_or_else(|e| e.into_inner()).iter() {
            f.get_or_create(&Topic {
                topic: topic.clone(),
            })
            .inc_by(n.load(Ordering::Relaxed));
        }
        f
    }
}

/// Counts a connection closed when dropped.
#[derive(Debug)]
pub struct ConnectionGuard(Gauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
