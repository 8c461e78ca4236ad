//! Differential tests: the same raw Kafka requests, byte for byte, sent to a
//! reference Apache Kafka broker (compat-tests/reference/kafka.sh, Kafka
//! 4.3.1) and to a fresh `gregor` process; the decoded responses are
//! normalized (fields that legitimately differ between two brokers are
//! blanked) and compared field by field.
//!
//! Framework: a scenario is a plain `fn(Ctx) -> future of Obs`; it sends a
//! fixed request sequence and records named steps (`Obs::rec`), each the
//! pretty `Debug` of a normalized response (or of a small struct extracted
//! from it). Every scenario runs against both brokers at the same time (its
//! two runs are independent connections to independent brokers); scenarios
//! run one after another, in the same order on both, so broker-wide state
//! (e.g. the group list) evolves identically. Steps are then compared by
//! name; a differing step fails the test unless it is in [`KNOWN`], the
//! allowlist of deliberate differences (printed, with the reasons, on every
//! run). All mismatches are reported at once, each with both values and a
//! line diff.
//!
//! What is blanked (see the `Norm` impls): throttle times, cluster id
//! (presence only), node ids (>= 0 becomes 0), hosts and ports, topic ids
//! (nil or "some id"), producer ids (valid or not), group member ids
//! (replaced by `<member-A>`, `<member-B>`, ... in order of appearance),
//! error messages (presence only). Record batches in Fetch responses are
//! parsed into a per-batch summary (offsets, counts, attributes, sequence
//! numbers, CRC, and the size of a trailing partial batch) instead of being
//! compared as bytes.
//!
//! The transaction scenarios (`txn_*`) normalize further: producer ids are
//! labeled 1, 2, ... in order of appearance (so "the same producer" is
//! compared), record timestamps are written relative to an hour ago and
//! shown relative to it (broker-clock ones, e.g. markers', as one
//! constant), DescribeTransactions start times and DescribeProducers
//! coordinator epochs by presence. Where Kafka settles asynchronously
//! (markers, CONCURRENT_TRANSACTIONS) a step polls until the final state
//! and records that.
//!
//! The admin scenarios (`admin_*`) blank further: the name of a broker
//! config resource (its node id; the "" default stays), DescribeLogDirs'
//! path (presence) and its sizes (sign: positive, 0, or -1 for unknown),
//! DescribeConfigs documentation; DescribeConfigs results are shown one
//! line per config (value, source, type, synonyms in order). Where Kafka
//! applies an admin change asynchronously (KRaft), the step after a
//! successful change polls until the expected state (at most ADMIN_WAIT)
//! and records that.
//!
//! The reference broker starts once per test binary (about 5-20 s) and is
//! stopped at the end; Gregor is `$GREGOR_BIN` or target/debug/gregor.
//!
//! Environment:
//!   GREGOR_DIFFERENTIAL=skip           skip the test (prints SKIPPED), e.g. without Java
//!   GREGOR_DIFFERENTIAL_BOOTSTRAP=H:P  use an already running Kafka instead of starting one
//!   GREGOR_DIFFERENTIAL_ONLY=a,b       run only scenarios whose name contains a or b
//!   GREGOR_DIFFERENTIAL_VERBOSE=1      print every step of both brokers
//!
//! Run: `cargo build -p gregor && cargo test -p gregor-compat --test differential -- --nocapture`

#![allow(clippy::unwrap_used)] // test code: a failed step should stop loudly

use std::collections::BTreeMap;
use std::fmt::{Debug, Write as _};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_compat::Broker;
use gregor_e2e::{batch, Client};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::Compression;
use uuid::Uuid;

/// How long one request may take before the step records `Timeout`.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one scenario (on one broker) may take.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);
/// Polling for asynchronous state on the reference (topic creation,
/// coordinator loading, group state).
const WAIT_TIMEOUT: Duration = Duration::from_secs(20);
/// Session / rebalance timeouts of the members the group scenarios create:
/// long enough that no member expires while a scenario runs.
const SESSION_MS: i32 = 30_000;

// ---------------------------------------------------------------------------
// The allowlist: deliberate differences.
// ---------------------------------------------------------------------------

/// A deliberate difference: the step may differ between the two brokers.
struct Known {
    scenario: &'static str,
    step: &'static str,
    reason: &'static str,
}

const KNOWN: &[Known] = &[
    Known {
        scenario: "admin_features",
        step: "v4 range of DescribeLogDirs (35)",
        reason: "Kafka 4.3.1 serves DescribeLogDirs up to v5; the kafka-protocol codec Gregor \
                 uses stops at v4, and clients negotiate down to it",
    },
    Known {
        scenario: "admin_features",
        step: "v4 range of UpdateFeatures (57)",
        reason: "Gregor's features are fixed (transaction.version 2, group.version 1, \
                 metadata.version at Kafka 4.3's level): nothing to upgrade or downgrade, \
                 so UpdateFeatures is not advertised",
    },
    Known {
        scenario: "admin_features",
        step: "v4 range of DescribeClientQuotas (48)",
        reason: "issue 10: client quotas are advertised only if they are also enforced; \
                 Gregor has no quotas and leaves the API unadvertised",
    },
    Known {
        scenario: "admin_features",
        step: "v4 range of AlterClientQuotas (49)",
        reason: "as above",
    },
    Known {
        scenario: "admin_features",
        step: "v3 finalized eligible.leader.replicas.version",
        reason: "issue 10 scopes Gregor's features to metadata.version, group.version and \
                 transaction.version: eligible leader replicas (KIP-966) need replication; \
                 Gregor is a single node without ISR changes",
    },
    Known {
        scenario: "admin_features",
        step: "v4 supported eligible.leader.replicas.version",
        reason: "as above",
    },
    Known {
        scenario: "admin_features",
        step: "v4 finalized eligible.leader.replicas.version",
        reason: "as above",
    },
    Known {
        scenario: "admin_features",
        step: "v3 finalized kraft.version",
        reason: "issue 10 scopes Gregor's features to metadata.version, group.version and \
                 transaction.version: Gregor has no KRaft quorum",
    },
    Known {
        scenario: "admin_features",
        step: "v4 supported kraft.version",
        reason: "as above",
    },
    Known {
        scenario: "admin_features",
        step: "v4 finalized kraft.version",
        reason: "as above",
    },
    Known {
        scenario: "admin_features",
        step: "v3 finalized share.version",
        reason: "issue 10 scopes Gregor's features to metadata.version, group.version and \
                 transaction.version: share groups (KIP-932) are not implemented; advertising \
                 the feature would make clients use them",
    },
    Known {
        scenario: "admin_features",
        step: "v4 supported share.version",
        reason: "as above",
    },
    Known {
        scenario: "admin_features",
        step: "v4 finalized share.version",
        reason: "as above",
    },
    Known {
        scenario: "admin_features",
        step: "v3 finalized streams.version",
        reason: "issue 10 scopes Gregor's features to metadata.version, group.version and \
                 transaction.version: streams groups (KIP-1071) are not implemented; advertising \
                 the feature would make clients use them",
    },
    Known {
        scenario: "admin_features",
        step: "v4 supported streams.version",
        reason: "as above",
    },
    Known {
        scenario: "admin_features",
        step: "v4 finalized streams.version",
        reason: "as above",
    },

    Known {
        scenario: "produce_missing_partition",
        step: "v9 unknown topic",
        reason: "documented in docs/COMPATIBILITY.md: Gregor's Produce auto-creates a missing \
                 topic when auto.create.topics.enable is true (Kafka answers \
                 UNKNOWN_TOPIC_OR_PARTITION and auto-creates only on Metadata)",
    },
    Known {
        scenario: "produce_missing_partition",
        step: "produce did not auto-create the topic",
        reason: "as above: the topic exists afterwards on Gregor only",
    },
    Known {
        scenario: "idempotent_producer",
        step: "seq 0..2 again (duplicate of the first batch): log_append_time_ms",
        reason: "on a CreateTime topic Kafka answers a duplicate batch with the batch's max \
                 timestamp in log_append_time_ms (an artifact of its producer-state cache); \
                 the protocol says -1 for CreateTime topics, which Gregor answers, as Kafka \
                 does for the original append",
    },
    Known {
        scenario: "idempotent_producer",
        step: "seq 3..4 again (duplicate of the last batch): log_append_time_ms",
        reason: "as above",
    },
    Known {
        scenario: "fetch_tiny_max_bytes",
        step: "v12 offset 0, max_bytes 1 MiB, partition_max_bytes = batch 1 + 20: trailing partial batch",
        reason: "Kafka cuts the log slice at the byte limit and sends the first bytes of the \
                 next batch (clients discard a trailing partial batch); Gregor sends whole \
                 batches only. Records and offsets are identical",
    },
    Known {
        scenario: "fetch_tiny_max_bytes",
        step: "v12 offset 0, max_bytes = batch 1 + 20: trailing partial batch",
        reason: "as above",
    },
];

/// Differences allowed field by field: these are blanked by the
/// normalization (`Norm`, `create_step`) before any comparison.
const FIELD_RULES: &[(&str, &str)] = &[
    (
        "Produce: partition error_message (presence)",
        "Gregor explains a rejected batch in error_message (e.g. the CRC or size that failed); \
         Kafka 4.3 leaves it null except for INVALID_RECORD. Clients only log it; the error \
         code is compared",
    ),
    (
        "CreateTopics with validate_only: topic_id",
        "Kafka returns a freshly generated id for a topic it does not create; Gregor returns \
         the nil id. The id names nothing either way",
    ),
    (
        "error_message of every response: compared by presence, and only when error_code != 0",
        "messages are free text; Kafka sends \"NONE\" on some successes (FindCoordinator v1-3) \
         and null on others; an empty string counts as null",
    ),
    (
        "CreateTopics configs: remote.storage.enable, remote.log.copy.disable, \
         remote.log.delete.on.disable, local.retention.bytes, local.retention.ms",
        "tiered storage: Gregor has none, so it does not list (or accept) these",
    ),
    (
        "CreateTopics configs: leader.replication.throttled.replicas, \
         follower.replication.throttled.replicas",
        "replication throttles: Gregor is a single node without replication",
    ),
    (
        "CreateTopics configs: config_source of min.insync.replicas",
        "Kafka 4's storage format writes a cluster-level min.insync.replicas (KIP-966), \
         so Kafka reports DYNAMIC_DEFAULT_BROKER_CONFIG (3); Gregor reports DEFAULT_CONFIG (5). \
         The value is compared",
    ),
];

/// Topic configs Gregor does not have by design (see FIELD_RULES).
const CONFIGS_ABSENT_BY_DESIGN: &[&str] = &[
    "remote.storage.enable",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "local.retention.bytes",
    "local.retention.ms",
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

// ---------------------------------------------------------------------------
// The framework.
// ---------------------------------------------------------------------------

/// What a scenario observed: named steps, in order.
#[derive(Default, Debug)]
struct Obs {
    steps: Vec<(String, String)>,
    /// Informational values, printed but not compared.
    info: Vec<(String, String)>,
}

impl Obs {
    /// Records a step: the pretty `Debug` of `v`, error codes annotated
    /// with their names.
    fn rec(&mut self, step: impl Into<String>, v: &impl Debug) {
        let mut step = step.into();
        if self.steps.iter().any(|(s, _)| *s == step) {
            step = format!("{step} #{}", self.steps.len());
        }
        self.steps.push((step, annotate(&format!("{v:#?}"))));
    }
    fn info(&mut self, key: impl Into<String>, v: impl Into<String>) {
        self.info.push((key.into(), v.into()));
    }
}

/// What a scenario gets: where the broker is and a run-unique prefix for
/// topic and group names (the same for both brokers).
#[derive(Clone)]
struct Ctx {
    addr: SocketAddr,
    run: String,
}

impl Ctx {
    fn name(&self, s: &str) -> String {
        format!("{}-{s}", self.run)
    }
    async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }
}

type Fut = Pin<Box<dyn Future<Output = Obs> + Send>>;

struct Scenario {
    name: &'static str,
    run: fn(Ctx) -> Fut,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "metadata_auto_create",
        run: metadata_auto_create,
    },
    Scenario {
        name: "produce_missing_partition",
        run: produce_missing_partition,
    },
    Scenario {
        name: "produce_oversize",
        run: produce_oversize,
    },
    Scenario {
        name: "produce_corrupt",
        run: produce_corrupt,
    },
    Scenario {
        name: "fetch_out_of_range",
        run: fetch_out_of_range,
    },
    Scenario {
        name: "list_offsets",
        run: list_offsets,
    },
    Scenario {
        name: "create_topics",
        run: create_topics,
    },
    Scenario {
        name: "delete_topics",
        run: delete_topics,
    },
    Scenario {
        name: "idempotent_producer",
        run: idempotent_producer,
    },
    Scenario {
        name: "api_versions",
        run: api_versions,
    },
    Scenario {
        name: "fetch_tiny_max_bytes",
        run: fetch_tiny_max_bytes,
    },
    Scenario {
        name: "find_coordinator",
        run: find_coordinator,
    },
    Scenario {
        name: "group_errors_without_members",
        run: group_errors_without_members,
    },
    Scenario {
        name: "group_lifecycle",
        run: group_lifecycle,
    },
    Scenario {
        name: "txn_api_versions",
        run: txn_api_versions,
    },
    Scenario {
        name: "txn_find_coordinator",
        run: txn_find_coordinator,
    },
    Scenario {
        name: "txn_init",
        run: txn_init,
    },
    Scenario {
        name: "txn_errors",
        run: txn_errors,
    },
    Scenario {
        name: "txn_fetch",
        run: txn_fetch,
    },
    Scenario {
        name: "txn_describe",
        run: txn_describe,
    },
    Scenario {
        name: "txn_interleaved",
        run: txn_interleaved,
    },
    Scenario {
        name: "txn_timeout",
        run: txn_timeout,
    },
    Scenario {
        name: "txn_tv2",
        run: txn_tv2,
    },
    Scenario {
        name: "admin_create_partitions",
        run: admin_create_partitions,
    },
    Scenario {
        name: "admin_incremental_alter_configs",
        run: admin_incremental_alter_configs,
    },
    Scenario {
        name: "admin_alter_configs",
        run: admin_alter_configs,
    },
    Scenario {
        name: "admin_delete_records",
        run: admin_delete_records,
    },
    Scenario {
        name: "admin_describe_log_dirs",
        run: admin_describe_log_dirs,
    },
    Scenario {
        name: "admin_describe_topic_partitions",
        run: admin_describe_topic_partitions,
    },
    Scenario {
        name: "admin_elect_leaders",
        run: admin_elect_leaders,
    },
    Scenario {
        name: "admin_reassignments",
        run: admin_reassignments,
    },
    Scenario {
        name: "admin_consumer_offsets_topic",
        run: admin_consumer_offsets_topic,
    },
    Scenario {
        name: "admin_features",
        run: admin_features,
    },
    Scenario {
        name: "admin_compaction",
        run: admin_compaction,
    },
];

/// A difference between the two brokers in one step.
struct Diff {
    scenario: &'static str,
    step: String,
    kafka: Option<String>,
    gregor: Option<String>,
    known: Option<&'static Known>,
}

#[test]
fn differential_against_apache_kafka() {
    if std::env::var("GREGOR_DIFFERENTIAL").as_deref() == Ok("skip") {
        eprintln!("SKIPPED: GREGOR_DIFFERENTIAL=skip");
        return;
    }
    let t0 = Instant::now();
    let reference = Reference::start();
    let t_ref = t0.elapsed();
    let mut gregor = Broker::builder()
        .prop("group.initial.rebalance.delay.ms", "0")
        // As the reference (see Reference::start): one partition for the
        // internal topics, so that admin_consumer_offsets_topic compares
        // the count.
        .prop("offsets.topic.num.partitions", "1")
        .prop("transaction.state.log.num.partitions", "1")
        .launch()
        .expect("starting gregor");
    let gregor_addr: SocketAddr = gregor.bootstrap().parse().unwrap();
    println!(
        "reference Kafka at {} (ready after {:.1} s), gregor at {gregor_addr}",
        reference.addr,
        t_ref.as_secs_f64()
    );
    let run = format!(
        "d{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 0xfffff
    );
    let only: Vec<String> = std::env::var("GREGOR_DIFFERENTIAL_ONLY")
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let verbose = std::env::var_os("GREGOR_DIFFERENTIAL_VERBOSE").is_some();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Kafka creates __consumer_offsets and __transaction_state on the first
    // FindCoordinator: ask early (not recorded), so that they are loaded by
    // the time the group scenarios run.
    rt.block_on(async {
        for addr in [reference.addr, gregor_addr] {
            let mut c = Client::connect(addr).await;
            for key_type in [0, 1] {
                let _: Reply<FindCoordinatorResponse> = call(
                    &mut c,
                    ApiKey::FindCoordinator,
                    3,
                    &FindCoordinatorRequest::default()
                        .with_key(sb(&format!("{run}-warmup")))
                        .with_key_type(key_type),
                )
                .await;
            }
        }
    });
    let mut diffs: Vec<Diff> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut summary = String::new();
    let mut api_tables: Option<(String, String)> = None;
    for sc in SCENARIOS {
        if !only.is_empty() && !only.iter().any(|o| sc.name.contains(o.as_str())) {
            continue;
        }
        let ts = Instant::now();
        let kctx = Ctx {
            addr: reference.addr,
            run: run.clone(),
        };
        let gctx = Ctx {
            addr: gregor_addr,
            run: run.clone(),
        };
        let (k, g) = rt.block_on(async {
            let k = tokio::spawn(tokio::time::timeout(SCENARIO_TIMEOUT, (sc.run)(kctx)));
            let g = tokio::spawn(tokio::time::timeout(SCENARIO_TIMEOUT, (sc.run)(gctx)));
            (k.await, g.await)
        });
        let took = ts.elapsed();
        let unwrap = |who: &str, r: Result<Result<Obs, _>, tokio::task::JoinError>| match r {
            Ok(Ok(obs)) => Ok(obs),
            Ok(Err(_)) => Err(format!(
                "{}: {who} run timed out after {SCENARIO_TIMEOUT:?}",
                sc.name
            )),
            Err(e) => Err(format!(
                "{}: {who} run panicked: {}",
                sc.name,
                panic_text(e)
            )),
        };
        let (k, g) = match (unwrap("Kafka", k), unwrap("Gregor", g)) {
            (Ok(k), Ok(g)) => (k, g),
            (k, g) => {
                for e in [k.err(), g.err()].into_iter().flatten() {
                    failures.push(e);
                }
                let _ = writeln!(summary, "  {:<30} FAILED TO RUN", sc.name);
                continue;
            }
        };
        if verbose {
            for (who, o) in [("kafka", &k), ("gregor", &g)] {
                for (s, v) in &o.steps {
                    println!("[{}] {who} | {s}:\n{v}", sc.name);
                }
                for (s, v) in &o.info {
                    println!("[{}] {who} | (info) {s}:\n{v}", sc.name);
                }
            }
        }
        if sc.name == "api_versions" {
            let get = |o: &Obs| {
                o.info
                    .iter()
                    .find(|(k, _)| k == "api table")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            api_tables = Some((get(&k), get(&g)));
        }
        let before = diffs.len();
        compare(sc.name, &k, &g, &mut diffs);
        let new = &diffs[before..];
        let unexpected = new.iter().filter(|d| d.known.is_none()).count();
        let _ = writeln!(
            summary,
            "  {:<30} {:>2} steps, {} differences ({} allowlisted) in {:.1} s",
            sc.name,
            k.steps.len().max(g.steps.len()),
            new.len(),
            new.len() - unexpected,
            took.as_secs_f64()
        );
    }
    drop(rt);
    let gregor_stop = gregor.stop();
    drop(reference);

    // ---- report ----
    println!("\n===== differential test: Kafka 4.3.1 vs Gregor =====");
    print!("{summary}");
    if let Some((k, g)) = api_tables {
        println!("\nApiVersions ranges that differ (informational, not compared):");
        print!("{}", api_table_diff(&k, &g));
    }
    println!("\nFields not compared (deliberate differences):");
    for (what, why) in FIELD_RULES {
        println!("  {what}: {why}");
    }
    println!("\nAllowlisted (deliberate) differences in steps:");
    for kn in KNOWN {
        let seen = diffs
            .iter()
            .any(|d| d.scenario == kn.scenario && d.step == kn.step);
        println!(
            "  [{}] {} / {}: {}",
            if seen { "seen" } else { "not seen" },
            kn.scenario,
            kn.step,
            kn.reason
        );
    }
    let mut report = String::new();
    for d in diffs.iter().filter(|d| d.known.is_none()) {
        let _ = writeln!(report, "\n--- {} / {} ---", d.scenario, d.step);
        match (&d.kafka, &d.gregor) {
            (Some(k), Some(g)) => {
                let _ = writeln!(report, "(- Kafka, + Gregor)\n{}", line_diff(k, g));
            }
            (k, g) => {
                let _ = writeln!(
                    report,
                    "Kafka:  {}\nGregor: {}",
                    k.as_deref().unwrap_or("<step missing>"),
                    g.as_deref().unwrap_or("<step missing>")
                );
            }
        }
    }
    for d in diffs.iter().filter(|d| d.known.is_some()) {
        if verbose {
            println!(
                "\n(allowlisted) {} / {}:\nKafka: {}\nGregor: {}",
                d.scenario,
                d.step,
                d.kafka.as_deref().unwrap_or("-"),
                d.gregor.as_deref().unwrap_or("-")
            );
        }
    }
    let unexpected = diffs.iter().filter(|d| d.known.is_none()).count();
    if unexpected > 0 {
        println!("\nUnexpected differences ({unexpected}):{report}");
    }
    for f in &failures {
        println!("\nFAILED TO RUN: {f}");
    }
    println!("\ntotal {:.1} s", t0.elapsed().as_secs_f64());
    if let Err(e) = gregor_stop {
        failures.push(format!("gregor did not stop cleanly: {e:#}"));
    }
    assert!(
        unexpected == 0 && failures.is_empty(),
        "{unexpected} unexpected differences, {} scenario failures:{report}\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into())
            .split("\n\nStack backtrace")
            .next()
            .unwrap_or_default()
            .to_owned(),
        Err(e) => e.to_string(),
    }
}

fn compare(scenario: &'static str, k: &Obs, g: &Obs, out: &mut Vec<Diff>) {
    let gm: BTreeMap<&str, &str> = g
        .steps
        .iter()
        .map(|(s, v)| (s.as_str(), v.as_str()))
        .collect();
    let km: BTreeMap<&str, &str> = k
        .steps
        .iter()
        .map(|(s, v)| (s.as_str(), v.as_str()))
        .collect();
    let mut push = |step: &str, kv: Option<&str>, gv: Option<&str>| {
        out.push(Diff {
            scenario,
            step: step.to_owned(),
            kafka: kv.map(str::to_owned),
            gregor: gv.map(str::to_owned),
            known: KNOWN
                .iter()
                .find(|kn| kn.scenario == scenario && kn.step == step),
        })
    };
    for (s, kv) in &k.steps {
        match gm.get(s.as_str()) {
            Some(gv) if *gv == kv.as_str() => {}
            gv => push(s, Some(kv), gv.copied()),
        }
    }
    for (s, gv) in &g.steps {
        if !km.contains_key(s.as_str()) {
            push(s, None, Some(gv));
        }
    }
}

/// Appends `// NAME` to every `error_code: N,` line.
fn annotate(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.lines() {
        out.push_str(line);
        let t = line.trim_start();
        if let Some(rest) = t
            .strip_prefix("error_code: ")
            .or_else(|| t.strip_prefix("topic_config_error_code: "))
        {
            if let Ok(code) = rest.trim_end_matches(',').parse::<i16>() {
                let _ = write!(out, " // {}", error_name(code));
            }
        }
        out.push('\n');
    }
    out
}

fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".into(),
        Some(e) => {
            // CamelCase -> UPPER_SNAKE like Kafka's Errors enum.
            let mut s = String::new();
            for (i, ch) in format!("{e:?}").chars().enumerate() {
                if ch.is_uppercase() && i > 0 {
                    s.push('_');
                }
                s.push(ch.to_ascii_uppercase());
            }
            s
        }
    }
}

/// A small LCS line diff with context.
fn line_diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut l = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            l[i][j] = if a[i] == b[j] {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || l[i][j + 1] >= l[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    const CONTEXT: usize = 3;
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut out = String::new();
    let mut last_printed: Option<usize> = None;
    for (k, (op, line)) in ops.iter().enumerate() {
        let near = changed
            .iter()
            .any(|&c| c + CONTEXT >= k && k + CONTEXT >= c);
        if !near {
            continue;
        }
        if let Some(p) = last_printed {
            if k > p + 1 {
                out.push_str("   ...\n");
            }
        } else if k > 0 {
            out.push_str("   ...\n");
        }
        let _ = writeln!(out, "{op}  {line}");
        last_printed = Some(k);
    }
    out
}

fn api_table_diff(k: &str, g: &str) -> String {
    let parse = |s: &str| -> BTreeMap<i16, String> {
        s.lines()
            .filter_map(|l| {
                let (key, range) = l.split_once(' ')?;
                Some((key.parse().ok()?, range.to_owned()))
            })
            .collect()
    };
    let (km, gm) = (parse(k), parse(g));
    let mut keys: Vec<i16> = km.keys().chain(gm.keys()).copied().collect();
    keys.sort();
    keys.dedup();
    let mut out = String::from("  | api | key | Kafka 4.3.1 | Gregor |\n  |---|---|---|---|\n");
    for key in keys {
        let (kr, gr) = (km.get(&key), gm.get(&key));
        if kr != gr {
            let name = ApiKey::try_from(key)
                .map(|k| format!("{k:?}"))
                .unwrap_or_else(|_| "?".into());
            let _ = writeln!(
                out,
                "  | {name} | {key} | {} | {} |",
                kr.map(String::as_str).unwrap_or("-"),
                gr.map(String::as_str).unwrap_or("-")
            );
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The reference broker.
// ---------------------------------------------------------------------------

struct Reference {
    addr: SocketAddr,
    /// None when using GREGOR_DIFFERENTIAL_BOOTSTRAP.
    dir: Option<tempfile::TempDir>,
}

impl Reference {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("reference")
            .join("kafka.sh")
    }

    fn start() -> Reference {
        if let Ok(b) = std::env::var("GREGOR_DIFFERENTIAL_BOOTSTRAP") {
            return Reference {
                addr: b.parse().expect("GREGOR_DIFFERENTIAL_BOOTSTRAP=HOST:PORT"),
                dir: None,
            };
        }
        let dir = tempfile::Builder::new()
            .prefix("gregor-differential-kafka-")
            .tempdir()
            .unwrap();
        let out = Command::new("bash")
            .arg(Self::script())
            .arg("start")
            .arg(dir.path())
            .env("GREGOR_REFERENCE_GROUP_DELAY_MS", "0")
            // One partition for the internal topics: they are created on
            // the first group / transaction request, and 50 partitions take
            // seconds on a loaded machine. Not observable by the scenarios.
            .env(
                "GREGOR_REFERENCE_EXTRA_PROPS",
                "offsets.topic.num.partitions=1\ntransaction.state.log.num.partitions=1",
            )
            .output()
            .expect("running compat-tests/reference/kafka.sh (bash)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the reference Kafka did not start (needs Java 17+, and Maven for the first fetch; \
             set GREGOR_DIFFERENTIAL=skip to skip this test):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let addr = stdout
            .lines()
            .find_map(|l| l.strip_prefix("BOOTSTRAP="))
            .expect("kafka.sh start printed no BOOTSTRAP=")
            .parse()
            .unwrap();
        Reference {
            addr,
            dir: Some(dir),
        }
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let st = Command::new("bash")
                .arg(Self::script())
                .arg("stop")
                .arg(dir.path())
                .env("GREGOR_REFERENCE_STOP_TIMEOUT", "10")
                .output();
            if let Ok(o) = st {
                if !o.status.success() {
                    eprintln!(
                        "kafka.sh stop failed: {}",
                        String::from_utf8_lossy(&o.stderr)
                    );
                }
            }
            if std::thread::panicking() {
                let log = dir.path().join("logs").join("server.log");
                if let Ok(text) = std::fs::read_to_string(&log) {
                    let lines: Vec<&str> = text.lines().collect();
                    let tail = &lines[lines.len().saturating_sub(40)..];
                    eprintln!(
                        "--- reference Kafka server.log (tail) ---\n{}",
                        tail.join("\n")
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Requests, replies and normalization.
// ---------------------------------------------------------------------------

/// What came back for one request.
#[derive(Debug)]
#[allow(dead_code)] // the payloads are read through Debug
enum Reply<T> {
    Ok(T),
    /// The broker closed the connection instead of answering.
    Closed,
    Timeout,
    Undecodable(String),
}

impl<T> Reply<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Reply<U> {
        match self {
            Reply::Ok(t) => Reply::Ok(f(t)),
            Reply::Closed => Reply::Closed,
            Reply::Timeout => Reply::Timeout,
            Reply::Undecodable(e) => Reply::Undecodable(e),
        }
    }
    fn as_ref(&self) -> Option<&T> {
        match self {
            Reply::Ok(t) => Some(t),
            _ => None,
        }
    }
}

async fn call<Req, Resp>(c: &mut Client, key: ApiKey, v: i16, req: &Req) -> Reply<Resp>
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion + Norm,
{
    let corr = c.send(key, v, req).await;
    recv(c, v, corr).await
}

async fn recv<Resp>(c: &mut Client, v: i16, corr: i32) -> Reply<Resp>
where
    Resp: Decodable + HeaderVersion + Norm,
{
    recv_raw(c, v, corr).await.map(Norm::norm)
}

/// A request whose response is not normalized (the scenario needs the
/// producer ids it contains, and labels them itself).
async fn call_raw<Req, Resp>(c: &mut Client, key: ApiKey, v: i16, req: &Req) -> Reply<Resp>
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    let corr = c.send(key, v, req).await;
    recv_raw(c, v, corr).await
}

async fn recv_raw<Resp>(c: &mut Client, v: i16, corr: i32) -> Reply<Resp>
where
    Resp: Decodable + HeaderVersion,
{
    match tokio::time::timeout(CALL_TIMEOUT, c.recv_frame()).await {
        Err(_) => Reply::Timeout,
        Ok(None) => Reply::Closed,
        Ok(Some(mut frame)) => {
            let h = match ResponseHeader::decode(&mut frame, Resp::header_version(v)) {
                Ok(h) => h,
                Err(e) => return Reply::Undecodable(format!("header: {e}")),
            };
            if h.correlation_id != corr {
                return Reply::Undecodable(format!(
                    "correlation id {} for request {corr}",
                    h.correlation_id
                ));
            }
            match Resp::decode(&mut frame, v) {
                Ok(r) if !frame.has_remaining() => Reply::Ok(r),
                Ok(_) => Reply::Undecodable(format!("{} trailing bytes", frame.remaining())),
                Err(e) => Reply::Undecodable(format!("body: {e}")),
            }
        }
    }
}

/// Blanks what legitimately differs between two brokers.
trait Norm: Sized {
    fn norm(self) -> Self;
}

fn node(b: &mut BrokerId) {
    if b.0 >= 0 {
        b.0 = 0;
    }
}
/// Error messages: compared by presence only, and only with an error
/// (Kafka sends "NONE" as the message of some successes); an empty string
/// counts as absent (kafka-protocol's defaults are "", Kafka sends null).
fn msg(m: &mut Option<StrBytes>, error_code: i16) {
    if error_code == 0 || m.as_ref().is_some_and(|m| m.is_empty()) {
        *m = None;
    }
    if m.is_some() {
        *m = Some(StrBytes::from_static_str("<message>"));
    }
}
fn topic_id(u: &mut Uuid) {
    if !u.is_nil() {
        *u = Uuid::from_u128(0x1d);
    }
}
fn host(h: &mut StrBytes, port: &mut i32) {
    *h = StrBytes::from_static_str("<host>");
    *port = 0;
}
/// A producer id >= 0 is shown as this.
const VALID_PRODUCER_ID: i64 = i64::MAX;

impl Norm for MetadataResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for b in &mut self.brokers {
            node(&mut b.node_id);
            host(&mut b.host, &mut b.port);
        }
        if self.cluster_id.is_some() {
            self.cluster_id = Some(StrBytes::from_static_str("<cluster id>"));
        }
        node(&mut self.controller_id);
        for t in &mut self.topics {
            topic_id(&mut t.topic_id);
            for p in &mut t.partitions {
                node(&mut p.leader_id);
                p.replica_nodes.iter_mut().for_each(node);
                p.isr_nodes.iter_mut().for_each(node);
                p.offline_replicas.iter_mut().for_each(node);
            }
        }
        self
    }
}

impl Norm for ProduceResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for n in &mut self.node_endpoints {
            node(&mut n.node_id);
            host(&mut n.host, &mut n.port);
        }
        for t in &mut self.responses {
            topic_id(&mut t.topic_id);
            for p in &mut t.partition_responses {
                // FIELD_RULES: presence not compared.
                p.error_message = None;
                for e in &mut p.record_errors {
                    msg(&mut e.batch_index_error_message, p.error_code);
                }
                node(&mut p.current_leader.leader_id);
            }
        }
        self
    }
}

impl Norm for FetchResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for n in &mut self.node_endpoints {
            node(&mut n.node_id);
            host(&mut n.host, &mut n.port);
        }
        for t in &mut self.responses {
            topic_id(&mut t.topic_id);
            for p in &mut t.partitions {
                node(&mut p.current_leader.leader_id);
                node(&mut p.preferred_read_replica);
            }
        }
        self
    }
}

impl Norm for ListOffsetsResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        self
    }
}

impl Norm for CreateTopicsResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for t in &mut self.topics {
            topic_id(&mut t.topic_id);
            msg(&mut t.error_message, t.error_code);
            if let Some(c) = &mut t.configs {
                c.sort_by(|a, b| a.name.cmp(&b.name));
            }
        }
        self
    }
}

impl Norm for DeleteTopicsResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for t in &mut self.responses {
            topic_id(&mut t.topic_id);
            msg(&mut t.error_message, t.error_code);
        }
        // Order is not meaningful (Kafka's follows its controller's maps).
        self.responses.sort_by(|a, b| a.name.cmp(&b.name));
        self
    }
}

impl Norm for InitProducerIdResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        if self.producer_id.0 >= 0 {
            self.producer_id.0 = VALID_PRODUCER_ID;
        }
        self
    }
}

impl Norm for ApiVersionsResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        self
    }
}

impl Norm for FindCoordinatorResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        msg(&mut self.error_message, self.error_code);
        node(&mut self.node_id);
        host(&mut self.host, &mut self.port);
        for c in &mut self.coordinators {
            msg(&mut c.error_message, c.error_code);
            node(&mut c.node_id);
            host(&mut c.host, &mut c.port);
        }
        self
    }
}

macro_rules! norm_throttle_only {
    ($($t:ty),*) => {$(
        impl Norm for $t {
            fn norm(mut self) -> Self {
                self.throttle_time_ms = 0;
                self
            }
        }
    )*};
}
norm_throttle_only!(
    JoinGroupResponse,
    SyncGroupResponse,
    HeartbeatResponse,
    LeaveGroupResponse,
    ListGroupsResponse
);

impl Norm for DeleteGroupsResponse {
    /// Result order is not meaningful (Kafka groups them by coordinator).
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        self.results.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
        self
    }
}

impl Norm for OffsetCommitResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for t in &mut self.topics {
            topic_id(&mut t.topic_id);
        }
        // Order is not meaningful (Kafka answers unknown topics first).
        self.topics.sort_by(|a, b| a.name.0.cmp(&b.name.0));
        self
    }
}

impl Norm for OffsetFetchResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for g in &mut self.groups {
            for t in &mut g.topics {
                topic_id(&mut t.topic_id);
            }
        }
        self
    }
}

impl Norm for DescribeGroupsResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for g in &mut self.groups {
            msg(&mut g.error_message, g.error_code);
        }
        self
    }
}

/// Group member ids, replaced by `<member-A>`, `<member-B>`, ... in the
/// order the broker handed them out. Ids the test made up ("ghost...") are
/// kept.
#[derive(Default)]
struct Labels(Vec<String>);

impl Labels {
    fn of(&mut self, id: &StrBytes) -> StrBytes {
        let s = id.as_str();
        if s.is_empty() || s.starts_with("ghost") {
            return id.clone();
        }
        let i = match self.0.iter().position(|x| x == s) {
            Some(i) => i,
            None => {
                self.0.push(s.to_owned());
                self.0.len() - 1
            }
        };
        StrBytes::from_string(format!("<member-{}>", (b'A' + i as u8) as char))
    }
    fn join(&mut self, mut r: JoinGroupResponse) -> JoinGroupResponse {
        r.member_id = self.of(&r.member_id);
        r.leader = self.of(&r.leader);
        for m in &mut r.members {
            m.member_id = self.of(&m.member_id);
        }
        r.members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        r
    }
    fn leave(&mut self, mut r: LeaveGroupResponse) -> LeaveGroupResponse {
        for m in &mut r.members {
            m.member_id = self.of(&m.member_id);
        }
        r
    }
    fn describe(&mut self, mut r: DescribeGroupsResponse) -> DescribeGroupsResponse {
        for g in &mut r.groups {
            for m in &mut g.members {
                m.member_id = self.of(&m.member_id);
            }
            g.members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        }
        r
    }
}

// ---------------------------------------------------------------------------
// Request builders and helpers.
// ---------------------------------------------------------------------------

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}
fn tn(s: &str) -> TopicName {
    TopicName(sb(s))
}
fn gid(s: &str) -> GroupId {
    GroupId(sb(s))
}

fn metadata_req(topics: &[&str], auto_create: bool) -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(Some(
            topics
                .iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(tn(t))))
                .collect(),
        ))
        .with_allow_auto_topic_creation(auto_create)
}

fn create_req(
    name: &str,
    partitions: i32,
    rf: i16,
    configs: &[(&str, &str)],
) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![creatable(name, partitions, rf, configs)])
}

fn creatable(name: &str, partitions: i32, rf: i16, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(tn(name))
        .with_num_partitions(partitions)
        .with_replication_factor(rf)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(sb(k))
                        .with_value(Some(sb(v)))
                })
                .collect(),
        )
}

/// The essentials of a CreateTopics result, for scenarios about something
/// else.
#[derive(Debug)]
#[allow(dead_code)]
struct Created {
    error_code: i16,
    error_message: Option<StrBytes>,
}

/// CreateTopics v7 (replication factor 1), then waits until the topic is
/// usable (Kafka creates topics asynchronously).
async fn create_topic(
    c: &mut Client,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Reply<Created> {
    let r: Reply<CreateTopicsResponse> = call(
        c,
        ApiKey::CreateTopics,
        7,
        &create_req(name, partitions, 1, configs),
    )
    .await;
    let r = r.map(|r| Created {
        error_code: r.topics[0].error_code,
        error_message: r.topics[0].error_message.clone(),
    });
    if matches!(&r, Reply::Ok(c) if c.error_code == 0) {
        wait_topic(c, name, partitions).await;
    }
    r
}

/// Polls Metadata until every partition has a leader, then ListOffsets
/// until every partition answers without error (the partition is open on
/// the broker, not only in its metadata cache).
async fn wait_topic(c: &mut Client, name: &str, partitions: i32) {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        let r: Reply<MetadataResponse> =
            call(c, ApiKey::Metadata, 12, &metadata_req(&[name], false)).await;
        let ready = r.as_ref().is_some_and(|m| {
            let t = &m.topics[0];
            t.error_code == 0
                && t.partitions.len() == partitions as usize
                && t.partitions
                    .iter()
                    .all(|p| p.error_code == 0 && p.leader_id.0 >= 0)
        });
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "topic {name} not ready: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        let r: Reply<ListOffsetsResponse> = call(
            c,
            ApiKey::ListOffsets,
            8,
            &list_offsets_req(name, &(0..partitions).collect::<Vec<_>>(), -1),
        )
        .await;
        if r.as_ref()
            .is_some_and(|r| r.topics[0].partitions.iter().all(|p| p.error_code == 0))
        {
            break;
        }
        assert!(Instant::now() < deadline, "topic {name} not ready: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls Metadata (no auto-creation) until the topic is gone.
async fn wait_topic_gone(c: &mut Client, name: &str) -> Reply<MetadataResponse> {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        let r: Reply<MetadataResponse> =
            call(c, ApiKey::Metadata, 12, &metadata_req(&[name], false)).await;
        if r.as_ref().is_some_and(|m| m.topics[0].error_code == 3) || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn produce_req(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(tn(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

async fn produce(
    c: &mut Client,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> Reply<ProduceResponse> {
    call(
        c,
        ApiKey::Produce,
        9,
        &produce_req(topic, partition, records),
    )
    .await
}

/// Only the partition result of a one-partition Produce.
fn produced(r: Reply<ProduceResponse>) -> Reply<produce_response::PartitionProduceResponse> {
    r.map(|mut r| r.responses.remove(0).partition_responses.remove(0))
}

fn fetch_req(
    topic: &str,
    partitions: &[(i32, i64)],
    max_bytes: i32,
    partition_max_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(tn(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&(p, offset)| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(partition_max_bytes)
                    })
                    .collect(),
            )])
}

/// A Fetch response with the record bytes replaced by a per-batch summary.
#[derive(Debug)]
#[allow(dead_code)]
struct FetchView {
    response: FetchResponse,
    /// (topic, partition) -> records
    records: Vec<(String, i32, Records)>,
}

#[derive(Debug)]
#[allow(dead_code)]
enum Records {
    Null,
    Empty,
    Batches(Vec<BatchSummary>),
}

#[derive(Debug)]
#[allow(dead_code)]
enum BatchSummary {
    Batch {
        base_offset: i64,
        batch_length: i32,
        partition_leader_epoch: i32,
        magic: i8,
        /// Only for non-idempotent batches (the producer id is in the CRC).
        crc: Option<u32>,
        attributes: i16,
        last_offset_delta: i32,
        base_timestamp: i64,
        max_timestamp: i64,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
        record_count: i32,
    },
    /// A trailing partial batch of this many bytes.
    Partial(usize),
}

fn summarize(b: &Bytes) -> Vec<BatchSummary> {
    let mut out = Vec::new();
    let mut buf = b.clone();
    while buf.remaining() > 0 {
        if buf.remaining() < 61 {
            out.push(BatchSummary::Partial(buf.remaining()));
            break;
        }
        let len = i32::from_be_bytes(buf[8..12].try_into().unwrap());
        if buf.remaining() < 12 + len.max(0) as usize {
            out.push(BatchSummary::Partial(buf.remaining()));
            break;
        }
        let mut h = buf.slice(..12 + len as usize);
        buf.advance(12 + len as usize);
        let base_offset = h.get_i64();
        let batch_length = h.get_i32();
        let partition_leader_epoch = h.get_i32();
        let magic = h.get_i8();
        let crc = h.get_u32();
        let attributes = h.get_i16();
        let last_offset_delta = h.get_i32();
        let base_timestamp = h.get_i64();
        let max_timestamp = h.get_i64();
        let producer_id = h.get_i64();
        let producer_epoch = h.get_i16();
        let base_sequence = h.get_i32();
        let record_count = h.get_i32();
        out.push(BatchSummary::Batch {
            base_offset,
            batch_length,
            partition_leader_epoch,
            magic,
            crc: (producer_id < 0).then_some(crc),
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id: if producer_id >= 0 {
                VALID_PRODUCER_ID
            } else {
                producer_id
            },
            producer_epoch,
            base_sequence,
            record_count,
        });
    }
    out
}

fn fetch_view(r: Reply<FetchResponse>) -> Reply<FetchView> {
    r.map(|mut response| {
        let mut records = Vec::new();
        for t in &mut response.responses {
            for p in &mut t.partitions {
                let v = match p.records.take() {
                    None => Records::Null,
                    Some(b) if b.is_empty() => Records::Empty,
                    Some(b) => Records::Batches(summarize(&b)),
                };
                records.push((t.topic.0.to_string(), p.partition_index, v));
            }
        }
        FetchView { response, records }
    })
}

async fn fetch(c: &mut Client, v: i16, req: &FetchRequest) -> Reply<FetchView> {
    fetch_view(call(c, ApiKey::Fetch, v, req).await)
}

fn list_offsets_req(topic: &str, partitions: &[i32], ts: i64) -> ListOffsetsRequest {
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(tn(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&p| {
                        ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_timestamp(ts)
                    })
                    .collect(),
            )])
}

/// A ConsumerProtocolSubscription v0 for `topics` (what a Java consumer
/// sends as JoinGroup metadata).
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(topics.len() as i32);
    for t in topics {
        b.put_i16(t.len() as i16);
        b.put_slice(t.as_bytes());
    }
    b.put_i32(-1); // user data: null
    b.freeze()
}

/// A ConsumerProtocolAssignment v0.
fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(topic.len() as i16);
    b.put_slice(topic.as_bytes());
    b.put_i32(partitions.len() as i32);
    for p in partitions {
        b.put_i32(*p);
    }
    b.put_i32(-1);
    b.freeze()
}

fn join_req(group: &str, member: &str, protocol_type: &str, topics: &[&str]) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(SESSION_MS)
        .with_rebalance_timeout_ms(SESSION_MS)
        .with_member_id(sb(member))
        .with_protocol_type(sb(protocol_type))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(sb("range"))
            .with_metadata(subscription(topics))])
}

fn sync_req(
    group: &str,
    generation: i32,
    member: &str,
    assignments: Vec<(String, Bytes)>,
) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(gid(group))
        .with_generation_id(generation)
        .with_member_id(sb(member))
        .with_protocol_type(Some(sb("consumer")))
        .with_protocol_name(Some(sb("range")))
        .with_assignments(
            assignments
                .into_iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(sb(&m))
                        .with_assignment(a)
                })
                .collect(),
        )
}

fn heartbeat_req(group: &str, generation: i32, member: &str) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_generation_id(generation)
        .with_member_id(sb(member))
}

fn leave_req(group: &str, members: &[&str]) -> LeaveGroupRequest {
    LeaveGroupRequest::default()
        .with_group_id(gid(group))
        .with_members(
            members
                .iter()
                .map(|m| MemberIdentity::default().with_member_id(sb(m)))
                .collect(),
        )
}

fn describe_req(groups: &[&str]) -> DescribeGroupsRequest {
    DescribeGroupsRequest::default().with_groups(groups.iter().map(|g| gid(g)).collect())
}

fn commit_req(
    group: &str,
    generation: i32,
    member: &str,
    offsets: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for &(t, p, o) in offsets {
        let part = OffsetCommitRequestPartition::default()
            .with_partition_index(p)
            .with_committed_offset(o)
            .with_committed_leader_epoch(-1)
            .with_committed_metadata(Some(sb("meta")));
        match topics.iter_mut().find(|x| x.name.0.as_str() == t) {
            Some(x) => x.partitions.push(part),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(tn(t))
                    .with_partitions(vec![part]),
            ),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(sb(member))
        .with_topics(topics)
}

fn offset_fetch_v7(group: &str, topic: &str, partitions: &[i32]) -> OffsetFetchRequest {
    OffsetFetchRequest::default()
        .with_group_id(gid(group))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(tn(topic))
            .with_partition_indexes(partitions.to_vec())]))
}

/// (group, optional (topic, partitions)): None asks for all topics.
type GroupTopics<'a> = (&'a str, Option<(&'a str, &'a [i32])>);

fn offset_fetch_v8(groups: &[GroupTopics<'_>]) -> OffsetFetchRequest {
    OffsetFetchRequest::default().with_groups(
        groups
            .iter()
            .map(|(g, t)| {
                OffsetFetchRequestGroup::default()
                    .with_group_id(gid(g))
                    .with_topics(t.map(|(t, ps)| {
                        vec![OffsetFetchRequestTopics::default()
                            .with_name(tn(t))
                            .with_partition_indexes(ps.to_vec())]
                    }))
            })
            .collect(),
    )
}

/// Polls FindCoordinator (group) until it answers, then DescribeGroups
/// until the coordinator has loaded (Kafka creates and loads
/// __consumer_offsets on the first group request).
async fn wait_group_coordinator(c: &mut Client, group: &str) {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        let r: Reply<FindCoordinatorResponse> = call(
            c,
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default()
                .with_key(sb(group))
                .with_key_type(0),
        )
        .await;
        if r.as_ref().is_some_and(|r| r.error_code == 0) {
            break;
        }
        assert!(Instant::now() < deadline, "no group coordinator: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        let r: Reply<DescribeGroupsResponse> =
            call(c, ApiKey::DescribeGroups, 5, &describe_req(&[group])).await;
        if r.as_ref()
            .is_some_and(|r| ![14, 15, 16].contains(&r.groups[0].error_code))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "group coordinator not loaded: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls DescribeGroups until the group is in `state`.
async fn wait_group_state(c: &mut Client, group: &str, state: &str) {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        let r: Reply<DescribeGroupsResponse> =
            call(c, ApiKey::DescribeGroups, 5, &describe_req(&[group])).await;
        if r.as_ref()
            .is_some_and(|r| r.groups[0].group_state.as_str() == state)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {group} never reached {state}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// ListGroups restricted to the groups whose id starts with `prefix`
/// (this run's, or one scenario's), sorted.
fn my_groups(r: Reply<ListGroupsResponse>, prefix: &str) -> Reply<ListGroupsResponse> {
    r.map(|mut r| {
        r.groups
            .retain(|g| g.group_id.0.as_str().starts_with(prefix));
        r.groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
        r
    })
}

// ---------------------------------------------------------------------------
// Scenarios.
// ---------------------------------------------------------------------------

/// 1. Metadata of unknown topics with auto-creation allowed and not.
fn metadata_auto_create(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = ctx.client().await;
        let off = ctx.name("meta-noauto");
        let on = ctx.name("meta-auto");
        for v in [4, 12] {
            let r: Reply<MetadataResponse> =
                call(&mut c, ApiKey::Metadata, v, &metadata_req(&[&off], false)).await;
            o.rec(format!("v{v} unknown topic, auto-create not allowed"), &r);
        }
        let r: Reply<MetadataResponse> = call(
            &mut c,
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(vec![])),
        )
        .await;
        o.rec("v12 empty topic list", &r);
        let r: Reply<MetadataResponse> =
            call(&mut c, ApiKey::Metadata, 12, &metadata_req(&[&on], true)).await;
        o.rec("v12 unknown topic, auto-create allowed: first reply", &r);
        wait_topic(&mut c, &on, 1).await;
        let r: Reply<MetadataResponse> =
            call(&mut c, ApiKey::Metadata, 12, &metadata_req(&[&on], false)).await;
        o.rec("v12 auto-created topic once ready", &r);
        let r: Reply<MetadataResponse> =
            call(&mut c, ApiKey::Metadata, 1, &metadata_req(&[&off], true)).await;
        o.rec(
            "v1 unknown topic (v1-3 always auto-create): first reply",
            &r,
        );
        for bad in ["bad/name", "", &"x".repeat(250)] {
            let r: Reply<MetadataResponse> =
                call(&mut c, ApiKey::Metadata, 12, &metadata_req(&[bad], true)).await;
            o.rec(
                format!("v12 invalid name {:?}, auto-create allowed", trunc(bad)),
                &r,
            );
        }
        o
    })
}

fn trunc(s: &str) -> String {
    if s.len() > 20 {
        format!("{}...({} chars)", &s[..8], s.len())
    } else {
        s.to_owned()
    }
}

/// 2. Produce to a partition (and a topic) that does not exist.
fn produce_missing_partition(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = ctx.client().await;
        let t = ctx.name("pmiss");
        o.rec("create", &create_topic(&mut c, &t, 1, &[]).await);
        let one = || batch(1, 1000, None, Compression::None);
        o.rec(
            "v9 partition 5 of a 1-partition topic",
            &produce(&mut c, &t, 5, one()).await,
        );
        let r: Reply<ProduceResponse> =
            call(&mut c, ApiKey::Produce, 3, &produce_req(&t, 5, one())).await;
        o.rec("v3 partition 5 of a 1-partition topic", &r);
        o.rec("v9 partition -1", &produce(&mut c, &t, -1, one()).await);
        let nope = ctx.name("pmiss-nope");
        o.rec("v9 unknown topic", &produce(&mut c, &nope, 0, one()).await);
        let r: Reply<MetadataResponse> =
            call(&mut c, ApiKey::Metadata, 12, &metadata_req(&[&nope], false)).await;
        o.rec("produce did not auto-create the topic", &r);
        let r: Reply<ListOffsetsResponse> = call(
            &mut c,
            ApiKey::ListOffsets,
            8,
            &list_offsets_req(&t, &[0], -1),
        )
        .await;
        o.rec("nothing appended to partition 0", &r);
        o
    })
}

/// 3. A batch larger than the topic's max.message.bytes.
fn produce_oversize(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = ctx.client().await;
        let t = ctx.name("big");
        o.rec(
            "create with max.message.bytes=200",
            &create_topic(&mut c, &t, 1, &[("max.message.bytes", "200")]).await,
        );
        let big = batch(20, 1000, None, Compression::None);
        o.info("big batch bytes", big.len().to_string());
        o.rec(
            "v9 batch of 20 records (> 200 bytes)",
            &produced(produce(&mut c, &t, 0, big.clone()).await),
        );
        let r: Reply<ProduceResponse> =
            call(&mut c, ApiKey::Produce, 3, &produce_req(&t, 0, big)).await;
        o.rec(
            "v3 batch of 20 records (> 200 bytes)",
            &r.map(|mut r| r.responses.remove(0).partition_responses.remove(0)),
        );
        o.rec(
            "v9 batch of 1 record (fits)",
            &produced(produce(&mut c, &t, 0, batch(1, 1000, None, Compression::None)).await),
        );
        // Compressed: the limit applies to the compressed batch.
        o.rec(
            "v9 gzip batch of 20 records (compressed < 200 bytes)",
            &produced(produce(&mut c, &t, 0, batch(20, 1000, None, Compression::Gzip)).await),
        );
        let r: Reply<ListOffsetsResponse> = call(
            &mut c,
            ApiKey::ListOffsets,
            8,
            &list_offsets_req(&t, &[0], -1),
        )
        .await;
        o.rec("log end offset", &r);
        o
    })
}

/// 4. Corrupt and malformed record batches.
fn produce_corrupt(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = ctx.client().await;
        let t = ctx.name("crc");
        o.rec("create", &create_topic(&mut c, &t, 1, &[]).await);
        let good = batch(2, 1000, None, Compression::None).to_vec();
        let mut bad_crc = good.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 0xff;
        o.rec(
            "v9 batch with a corrupt CRC",
            &produced(produce(&mut c, &t, 0, bad_crc.into()).await),
        );
        let truncated = good[..good.len() - 5].to_vec();
        o.rec(
            "v9 batch cut 5 bytes short of its length",
            &produced(produce(&mut c, &t, 0, truncated.into()).await),
        );
        let mut two = good.clone();
        two.extend_from_slice(&good);
        o.rec(
            "v9 two batches in one partition's records",
            &produced(produce(&mut c, &t, 0, two.into()).await),
        );
        let mut magic1 = good.clone();
        magic1[16] = 1;
        o.rec(
            "v9 batch with magic 1",
            &produced(produce(&mut c, &t, 0, magic1.into()).await),
        );
        let mut codec = good.clone();
        codec[22] = (codec[22] & !0x07) | 0x05; // compression id 5: none such
        let crc = crc32c::crc32c(&codec[21..]);
        codec[17..21].copy_from_slice(&crc.to_be_bytes());
        o.rec(
            "v9 batch with compression type 5 (valid CRC)",
            &produced(produce(&mut c, &t, 0, codec.into()).await),
        );
        let r: Reply<ListOffsetsResponse> = call(
            &mut c,
            ApiKey::ListOffsets,
            8,
            &list_offsets_req(&t, &[0], -1),
        )
        .await;
        o.rec("nothing was appended", &r);
        o
    })
}

/// 5. Fetch beyond the end, at the end, before the start.
fn fetch_out_of_range(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = ctx.client().await;
        let t = ctx.name("frange");
        o.rec("create", &create_topic(&mut c, &t, 1, &[]).await);
        o.rec(
            "produce 3 records",
            &produced(produce(&mut c, &t, 0, batch(3, 1000, None, Compression::None)).await),
        );
        for (label, offset) in [
            ("above the end", 10),
            ("at the end", 3),
            ("negative", -5),
            ("from 0", 0),
        ] {
            o.rec(
                format!("v12 fetch {label} (offset {offset})"),
                &fetch(&mut c, 12, &fetch_req(&t, &[(0, offset)], 1 << 20, 1 << 20)).await,
            );
        }
        o.rec(
            "v4 fetch above the end",
            &fetch(&mut c, 4, &fetch_req(&t, &[(0, 10)], 1 << 20, 1 << 20)).await,
        );
        o.rec(
            "v12 fetch partition 7 of a 1-partition topic",
            &fetch(&mut c, 12, &fetch_req(&t, &[(7, 0)], 1 << 20, 1 << 20)).await,
        );
        o.rec(
            "v12 fetch of an unknown topic",
            &fetch(
                &mut c,
                12,
                &fetch_req(&ctx.name("frange-nope"), &[(0, 0)], 1 << 20, 1 << 20),
            )
            .await,
        );
        o
    })
}

/// 6. ListOffsets by timestamp and the special timestamps.
fn list_offsets(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = ctx.client().await;
        let t = ctx.name("lo");
        o.rec("create", &create_topic(&mut c, &t, 1, &[]).await);
        o.rec(
            "produce 3 records at 1000..1002",
            &produced(produce(&mut c, &t, 0, batch(3, 1000, None, Compression::None)).await),
        );
        o.rec(
            "produce 3 gzip records at 5000..5002",
            &produced(produce(&mut c, &t, 0, batch(3, 5000, None, Compression::Gzip)).await),
        );
        for (label, ts) in [
            ("before the data", 0),
            ("inside batch 1", 1001),
            ("between the batches", 3000),
            ("last record", 5002),
            ("after the data", 9999),
            ("-1 latest", -1),
            ("-2 earliest", -2),
            ("-3 max timestamp", -3),
            ("-4 earliest local", -4),
        ] {
            let r: Reply<ListOffsetsResponse> = call(
                &mut c,
                ApiKey::ListOffsets,
                8,
                &list_offsets_req(&t, &[0], ts),
            )
            .await;
            o.rec(format!("v8 {label} ({ts})"), &r);
        }
        for (label, ts) in [
            ("inside batch 1", 1001),
            ("-1 latest", -1),
            ("-2 earliest", -2),
        ] {
            let r: Reply<ListOffsetsResponse> = call(
                &mut c,
                ApiKey::ListOffsets,
                1,
                &list_offsets_req(&t, &[0], ts),
            )
            .await;
            o.rec(format!("v1 {label} ({ts})"), &r);
        }
        let r: Reply<ListOffsetsResponse> = call(
            &mut c,
            ApiKey::ListOffsets,
            8,
            &list_offsets_req(&t, &[3], -1),
        )
        .await;
        o.rec("v8 missing partition 3", &r);
        let r: Reply<ListOffsetsResponse> = call(
            &mut c,
            ApiKey::ListOffsets,
            8,
            &list_offsets_req(&ctx.name("lo-nope"), &[0], -1),
        )
        .await;
        o.rec("v8 unknown topic", &r);
        o
    })
}

/// One CreateTopics call; the topic configs of the result are recorded in
/// a step of their own.
async fn create_step(c: &mut Client, o: &mut Obs, label: String, req: CreateTopicsRequest, v: i16) {
    let r: Reply<CreateTopicsResponse> = call(c, ApiKey::CreateTopics, v, &req).await;
    let validate_only = req.validate_only;
    let configs = r.as_ref().map(|r| {
        r.topics
            .iter()
            .map(|t| {
                t.configs.as_ref().map(|cs| {
                    cs.iter()
                        .filter(|c| !CONFIGS_ABSENT_BY_DESIGN.contains(&c.name.as_str()))
                        .map(|c| {
                            // FIELD_RULES: the source of min.insync.replicas.
                            let source = if c.name.as_str() == "min.insync.replicas" {
                                "-".to_owned()
                            } else {
                                c.config_source.to_string()
                            };
                            format!(
                                "{}={} (source {}, read_only {}, sensitive {})",
                                c.name.as_str(),
                                c.value.as_deref().unwrap_or("null"),
                                source,
                                c.read_only,
                                c.is_sensitive
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect::<Vec<_>>()
    });
    let r = r.map(|mut r| {
        for t in &mut r.topics {
            if validate_only {
                // FIELD_RULES: the topic id of a topic that is not created.
                t.topic_id = Uuid::nil();
            }
            t.configs = t.configs.as_ref().map(|_| {
                vec![create_topics_response::CreatableTopicConfigs::default()
                    .with_name(StrBytes::from_static_str("<configs, compared separately>"))]
            });
        }
        r
    });
    o.rec(label.clone(), &r);
    if let Some(cfg) = configs {
        if cfg
            .iter()
            .any(|c| c.as_ref().is_some_and(|c| !c.is_empty()))
        {
            o.rec(format!("{label}: configs"), &cfg);
        }
    }
}

/// 7. CreateTopics errors and validate_only.
fn create_topics(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = ctx.client().await;
        let t = ctx.name("ct");
        create_step(
            &mut c,
            &mut o,
            "v7 create".into(),
            create_req(&t, 2, 1, &[("cleanup.policy", "compact")]),
            7,
        )
        .await;
        create_step(
            &mut c,
            &mut o,
            "v7 create again (exists)".into(),
            create_req(&t, 2, 1, &[]),
            7,
        )
        .await;
        create_step(
            &mut c,
            &mut o,
            "v7 replication factor 3 on one broker".into(),
            create_req(&ctx.name("ct-rf3"), 1, 3, &[]),
            7,
        )
        .await;
        create_step(
            &mut c,
            &mut o,
            "v7 0 partitions".into(),
            create_req(&ctx.name("ct-zero"), 0, 1, &[]),
            7,
        )
        .await;
        create_step(
            &mut c,
            &mut o,
            "v7 -5 partitions".into(),
            create_req(&ctx.name("ct-neg"), -5, 1, &[]),
            7,
        )
        .await;
        create_step(
            &mut c,
            &mut o,
            "v7 unknown config".into(),
            create_req(&ctx.name("ct-cfg"), 1, 1, &[("no.such.config", "1")]),
            7,
        )
        .await;
        create_step(
            &mut c,
            &mut o,
            "v7 invalid config value".into(),
            create_req(&ctx.name("ct-cfg"), 1, 1, &[("retention.ms", "soon")]),
            7,
        )
        .await;
        for bad in ["bad/name", "", ".", "..", &"x".repeat(250)] {
            create_step(
                &mut c,
                &mut o,
                format!("v7 invalid name {:?}", trunc(bad)),
                create_req(bad, 1, 1, &[]),
                7,
            )
            .await;
        }
        create_step(
            &mut c,
            &mut o,
            "v7 validate_only, 4 partitions, default replication".into(),
            create_req(&ctx.name("ct-dry"), 4, -1, &[]).with_validate_only(true),
            7,
        )
        .await;
        create_step(
            &mut c,
            &mut o,
            "v7 validate_only, existing topic".into(),
            create_req(&t, 1, 1, &[]).with_validate_only(true),
            7,
        )
        .await;
        let r: Reply<MetadataResponse> = call(
            &mut c,
            ApiKey::Metadata,
            12,
            &metadata_req(&[&ctx.name("ct-dry")], false),
        )
        .await;
        o.rec("validate_only created nothing", &r);
        let dup = ctx.name("ct-dup");
        create_step(
            &mut c,
            &mut o,
            "v7 the same name twice in one request".into(),
            CreateTopicsRequest::default()
                .with_timeout_ms(10_000)
                .with_topics(vec![creatable(&dup, 1, 1, &[]), creatable(&dup, 1, 1, &[])]),
            7,
        )
        .await;
        let r: Reply<MetadataResponse> =
            call(&mut c, ApiKey::Metadata, 12, &metadata_req(&[&dup], false)).await;
        o.rec("the duplicated name was not created", &r);
        create_step(
            &mut c,
            &mut o,
            "v7 create with compression.gzip.level=5".into(),
            create_req(
                &ctx.name("ct-gzip"),
                1,
                1,
                &[
                    ("compression.type", "gzip"),
                    ("compression.gzip.level", "5"),
                ],
            )
            .with_validate_only(true),
            7,
        )
        .await;
        let def = ctx.name("ct-defaults");
        create_step(
            &mut c,
            &mut o,
            "v7 default partitions and replication (-1, -1)".into(),
            create_req(&def, -1, -1, &[]),
            7,
        )
        .await;
        create_step(
            &mut c,
            &mut o,
            "v4 create".into(),
            create_req(&ctx.name("ct-v4"), 1, 1, &[]),
            4,
        )
        .await;
        wait_topic(&mut c, &t, 2).await;
        let r: Reply<MetadataResponse> =
            call(&mut c, ApiKey::Metadata, 12, &metadata_req(&[&t], false)).await;
        o.rec("metadata of the created topic", &r);
        o
    })
}

/// 8. DeleteTopics of missing topics (and of an existing one).
fn delete_topics(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = ctx.client().await;
        let t = ctx.name("dt");
        o.rec("create", &create_topic(&mut c, &t, 1, &[]).await);
        let by_name = |names: &[&str]| {
            DeleteTopicsRequest::default()
                .with_timeout_ms(10_000)
                .with_topics(
                    names
                        .iter()
                        .map(|n| DeleteTopicState::default().with_name(Some(tn(n))))
                        .collect(),
                )
        };
        let missing = ctx.name("dt-missing");
        let r: Reply<DeleteTopicsResponse> =
            call(&mut c, ApiKey::DeleteTopics, 6, &by_name(&[&t, &missing])).await;
        o.rec("v6 delete [existing, missing]", &r);
        let r: Reply<DeleteTopicsResponse> = call(
            &mut c,
            ApiKey::DeleteTopics,
            6,
            &DeleteTopicsRequest::default()
                .with_timeout_ms(10_000)
                .with_topics(vec![DeleteTopicState::default().with_topic_id(
                    Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
                )]),
        )
        .await;
        o.rec("v6 delete an unknown topic id", &r);
        let r: Reply<DeleteTopicsResponse> = call(
            &mut c,
            ApiKey::DeleteTopics,
            5,
            &DeleteTopicsRequest::default()
                .with_timeout_ms(10_000)
                .with_topic_names(vec![tn(&missing)]),
        )
        .await;
        o.rec("v5 delete a missing topic", &r);
        o.rec(
            "metadata after the delete",
            &wait_topic_gone(&mut c, &t).await,
        );
        let r: Reply<DeleteTopicsResponse> =
            call(&mut c, ApiKey::DeleteTopics, 6, &by_name(&[&t])).await;
        o.rec("v6 delete it again", &r);
        o
    })
}

/// 9. Idempotent producer: duplicates, gaps, epochs.
fn idempotent_producer(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = ctx.client().await;
        let t = ctx.name("idem");
        o.rec("create", &create_topic(&mut c, &t, 1, &[]).await);
        let init = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        // Kafka may need a moment to get a block of producer ids from the
        // controller: retry retriable errors (not recorded).
        let deadline = Instant::now() + WAIT_TIMEOUT;
        let r = loop {
            let r = init_producer_id_raw(&mut c, &init).await;
            match &r {
                Reply::Ok(r)
                    if [14, 15, 51].contains(&r.error_code) && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => break r,
            }
        };
        let pid = r.as_ref().map(|r| r.producer_id.0).unwrap_or(-1);
        o.rec("v4 InitProducerId (non-transactional)", &r.map(Norm::norm));
        let r = init_producer_id_raw(&mut c, &init).await;
        let pid2 = r.as_ref().map(|r| r.producer_id.0).unwrap_or(-1);
        o.rec("v4 InitProducerId again", &r.map(Norm::norm));
        o.rec(
            "the second producer id differs from the first",
            &(pid != pid2),
        );
        let first = batch(3, 1000, Some((pid, 0, 0)), Compression::None);
        o.rec(
            "seq 0..2",
            &produced(produce(&mut c, &t, 0, first.clone()).await),
        );
        o.rec(
            "seq 3..4",
            &produced(
                produce(
                    &mut c,
                    &t,
                    0,
                    batch(2, 1000, Some((pid, 0, 3)), Compression::None),
                )
                .await,
            ),
        );
        let r = produced(produce(&mut c, &t, 0, first).await);
        rec_split_append_time(&mut o, "seq 0..2 again (duplicate of the first batch)", r);
        let r = produced(
            produce(
                &mut c,
                &t,
                0,
                batch(2, 1000, Some((pid, 0, 3)), Compression::None),
            )
            .await,
        );
        rec_split_append_time(&mut o, "seq 3..4 again (duplicate of the last batch)", r);
        o.rec(
            "seq 9 (gap)",
            &produced(
                produce(
                    &mut c,
                    &t,
                    0,
                    batch(1, 1000, Some((pid, 0, 9)), Compression::None),
                )
                .await,
            ),
        );
        o.rec(
            "epoch 1 seq 0 (epoch bump)",
            &produced(
                produce(
                    &mut c,
                    &t,
                    0,
                    batch(1, 1000, Some((pid, 1, 0)), Compression::None),
                )
                .await,
            ),
        );
        o.rec(
            "epoch 0 seq 5 (old epoch)",
            &produced(
                produce(
                    &mut c,
                    &t,
                    0,
                    batch(1, 1000, Some((pid, 0, 5)), Compression::None),
                )
                .await,
            ),
        );
        o.rec(
            "epoch 2 seq 5 (new epoch, sequence not 0)",
            &produced(
                produce(
                    &mut c,
                    &t,
                    0,
                    batch(1, 1000, Some((pid, 2, 5)), Compression::None),
                )
                .await,
            ),
        );
        o.rec(
            "unknown producer id, seq 7",
            &produced(
                produce(
                    &mut c,
                    &t,
                    0,
                    batch(1, 1000, Some((7_777_777_777, 0, 7)), Compression::None),
                )
                .await,
            ),
        );
        o.rec(
            "unknown producer id, seq 0",
            &produced(
                produce(
                    &mut c,
                    &t,
                    0,
                    batch(1, 1000, Some((7_777_777_778, 0, 0)), Compression::None),
                )
                .await,
            ),
        );
        o.rec(
            "fetch everything",
            &fetch(&mut c, 12, &fetch_req(&t, &[(0, 0)], 1 << 20, 1 << 20)).await,
        );
        o
    })
}

/// Records a produce result with log_append_time_ms in a step of its own.
fn rec_split_append_time(
    o: &mut Obs,
    label: &str,
    mut r: Reply<produce_response::PartitionProduceResponse>,
) {
    let t = r.as_ref().map(|p| p.log_append_time_ms);
    if let Reply::Ok(p) = &mut r {
        p.log_append_time_ms = 0;
    }
    o.rec(format!("{label} (log_append_time_ms blanked)"), &r);
    o.rec(format!("{label}: log_append_time_ms"), &t);
}

/// InitProducerId v4, not normalized (the test needs the producer id).
async fn init_producer_id_raw(
    c: &mut Client,
    req: &InitProducerIdRequest,
) -> Reply<InitProducerIdResponse> {
    let corr = c.send(ApiKey::InitProducerId, 4, req).await;
    match tokio::time::timeout(CALL_TIMEOUT, c.recv_frame()).await {
        Err(_) => Reply::Timeout,
        Ok(None) => Reply::Closed,
        Ok(Some(mut frame)) => {
            let h = ResponseHeader::decode(&mut frame, InitProducerIdResponse::header_version(4))
                .unwrap();
            assert_eq!(h.correlation_id, corr);
            Reply::Ok(InitProducerIdResponse::decode(&mut frame, 4).unwrap())
        }
    }
}

/// 10. ApiVersions: every version, an unsupported version, and an
///     unsupported version of another API.
fn api_versions(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = ctx.client().await;
        for v in 0..=4 {
            let r: Reply<ApiVersionsResponse> = call(
                &mut c,
                ApiKey::ApiVersions,
                v,
                &ApiVersionsRequest::default()
                    .with_client_software_name(sb("gregor-differential"))
                    .with_client_software_version(sb("1")),
            )
            .await;
            if v == 3 {
                if let Some(r) = r.as_ref() {
                    let mut table = String::new();
                    for k in &r.api_keys {
                        let _ =
                            writeln!(table, "{} {}-{}", k.api_key, k.min_version, k.max_version);
                    }
                    o.info("api table", table);
                }
            }
            let r = r.map(|r| {
                (
                    r.error_code,
                    r.api_keys.iter().find(|k| k.api_key == 18).cloned(),
                )
            });
            o.rec(format!("v{v}: error code and ApiVersions' own range"), &r);
        }
        // ApiVersions v127: header v2 (flexible), empty body.
        let mut body = BytesMut::new();
        body.put_i16(18);
        body.put_i16(127);
        body.put_i32(4242);
        body.put_i16(10);
        body.put_slice(b"gregor-e2e");
        body.put_u8(0);
        c.send_raw(&body).await;
        let r: Reply<ApiVersionsResponse> = recv(&mut c, 0, 4242).await;
        o.rec("v127 (unsupported): answered at v0", &r);
        // Metadata v127: Kafka closes the connection.
        let mut c2 = ctx.client().await;
        let mut body = BytesMut::new();
        body.put_i16(3);
        body.put_i16(127);
        body.put_i32(77);
        body.put_i16(-1);
        body.put_u8(0);
        c2.send_raw(&body).await;
        let r: Reply<MetadataResponse> = recv(&mut c2, 12, 77).await;
        o.rec("Metadata v127 (unsupported)", &r.map(|_| "a response"));
        // An API key that does not exist.
        let mut c3 = ctx.client().await;
        let mut body = BytesMut::new();
        body.put_i16(9999);
        body.put_i16(0);
        body.put_i32(78);
        body.put_i16(-1);
        c3.send_raw(&body).await;
        let r: Reply<MetadataResponse> = recv(&mut c3, 0, 78).await;
        o.rec("API key 9999", &r.map(|_| "a response"));
        o
    })
}

/// 11. Fetch with a tiny max_bytes still returns the first batch whole.
fn fetch_tiny_max_bytes(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = ctx.client().await;
        let t = ctx.name("tiny");
        o.rec(
            "create 2 partitions",
            &create_topic(&mut c, &t, 2, &[]).await,
        );
        let b1 = batch(3, 1000, None, Compression::None);
        let b1_len = b1.len() as i32;
        for p in [0, 1] {
            o.rec(
                format!("p{p} batch of 3"),
                &produced(produce(&mut c, &t, p, b1.clone()).await),
            );
            o.rec(
                format!("p{p} batch of 2"),
                &produced(produce(&mut c, &t, p, batch(2, 2000, None, Compression::None)).await),
            );
        }
        let cases: Vec<(String, i16, FetchRequest)> = vec![
            (
                "v12 offset 0, max_bytes 1, partition_max_bytes 1".into(),
                12,
                fetch_req(&t, &[(0, 0)], 1, 1),
            ),
            (
                "v12 offset 1 (inside batch 1), max_bytes 1".into(),
                12,
                fetch_req(&t, &[(0, 1)], 1, 1),
            ),
            (
                "v12 offset 3 (batch 2), max_bytes 1".into(),
                12,
                fetch_req(&t, &[(0, 3)], 1, 1),
            ),
            (
                "v12 offset 0, max_bytes 1 MiB, partition_max_bytes 1".into(),
                12,
                fetch_req(&t, &[(0, 0)], 1 << 20, 1),
            ),
            (
                "v12 offset 0, max_bytes 1 MiB, partition_max_bytes = batch 1 + 20".into(),
                12,
                fetch_req(&t, &[(0, 0)], 1 << 20, b1_len + 20),
            ),
            (
                "v12 offset 0, max_bytes = batch 1 + 20".into(),
                12,
                fetch_req(&t, &[(0, 0)], b1_len + 20, 1 << 20),
            ),
            (
                "v12 two partitions, max_bytes 1".into(),
                12,
                fetch_req(&t, &[(0, 0), (1, 0)], 1, 1 << 20),
            ),
            (
                "v4 offset 0, max_bytes 1".into(),
                4,
                fetch_req(&t, &[(0, 0)], 1, 1),
            ),
        ];
        o.info("batch 1 bytes", b1_len.to_string());
        for (label, v, req) in cases {
            // A trailing partial batch is recorded in a step of its own.
            let mut r = fetch(&mut c, v, &req).await;
            let mut partial = Vec::new();
            if let Reply::Ok(view) = &mut r {
                for (_, p, recs) in &mut view.records {
                    if let Records::Batches(bs) = recs {
                        if let Some(BatchSummary::Partial(n)) = bs.last() {
                            partial.push((*p, *n));
                            bs.pop();
                        }
                    }
                }
            }
            o.rec(label.clone(), &r);
            if !partial.is_empty() {
                o.rec(format!("{label}: trailing partial batch"), &partial);
            }
        }
        o
    })
}

/// 12a. FindCoordinator, for groups and for transactions.
fn find_coordinator(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = ctx.client().await;
        let g = ctx.name("fc-group");
        wait_group_coordinator(&mut c, &g).await;
        let r: Reply<FindCoordinatorResponse> = call(
            &mut c,
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default()
                .with_key(sb(&g))
                .with_key_type(0),
        )
        .await;
        o.rec("v3 key_type=0 (group)", &r);
        let r: Reply<FindCoordinatorResponse> = call(
            &mut c,
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(vec![sb(&g), sb(&ctx.name("fc-other"))]),
        )
        .await;
        o.rec("v4 key_type=0, two groups", &r);
        let r: Reply<FindCoordinatorResponse> = call(
            &mut c,
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(vec![sb("")]),
        )
        .await;
        o.rec("v4 key_type=0, empty group id", &r);
        let r: Reply<FindCoordinatorResponse> = call(
            &mut c,
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default()
                .with_key_type(7)
                .with_coordinator_keys(vec![sb(&g)]),
        )
        .await;
        o.rec("v4 key_type=7 (no such type)", &r);
        // Transactions: Kafka creates __transaction_state on the first
        // request and answers COORDINATOR_NOT_AVAILABLE until it is loaded.
        let txn = FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![sb(&ctx.name("fc-txn"))]);
        let deadline = Instant::now() + Duration::from_secs(3);
        let r = loop {
            let r: Reply<FindCoordinatorResponse> =
                call(&mut c, ApiKey::FindCoordinator, 4, &txn).await;
            let pending = r
                .as_ref()
                .is_some_and(|r| r.coordinators.first().is_some_and(|c| c.error_code == 15));
            if !pending || Instant::now() > deadline {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        o.rec("v4 key_type=1 (transaction), after polling", &r);
        o
    })
}

/// 12b. Group error codes with no members around.
fn group_errors_without_members(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = ctx.client().await;
        let ghost = ctx.name("g-ghost");
        let simple = ctx.name("g-simple");
        let t = ctx.name("g-topic");
        o.rec("create topic", &create_topic(&mut c, &t, 2, &[]).await);
        wait_group_coordinator(&mut c, &ghost).await;
        let r: Reply<JoinGroupResponse> = call(
            &mut c,
            ApiKey::JoinGroup,
            5,
            &join_req("", "", "consumer", &[&t]),
        )
        .await;
        o.rec("JoinGroup v5 empty group id", &r);
        let r: Reply<JoinGroupResponse> = call(
            &mut c,
            ApiKey::JoinGroup,
            5,
            &join_req(&ctx.name("g-sess"), "", "consumer", &[&t]).with_session_timeout_ms(1),
        )
        .await;
        o.rec("JoinGroup v5 session timeout 1 ms", &r);
        let r: Reply<SyncGroupResponse> = call(
            &mut c,
            ApiKey::SyncGroup,
            5,
            &sync_req(&ghost, 1, "ghost-member", vec![]),
        )
        .await;
        o.rec("SyncGroup v5 unknown group and member", &r);
        let r: Reply<HeartbeatResponse> = call(
            &mut c,
            ApiKey::Heartbeat,
            4,
            &heartbeat_req(&ghost, 1, "ghost-member"),
        )
        .await;
        o.rec("Heartbeat v4 unknown group and member", &r);
        let r: Reply<LeaveGroupResponse> = call(
            &mut c,
            ApiKey::LeaveGroup,
            4,
            &leave_req(&ghost, &["ghost-member"]),
        )
        .await;
        o.rec("LeaveGroup v4 unknown group and member", &r);
        let r: Reply<DescribeGroupsResponse> =
            call(&mut c, ApiKey::DescribeGroups, 5, &describe_req(&[&ghost])).await;
        o.rec("DescribeGroups v5 unknown group", &r);
        let r: Reply<DeleteGroupsResponse> = call(
            &mut c,
            ApiKey::DeleteGroups,
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![gid(&ghost)]),
        )
        .await;
        o.rec("DeleteGroups v2 unknown group", &r);
        let r: Reply<OffsetCommitResponse> = call(
            &mut c,
            ApiKey::OffsetCommit,
            8,
            &commit_req(&simple, -1, "", &[(&t, 1, 42), (&ctx.name("g-nope"), 0, 1)]),
        )
        .await;
        o.rec(
            "OffsetCommit v8 generation -1 to a new group (+ unknown topic)",
            &r,
        );
        let r: Reply<OffsetCommitResponse> = call(
            &mut c,
            ApiKey::OffsetCommit,
            8,
            &commit_req(&ghost, 3, "ghost-member", &[(&t, 0, 1)]),
        )
        .await;
        o.rec("OffsetCommit v8 generation 3 to a nonexistent group", &r);
        let r: Reply<OffsetCommitResponse> = call(
            &mut c,
            ApiKey::OffsetCommit,
            8,
            &commit_req(&ghost, -1, "ghost-member", &[(&t, 0, 1)]),
        )
        .await;
        o.rec(
            "OffsetCommit v8 generation -1 with a member id, nonexistent group",
            &r,
        );
        let r: Reply<OffsetFetchResponse> = call(
            &mut c,
            ApiKey::OffsetFetch,
            7,
            &offset_fetch_v7(&simple, &t, &[0, 1]),
        )
        .await;
        o.rec("OffsetFetch v7 committed and uncommitted partitions", &r);
        let r: Reply<OffsetFetchResponse> = call(
            &mut c,
            ApiKey::OffsetFetch,
            8,
            &offset_fetch_v8(&[(&simple, None), (&ghost, Some((&t, &[0, 1])))]),
        )
        .await;
        o.rec(
            "OffsetFetch v8 [all of g-simple, g-ghost partitions 0 1]",
            &r,
        );
        let r: Reply<DescribeGroupsResponse> =
            call(&mut c, ApiKey::DescribeGroups, 5, &describe_req(&[&simple])).await;
        o.rec("DescribeGroups v5 group with offsets only", &r);
        let r: Reply<ListGroupsResponse> =
            call(&mut c, ApiKey::ListGroups, 4, &ListGroupsRequest::default()).await;
        o.rec("ListGroups v4", &my_groups(r, &ctx.run));
        let r: Reply<DeleteGroupsResponse> = call(
            &mut c,
            ApiKey::DeleteGroups,
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![gid(&simple), gid(&ghost)]),
        )
        .await;
        o.rec("DeleteGroups v2 [g-simple (empty, offsets), g-ghost]", &r);
        let r: Reply<OffsetFetchResponse> = call(
            &mut c,
            ApiKey::OffsetFetch,
            7,
            &offset_fetch_v7(&simple, &t, &[1]),
        )
        .await;
        o.rec("OffsetFetch v7 after DeleteGroups", &r);
        o
    })
}

/// 12c. A group with two members: join, sync, heartbeats with stale and
/// unknown members, a rebalance, commits, leave, delete.
fn group_lifecycle(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut l = Labels::default();
        let mut a = ctx.client().await;
        let mut b = ctx.client().await;
        let g = ctx.name("g-life");
        let t = ctx.name("g-life-topic");
        o.rec("create topic", &create_topic(&mut a, &t, 2, &[]).await);
        wait_group_coordinator(&mut a, &g).await;

        // A joins: MEMBER_ID_REQUIRED first (v4+), then with its id.
        let r: Reply<JoinGroupResponse> = call(
            &mut a,
            ApiKey::JoinGroup,
            5,
            &join_req(&g, "", "consumer", &[&t]),
        )
        .await;
        let a_id = r
            .as_ref()
            .map(|r| r.member_id.to_string())
            .unwrap_or_default();
        o.rec("A JoinGroup v5 without member id", &r.map(|r| l.join(r)));
        let r: Reply<JoinGroupResponse> = call(
            &mut a,
            ApiKey::JoinGroup,
            5,
            &join_req(&g, &a_id, "consumer", &[&t]),
        )
        .await;
        let gen1 = r.as_ref().map(|r| r.generation_id).unwrap_or(-1);
        o.rec("A JoinGroup v5 with its member id", &r.map(|r| l.join(r)));
        let r: Reply<SyncGroupResponse> = call(
            &mut a,
            ApiKey::SyncGroup,
            5,
            &sync_req(
                &g,
                gen1,
                &a_id,
                vec![(a_id.clone(), assignment(&t, &[0, 1]))],
            ),
        )
        .await;
        o.rec("A SyncGroup (leader)", &r);
        let hb = async |c: &mut Client, gen: i32, m: &str| -> Reply<HeartbeatResponse> {
            call(c, ApiKey::Heartbeat, 4, &heartbeat_req(&g, gen, m)).await
        };
        o.rec(
            "A Heartbeat current generation",
            &hb(&mut a, gen1, &a_id).await,
        );
        o.rec(
            "A Heartbeat generation - 1 (stale)",
            &hb(&mut a, gen1 - 1, &a_id).await,
        );
        o.rec(
            "A Heartbeat generation + 1",
            &hb(&mut a, gen1 + 1, &a_id).await,
        );
        o.rec(
            "Heartbeat unknown member",
            &hb(&mut a, gen1, "ghost-member").await,
        );
        let r: Reply<SyncGroupResponse> = call(
            &mut a,
            ApiKey::SyncGroup,
            5,
            &sync_req(&g, gen1, "ghost-member", vec![]),
        )
        .await;
        o.rec("SyncGroup unknown member", &r);
        let r: Reply<SyncGroupResponse> = call(
            &mut a,
            ApiKey::SyncGroup,
            5,
            &sync_req(&g, gen1 - 1, &a_id, vec![]),
        )
        .await;
        o.rec("A SyncGroup stale generation", &r);
        let r: Reply<LeaveGroupResponse> = call(
            &mut a,
            ApiKey::LeaveGroup,
            4,
            &leave_req(&g, &["ghost-member"]),
        )
        .await;
        o.rec(
            "LeaveGroup v4 unknown member of a live group",
            &r.map(|r| l.leave(r)),
        );
        let r: Reply<JoinGroupResponse> = call(
            &mut a,
            ApiKey::JoinGroup,
            5,
            &join_req(&g, "", "other-type", &[&t]),
        )
        .await;
        o.rec(
            "JoinGroup v5 another protocol type, no member id",
            &r.map(|r| l.join(r)),
        );
        let r: Reply<DescribeGroupsResponse> =
            call(&mut a, ApiKey::DescribeGroups, 5, &describe_req(&[&g])).await;
        o.rec(
            "DescribeGroups Stable, one member",
            &r.map(|r| l.describe(r)),
        );
        let r: Reply<DeleteGroupsResponse> = call(
            &mut a,
            ApiKey::DeleteGroups,
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![gid(&g)]),
        )
        .await;
        o.rec("DeleteGroups of a group with a member", &r);
        let r: Reply<OffsetCommitResponse> = call(
            &mut a,
            ApiKey::OffsetCommit,
            8,
            &commit_req(&g, gen1, &a_id, &[(&t, 0, 5)]),
        )
        .await;
        o.rec("A OffsetCommit current generation", &r);

        // B joins: the group rebalances.
        let r: Reply<JoinGroupResponse> = call(
            &mut b,
            ApiKey::JoinGroup,
            5,
            &join_req(&g, "", "consumer", &[&t]),
        )
        .await;
        let b_id = r
            .as_ref()
            .map(|r| r.member_id.to_string())
            .unwrap_or_default();
        o.rec("B JoinGroup v5 without member id", &r.map(|r| l.join(r)));
        let b_join = b
            .send(
                ApiKey::JoinGroup,
                5,
                &join_req(&g, &b_id, "consumer", &[&t]),
            )
            .await;
        wait_group_state(&mut a, &g, "PreparingRebalance").await;
        o.rec(
            "A Heartbeat during the rebalance",
            &hb(&mut a, gen1, &a_id).await,
        );
        let r: Reply<OffsetCommitResponse> = call(
            &mut a,
            ApiKey::OffsetCommit,
            8,
            &commit_req(&g, gen1, &a_id, &[(&t, 0, 6)]),
        )
        .await;
        o.rec("A OffsetCommit during the rebalance", &r);
        let r: Reply<DescribeGroupsResponse> =
            call(&mut a, ApiKey::DescribeGroups, 5, &describe_req(&[&g])).await;
        o.rec(
            "DescribeGroups PreparingRebalance",
            &r.map(|r| l.describe(r)),
        );
        let r: Reply<JoinGroupResponse> = call(
            &mut a,
            ApiKey::JoinGroup,
            5,
            &join_req(&g, &a_id, "consumer", &[&t]),
        )
        .await;
        let gen2 = r.as_ref().map(|r| r.generation_id).unwrap_or(-1);
        o.rec("A rejoins", &r.map(|r| l.join(r)));
        let r: Reply<JoinGroupResponse> = recv(&mut b, 5, b_join).await;
        o.rec("B's JoinGroup completes", &r.map(|r| l.join(r)));
        let r: Reply<SyncGroupResponse> = call(
            &mut a,
            ApiKey::SyncGroup,
            5,
            &sync_req(
                &g,
                gen2,
                &a_id,
                vec![
                    (a_id.clone(), assignment(&t, &[0])),
                    (b_id.clone(), assignment(&t, &[1])),
                ],
            ),
        )
        .await;
        o.rec("A SyncGroup generation 2 (leader)", &r);
        let r: Reply<SyncGroupResponse> = call(
            &mut b,
            ApiKey::SyncGroup,
            5,
            &sync_req(&g, gen2, &b_id, vec![]),
        )
        .await;
        o.rec("B SyncGroup generation 2", &r);
        o.rec("B Heartbeat", &hb(&mut b, gen2, &b_id).await);
        o.rec("A Heartbeat old generation", &hb(&mut a, gen1, &a_id).await);
        for (label, gen, m) in [
            ("A OffsetCommit generation 2", gen2, a_id.as_str()),
            ("A OffsetCommit old generation", gen1, a_id.as_str()),
            ("OffsetCommit unknown member", gen2, "ghost-member"),
            (
                "OffsetCommit generation -1, no member id, live group",
                -1,
                "",
            ),
        ] {
            let r: Reply<OffsetCommitResponse> = call(
                &mut a,
                ApiKey::OffsetCommit,
                8,
                &commit_req(&g, gen, m, &[(&t, 0, 7), (&t, 1, 8)]),
            )
            .await;
            o.rec(label, &r);
        }
        let r: Reply<OffsetFetchResponse> = call(
            &mut a,
            ApiKey::OffsetFetch,
            7,
            &offset_fetch_v7(&g, &t, &[0, 1]),
        )
        .await;
        o.rec("OffsetFetch v7", &r);
        let r: Reply<DescribeGroupsResponse> =
            call(&mut a, ApiKey::DescribeGroups, 5, &describe_req(&[&g])).await;
        o.rec(
            "DescribeGroups Stable, two members",
            &r.map(|r| l.describe(r)),
        );
        let r: Reply<ListGroupsResponse> =
            call(&mut a, ApiKey::ListGroups, 4, &ListGroupsRequest::default()).await;
        o.rec("ListGroups v4", &my_groups(r, &g));
        let r: Reply<ListGroupsResponse> = call(
            &mut a,
            ApiKey::ListGroups,
            4,
            &ListGroupsRequest::default().with_states_filter(vec![sb("Stable")]),
        )
        .await;
        o.rec("ListGroups v4 states [Stable]", &my_groups(r, &g));
        let r: Reply<ListGroupsResponse> = call(
            &mut a,
            ApiKey::ListGroups,
            5,
            &ListGroupsRequest::default().with_types_filter(vec![sb("classic")]),
        )
        .await;
        o.rec("ListGroups v5 types [classic]", &my_groups(r, &g));

        // Leave: A with the v1 form, B with the v4 batch form.
        let r: Reply<LeaveGroupResponse> = call(
            &mut a,
            ApiKey::LeaveGroup,
            1,
            &LeaveGroupRequest::default()
                .with_group_id(gid(&g))
                .with_member_id(sb(&a_id)),
        )
        .await;
        o.rec("A LeaveGroup v1", &r.map(|r| l.leave(r)));
        let r: Reply<LeaveGroupResponse> =
            call(&mut b, ApiKey::LeaveGroup, 4, &leave_req(&g, &[&b_id])).await;
        o.rec("B LeaveGroup v4", &r.map(|r| l.leave(r)));
        let r: Reply<DescribeGroupsResponse> =
            call(&mut a, ApiKey::DescribeGroups, 5, &describe_req(&[&g])).await;
        o.rec("DescribeGroups after both left", &r.map(|r| l.describe(r)));
        let r: Reply<DeleteGroupsResponse> = call(
            &mut a,
            ApiKey::DeleteGroups,
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![gid(&g)]),
        )
        .await;
        o.rec("DeleteGroups of the now empty group", &r);
        let r: Reply<DescribeGroupsResponse> =
            call(&mut a, ApiKey::DescribeGroups, 5, &describe_req(&[&g])).await;
        o.rec(
            "DescribeGroups after DeleteGroups",
            &r.map(|r| l.describe(r)),
        );

        // JoinGroup v3: no MEMBER_ID_REQUIRED round trip.
        let g3 = ctx.name("g-v3");
        let r: Reply<JoinGroupResponse> = call(
            &mut a,
            ApiKey::JoinGroup,
            3,
            &join_req(&g3, "", "consumer", &[&t]),
        )
        .await;
        let c_id = r
            .as_ref()
            .map(|r| r.member_id.to_string())
            .unwrap_or_default();
        o.rec("JoinGroup v3 without member id", &r.map(|r| l.join(r)));
        let r: Reply<LeaveGroupResponse> =
            call(&mut a, ApiKey::LeaveGroup, 4, &leave_req(&g3, &[&c_id])).await;
        o.rec("LeaveGroup v4 of the v3 member", &r.map(|r| l.leave(r)));
        o
    })
}

// ---------------------------------------------------------------------------
// Transactions (the `txn_*` scenarios).
// ---------------------------------------------------------------------------

/// Polling budget for the transaction coordinator and for asynchronous
/// transaction state (markers written, CONCURRENT_TRANSACTIONS settling).
/// Shorter than WAIT_TIMEOUT: a broker without a coordinator must not eat
/// the whole SCENARIO_TIMEOUT in polls.
const TXN_WAIT: Duration = Duration::from_secs(10);
/// Retriable while a transaction settles: COORDINATOR_LOAD_IN_PROGRESS,
/// COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, CONCURRENT_TRANSACTIONS.
const TXN_RETRIABLE: [i16; 4] = [14, 15, 16, 51];

/// A connection that is opened again after the broker closed it (a broker
/// closes the connection on an API it does not support) or left a request
/// unanswered, so that the next step still runs. Derefs to the `Client`.
struct Conn {
    addr: SocketAddr,
    c: Client,
    /// What the admin scenarios may still spend waiting for a state that
    /// does not come (see `settle_deadline`).
    settle_budget: Duration,
}

impl Conn {
    async fn new(ctx: &Ctx) -> Conn {
        Conn {
            addr: ctx.addr,
            c: ctx.client().await,
            settle_budget: ADMIN_SETTLE_BUDGET,
        }
    }
    async fn revive<T>(&mut self, r: &Reply<T>) {
        if matches!(r, Reply::Closed | Reply::Timeout) {
            self.c = Client::connect(self.addr).await;
        }
    }
}

impl std::ops::Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.c
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.c
    }
}

async fn txn_call_raw<Req, Resp>(c: &mut Conn, key: ApiKey, v: i16, req: &Req) -> Reply<Resp>
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    let r = call_raw(&mut c.c, key, v, req).await;
    c.revive(&r).await;
    r
}

async fn txn_call<Req, Resp>(c: &mut Conn, key: ApiKey, v: i16, req: &Req) -> Reply<Resp>
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion + Norm,
{
    txn_call_raw(c, key, v, req).await.map(Norm::norm)
}

/// The base of the record timestamps the transaction scenarios write (the
/// same for both brokers): an hour ago. Recent, because Kafka rolls a
/// segment when a batch is more than segment.ms newer than the segment's
/// first (a marker carries the broker's clock) and deletes segments by
/// their timestamps; an hour back, so that record timestamps (ts0 + a few
/// seconds) and broker-clock timestamps (>= ts0 + 1 h) are told apart.
fn ts0() -> i64 {
    static TS0: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *TS0.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        now - 3_600_000
    })
}

/// A timestamp taken from the broker's clock (a transaction marker's).
const BROKER_CLOCK: i64 = 999_999_999_999;

/// A timestamp as shown: relative to ts0() when the scenario wrote it,
/// BROKER_CLOCK when the broker did, negative ones as they are.
fn rel_ts(t: i64) -> i64 {
    let r = t - ts0();
    if t < 0 || r < 0 {
        t
    } else if r < 3_000_000 {
        r
    } else {
        BROKER_CLOCK
    }
}

fn txid(s: &str) -> TransactionalId {
    TransactionalId(sb(s))
}

/// Producer ids, shown as 1, 2, ... in order of appearance (the brokers
/// allocate different ids; the order and the identities are compared).
/// Negative ids (-1: none) are kept.
#[derive(Default)]
struct Pids(Vec<i64>);

impl Pids {
    fn l(&mut self, p: i64) -> i64 {
        if p < 0 {
            return p;
        }
        match self.0.iter().position(|&x| x == p) {
            Some(i) => i as i64 + 1,
            None => {
                self.0.push(p);
                self.0.len() as i64
            }
        }
    }
    fn pid(&mut self, p: &mut ProducerId) {
        p.0 = self.l(p.0);
    }
}

/// Polls FindCoordinator (transaction) until it answers without error
/// (Kafka creates and loads __transaction_state on the first request).
/// Returns whether it did; the polls are not recorded.
async fn wait_txn_coordinator(c: &mut Conn, id: &str) -> bool {
    let deadline = Instant::now() + TXN_WAIT;
    loop {
        let r: Reply<FindCoordinatorResponse> = txn_call(
            c,
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![sb(id)]),
        )
        .await;
        if r.as_ref()
            .is_some_and(|r| r.coordinators.first().is_some_and(|c| c.error_code == 0))
        {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Repeats `$call` while its error code (from `$code`) is retriable, the
/// coordinator was found (`$ready`) and TXN_WAIT has not passed. Yields
/// (the first error code, the last reply).
macro_rules! settle {
    ($ready:expr, $call:expr, $code:expr) => {{
        let deadline = Instant::now() + TXN_WAIT;
        let mut first: Option<Option<i16>> = None;
        loop {
            let r = $call;
            let code: Option<i16> = r.as_ref().map($code);
            first.get_or_insert(code);
            if $ready
                && code.is_some_and(|c| TXN_RETRIABLE.contains(&c))
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            break (first.flatten(), r);
        }
    }};
}

fn init_req(id: Option<&str>, timeout_ms: i32, pid: i64, epoch: i16) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(id.map(txid))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
}

async fn init_raw(
    c: &mut Conn,
    v: i16,
    req: &InitProducerIdRequest,
) -> Reply<InitProducerIdResponse> {
    txn_call_raw(c, ApiKey::InitProducerId, v, req).await
}

/// InitProducerId for a transactional id, retried while retriable (not
/// recorded). Returns (producer id, epoch), (-1, -1) on failure, and the
/// labeled reply.
async fn init_txn(
    c: &mut Conn,
    ready: bool,
    pids: &mut Pids,
    id: &str,
) -> ((i64, i16), Reply<InitProducerIdResponse>) {
    let req = init_req(Some(id), 60_000, -1, -1);
    let (_, r) = settle!(
        ready,
        init_raw(c, 4, &req).await,
        |r: &InitProducerIdResponse| r.error_code
    );
    let got = r
        .as_ref()
        .filter(|r| r.error_code == 0)
        .map(|r| (r.producer_id.0, r.producer_epoch))
        .unwrap_or((-1, -1));
    (got, label_init(pids, r))
}

fn label_init(pids: &mut Pids, r: Reply<InitProducerIdResponse>) -> Reply<InitProducerIdResponse> {
    r.map(|mut r| {
        r.throttle_time_ms = 0;
        pids.pid(&mut r.producer_id);
        pids.pid(&mut r.ongoing_txn_producer_id);
        r
    })
}

fn add_parts_req(
    id: &str,
    pid: i64,
    epoch: i16,
    topics: &[(&str, &[i32])],
) -> AddPartitionsToTxnRequest {
    let topics: Vec<add_partitions_to_txn_request::AddPartitionsToTxnTopic> = topics
        .iter()
        .map(|(t, ps)| {
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(tn(t))
                .with_partitions(ps.to_vec())
        })
        .collect();
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txid(id))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(topics)
}

/// AddPartitionsToTxn v0-3 (the client form); the per-partition results
/// sorted (their order is a map's).
async fn add_parts(
    c: &mut Conn,
    v: i16,
    req: &AddPartitionsToTxnRequest,
) -> Reply<AddPartitionsToTxnResponse> {
    let r: Reply<AddPartitionsToTxnResponse> =
        txn_call_raw(c, ApiKey::AddPartitionsToTxn, v, req).await;
    r.map(|mut r| {
        r.throttle_time_ms = 0;
        r.results_by_topic_v3_and_below
            .sort_by(|a, b| a.name.0.cmp(&b.name.0));
        for t in &mut r.results_by_topic_v3_and_below {
            t.results_by_partition.sort_by_key(|p| p.partition_index);
        }
        r
    })
}

/// The error code of a one-partition AddPartitionsToTxn v0-3 (for retries).
fn add_parts_code(r: &AddPartitionsToTxnResponse) -> i16 {
    r.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| &t.results_by_partition)
        .map(|p| p.partition_error_code)
        .find(|&c| c != 0)
        .unwrap_or(0)
}

fn end_req(id: &str, pid: i64, epoch: i16, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(txid(id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit)
}

async fn end_txn(c: &mut Conn, v: i16, req: &EndTxnRequest) -> Reply<EndTxnResponse> {
    txn_call_raw(c, ApiKey::EndTxn, v, req).await
}

fn label_end(pids: &mut Pids, r: Reply<EndTxnResponse>) -> Reply<EndTxnResponse> {
    r.map(|mut r| {
        r.throttle_time_ms = 0;
        pids.pid(&mut r.producer_id);
        r
    })
}

/// A transactional record batch (attributes bit 4) of `n` records with
/// timestamps ts0() + rel_ts.., as a transactional producer sends it.
fn txn_batch(n: i64, rel_ts: i64, pid: i64, epoch: i16, seq: i32) -> Bytes {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: seq + i as i32,
            timestamp: ts0() + rel_ts + i,
            key: Some(Bytes::from(format!("tkey-{i}"))),
            value: Some(Bytes::from(format!("tvalue-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    out.freeze()
}

/// A transactional Produce of one batch to one partition; the partition
/// result.
async fn txn_produce(
    c: &mut Conn,
    v: i16,
    id: &str,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> Reply<produce_response::PartitionProduceResponse> {
    let req = produce_req(topic, partition, records).with_transactional_id(Some(txid(id)));
    produced(txn_call(c, ApiKey::Produce, v, &req).await)
}

/// A Fetch result for the transaction scenarios: producer ids labeled,
/// control batches decoded, their (broker-clock) timestamps dropped.
#[derive(Debug)]
#[allow(dead_code)]
struct TxnFetch {
    error_code: i16,
    partition_error_code: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    /// (producer, first offset)
    aborted_transactions: Option<Vec<(i64, i64)>>,
    batches: Vec<TxnBatch>,
    /// Bytes after the last whole batch (a partial batch).
    trailing_bytes: usize,
}

#[derive(Debug)]
#[allow(dead_code)]
struct TxnBatch {
    base_offset: i64,
    last_offset_delta: i32,
    record_count: i32,
    /// Bit 4 transactional, bit 5 control.
    attributes: i16,
    producer: i64,
    producer_epoch: i16,
    base_sequence: i32,
    partition_leader_epoch: i32,
    /// (base, max) timestamps, see rel_ts().
    timestamps: (i64, i64),
    /// Control batches: the marker's key (version, type 0 abort / 1 commit).
    control: Option<(i16, i16)>,
}

fn read_varint(b: &mut Bytes) -> i64 {
    let mut v: u64 = 0;
    let mut shift = 0;
    while b.has_remaining() {
        let x = b.get_u8();
        v |= u64::from(x & 0x7f) << shift;
        if x & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn txn_batches(pids: &mut Pids, b: &Bytes) -> (Vec<TxnBatch>, usize) {
    let mut out = Vec::new();
    let mut buf = b.clone();
    while buf.remaining() >= 61 {
        let len = i32::from_be_bytes(buf[8..12].try_into().unwrap());
        if buf.remaining() < 12 + len.max(0) as usize {
            break; // a trailing partial batch
        }
        let mut h = buf.slice(..12 + len as usize);
        buf.advance(12 + len as usize);
        let base_offset = h.get_i64();
        h.advance(4); // length
        let partition_leader_epoch = h.get_i32();
        h.advance(1 + 4); // magic, crc
        let attributes = h.get_i16();
        let last_offset_delta = h.get_i32();
        let base_ts = h.get_i64();
        let max_ts = h.get_i64();
        let producer_id = h.get_i64();
        let producer_epoch = h.get_i16();
        let base_sequence = h.get_i32();
        let record_count = h.get_i32();
        let control = (attributes & 0x20 != 0).then(|| {
            // The first record: length, attributes, timestamp delta,
            // offset delta, key length, key = (version i16, type i16).
            read_varint(&mut h);
            h.advance(1);
            read_varint(&mut h);
            read_varint(&mut h);
            let key_len = read_varint(&mut h);
            if key_len >= 4 && h.remaining() >= 4 {
                (h.get_i16(), h.get_i16())
            } else {
                (-1, -1)
            }
        });
        out.push(TxnBatch {
            base_offset,
            last_offset_delta,
            record_count,
            attributes,
            producer: pids.l(producer_id),
            producer_epoch,
            base_sequence,
            partition_leader_epoch,
            timestamps: (rel_ts(base_ts), rel_ts(max_ts)),
            control,
        });
    }
    (out, buf.remaining())
}

fn fetch_iso(topic: &str, partition: i32, offset: i64, isolation: i8) -> FetchRequest {
    fetch_req(topic, &[(partition, offset)], 1 << 20, 1 << 20).with_isolation_level(isolation)
}

/// A one-partition Fetch, summarized.
async fn txn_fetch_call(
    c: &mut Conn,
    pids: &mut Pids,
    v: i16,
    req: &FetchRequest,
) -> Reply<TxnFetch> {
    let r: Reply<FetchResponse> = txn_call_raw(c, ApiKey::Fetch, v, req).await;
    r.map(|r| {
        let p = &r.responses[0].partitions[0];
        let (batches, trailing_bytes) = p
            .records
            .as_ref()
            .map(|b| txn_batches(pids, b))
            .unwrap_or_default();
        TxnFetch {
            error_code: r.error_code,
            partition_error_code: p.error_code,
            high_watermark: p.high_watermark,
            last_stable_offset: p.last_stable_offset,
            log_start_offset: p.log_start_offset,
            aborted_transactions: p.aborted_transactions.as_ref().map(|a| {
                a.iter()
                    .map(|t| (pids.l(t.producer_id.0), t.first_offset))
                    .collect()
            }),
            batches,
            trailing_bytes,
        }
    })
}

/// ListOffsets v8 of partition 0 at `ts` with an isolation level: (error
/// code, offset).
async fn txn_list_offset(c: &mut Conn, topic: &str, ts: i64, isolation: i8) -> Reply<(i16, i64)> {
    let r: Reply<ListOffsetsResponse> = call(
        c,
        ApiKey::ListOffsets,
        8,
        &list_offsets_req(topic, &[0], ts).with_isolation_level(isolation),
    )
    .await;
    r.map(|r| {
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.offset)
    })
}

/// Polls ListOffsets latest (read_committed) until the last stable offset
/// reaches `want` (the transaction markers are written asynchronously).
/// Not recorded: the steps after it show the state.
async fn wait_lso(c: &mut Conn, ready: bool, topic: &str, want: i64) {
    let deadline = Instant::now() + TXN_WAIT;
    while ready && Instant::now() < deadline {
        let r = txn_list_offset(c, topic, -1, 1).await;
        if r.as_ref().is_some_and(|&(e, o)| e == 0 && o >= want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn describe_txn_req(ids: &[&str]) -> DescribeTransactionsRequest {
    DescribeTransactionsRequest::default()
        .with_transactional_ids(ids.iter().map(|i| txid(i)).collect())
}

/// DescribeTransactions with producer ids labeled (of entries without
/// error), start times reduced to set (0) or not (-1), topics and
/// partitions sorted.
async fn describe_txns(
    c: &mut Conn,
    pids: &mut Pids,
    ids: &[&str],
) -> Reply<DescribeTransactionsResponse> {
    let r: Reply<DescribeTransactionsResponse> =
        txn_call_raw(c, ApiKey::DescribeTransactions, 0, &describe_txn_req(ids)).await;
    r.map(|mut r| {
        r.throttle_time_ms = 0;
        for s in &mut r.transaction_states {
            // Kafka fills an unknown id's entry with zeros: not a producer.
            if s.error_code == 0 {
                pids.pid(&mut s.producer_id);
            }
            if s.transaction_start_time_ms >= 0 {
                s.transaction_start_time_ms = 0;
            }
            s.topics.sort_by(|a, b| a.topic.0.cmp(&b.topic.0));
            for t in &mut s.topics {
                t.partitions.sort();
            }
        }
        r
    })
}

/// Polls DescribeTransactions until `id` is in a state that `state`
/// starts (not recorded).
async fn wait_txn_state(c: &mut Conn, ready: bool, id: &str, state: &str) {
    let deadline = Instant::now() + TXN_WAIT;
    while ready && Instant::now() < deadline {
        let r: Reply<DescribeTransactionsResponse> =
            txn_call_raw(c, ApiKey::DescribeTransactions, 0, &describe_txn_req(&[id])).await;
        if r.as_ref().is_some_and(|r| {
            r.transaction_states
                .first()
                .is_some_and(|s| s.transaction_state.as_str().starts_with(state))
        }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// ListTransactions restricted to this scenario's ids (prefix), sorted,
/// producer ids labeled.
async fn list_txns(
    c: &mut Conn,
    pids: &mut Pids,
    v: i16,
    req: &ListTransactionsRequest,
    prefix: &str,
) -> Reply<ListTransactionsResponse> {
    let r: Reply<ListTransactionsResponse> =
        txn_call_raw(c, ApiKey::ListTransactions, v, req).await;
    r.map(|mut r| {
        r.throttle_time_ms = 0;
        r.transaction_states
            .retain(|s| s.transactional_id.0.as_str().starts_with(prefix));
        r.transaction_states
            .sort_by(|a, b| a.transactional_id.0.cmp(&b.transactional_id.0));
        for s in &mut r.transaction_states {
            pids.pid(&mut s.producer_id);
        }
        r
    })
}

/// DescribeProducers: producer ids labeled, coordinator epochs reduced to
/// known (0) or not (-1), timestamps as rel_ts().
async fn describe_producers(
    c: &mut Conn,
    pids: &mut Pids,
    topic: &str,
    partitions: &[i32],
) -> Reply<DescribeProducersResponse> {
    let req = DescribeProducersRequest::default().with_topics(vec![
        describe_producers_request::TopicRequest::default()
            .with_name(tn(topic))
            .with_partition_indexes(partitions.to_vec()),
    ]);
    let r: Reply<DescribeProducersResponse> =
        txn_call_raw(c, ApiKey::DescribeProducers, 0, &req).await;
    r.map(|mut r| {
        r.throttle_time_ms = 0;
        for t in &mut r.topics {
            for p in &mut t.partitions {
                msg(&mut p.error_message, p.error_code);
                for s in &mut p.active_producers {
                    pids.pid(&mut s.producer_id);
                    if s.coordinator_epoch >= 0 {
                        s.coordinator_epoch = 0;
                    }
                    s.last_timestamp = rel_ts(s.last_timestamp);
                }
                p.active_producers.sort_by_key(|s| s.producer_id.0);
            }
            t.partitions.sort_by_key(|p| p.partition_index);
        }
        r
    })
}

/// T1. FindCoordinator for transactional ids, every version.
fn txn_find_coordinator(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = Conn::new(&ctx).await;
        let id = ctx.name("tfc");
        o.rec(
            "coordinator answers (polled)",
            &wait_txn_coordinator(&mut c, &id).await,
        );
        for v in 1..=3 {
            let mut c = ctx.client().await;
            let r: Reply<FindCoordinatorResponse> = call(
                &mut c,
                ApiKey::FindCoordinator,
                v,
                &FindCoordinatorRequest::default()
                    .with_key(sb(&id))
                    .with_key_type(1),
            )
            .await;
            o.rec(format!("v{v} key_type=1"), &r);
        }
        for v in 4..=6 {
            let mut c = ctx.client().await;
            let r: Reply<FindCoordinatorResponse> = call(
                &mut c,
                ApiKey::FindCoordinator,
                v,
                &FindCoordinatorRequest::default()
                    .with_key_type(1)
                    .with_coordinator_keys(vec![sb(&id), sb(&ctx.name("tfc-2"))]),
            )
            .await;
            o.rec(format!("v{v} key_type=1, two ids"), &r);
        }
        let r: Reply<FindCoordinatorResponse> = call(
            &mut c,
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![sb("")]),
        )
        .await;
        o.rec("v4 key_type=1, empty id", &r);
        o
    })
}

/// T2. InitProducerId with a transactional id: timeouts, epoch bumps,
///     KIP-360 producer id / epoch pairs.
fn txn_init(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut p = Pids::default();
        let mut c = Conn::new(&ctx).await;
        let id = ctx.name("tinit");
        let ready = wait_txn_coordinator(&mut c, &id).await;
        let code = |r: &InitProducerIdResponse| r.error_code;
        let (_, r) = settle!(
            ready,
            init_raw(&mut c, 4, &init_req(Some(&id), 60_000, -1, -1)).await,
            code
        );
        let (pid, e0) = r
            .as_ref()
            .map(|r| (r.producer_id.0, r.producer_epoch))
            .unwrap_or((-1, -1));
        o.rec("v4 new id, timeout 60000", &label_init(&mut p, r));
        for (label, tid, timeout) in [
            ("v4 timeout 0", ctx.name("tinit-zero"), 0),
            ("v4 timeout -1", ctx.name("tinit-neg"), -1),
            (
                "v4 timeout 900001 (> transaction.max.timeout.ms)",
                ctx.name("tinit-big"),
                900_001,
            ),
            (
                "v4 timeout 900000 (= transaction.max.timeout.ms)",
                ctx.name("tinit-max"),
                900_000,
            ),
        ] {
            let (_, r) = settle!(
                ready,
                init_raw(&mut c, 4, &init_req(Some(&tid), timeout, -1, -1)).await,
                code
            );
            o.rec(label, &label_init(&mut p, r));
        }
        let (_, r) = settle!(
            ready,
            init_raw(&mut c, 4, &init_req(Some(""), 60_000, -1, -1)).await,
            code
        );
        o.rec("v4 empty transactional id", &label_init(&mut p, r));
        let (_, r) = settle!(
            ready,
            init_raw(&mut c, 4, &init_req(Some(&id), 60_000, -1, -1)).await,
            code
        );
        o.rec(
            "v4 same id again (no producer id given)",
            &label_init(&mut p, r),
        );
        let e1 = e0 + 1;
        let (_, r) = settle!(
            ready,
            init_raw(&mut c, 3, &init_req(Some(&id), 60_000, pid, e1)).await,
            code
        );
        o.rec(
            "v3 same id, current producer id and epoch (KIP-360)",
            &label_init(&mut p, r),
        );
        let e2 = e1 + 1;
        let (_, r) = settle!(
            ready,
            init_raw(&mut c, 3, &init_req(Some(&id), 60_000, pid, e0)).await,
            code
        );
        o.rec(
            "v3 same id, current producer id, an old epoch",
            &label_init(&mut p, r),
        );
        let (_, r) = settle!(
            ready,
            init_raw(
                &mut c,
                3,
                &init_req(Some(&id), 60_000, pid ^ 0x4000_0000, e2)
            )
            .await,
            code
        );
        o.rec(
            "v3 same id, another producer id, current epoch",
            &label_init(&mut p, r),
        );
        let (_, r) = settle!(
            ready,
            init_raw(&mut c, 4, &init_req(Some(&id), 60_000, pid, e2 + 5)).await,
            code
        );
        o.rec(
            "v4 same id, current producer id, a future epoch",
            &label_init(&mut p, r),
        );
        let (_, r) = settle!(
            ready,
            init_raw(&mut c, 4, &init_req(Some(&id), 60_000, pid, -1)).await,
            code
        );
        o.rec(
            "v4 same id, producer id with epoch -1",
            &label_init(&mut p, r),
        );
        let (_, r) = settle!(
            ready,
            init_raw(&mut c, 5, &init_req(Some(&id), 60_000, -1, -1)).await,
            code
        );
        o.rec("v5 same id again", &label_init(&mut p, r));
        let (_, r) = settle!(
            ready,
            init_raw(&mut c, 0, &init_req(Some(&id), 60_000, -1, -1)).await,
            code
        );
        o.rec("v0 same id again", &label_init(&mut p, r));
        o
    })
}

/// T3. Transaction error codes: fenced and unknown producers, EndTxn out of
///     order, Produce to a partition not in the transaction, InitProducerId
///     during a transaction, offsets in a transaction, TV2 (Produce v12,
///     EndTxn v5).
fn txn_errors(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut p = Pids::default();
        let mut c = Conn::new(&ctx).await;
        let t = ctx.name("terr");
        let g = ctx.name("terr-group");
        let id = ctx.name("terr");
        o.rec(
            "create 3 partitions",
            &create_topic(&mut c, &t, 3, &[]).await,
        );
        let ready = wait_txn_coordinator(&mut c, &id).await;
        let ((pid, _), r) = init_txn(&mut c, ready, &mut p, &id).await;
        o.rec("InitProducerId", &r);
        let ((_, e), r) = init_txn(&mut c, ready, &mut p, &id).await;
        o.rec("InitProducerId again (epoch + 1)", &r);
        let stale = e - 1;
        let ac = |r: &AddPartitionsToTxnResponse| add_parts_code(r);
        for v in [1, 2, 3] {
            let (_, r) = settle!(
                ready,
                add_parts(&mut c, v, &add_parts_req(&id, pid, stale, &[(&t, &[0])])).await,
                ac
            );
            o.rec(format!("AddPartitionsToTxn v{v}, stale epoch"), &r);
        }
        let (_, r) = settle!(
            ready,
            add_parts(
                &mut c,
                3,
                &add_parts_req(&id, pid ^ 0x4000_0000, e, &[(&t, &[0])])
            )
            .await,
            ac
        );
        o.rec("AddPartitionsToTxn v3, another producer id", &r);
        let nope = ctx.name("terr-nope");
        let (_, r) = settle!(
            ready,
            add_parts(&mut c, 3, &add_parts_req(&nope, pid, e, &[(&t, &[0])])).await,
            ac
        );
        o.rec("AddPartitionsToTxn v3, unknown transactional id", &r);
        let ec = |r: &EndTxnResponse| r.error_code;
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 3, &end_req(&id, pid, e, true)).await,
            ec
        );
        o.rec(
            "EndTxn v3 commit, no partition added",
            &label_end(&mut p, r),
        );
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 3, &end_req(&id, pid, e, false)).await,
            ec
        );
        o.rec("EndTxn v3 abort, no partition added", &label_end(&mut p, r));
        let (_, r) = settle!(
            ready,
            add_parts(&mut c, 3, &add_parts_req(&id, pid, e, &[(&t, &[0, 9])])).await,
            ac
        );
        o.rec(
            "AddPartitionsToTxn v3, partitions 0 and 9 (no such partition)",
            &r,
        );
        let unknown_topic = ctx.name("terr-nope");
        let (_, r) = settle!(
            ready,
            add_parts(
                &mut c,
                3,
                &add_parts_req(&id, pid, e, &[(&unknown_topic, &[0])])
            )
            .await,
            ac
        );
        o.rec("AddPartitionsToTxn v3, unknown topic", &r);
        let (_, r) = settle!(
            ready,
            add_parts(&mut c, 3, &add_parts_req(&id, pid, e, &[(&t, &[0, 1])])).await,
            ac
        );
        o.rec("AddPartitionsToTxn v3, partitions 0 and 1", &r);
        let (_, r) = settle!(
            ready,
            add_parts(&mut c, 3, &add_parts_req(&id, pid, e, &[(&t, &[0])])).await,
            ac
        );
        o.rec("AddPartitionsToTxn v3, partition 0 again", &r);
        o.rec(
            "Produce v11 transactional, partition 0 (added)",
            &txn_produce(&mut c, 11, &id, &t, 0, txn_batch(2, 1000, pid, e, 0)).await,
        );
        o.rec(
            "Produce v11 transactional, partition 2 (not added)",
            &txn_produce(&mut c, 11, &id, &t, 2, txn_batch(2, 1000, pid, e, 0)).await,
        );
        o.rec(
            "Produce v9 transactional, partition 2 (not added)",
            &txn_produce(&mut c, 9, &id, &t, 2, txn_batch(2, 1000, pid, e, 0)).await,
        );
        o.rec(
            "Produce v3 transactional, partition 2 (not added)",
            &txn_produce(&mut c, 3, &id, &t, 2, txn_batch(2, 1000, pid, e, 0)).await,
        );
        o.rec(
            "Produce v12 transactional, partition 2 (not added)",
            &txn_produce(&mut c, 12, &id, &t, 2, txn_batch(2, 1000, pid, e, 0)).await,
        );
        o.rec(
            "DescribeTransactions after the produces",
            &describe_txns(&mut c, &mut p, &[&id]).await,
        );
        // KIP-360: InitProducerId while the transaction is ongoing aborts it;
        // CONCURRENT_TRANSACTIONS until the abort is complete.
        let code = |r: &InitProducerIdResponse| r.error_code;
        let (first, r) = settle!(
            ready,
            init_raw(&mut c, 4, &init_req(Some(&id), 60_000, -1, -1)).await,
            code
        );
        let e = r.as_ref().map(|r| r.producer_epoch).unwrap_or(-1);
        // Kafka answers CONCURRENT_TRANSACTIONS until its abort markers are
        // written; a broker that writes them at once may succeed directly.
        o.info(
            "InitProducerId during the transaction: first error code",
            format!("{first:?}"),
        );
        o.rec(
            "InitProducerId during the transaction: final",
            &label_init(&mut p, r),
        );
        o.rec(
            "DescribeTransactions after InitProducerId",
            &describe_txns(&mut c, &mut p, &[&id]).await,
        );
        let r: Reply<ListOffsetsResponse> = call(
            &mut c,
            ApiKey::ListOffsets,
            8,
            &list_offsets_req(&t, &[0, 1, 2], -1),
        )
        .await;
        // Kafka answers in its own order.
        let r = r.map(|mut r| {
            r.topics[0].partitions.sort_by_key(|p| p.partition_index);
            r
        });
        o.rec(
            "log end offsets (every added partition has an abort marker)",
            &r,
        );
        // Offsets in a transaction.
        wait_group_coordinator(&mut c, &g).await;
        let aoc = |r: &AddOffsetsToTxnResponse| r.error_code;
        let aor = AddOffsetsToTxnRequest::default()
            .with_transactional_id(txid(&id))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(e)
            .with_group_id(gid(&g));
        let (_, r) = settle!(
            ready,
            txn_call_raw(&mut c, ApiKey::AddOffsetsToTxn, 3, &aor).await,
            aoc
        );
        o.rec(
            "AddOffsetsToTxn v3",
            &r.map(|mut r: AddOffsetsToTxnResponse| {
                r.throttle_time_ms = 0;
                r
            }),
        );
        let (_, r) = settle!(
            ready,
            txn_call_raw(
                &mut c,
                ApiKey::AddOffsetsToTxn,
                3,
                &aor.clone().with_producer_epoch(e - 1)
            )
            .await,
            aoc
        );
        o.rec(
            "AddOffsetsToTxn v3, stale epoch",
            &r.map(|mut r: AddOffsetsToTxnResponse| {
                r.throttle_time_ms = 0;
                r
            }),
        );
        let toc = TxnOffsetCommitRequest::default()
            .with_transactional_id(txid(&id))
            .with_group_id(gid(&g))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(e)
            .with_generation_id(-1)
            .with_member_id(sb(""))
            .with_topics(vec![
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(tn(&t))
                    .with_partitions(vec![
                        txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(1)
                            .with_committed_leader_epoch(-1)
                            .with_committed_metadata(Some(sb("txn"))),
                    ]),
            ]);
        for v in [3, 0] {
            let r: Reply<TxnOffsetCommitResponse> =
                txn_call_raw(&mut c, ApiKey::TxnOffsetCommit, v, &toc).await;
            o.rec(
                format!("TxnOffsetCommit v{v}"),
                &r.map(|mut r| {
                    r.throttle_time_ms = 0;
                    r
                }),
            );
        }
        let r: Reply<TxnOffsetCommitResponse> = txn_call_raw(
            &mut c,
            ApiKey::TxnOffsetCommit,
            3,
            &toc.clone().with_producer_epoch(e - 1),
        )
        .await;
        o.rec(
            "TxnOffsetCommit v3, stale epoch",
            &r.map(|mut r| {
                r.throttle_time_ms = 0;
                r
            }),
        );
        let r: Reply<OffsetFetchResponse> = call(
            &mut c,
            ApiKey::OffsetFetch,
            8,
            &offset_fetch_v8(&[(&g, Some((&t, &[0])))]),
        )
        .await;
        o.rec("OffsetFetch v8 (not stable) before EndTxn", &r);
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 3, &end_req(&id, pid, e, true)).await,
            ec
        );
        o.rec("EndTxn v3 commit", &label_end(&mut p, r));
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 3, &end_req(&id, pid, e, true)).await,
            ec
        );
        o.rec("EndTxn v3 commit again (retry)", &label_end(&mut p, r));
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 3, &end_req(&id, pid, e, false)).await,
            ec
        );
        o.rec("EndTxn v3 abort after the commit", &label_end(&mut p, r));
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 3, &end_req(&id, pid, e - 1, true)).await,
            ec
        );
        o.rec("EndTxn v3 commit, stale epoch", &label_end(&mut p, r));
        let (_, r) = settle!(
            ready,
            add_parts(&mut c, 3, &add_parts_req(&id, pid, e - 1, &[(&t, &[1])])).await,
            ac
        );
        o.rec("AddPartitionsToTxn v3 after the commit, stale epoch", &r);
        let mut stable = OffsetFetchRequest::default().with_require_stable(true);
        stable.groups = offset_fetch_v8(&[(&g, Some((&t, &[0])))]).groups;
        let oc = |r: &OffsetFetchResponse| {
            r.groups[0]
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .map(|p| p.error_code)
                .unwrap_or(r.groups[0].error_code)
        };
        // UNSTABLE_OFFSET_COMMIT until the commit marker is written.
        let deadline = Instant::now() + TXN_WAIT;
        let r = loop {
            let r: Reply<OffsetFetchResponse> = call(&mut c, ApiKey::OffsetFetch, 8, &stable).await;
            if ready && r.as_ref().map(oc) == Some(88) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            break r;
        };
        o.rec("OffsetFetch v8 require_stable after the commit", &r);
        // Transaction version 2: the partition is added by Produce v12, and
        // EndTxn v5 bumps the epoch.
        o.rec(
            "TV2: Produce v12 transactional, partition 1, no AddPartitionsToTxn",
            &txn_produce(&mut c, 12, &id, &t, 1, txn_batch(1, 2000, pid, e, 0)).await,
        );
        o.rec(
            "TV2: DescribeTransactions after the produce",
            &describe_txns(&mut c, &mut p, &[&id]).await,
        );
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 5, &end_req(&id, pid, e, true)).await,
            ec
        );
        let e5 = r.as_ref().map(|r| r.producer_epoch).unwrap_or(-1);
        o.rec("TV2: EndTxn v5 commit", &label_end(&mut p, r));
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 5, &end_req(&id, pid, e, true)).await,
            ec
        );
        o.rec(
            "TV2: EndTxn v5 commit again with the request's epoch (retry)",
            &label_end(&mut p, r),
        );
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 5, &end_req(&id, pid, e5, false)).await,
            ec
        );
        o.rec(
            "TV2: EndTxn v5 abort with the new epoch, nothing in the transaction",
            &label_end(&mut p, r),
        );
        o.rec(
            "TV2: Produce v12 with the old epoch",
            &txn_produce(&mut c, 12, &id, &t, 1, txn_batch(1, 2000, pid, e, 1)).await,
        );
        wait_txn_state(&mut c, ready, &id, "Complete").await;
        o.rec(
            "TV2: DescribeTransactions at the end",
            &describe_txns(&mut c, &mut p, &[&id]).await,
        );
        o
    })
}

/// T4. read_committed Fetch and ListOffsets around an aborted and a
///     committed transaction.
fn txn_fetch(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut p = Pids::default();
        let mut c = Conn::new(&ctx).await;
        let t = ctx.name("tfetch");
        let id = ctx.name("tfetch");
        o.rec("create", &create_topic(&mut c, &t, 1, &[]).await);
        let ready = wait_txn_coordinator(&mut c, &id).await;
        o.rec(
            "2 plain records (offsets 0-1)",
            &produced(
                produce(
                    &mut c,
                    &t,
                    0,
                    batch(2, ts0() + 1000, None, Compression::None),
                )
                .await,
            ),
        );
        let ((pid, e), r) = init_txn(&mut c, ready, &mut p, &id).await;
        o.rec("InitProducerId", &r);
        let ac = |r: &AddPartitionsToTxnResponse| add_parts_code(r);
        let (_, r) = settle!(
            ready,
            add_parts(&mut c, 3, &add_parts_req(&id, pid, e, &[(&t, &[0])])).await,
            ac
        );
        o.rec("AddPartitionsToTxn v3", &r);
        o.rec(
            "Produce v11: transactional batch of 3 (offsets 2-4)",
            &txn_produce(&mut c, 11, &id, &t, 0, txn_batch(3, 2000, pid, e, 0)).await,
        );
        let steps = |label: &'static str| label;
        for (label, v, iso) in [
            ("v12 read_committed", 12, 1),
            ("v12 read_uncommitted", 12, 0),
            ("v4 read_committed", 4, 1),
        ] {
            o.rec(
                format!("open transaction: Fetch {}", steps(label)),
                &txn_fetch_call(&mut c, &mut p, v, &fetch_iso(&t, 0, 0, iso)).await,
            );
        }
        o.rec(
            "open transaction: ListOffsets latest read_committed",
            &txn_list_offset(&mut c, &t, -1, 1).await,
        );
        o.rec(
            "open transaction: ListOffsets latest read_uncommitted",
            &txn_list_offset(&mut c, &t, -1, 0).await,
        );
        o.rec(
            "open transaction: Fetch v12 read_committed at the LSO",
            &txn_fetch_call(&mut c, &mut p, 12, &fetch_iso(&t, 0, 2, 1)).await,
        );
        let ec = |r: &EndTxnResponse| r.error_code;
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 3, &end_req(&id, pid, e, false)).await,
            ec
        );
        o.rec("EndTxn v3 abort", &label_end(&mut p, r));
        wait_lso(&mut c, ready, &t, 6).await;
        for (label, v, iso, from) in [
            ("v12 read_committed from 0", 12, 1, 0),
            ("v12 read_uncommitted from 0", 12, 0, 0),
            ("v4 read_committed from 0", 4, 1, 0),
            (
                "v12 read_committed from 3 (inside the aborted batch)",
                12,
                1,
                3,
            ),
            ("v12 read_committed from 5 (the abort marker)", 12, 1, 5),
        ] {
            o.rec(
                format!("aborted: Fetch {label}"),
                &txn_fetch_call(&mut c, &mut p, v, &fetch_iso(&t, 0, from, iso)).await,
            );
        }
        o.rec(
            "aborted: ListOffsets latest read_committed",
            &txn_list_offset(&mut c, &t, -1, 1).await,
        );
        o.rec(
            "aborted: ListOffsets latest read_uncommitted",
            &txn_list_offset(&mut c, &t, -1, 0).await,
        );
        // A committed transaction (TV1: same epoch, sequence continues).
        let (_, r) = settle!(
            ready,
            add_parts(&mut c, 3, &add_parts_req(&id, pid, e, &[(&t, &[0])])).await,
            ac
        );
        o.rec("AddPartitionsToTxn v3 (second transaction)", &r);
        o.rec(
            "Produce v11: transactional batch of 2 (offsets 6-7)",
            &txn_produce(&mut c, 11, &id, &t, 0, txn_batch(2, 3000, pid, e, 3)).await,
        );
        o.rec(
            "open transaction 2: Fetch v12 read_committed from 6",
            &txn_fetch_call(&mut c, &mut p, 12, &fetch_iso(&t, 0, 6, 1)).await,
        );
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 3, &end_req(&id, pid, e, true)).await,
            ec
        );
        o.rec("EndTxn v3 commit", &label_end(&mut p, r));
        wait_lso(&mut c, ready, &t, 9).await;
        for (label, v, iso, from) in [
            ("v12 read_committed from 6", 12, 1, 6),
            ("v12 read_committed from 0", 12, 1, 0),
            ("v12 read_uncommitted from 0", 12, 0, 0),
        ] {
            o.rec(
                format!("committed: Fetch {label}"),
                &txn_fetch_call(&mut c, &mut p, v, &fetch_iso(&t, 0, from, iso)).await,
            );
        }
        o.rec(
            "committed: ListOffsets latest read_committed",
            &txn_list_offset(&mut c, &t, -1, 1).await,
        );
        o.rec(
            "committed: ListOffsets latest read_uncommitted",
            &txn_list_offset(&mut c, &t, -1, 0).await,
        );
        o
    })
}

/// T5. DescribeTransactions, ListTransactions and DescribeProducers.
fn txn_describe(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut p = Pids::default();
        let mut c = Conn::new(&ctx).await;
        let t = ctx.name("tdesc");
        let prefix = ctx.name("tdesc");
        let (id1, id2) = (ctx.name("tdesc-1"), ctx.name("tdesc-2"));
        o.rec(
            "create 2 partitions",
            &create_topic(&mut c, &t, 2, &[]).await,
        );
        let ready = wait_txn_coordinator(&mut c, &id1).await;
        let ((pid1, e1), r) = init_txn(&mut c, ready, &mut p, &id1).await;
        o.rec("InitProducerId id 1", &r);
        let ((pid2, _), r) = init_txn(&mut c, ready, &mut p, &id2).await;
        o.rec("InitProducerId id 2", &r);
        o.rec(
            "DescribeTransactions: two fresh ids and an unknown one",
            &describe_txns(&mut c, &mut p, &[&id1, &id2, &ctx.name("tdesc-nope")]).await,
        );
        let ac = |r: &AddPartitionsToTxnResponse| add_parts_code(r);
        let (_, r) = settle!(
            ready,
            add_parts(&mut c, 3, &add_parts_req(&id1, pid1, e1, &[(&t, &[0, 1])])).await,
            ac
        );
        o.rec("AddPartitionsToTxn v3 id 1, partitions 0 and 1", &r);
        o.rec(
            "Produce v11 id 1 to partition 0 (batch of 2 at ts0 + 5000)",
            &txn_produce(&mut c, 11, &id1, &t, 0, txn_batch(2, 5000, pid1, e1, 0)).await,
        );
        o.rec(
            "DescribeTransactions id 1 ongoing",
            &describe_txns(&mut c, &mut p, &[&id1]).await,
        );
        let lt = ListTransactionsRequest::default().with_duration_filter(-1);
        o.rec(
            "ListTransactions v0, no filter",
            &list_txns(&mut c, &mut p, 0, &lt, &prefix).await,
        );
        o.rec(
            "ListTransactions v0, state Ongoing",
            &list_txns(
                &mut c,
                &mut p,
                0,
                &lt.clone().with_state_filters(vec![sb("Ongoing")]),
                &prefix,
            )
            .await,
        );
        o.rec(
            "ListTransactions v0, state Empty",
            &list_txns(
                &mut c,
                &mut p,
                0,
                &lt.clone().with_state_filters(vec![sb("Empty")]),
                &prefix,
            )
            .await,
        );
        o.rec(
            "ListTransactions v0, unknown state",
            &list_txns(
                &mut c,
                &mut p,
                0,
                &lt.clone().with_state_filters(vec![sb("NoSuchState")]),
                &prefix,
            )
            .await,
        );
        o.rec(
            "ListTransactions v0, producer id 2",
            &list_txns(
                &mut c,
                &mut p,
                0,
                &lt.clone().with_producer_id_filters(vec![ProducerId(pid2)]),
                &prefix,
            )
            .await,
        );
        o.rec(
            "ListTransactions v1, running longer than an hour",
            &list_txns(
                &mut c,
                &mut p,
                1,
                &lt.clone().with_duration_filter(3_600_000),
                &prefix,
            )
            .await,
        );
        o.rec(
            "ListTransactions v1, running longer than 0 ms",
            &list_txns(
                &mut c,
                &mut p,
                1,
                &lt.clone().with_duration_filter(0),
                &prefix,
            )
            .await,
        );
        o.rec(
            "ListTransactions v2, id pattern",
            &list_txns(
                &mut c,
                &mut p,
                2,
                &lt.clone()
                    .with_transactional_id_pattern(Some(sb(&format!("{}.*-2", ctx.run)))),
                &prefix,
            )
            .await,
        );
        o.rec(
            "DescribeProducers, ongoing",
            &describe_producers(&mut c, &mut p, &t, &[0, 1, 7]).await,
        );
        let ec = |r: &EndTxnResponse| r.error_code;
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 3, &end_req(&id1, pid1, e1, true)).await,
            ec
        );
        o.rec("EndTxn v3 commit id 1", &label_end(&mut p, r));
        wait_txn_state(&mut c, ready, &id1, "CompleteCommit").await;
        o.rec(
            "DescribeTransactions id 1 committed",
            &describe_txns(&mut c, &mut p, &[&id1]).await,
        );
        o.rec(
            "ListTransactions v0, state CompleteCommit",
            &list_txns(
                &mut c,
                &mut p,
                0,
                &lt.clone().with_state_filters(vec![sb("CompleteCommit")]),
                &prefix,
            )
            .await,
        );
        o.rec(
            "DescribeProducers, committed",
            &describe_producers(&mut c, &mut p, &t, &[0, 1]).await,
        );
        o
    })
}

/// T6. The features a client reads from ApiVersions to pick the transaction
///     protocol (transaction.version 2: Produce v12 adds partitions, EndTxn
///     v5 bumps the epoch).
fn txn_api_versions(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = ctx.client().await;
        let r: Reply<ApiVersionsResponse> = call(
            &mut c,
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(sb("gregor-differential"))
                .with_client_software_version(sb("1")),
        )
        .await;
        let Some(r) = r.as_ref() else {
            o.rec("ApiVersions v3", &r);
            return o;
        };
        let tv = |n: &StrBytes| n.as_str() == "transaction.version";
        o.rec(
            "supported transaction.version",
            &r.supported_features.iter().find(|f| tv(&f.name)),
        );
        o.rec(
            "finalized transaction.version",
            &r.finalized_features.iter().find(|f| tv(&f.name)),
        );
        o.rec(
            "finalized features epoch >= 0",
            &(r.finalized_features_epoch >= 0),
        );
        let mut names: Vec<String> = r
            .finalized_features
            .iter()
            .map(|f| {
                format!(
                    "{} {}-{}",
                    f.name.as_str(),
                    f.min_version_level,
                    f.max_version_level
                )
            })
            .collect();
        names.sort();
        o.info("finalized features", names.join("\n"));
        let mut names: Vec<String> = r
            .supported_features
            .iter()
            .map(|f| format!("{} {}-{}", f.name.as_str(), f.min_version, f.max_version))
            .collect();
        names.sort();
        o.info("supported features", names.join("\n"));
        let mut ranges = String::new();
        for k in &r.api_keys {
            if [10, 22, 24, 25, 26, 28, 65, 66, 61].contains(&k.api_key) {
                let _ = writeln!(ranges, "{} {}-{}", k.api_key, k.min_version, k.max_version);
            }
        }
        o.rec(
            "transaction API ranges (FindCoordinator, InitProducerId, AddPartitionsToTxn, \
             AddOffsetsToTxn, EndTxn, TxnOffsetCommit, DescribeProducers, \
             DescribeTransactions, ListTransactions)",
            &ranges,
        );
        o
    })
}

/// T7. Two transactions and a plain batch interleaved on one partition:
///     the LSO waits for the older open transaction; the aborted list names
///     only the aborted producer.
fn txn_interleaved(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut p = Pids::default();
        let mut c = Conn::new(&ctx).await;
        let t = ctx.name("tmix");
        let (a, b) = (ctx.name("tmix-a"), ctx.name("tmix-b"));
        o.rec("create", &create_topic(&mut c, &t, 1, &[]).await);
        let ready = wait_txn_coordinator(&mut c, &a).await;
        let ((pa, ea), r) = init_txn(&mut c, ready, &mut p, &a).await;
        o.rec("InitProducerId a", &r);
        let ((pb, eb), r) = init_txn(&mut c, ready, &mut p, &b).await;
        o.rec("InitProducerId b", &r);
        let ac = |r: &AddPartitionsToTxnResponse| add_parts_code(r);
        for (id, pid, e) in [(&a, pa, ea), (&b, pb, eb)] {
            let (_, r) = settle!(
                ready,
                add_parts(&mut c, 3, &add_parts_req(id, pid, e, &[(&t, &[0])])).await,
                ac
            );
            o.rec("AddPartitionsToTxn v3", &r);
        }
        o.rec(
            "a: 2 records (offsets 0-1)",
            &txn_produce(&mut c, 11, &a, &t, 0, txn_batch(2, 100, pa, ea, 0)).await,
        );
        o.rec(
            "b: 1 record (offset 2)",
            &txn_produce(&mut c, 11, &b, &t, 0, txn_batch(1, 200, pb, eb, 0)).await,
        );
        o.rec(
            "plain: 1 record (offset 3)",
            &produced(
                produce(
                    &mut c,
                    &t,
                    0,
                    batch(1, ts0() + 300, None, Compression::None),
                )
                .await,
            ),
        );
        o.rec(
            "a: 1 record (offset 4)",
            &txn_produce(&mut c, 11, &a, &t, 0, txn_batch(1, 400, pa, ea, 2)).await,
        );
        o.rec(
            "both open: Fetch v12 read_committed",
            &txn_fetch_call(&mut c, &mut p, 12, &fetch_iso(&t, 0, 0, 1)).await,
        );
        let ec = |r: &EndTxnResponse| r.error_code;
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 3, &end_req(&b, pb, eb, true)).await,
            ec
        );
        o.rec("EndTxn v3 commit b", &label_end(&mut p, r));
        wait_txn_state(&mut c, ready, &b, "CompleteCommit").await;
        o.rec(
            "b committed, a open: Fetch v12 read_committed",
            &txn_fetch_call(&mut c, &mut p, 12, &fetch_iso(&t, 0, 0, 1)).await,
        );
        o.rec(
            "b committed, a open: ListOffsets latest read_committed",
            &txn_list_offset(&mut c, &t, -1, 1).await,
        );
        o.rec(
            "b committed, a open: DescribeProducers",
            &describe_producers(&mut c, &mut p, &t, &[0]).await,
        );
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 3, &end_req(&a, pa, ea, false)).await,
            ec
        );
        o.rec("EndTxn v3 abort a", &label_end(&mut p, r));
        wait_lso(&mut c, ready, &t, 7).await;
        for (label, v, iso, from) in [
            ("v12 read_committed from 0", 12, 1, 0),
            ("v12 read_uncommitted from 0", 12, 0, 0),
            ("v12 read_committed from 3", 12, 1, 3),
            ("v12 read_committed from 5 (b's marker)", 12, 1, 5),
            ("v12 read_committed from 7 (the end)", 12, 1, 7),
        ] {
            o.rec(
                format!("both ended: Fetch {label}"),
                &txn_fetch_call(&mut c, &mut p, v, &fetch_iso(&t, 0, from, iso)).await,
            );
        }
        o.rec(
            "both ended: ListOffsets latest read_committed",
            &txn_list_offset(&mut c, &t, -1, 1).await,
        );
        o.rec(
            "both ended: DescribeProducers",
            &describe_producers(&mut c, &mut p, &t, &[0]).await,
        );
        o
    })
}

/// How long the coordinator may take to abort a timed-out transaction
/// (Kafka checks every transaction.abort.timed.out.transaction.cleanup.interval.ms,
/// 10 s by default).
const TXN_EXPIRY_WAIT: Duration = Duration::from_secs(35);

/// T8. A transaction that outlives its transaction_timeout_ms is aborted by
///     the coordinator, which bumps the epoch: the producer is fenced.
fn txn_timeout(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut p = Pids::default();
        let mut c = Conn::new(&ctx).await;
        let t = ctx.name("ttimeout");
        let id = ctx.name("ttimeout");
        o.rec("create", &create_topic(&mut c, &t, 1, &[]).await);
        let ready = wait_txn_coordinator(&mut c, &id).await;
        let code = |r: &InitProducerIdResponse| r.error_code;
        let (_, r) = settle!(
            ready,
            init_raw(&mut c, 4, &init_req(Some(&id), 1_000, -1, -1)).await,
            code
        );
        let (pid, e) = r
            .as_ref()
            .map(|r| (r.producer_id.0, r.producer_epoch))
            .unwrap_or((-1, -1));
        o.rec("InitProducerId, timeout 1000 ms", &label_init(&mut p, r));
        let ac = |r: &AddPartitionsToTxnResponse| add_parts_code(r);
        let (_, r) = settle!(
            ready,
            add_parts(&mut c, 3, &add_parts_req(&id, pid, e, &[(&t, &[0])])).await,
            ac
        );
        o.rec("AddPartitionsToTxn v3", &r);
        o.rec(
            "Produce v11: 2 records",
            &txn_produce(&mut c, 11, &id, &t, 0, txn_batch(2, 0, pid, e, 0)).await,
        );
        let deadline = Instant::now() + TXN_EXPIRY_WAIT;
        let mut aborted = false;
        while ready && Instant::now() < deadline {
            let r: Reply<DescribeTransactionsResponse> = txn_call_raw(
                &mut c,
                ApiKey::DescribeTransactions,
                0,
                &describe_txn_req(&[&id]),
            )
            .await;
            if r.as_ref().is_some_and(|r| {
                r.transaction_states
                    .first()
                    .is_some_and(|s| s.transaction_state.as_str() == "CompleteAbort")
            }) {
                aborted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        o.rec(
            format!("the coordinator aborted it within {TXN_EXPIRY_WAIT:?}"),
            &aborted,
        );
        o.rec(
            "DescribeTransactions after the expiry",
            &describe_txns(&mut c, &mut p, &[&id]).await,
        );
        o.rec(
            "Produce v11 with the old epoch",
            &txn_produce(&mut c, 11, &id, &t, 0, txn_batch(1, 10, pid, e, 2)).await,
        );
        let ec = |r: &EndTxnResponse| r.error_code;
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 3, &end_req(&id, pid, e, true)).await,
            ec
        );
        o.rec("EndTxn v3 commit with the old epoch", &label_end(&mut p, r));
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 3, &end_req(&id, pid, e, false)).await,
            ec
        );
        o.rec("EndTxn v3 abort with the old epoch", &label_end(&mut p, r));
        let (_, r) = settle!(
            ready,
            add_parts(&mut c, 3, &add_parts_req(&id, pid, e, &[(&t, &[0])])).await,
            ac
        );
        o.rec("AddPartitionsToTxn v3 with the old epoch", &r);
        wait_lso(&mut c, ready, &t, 3).await;
        o.rec(
            "Fetch v12 read_committed",
            &txn_fetch_call(&mut c, &mut p, 12, &fetch_iso(&t, 0, 0, 1)).await,
        );
        let (_, r) = settle!(
            ready,
            init_raw(&mut c, 4, &init_req(Some(&id), 60_000, pid, e)).await,
            code
        );
        o.rec(
            "InitProducerId v4 with the old producer id and epoch (KIP-360)",
            &label_init(&mut p, r),
        );
        o
    })
}

/// T9. Transaction version 2 as a Kafka 4 Java producer drives it: no
///     AddPartitionsToTxn (Produce v12 adds the partition), offsets with
///     AddOffsetsToTxn v4 + TxnOffsetCommit v5, EndTxn v5 (the epoch bumps
///     on every end, markers carry the new epoch, sequences restart at 0).
fn txn_tv2(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut p = Pids::default();
        let mut c = Conn::new(&ctx).await;
        let t = ctx.name("ttv2");
        let g = ctx.name("ttv2-group");
        let id = ctx.name("ttv2");
        o.rec(
            "create 2 partitions",
            &create_topic(&mut c, &t, 2, &[]).await,
        );
        let ready = wait_txn_coordinator(&mut c, &id).await;
        wait_group_coordinator(&mut c, &g).await;
        let code = |r: &InitProducerIdResponse| r.error_code;
        let (_, r) = settle!(
            ready,
            init_raw(&mut c, 5, &init_req(Some(&id), 60_000, -1, -1)).await,
            code
        );
        let (pid, e) = r
            .as_ref()
            .map(|r| (r.producer_id.0, r.producer_epoch))
            .unwrap_or((-1, -1));
        o.rec("InitProducerId v5", &label_init(&mut p, r));
        for part in [0, 1] {
            o.rec(
                format!("txn 1: Produce v12 to partition {part}, 2 records"),
                &txn_produce(&mut c, 12, &id, &t, part, txn_batch(2, 100, pid, e, 0)).await,
            );
        }
        o.rec(
            "txn 1: DescribeTransactions",
            &describe_txns(&mut c, &mut p, &[&id]).await,
        );
        let aor = AddOffsetsToTxnRequest::default()
            .with_transactional_id(txid(&id))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(e)
            .with_group_id(gid(&g));
        let aoc = |r: &AddOffsetsToTxnResponse| r.error_code;
        let (_, r) = settle!(
            ready,
            txn_call_raw(&mut c, ApiKey::AddOffsetsToTxn, 4, &aor).await,
            aoc
        );
        o.rec(
            "txn 1: AddOffsetsToTxn v4",
            &r.map(|mut r: AddOffsetsToTxnResponse| {
                r.throttle_time_ms = 0;
                r
            }),
        );
        let toc = TxnOffsetCommitRequest::default()
            .with_transactional_id(txid(&id))
            .with_group_id(gid(&g))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(e)
            .with_generation_id(-1)
            .with_member_id(sb(""))
            .with_topics(vec![
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(tn(&t))
                    .with_partitions(vec![
                        txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(1)
                            .with_committed_offset(7)
                            .with_committed_leader_epoch(-1)
                            .with_committed_metadata(Some(sb("tv2"))),
                    ]),
            ]);
        let r: Reply<TxnOffsetCommitResponse> =
            txn_call_raw(&mut c, ApiKey::TxnOffsetCommit, 5, &toc).await;
        o.rec(
            "txn 1: TxnOffsetCommit v5",
            &r.map(|mut r| {
                r.throttle_time_ms = 0;
                r
            }),
        );
        let ec = |r: &EndTxnResponse| r.error_code;
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 5, &end_req(&id, pid, e, true)).await,
            ec
        );
        let e2 = r.as_ref().map(|r| r.producer_epoch).unwrap_or(-1);
        o.rec("txn 1: EndTxn v5 commit", &label_end(&mut p, r));
        wait_txn_state(&mut c, ready, &id, "Complete").await;
        o.rec(
            "txn 1 ended: DescribeTransactions",
            &describe_txns(&mut c, &mut p, &[&id]).await,
        );
        let mut stable = OffsetFetchRequest::default().with_require_stable(true);
        stable.groups = offset_fetch_v8(&[(&g, Some((&t, &[1])))]).groups;
        let r: Reply<OffsetFetchResponse> = call(&mut c, ApiKey::OffsetFetch, 8, &stable).await;
        o.rec("txn 1 ended: OffsetFetch v8 require_stable", &r);
        o.rec(
            "txn 2: Produce v12 with the old epoch",
            &txn_produce(&mut c, 12, &id, &t, 0, txn_batch(1, 200, pid, e, 2)).await,
        );
        o.rec(
            "txn 2: Produce v12 with the new epoch, sequence 0",
            &txn_produce(&mut c, 12, &id, &t, 0, txn_batch(1, 200, pid, e2, 0)).await,
        );
        let (_, r) = settle!(
            ready,
            end_txn(&mut c, 5, &end_req(&id, pid, e2, false)).await,
            ec
        );
        o.rec("txn 2: EndTxn v5 abort", &label_end(&mut p, r));
        wait_lso(&mut c, ready, &t, 5).await;
        for (label, iso) in [("read_committed", 1), ("read_uncommitted", 0)] {
            o.rec(
                format!("partition 0: Fetch v12 {label}"),
                &txn_fetch_call(&mut c, &mut p, 12, &fetch_iso(&t, 0, 0, iso)).await,
            );
        }
        wait_lso(&mut c, ready, &t, 3).await;
        o.rec(
            "partition 1: Fetch v12 read_committed",
            &txn_fetch_call(&mut c, &mut p, 12, &fetch_iso(&t, 1, 0, 1)).await,
        );
        o.rec(
            "DescribeProducers",
            &describe_producers(&mut c, &mut p, &t, &[0, 1]).await,
        );
        o
    })
}

// ---------------------------------------------------------------------------
// Admin scenarios (issue 10): the APIs Kafka's own tools use to change a
// live cluster. Every call goes through a `Conn` (a broker closes the
// connection on an API it does not support; the next step still runs), and
// where Kafka applies a change asynchronously (KRaft: the controller commits,
// the broker's metadata image follows) a step polls until the expected state
// and records that; a broker that never reaches it is recorded as it is
// after ADMIN_WAIT.
// ---------------------------------------------------------------------------

/// How long a step waits for an admin change to become visible.
const ADMIN_WAIT: Duration = Duration::from_secs(10);
/// How long one admin scenario may wait in all for states that never come
/// (a broker that does not apply a change), so that it still finishes
/// within SCENARIO_TIMEOUT and its steps are compared.
const ADMIN_SETTLE_BUDGET: Duration = Duration::from_secs(20);

/// When a poll for an admin change gives up: ADMIN_WAIT from now, or less
/// when the connection's budget is short.
fn settle_deadline(c: &Conn) -> Instant {
    Instant::now() + ADMIN_WAIT.min(c.settle_budget)
}

/// Charges a poll that gave up to the connection's budget.
fn settle_gave_up(c: &mut Conn, started: Instant) {
    c.settle_budget = c.settle_budget.saturating_sub(started.elapsed());
}

/// ConfigResource types (Kafka's ConfigResource.Type).
const RES_TOPIC: i8 = 2;
const RES_BROKER: i8 = 4;
/// IncrementalAlterConfigs operations (Kafka's AlterConfigOp.OpType).
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// The name of a broker resource: its node id (>= 0) is blanked like node
/// ids elsewhere; "" (the cluster default) stays.
fn broker_resource(rtype: i8, name: &mut StrBytes) {
    if rtype == RES_BROKER && !name.is_empty() {
        *name = StrBytes::from_static_str("<node id>");
    }
}

impl Norm for CreatePartitionsResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for r in &mut self.results {
            msg(&mut r.error_message, r.error_code);
        }
        self
    }
}

impl Norm for IncrementalAlterConfigsResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for r in &mut self.responses {
            msg(&mut r.error_message, r.error_code);
            broker_resource(r.resource_type, &mut r.resource_name);
        }
        self
    }
}

impl Norm for AlterConfigsResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for r in &mut self.responses {
            msg(&mut r.error_message, r.error_code);
            broker_resource(r.resource_type, &mut r.resource_name);
        }
        self
    }
}

impl Norm for DescribeConfigsResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for r in &mut self.results {
            msg(&mut r.error_message, r.error_code);
            broker_resource(r.resource_type, &mut r.resource_name);
            r.configs.sort_by(|a, b| a.name.cmp(&b.name));
            for c in &mut r.configs {
                c.documentation = None;
            }
        }
        self
    }
}

impl Norm for DeleteRecordsResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        // Kafka's order is a hash map's.
        for t in &mut self.topics {
            t.partitions.sort_by_key(|p| p.partition_index);
        }
        self.topics.sort_by(|a, b| a.name.0.cmp(&b.name.0));
        self
    }
}

impl Norm for DescribeLogDirsResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for r in &mut self.results {
            // The path and the disk's sizes are the machine's: compared by
            // presence / positivity (-1 means "unknown" in the protocol).
            if !r.log_dir.is_empty() {
                r.log_dir = StrBytes::from_static_str("<log dir>");
            }
            r.total_bytes = r.total_bytes.signum();
            r.usable_bytes = r.usable_bytes.signum();
            for t in &mut r.topics {
                for p in &mut t.partitions {
                    p.partition_size = p.partition_size.signum();
                }
                t.partitions.sort_by_key(|p| p.partition_index);
            }
            r.topics.sort_by(|a, b| a.name.0.cmp(&b.name.0));
        }
        self
    }
}

impl Norm for DescribeTopicPartitionsResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for t in &mut self.topics {
            topic_id(&mut t.topic_id);
            for p in &mut t.partitions {
                node(&mut p.leader_id);
                p.replica_nodes.iter_mut().for_each(node);
                p.isr_nodes.iter_mut().for_each(node);
                p.offline_replicas.iter_mut().for_each(node);
                for v in [&mut p.eligible_leader_replicas, &mut p.last_known_elr]
                    .into_iter()
                    .flatten()
                {
                    v.iter_mut().for_each(node);
                }
            }
        }
        self
    }
}

impl Norm for ElectLeadersResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        for t in &mut self.replica_election_results {
            for p in &mut t.partition_result {
                msg(&mut p.error_message, p.error_code);
            }
            t.partition_result.sort_by_key(|p| p.partition_id);
        }
        self.replica_election_results
            .sort_by(|a, b| a.topic.0.cmp(&b.topic.0));
        self
    }
}

impl Norm for ListPartitionReassignmentsResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        msg(&mut self.error_message, self.error_code);
        self
    }
}

impl Norm for AlterPartitionReassignmentsResponse {
    fn norm(mut self) -> Self {
        self.throttle_time_ms = 0;
        msg(&mut self.error_message, self.error_code);
        for t in &mut self.responses {
            for p in &mut t.partitions {
                msg(&mut p.error_message, p.error_code);
            }
        }
        self
    }
}

/// The node id the broker announces for itself (Metadata), for the broker
/// config resource.
async fn own_node_id(c: &mut Conn) -> String {
    let r: Reply<MetadataResponse> =
        txn_call_raw(c, ApiKey::Metadata, 12, &metadata_req(&[], false)).await;
    r.as_ref()
        .and_then(|m| m.brokers.first())
        .map(|b| b.node_id.0.to_string())
        .unwrap_or_else(|| "1".into())
}

fn describe_configs_req(rtype: i8, name: &str, keys: &[&str]) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_include_documentation(false)
        .with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(rtype)
                .with_resource_name(sb(name))
                .with_configuration_keys(Some(keys.iter().map(|k| sb(k)).collect())),
        ])
}

/// A DescribeConfigs result, one line per config:
/// `name=value (source S, type T[, read_only][, sensitive]) synonyms [name=value/S, ...]`.
#[derive(Debug)]
#[allow(dead_code)]
struct ConfigsView {
    error_code: i16,
    error_message: Option<StrBytes>,
    resource: String,
    configs: Vec<String>,
}

fn configs_view(r: DescribeConfigsResponse) -> Vec<ConfigsView> {
    let val = |v: &Option<StrBytes>| v.as_deref().unwrap_or("null").to_owned();
    r.results
        .into_iter()
        .map(|r| ConfigsView {
            error_code: r.error_code,
            error_message: r.error_message,
            resource: format!("{} {:?}", r.resource_type, r.resource_name.as_str()),
            configs: r
                .configs
                .iter()
                .map(|c| {
                    let syn: Vec<String> = c
                        .synonyms
                        .iter()
                        .map(|s| format!("{}={}/{}", s.name.as_str(), val(&s.value), s.source))
                        .collect();
                    format!(
                        "{}={} (source {}, type {}{}{}) synonyms [{}]",
                        c.name.as_str(),
                        val(&c.value),
                        c.config_source,
                        c.config_type,
                        if c.read_only { ", read_only" } else { "" },
                        if c.is_sensitive { ", sensitive" } else { "" },
                        syn.join(", ")
                    )
                })
                .collect(),
        })
        .collect()
}

/// DescribeConfigs v4 (with synonyms) of `keys` of one resource.
async fn describe_configs(
    c: &mut Conn,
    rtype: i8,
    name: &str,
    keys: &[&str],
) -> Reply<Vec<ConfigsView>> {
    describe_configs_v(c, 4, rtype, name, keys).await
}

async fn describe_configs_v(
    c: &mut Conn,
    v: i16,
    rtype: i8,
    name: &str,
    keys: &[&str],
) -> Reply<Vec<ConfigsView>> {
    let r: Reply<DescribeConfigsResponse> = txn_call(
        c,
        ApiKey::DescribeConfigs,
        v,
        &describe_configs_req(rtype, name, keys),
    )
    .await;
    r.map(configs_view)
}

/// The value of `key` in a DescribeConfigs answer (None: absent or null).
fn config_value(r: &Reply<Vec<ConfigsView>>, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    let line = r
        .as_ref()?
        .first()?
        .configs
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))?;
    let v = line.split(" (source ").next()?;
    (v != "null").then(|| v.to_owned())
}

/// Polls DescribeConfigs until every (key, value) of `want` is described
/// (KRaft applies a config change to the broker asynchronously), then
/// returns the describe of `keys`: what the broker shows once settled, or
/// after ADMIN_WAIT.
async fn settled_configs(
    c: &mut Conn,
    rtype: i8,
    name: &str,
    keys: &[&str],
    want: &[(&str, &str)],
) -> Reply<Vec<ConfigsView>> {
    let (started, deadline) = (Instant::now(), settle_deadline(c));
    loop {
        let r = describe_configs(c, rtype, name, keys).await;
        let done = want
            .iter()
            .all(|(k, v)| config_value(&r, k).as_deref() == Some(*v));
        if done || !matches!(r, Reply::Ok(_)) {
            return r;
        }
        if Instant::now() > deadline {
            settle_gave_up(c, started);
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn incremental_req(
    rtype: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> IncrementalAlterConfigsRequest {
    IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(rtype)
                .with_resource_name(sb(name))
                .with_configs(
                    ops.iter()
                        .map(|(k, op, v)| {
                            incremental_alter_configs_request::AlterableConfig::default()
                                .with_name(sb(k))
                                .with_config_operation(*op)
                                .with_value(v.map(sb))
                        })
                        .collect(),
                ),
        ])
}

/// IncrementalAlterConfigs v1 of one resource; true when it succeeded.
async fn incremental(
    c: &mut Conn,
    o: &mut Obs,
    label: &str,
    req: &IncrementalAlterConfigsRequest,
) -> bool {
    let r: Reply<IncrementalAlterConfigsResponse> =
        txn_call(c, ApiKey::IncrementalAlterConfigs, 1, req).await;
    o.rec(label, &r);
    r.as_ref()
        .is_some_and(|r| r.responses.iter().all(|x| x.error_code == 0))
}

fn alter_configs_req(
    rtype: i8,
    name: &str,
    configs: &[(&str, &str)],
    validate_only: bool,
) -> AlterConfigsRequest {
    AlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(rtype)
            .with_resource_name(sb(name))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        alter_configs_request::AlterableConfig::default()
                            .with_name(sb(k))
                            .with_value(Some(sb(v)))
                    })
                    .collect(),
            )])
}

fn create_partitions_req(
    topic: &str,
    count: i32,
    assignments: Option<Vec<Vec<i32>>>,
    validate_only: bool,
) -> CreatePartitionsRequest {
    CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only)
        .with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(tn(topic))
                .with_count(count)
                .with_assignments(assignments.map(|a| {
                    a.into_iter()
                        .map(|ids| {
                            create_partitions_request::CreatePartitionsAssignment::default()
                                .with_broker_ids(ids.into_iter().map(BrokerId).collect())
                        })
                        .collect()
                })),
        ])
}

/// What Metadata says of one topic: its error and, per partition, its
/// error and whether it has a leader.
#[derive(Debug)]
#[allow(dead_code)]
struct TopicShape {
    error_code: i16,
    is_internal: bool,
    partitions: Vec<(i32, i16, bool)>,
}

fn topic_shape(m: &MetadataResponse, name: &str) -> Option<TopicShape> {
    let t = m
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name))?;
    let mut partitions: Vec<(i32, i16, bool)> = t
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code, p.leader_id.0 >= 0))
        .collect();
    partitions.sort();
    Some(TopicShape {
        error_code: t.error_code,
        is_internal: t.is_internal,
        partitions,
    })
}

/// Polls Metadata until `name` has `partitions` partitions, all led
/// (Kafka adds partitions asynchronously), and returns its shape then (or
/// after ADMIN_WAIT); `partitions` 0: at once.
async fn settled_shape(c: &mut Conn, name: &str, partitions: usize) -> Reply<Option<TopicShape>> {
    let (started, deadline) = (Instant::now(), settle_deadline(c));
    loop {
        let r: Reply<MetadataResponse> =
            txn_call(c, ApiKey::Metadata, 12, &metadata_req(&[name], false)).await;
        let r = r.map(|m| topic_shape(&m, name));
        let done = r.as_ref().is_some_and(|s| {
            s.as_ref().is_some_and(|s| {
                s.partitions.len() == partitions && s.partitions.iter().all(|p| p.1 == 0 && p.2)
            })
        });
        if done || partitions == 0 || !matches!(r, Reply::Ok(_)) {
            return r;
        }
        if Instant::now() > deadline {
            settle_gave_up(c, started);
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A1. CreatePartitions: increase, the same count, a decrease, an unknown
///     topic, validate_only, explicit assignments; Metadata after.
fn admin_create_partitions(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = Conn::new(&ctx).await;
        let node = own_node_id(&mut c).await.parse::<i32>().unwrap_or(1);
        let t = ctx.name("cp");
        o.rec(
            "create (1 partition)",
            &create_topic(&mut c, &t, 1, &[]).await,
        );
        let steps: Vec<(&str, i16, CreatePartitionsRequest, usize)> = vec![
            (
                "v3 increase to 3",
                3,
                create_partitions_req(&t, 3, None, false),
                3,
            ),
            (
                "v3 the same count (3)",
                3,
                create_partitions_req(&t, 3, None, false),
                3,
            ),
            (
                "v3 decrease to 2",
                3,
                create_partitions_req(&t, 2, None, false),
                3,
            ),
            (
                "v3 validate_only to 5",
                3,
                create_partitions_req(&t, 5, None, true),
                3,
            ),
            (
                "v3 to 4 with an assignment on this node",
                3,
                create_partitions_req(&t, 4, Some(vec![vec![node]]), false),
                4,
            ),
            (
                "v3 to 5 with an assignment on broker 42 (none such)",
                3,
                create_partitions_req(&t, 5, Some(vec![vec![42]]), false),
                4,
            ),
            (
                "v3 to 6 with one assignment for two new partitions",
                3,
                create_partitions_req(&t, 6, Some(vec![vec![node]]), false),
                4,
            ),
            (
                "v3 to 5 with two replicas on one node",
                3,
                create_partitions_req(&t, 5, Some(vec![vec![node, node]]), false),
                4,
            ),
            (
                "v0 increase to 5",
                0,
                create_partitions_req(&t, 5, None, false),
                5,
            ),
            (
                "v3 unknown topic",
                3,
                create_partitions_req(&ctx.name("cp-nope"), 2, None, false),
                5,
            ),
            ("v3 to 0", 3, create_partitions_req(&t, 0, None, false), 5),
        ];
        for (label, v, req, after) in steps {
            let r: Reply<CreatePartitionsResponse> =
                txn_call(&mut c, ApiKey::CreatePartitions, v, &req).await;
            let ok = r
                .as_ref()
                .is_some_and(|r| r.results.iter().all(|x| x.error_code == 0));
            o.rec(label, &r);
            // Waits for new partitions only where some were added.
            o.rec(
                format!("{label}: Metadata after"),
                &settled_shape(&mut c, &t, if ok { after } else { 0 }).await,
            );
        }
        // Two topics in one request, one of them twice: Kafka answers
        // INVALID_REQUEST for the duplicate.
        let t2 = ctx.name("cp2");
        o.rec("create cp2", &create_topic(&mut c, &t2, 1, &[]).await);
        let mut req = create_partitions_req(&t2, 2, None, false);
        req.topics.push(
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(tn(&t))
                .with_count(6),
        );
        req.topics.push(
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(tn(&t))
                .with_count(7),
        );
        let r: Reply<CreatePartitionsResponse> =
            txn_call(&mut c, ApiKey::CreatePartitions, 3, &req).await;
        let r = r.map(|mut r| {
            r.results.sort_by(|a, b| a.name.0.cmp(&b.name.0));
            r
        });
        let cp2_ok = r.as_ref().is_some_and(|r| {
            r.results
                .iter()
                .any(|x| x.name.0.as_str() == t2 && x.error_code == 0)
        });
        o.rec("v3 cp2 to 2 and cp twice", &r);
        o.rec(
            "cp2 after",
            &settled_shape(&mut c, &t2, if cp2_ok { 2 } else { 0 }).await,
        );
        o.rec("cp after", &settled_shape(&mut c, &t, 0).await);
        // New partitions take records.
        o.rec(
            "produce to partition 4",
            &produced(produce(&mut c, &t, 4, batch(2, 1000, None, Compression::None)).await),
        );
        o
    })
}

/// A2. IncrementalAlterConfigs on a topic and on the broker (by id and the
///     "" cluster default), each followed by DescribeConfigs with synonyms.
fn admin_incremental_alter_configs(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = Conn::new(&ctx).await;
        let node = own_node_id(&mut c).await;
        let t = ctx.name("iac");
        let keys = [
            "retention.ms",
            "cleanup.policy",
            "max.message.bytes",
            "segment.bytes",
        ];
        o.rec("create", &create_topic(&mut c, &t, 1, &[]).await);
        o.rec(
            "describe before",
            &describe_configs(&mut c, RES_TOPIC, &t, &keys).await,
        );
        type Step<'a> = (
            &'a str,
            Vec<(&'a str, i8, Option<&'a str>)>,
            bool,
            Vec<(&'a str, &'a str)>,
        );
        let steps: Vec<Step<'_>> = vec![
            (
                "SET retention.ms=3600000, max.message.bytes=2000",
                vec![
                    ("retention.ms", OP_SET, Some("3600000")),
                    ("max.message.bytes", OP_SET, Some("2000")),
                ],
                false,
                vec![("retention.ms", "3600000"), ("max.message.bytes", "2000")],
            ),
            (
                "APPEND cleanup.policy compact",
                vec![("cleanup.policy", OP_APPEND, Some("compact"))],
                false,
                vec![("cleanup.policy", "delete,compact")],
            ),
            (
                "APPEND cleanup.policy compact again",
                vec![("cleanup.policy", OP_APPEND, Some("compact"))],
                false,
                vec![("cleanup.policy", "delete,compact")],
            ),
            (
                "SUBTRACT cleanup.policy delete",
                vec![("cleanup.policy", OP_SUBTRACT, Some("delete"))],
                false,
                vec![("cleanup.policy", "compact")],
            ),
            (
                "SUBTRACT cleanup.policy delete (absent)",
                vec![("cleanup.policy", OP_SUBTRACT, Some("delete"))],
                false,
                vec![("cleanup.policy", "compact")],
            ),
            (
                "DELETE retention.ms",
                vec![("retention.ms", OP_DELETE, None)],
                false,
                vec![("retention.ms", "604800000")],
            ),
            (
                "DELETE retention.ms again (not set)",
                vec![("retention.ms", OP_DELETE, None)],
                false,
                vec![("retention.ms", "604800000")],
            ),
            (
                "APPEND retention.ms (not a list)",
                vec![("retention.ms", OP_APPEND, Some("5"))],
                false,
                vec![],
            ),
            (
                "SET retention.ms=abc (invalid)",
                vec![("retention.ms", OP_SET, Some("abc"))],
                false,
                vec![],
            ),
            (
                "SET cleanup.policy=shred (invalid)",
                vec![("cleanup.policy", OP_SET, Some("shred"))],
                false,
                vec![],
            ),
            (
                "SET max.message.bytes=-5 (out of range)",
                vec![("max.message.bytes", OP_SET, Some("-5"))],
                false,
                vec![],
            ),
            (
                "SET no.such.config=1 (unknown name)",
                vec![("no.such.config", OP_SET, Some("1"))],
                false,
                vec![],
            ),
            (
                "SET retention.ms null",
                vec![("retention.ms", OP_SET, None)],
                false,
                vec![],
            ),
            (
                "operation 7 (unknown)",
                vec![("retention.ms", 7, Some("1000"))],
                false,
                vec![],
            ),
            (
                "the same key twice",
                vec![
                    ("retention.ms", OP_SET, Some("1000")),
                    ("retention.ms", OP_SET, Some("2000")),
                ],
                false,
                vec![],
            ),
            (
                "validate_only SET retention.ms=1000",
                vec![("retention.ms", OP_SET, Some("1000"))],
                true,
                vec![],
            ),
            (
                "validate_only SET retention.ms=abc",
                vec![("retention.ms", OP_SET, Some("abc"))],
                true,
                vec![],
            ),
        ];
        for (label, ops, validate_only, want) in steps {
            let ok = incremental(
                &mut c,
                &mut o,
                &format!("topic {label}"),
                &incremental_req(RES_TOPIC, &t, &ops, validate_only),
            )
            .await;
            // A refused change changes nothing: nothing to wait for.
            let want = if ok { want } else { vec![] };
            o.rec(
                format!("topic {label}: describe after"),
                &settled_configs(&mut c, RES_TOPIC, &t, &keys, &want).await,
            );
        }
        incremental(
            &mut c,
            &mut o,
            "unknown topic SET retention.ms",
            &incremental_req(
                RES_TOPIC,
                &ctx.name("iac-nope"),
                &[("retention.ms", OP_SET, Some("1000"))],
                false,
            ),
        )
        .await;
        o.rec(
            "describe unknown topic",
            &describe_configs(&mut c, RES_TOPIC, &ctx.name("iac-nope"), &keys).await,
        );
        o.rec(
            "describe topic, unknown key only",
            &describe_configs(&mut c, RES_TOPIC, &t, &["no.such.config"]).await,
        );
        // The lowest versions: IncrementalAlterConfigs v0 (not flexible),
        // DescribeConfigs v1-v3 (v3 adds config_type).
        let r: Reply<IncrementalAlterConfigsResponse> = txn_call(
            &mut c,
            ApiKey::IncrementalAlterConfigs,
            0,
            &incremental_req(
                RES_TOPIC,
                &t,
                &[("segment.ms", OP_SET, Some("3600000"))],
                false,
            ),
        )
        .await;
        let ok = r
            .as_ref()
            .is_some_and(|r| r.responses.iter().all(|x| x.error_code == 0));
        o.rec("v0 SET segment.ms=3600000", &r);
        o.rec(
            "v0 SET segment.ms=3600000: describe v4 after",
            &settled_configs(
                &mut c,
                RES_TOPIC,
                &t,
                &["segment.ms"],
                if ok {
                    &[("segment.ms", "3600000")]
                } else {
                    &[]
                },
            )
            .await,
        );
        for v in [1, 2, 3] {
            o.rec(
                format!("describe v{v} segment.ms, cleanup.policy"),
                &describe_configs_v(&mut c, v, RES_TOPIC, &t, &["segment.ms", "cleanup.policy"])
                    .await,
            );
        }

        // The broker. Values above the 7-day default, so that no other
        // scenario's data expires meanwhile; every change is undone.
        let bkeys = [
            "log.retention.ms",
            "message.max.bytes",
            "log.cleaner.threads",
        ];
        o.rec(
            "broker describe before",
            &describe_configs(&mut c, RES_BROKER, &node, &bkeys).await,
        );
        let ok = incremental(
            &mut c,
            &mut o,
            "broker <id> SET log.retention.ms=1209600000",
            &incremental_req(
                RES_BROKER,
                &node,
                &[("log.retention.ms", OP_SET, Some("1209600000"))],
                false,
            ),
        )
        .await;
        o.rec(
            "broker <id> after SET",
            &settled_configs(
                &mut c,
                RES_BROKER,
                &node,
                &bkeys,
                if ok {
                    &[("log.retention.ms", "1209600000")]
                } else {
                    &[]
                },
            )
            .await,
        );
        o.rec(
            "topic retention.ms after broker <id> SET",
            &settled_configs(
                &mut c,
                RES_TOPIC,
                &t,
                &["retention.ms"],
                if ok {
                    &[("retention.ms", "1209600000")]
                } else {
                    &[]
                },
            )
            .await,
        );
        let ok = incremental(
            &mut c,
            &mut o,
            "broker default SET log.retention.ms=1814400000, message.max.bytes=2000000",
            &incremental_req(
                RES_BROKER,
                "",
                &[
                    ("log.retention.ms", OP_SET, Some("1814400000")),
                    ("message.max.bytes", OP_SET, Some("2000000")),
                ],
                false,
            ),
        )
        .await;
        o.rec(
            "broker default after SET",
            &settled_configs(
                &mut c,
                RES_BROKER,
                "",
                &bkeys,
                if ok {
                    &[
                        ("log.retention.ms", "1814400000"),
                        ("message.max.bytes", "2000000"),
                    ]
                } else {
                    &[]
                },
            )
            .await,
        );
        o.rec(
            "broker <id> after default SET",
            &settled_configs(
                &mut c,
                RES_BROKER,
                &node,
                &bkeys,
                if ok {
                    &[("message.max.bytes", "2000000")]
                } else {
                    &[]
                },
            )
            .await,
        );
        let ok = incremental(
            &mut c,
            &mut o,
            "broker <id> DELETE log.retention.ms",
            &incremental_req(
                RES_BROKER,
                &node,
                &[("log.retention.ms", OP_DELETE, None)],
                false,
            ),
        )
        .await;
        o.rec(
            "broker <id> after DELETE (default shows through)",
            &settled_configs(
                &mut c,
                RES_BROKER,
                &node,
                &bkeys,
                if ok {
                    &[("log.retention.ms", "1814400000")]
                } else {
                    &[]
                },
            )
            .await,
        );
        let ok = incremental(
            &mut c,
            &mut o,
            "broker default DELETE both",
            &incremental_req(
                RES_BROKER,
                "",
                &[
                    ("log.retention.ms", OP_DELETE, None),
                    ("message.max.bytes", OP_DELETE, None),
                ],
                false,
            ),
        )
        .await;
        o.rec(
            "broker <id> after default DELETE",
            &settled_configs(
                &mut c,
                RES_BROKER,
                &node,
                &bkeys,
                if ok {
                    &[("message.max.bytes", "1048588")]
                } else {
                    &[]
                },
            )
            .await,
        );
        for (label, name, ops, validate_only) in [
            (
                "broker <id> SET log.retention.ms=abc (invalid)",
                node.as_str(),
                vec![("log.retention.ms", OP_SET, Some("abc"))],
                false,
            ),
            (
                "broker <id> SET node.id=7 (read-only)",
                node.as_str(),
                vec![("node.id", OP_SET, Some("7"))],
                false,
            ),
            (
                "broker <id> SET log.dirs=/tmp/x (read-only)",
                node.as_str(),
                vec![("log.dirs", OP_SET, Some("/tmp/x"))],
                false,
            ),
            (
                "broker <id> SET no.such.config=1 (unknown name)",
                node.as_str(),
                vec![("no.such.config", OP_SET, Some("1"))],
                false,
            ),
            (
                "broker 42 (not this one) SET log.retention.ms",
                "42",
                vec![("log.retention.ms", OP_SET, Some("1209600000"))],
                false,
            ),
            (
                "broker <id> validate_only SET message.max.bytes=3000000",
                node.as_str(),
                vec![("message.max.bytes", OP_SET, Some("3000000"))],
                true,
            ),
        ] {
            incremental(
                &mut c,
                &mut o,
                label,
                &incremental_req(RES_BROKER, name, &ops, validate_only),
            )
            .await;
        }
        o.rec(
            "broker <id> at the end",
            &describe_configs(&mut c, RES_BROKER, &node, &bkeys).await,
        );
        o
    })
}

/// A3. Legacy AlterConfigs: the given set replaces every dynamic config of
///     the resource.
fn admin_alter_configs(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = Conn::new(&ctx).await;
        let t = ctx.name("ac");
        let keys = ["retention.ms", "cleanup.policy", "max.message.bytes"];
        o.rec(
            "create with retention.ms=3600000, cleanup.policy=compact",
            &create_topic(
                &mut c,
                &t,
                1,
                &[("retention.ms", "3600000"), ("cleanup.policy", "compact")],
            )
            .await,
        );
        o.rec(
            "describe before",
            &describe_configs(&mut c, RES_TOPIC, &t, &keys).await,
        );
        for (label, v, configs, validate_only, want) in [
            (
                "v2 max.message.bytes=2000 only",
                2,
                vec![("max.message.bytes", "2000")],
                false,
                vec![
                    ("max.message.bytes", "2000"),
                    ("retention.ms", "604800000"),
                    ("cleanup.policy", "delete"),
                ],
            ),
            (
                "v2 validate_only retention.ms=1000",
                2,
                vec![("retention.ms", "1000")],
                true,
                vec![],
            ),
            (
                "v2 retention.ms=abc (invalid)",
                2,
                vec![("retention.ms", "abc")],
                false,
                vec![],
            ),
            (
                "v2 no.such.config=1",
                2,
                vec![("no.such.config", "1")],
                false,
                vec![],
            ),
            (
                "v0 cleanup.policy=compact",
                0,
                vec![("cleanup.policy", "compact")],
                false,
                vec![
                    ("cleanup.policy", "compact"),
                    ("max.message.bytes", "1048588"),
                ],
            ),
            (
                "v1 nothing (clears all)",
                1,
                vec![],
                false,
                vec![("cleanup.policy", "delete")],
            ),
        ] {
            let r: Reply<AlterConfigsResponse> = txn_call(
                &mut c,
                ApiKey::AlterConfigs,
                v,
                &alter_configs_req(RES_TOPIC, &t, &configs, validate_only),
            )
            .await;
            let ok = r
                .as_ref()
                .is_some_and(|r| r.responses.iter().all(|x| x.error_code == 0));
            o.rec(label, &r);
            let want = if ok { want } else { vec![] };
            o.rec(
                format!("{label}: describe after"),
                &settled_configs(&mut c, RES_TOPIC, &t, &keys, &want).await,
            );
        }
        let r: Reply<AlterConfigsResponse> = txn_call(
            &mut c,
            ApiKey::AlterConfigs,
            2,
            &alter_configs_req(
                RES_TOPIC,
                &ctx.name("ac-nope"),
                &[("retention.ms", "1000")],
                false,
            ),
        )
        .await;
        o.rec("v2 unknown topic", &r);
        o
    })
}

fn delete_records_req(topic: &str, parts: &[(i32, i64)]) -> DeleteRecordsRequest {
    DeleteRecordsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
            .with_name(tn(topic))
            .with_partitions(
                parts
                    .iter()
                    .map(|&(p, off)| {
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_partition_index(p)
                            .with_offset(off)
                    })
                    .collect(),
            )])
}

/// ListOffsets v8 of one partition at `ts` (-1 latest, -2 earliest).
async fn list_offsets_v8(c: &mut Conn, t: &str, p: i32, ts: i64) -> Reply<ListOffsetsResponse> {
    txn_call(c, ApiKey::ListOffsets, 8, &list_offsets_req(t, &[p], ts)).await
}

/// A4. DeleteRecords: the low watermark moves; ListOffsets earliest and
///     Fetch follow it.
fn admin_delete_records(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = Conn::new(&ctx).await;
        let t = ctx.name("dr");
        o.rec(
            "create (2 partitions)",
            &create_topic(&mut c, &t, 2, &[]).await,
        );
        for i in 0..2 {
            o.rec(
                format!("produce 5 records to p0 (batch {i})"),
                &produced(
                    produce(
                        &mut c,
                        &t,
                        0,
                        batch(5, 1000 + 5 * i, None, Compression::None),
                    )
                    .await,
                ),
            );
        }
        for (label, v, parts) in [
            ("v2 p0 to 3 (inside batch 0)", 2, vec![(0, 3)]),
            ("v2 p0 to 1 (below the low watermark)", 2, vec![(0, 1)]),
            ("v2 p0 to 3 again", 2, vec![(0, 3)]),
            (
                "v2 p0 to 11 (beyond the high watermark 10)",
                2,
                vec![(0, 11)],
            ),
            ("v2 p1 to 0 (empty partition)", 2, vec![(1, 0)]),
            ("v2 p1 to 1 (empty partition, beyond)", 2, vec![(1, 1)]),
            ("v2 p5 (no such partition)", 2, vec![(5, 0)]),
            ("v2 p0 to -2 (negative, not -1)", 2, vec![(0, -2)]),
            ("v0 p0 to 6 and p1 to -1", 0, vec![(0, 6), (1, -1)]),
        ] {
            let r: Reply<DeleteRecordsResponse> = txn_call(
                &mut c,
                ApiKey::DeleteRecords,
                v,
                &delete_records_req(&t, &parts),
            )
            .await;
            o.rec(label, &r);
            o.rec(
                format!("{label}: ListOffsets v8 earliest p0"),
                &list_offsets_v8(&mut c, &t, 0, -2).await,
            );
        }
        o.rec(
            "v12 fetch p0 from 0 (below the log start 6)",
            &fetch_view(
                txn_call(
                    &mut c,
                    ApiKey::Fetch,
                    12,
                    &fetch_req(&t, &[(0, 0)], 1 << 20, 1 << 20),
                )
                .await,
            ),
        );
        o.rec(
            "v12 fetch p0 from 5 (below the log start 6)",
            &fetch_view(
                txn_call(
                    &mut c,
                    ApiKey::Fetch,
                    12,
                    &fetch_req(&t, &[(0, 5)], 1 << 20, 1 << 20),
                )
                .await,
            ),
        );
        o.rec(
            "v12 fetch p0 from 6 (the log start)",
            &fetch_view(
                txn_call(
                    &mut c,
                    ApiKey::Fetch,
                    12,
                    &fetch_req(&t, &[(0, 6)], 1 << 20, 1 << 20),
                )
                .await,
            ),
        );
        let r: Reply<DeleteRecordsResponse> = txn_call(
            &mut c,
            ApiKey::DeleteRecords,
            2,
            &delete_records_req(&t, &[(0, -1)]),
        )
        .await;
        o.rec("v2 p0 to -1 (the high watermark)", &r);
        o.rec(
            "after -1: ListOffsets v8 earliest p0",
            &list_offsets_v8(&mut c, &t, 0, -2).await,
        );
        o.rec(
            "after -1: ListOffsets v8 latest p0",
            &list_offsets_v8(&mut c, &t, 0, -1).await,
        );
        o.rec(
            "after -1: v12 fetch p0 from 9",
            &fetch_view(
                txn_call(
                    &mut c,
                    ApiKey::Fetch,
                    12,
                    &fetch_req(&t, &[(0, 9)], 1 << 20, 1 << 20),
                )
                .await,
            ),
        );
        o.rec(
            "after -1: produce 2 to p0",
            &produced(produce(&mut c, &t, 0, batch(2, 2000, None, Compression::None)).await),
        );
        o.rec(
            "after -1: v12 fetch p0 from 10",
            &fetch_view(
                txn_call(
                    &mut c,
                    ApiKey::Fetch,
                    12,
                    &fetch_req(&t, &[(0, 10)], 1 << 20, 1 << 20),
                )
                .await,
            ),
        );
        let r: Reply<DeleteRecordsResponse> = txn_call(
            &mut c,
            ApiKey::DeleteRecords,
            2,
            &delete_records_req(&ctx.name("dr-nope"), &[(0, 0)]),
        )
        .await;
        o.rec("v2 unknown topic", &r);
        o
    })
}

fn log_dirs_req(topics: Option<&[(&str, &[i32])]>) -> DescribeLogDirsRequest {
    DescribeLogDirsRequest::default().with_topics(topics.map(|ts| {
        ts.iter()
            .map(|(t, ps)| {
                describe_log_dirs_request::DescribableLogDirTopic::default()
                    .with_topic(tn(t))
                    .with_partitions(ps.to_vec())
            })
            .collect()
    }))
}

/// A5. DescribeLogDirs: all topics (this run's kept), one topic, unknown
///     ones.
fn admin_describe_log_dirs(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = Conn::new(&ctx).await;
        let t = ctx.name("ld");
        let t2 = ctx.name("ld-empty");
        o.rec(
            "create (2 partitions)",
            &create_topic(&mut c, &t, 2, &[]).await,
        );
        o.rec("create empty", &create_topic(&mut c, &t2, 1, &[]).await);
        o.rec(
            "produce 3 records to p0",
            &produced(produce(&mut c, &t, 0, batch(3, 1000, None, Compression::None)).await),
        );
        let prefix = ctx.name("ld");
        for v in [4, 1] {
            let r: Reply<DescribeLogDirsResponse> =
                txn_call(&mut c, ApiKey::DescribeLogDirs, v, &log_dirs_req(None)).await;
            let r = r.map(|mut r| {
                for d in &mut r.results {
                    d.topics.retain(|t| t.name.0.as_str().starts_with(&prefix));
                }
                r
            });
            o.rec(format!("v{v} all (this run's topics kept)"), &r);
        }
        let tt: &[(&str, &[i32])] = &[(&t, &[0, 1])];
        for v in [4, 3, 2, 1] {
            let r: Reply<DescribeLogDirsResponse> =
                txn_call(&mut c, ApiKey::DescribeLogDirs, v, &log_dirs_req(Some(tt))).await;
            o.rec(format!("v{v} one topic, both partitions"), &r);
        }
        let nope = ctx.name("ld-nope");
        for (label, q) in [
            ("v4 partition 0 only", vec![(t.as_str(), &[0][..])]),
            ("v4 partition 7 (none such)", vec![(t.as_str(), &[7][..])]),
            ("v4 unknown topic", vec![(nope.as_str(), &[0][..])]),
            ("v4 empty topic", vec![(t2.as_str(), &[0][..])]),
            ("v4 no partitions listed", vec![(t.as_str(), &[][..])]),
        ] {
            let r: Reply<DescribeLogDirsResponse> =
                txn_call(&mut c, ApiKey::DescribeLogDirs, 4, &log_dirs_req(Some(&q))).await;
            o.rec(label, &r);
        }
        let r: Reply<DescribeLogDirsResponse> =
            txn_call(&mut c, ApiKey::DescribeLogDirs, 4, &log_dirs_req(Some(&[]))).await;
        o.rec("v4 empty topic list", &r);
        o
    })
}

fn dtp_req(
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsRequest {
    DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    describe_topic_partitions_request::TopicRequest::default().with_name(tn(t))
                })
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| {
            describe_topic_partitions_request::Cursor::default()
                .with_topic_name(tn(t))
                .with_partition_index(p)
        }))
}

/// A6. DescribeTopicPartitions (API 75): all topics, one, cursor paging,
///     unknown topics.
fn admin_describe_topic_partitions(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = Conn::new(&ctx).await;
        let a = ctx.name("dtp-a");
        let b = ctx.name("dtp-b");
        o.rec(
            "create a (3 partitions)",
            &create_topic(&mut c, &a, 3, &[]).await,
        );
        o.rec(
            "create b (2 partitions)",
            &create_topic(&mut c, &b, 2, &[]).await,
        );
        let prefix = ctx.name("dtp");
        let r: Reply<DescribeTopicPartitionsResponse> = txn_call(
            &mut c,
            ApiKey::DescribeTopicPartitions,
            0,
            &dtp_req(&[], 2000, None),
        )
        .await;
        let r = r.map(|mut r| {
            r.topics.retain(|t| {
                t.name
                    .as_ref()
                    .is_some_and(|n| n.0.as_str().starts_with(&prefix))
            });
            r
        });
        o.rec("all topics (this run's kept)", &r);
        let r: Reply<DescribeTopicPartitionsResponse> = txn_call(
            &mut c,
            ApiKey::DescribeTopicPartitions,
            0,
            &dtp_req(&[&a], 2000, None),
        )
        .await;
        o.rec("topic a", &r);
        // Paging one partition at a time until the cursor ends (5 pages
        // for 5 partitions; bounded).
        let mut cursor: Option<(String, i32)> = None;
        for page in 0..8 {
            let r: Reply<DescribeTopicPartitionsResponse> = txn_call(
                &mut c,
                ApiKey::DescribeTopicPartitions,
                0,
                &dtp_req(&[&b, &a], 1, cursor.as_ref().map(|(t, p)| (t.as_str(), *p))),
            )
            .await;
            o.rec(format!("a and b, limit 1, page {page}"), &r);
            cursor = r.as_ref().and_then(|r| {
                r.next_cursor
                    .as_ref()
                    .map(|c| (c.topic_name.0.to_string(), c.partition_index))
            });
            if cursor.is_none() {
                break;
            }
        }
        for (label, topics, limit, cur) in [
            (
                "a and b, limit 2, cursor at a/2",
                vec![&a, &b],
                2,
                Some((a.as_str(), 2)),
            ),
            (
                "a and b, limit 10, cursor at b/1",
                vec![&a, &b],
                10,
                Some((b.as_str(), 1)),
            ),
            (
                "a, cursor at a/9 (past the end)",
                vec![&a],
                10,
                Some((a.as_str(), 9)),
            ),
            (
                "a, cursor on a topic not asked for",
                vec![&a],
                10,
                Some((b.as_str(), 0)),
            ),
            ("a, limit 0", vec![&a], 0, None),
        ] {
            let names: Vec<&str> = topics.iter().map(|s| s.as_str()).collect();
            let r: Reply<DescribeTopicPartitionsResponse> = txn_call(
                &mut c,
                ApiKey::DescribeTopicPartitions,
                0,
                &dtp_req(&names, limit, cur),
            )
            .await;
            o.rec(label, &r);
        }
        let nope = ctx.name("dtp-nope");
        let r: Reply<DescribeTopicPartitionsResponse> = txn_call(
            &mut c,
            ApiKey::DescribeTopicPartitions,
            0,
            &dtp_req(&[&nope, &a], 2000, None),
        )
        .await;
        o.rec("unknown topic and a", &r);
        o
    })
}

fn elect_req(election_type: i8, topics: Option<&[(&str, &[i32])]>) -> ElectLeadersRequest {
    ElectLeadersRequest::default()
        .with_election_type(election_type)
        .with_timeout_ms(10_000)
        .with_topic_partitions(topics.map(|ts| {
            ts.iter()
                .map(|(t, ps)| {
                    elect_leaders_request::TopicPartitions::default()
                        .with_topic(tn(t))
                        .with_partitions(ps.to_vec())
                })
                .collect()
        }))
}

/// A7. ElectLeaders: nothing to elect on a single node.
fn admin_elect_leaders(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = Conn::new(&ctx).await;
        let t = ctx.name("el");
        o.rec(
            "create (2 partitions)",
            &create_topic(&mut c, &t, 2, &[]).await,
        );
        let nope = ctx.name("el-nope");
        for (label, v, et, q) in [
            ("v2 preferred p0, p1", 2, 0, vec![(t.as_str(), &[0, 1][..])]),
            ("v2 unclean p0", 2, 1, vec![(t.as_str(), &[0][..])]),
            (
                "v2 preferred p9 (none such)",
                2,
                0,
                vec![(t.as_str(), &[9][..])],
            ),
            (
                "v2 preferred unknown topic",
                2,
                0,
                vec![(nope.as_str(), &[0][..])],
            ),
            ("v0 preferred p0", 0, 0, vec![(t.as_str(), &[0][..])]),
            ("v1 preferred p0", 1, 0, vec![(t.as_str(), &[0][..])]),
            ("v2 election type 5", 2, 5, vec![(t.as_str(), &[0][..])]),
        ] {
            let r: Reply<ElectLeadersResponse> =
                txn_call(&mut c, ApiKey::ElectLeaders, v, &elect_req(et, Some(&q))).await;
            o.rec(label, &r);
        }
        let r: Reply<ElectLeadersResponse> =
            txn_call(&mut c, ApiKey::ElectLeaders, 2, &elect_req(0, None)).await;
        // Kafka lists every topic, each with only the partitions it
        // elected (none); other scenarios' topics (which differ where a
        // deliberate difference created one) are left out.
        let r = r.map(|mut r| {
            r.replica_election_results
                .retain(|x| x.topic.0.as_str() == t);
            r
        });
        o.rec("v2 preferred, all partitions (this topic kept)", &r);
        o
    })
}

/// A8. Partition reassignments: none in progress; a reassignment to a
///     broker that does not exist is refused.
fn admin_reassignments(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = Conn::new(&ctx).await;
        let node = own_node_id(&mut c).await.parse::<i32>().unwrap_or(1);
        let t = ctx.name("ra");
        o.rec(
            "create (2 partitions)",
            &create_topic(&mut c, &t, 2, &[]).await,
        );
        let list = |topics: Option<Vec<(String, Vec<i32>)>>| {
            ListPartitionReassignmentsRequest::default()
                .with_timeout_ms(10_000)
                .with_topics(topics.map(|ts| {
                    ts.into_iter()
                        .map(|(t, ps)| {
                            list_partition_reassignments_request::ListPartitionReassignmentsTopics::default()
                                .with_name(tn(&t))
                                .with_partition_indexes(ps)
                        })
                        .collect()
                }))
        };
        let r: Reply<ListPartitionReassignmentsResponse> =
            txn_call(&mut c, ApiKey::ListPartitionReassignments, 0, &list(None)).await;
        o.rec("list v0 all", &r);
        let r: Reply<ListPartitionReassignmentsResponse> = txn_call(
            &mut c,
            ApiKey::ListPartitionReassignments,
            0,
            &list(Some(vec![(t.clone(), vec![0, 1])])),
        )
        .await;
        o.rec("list v0 this topic", &r);
        let r: Reply<ListPartitionReassignmentsResponse> = txn_call(
            &mut c,
            ApiKey::ListPartitionReassignments,
            0,
            &list(Some(vec![(ctx.name("ra-nope"), vec![0])])),
        )
        .await;
        o.rec("list v0 unknown topic", &r);
        let alter = |topic: &str, parts: Vec<(i32, Option<Vec<i32>>)>| {
            AlterPartitionReassignmentsRequest::default()
                .with_timeout_ms(10_000)
                .with_allow_replication_factor_change(true)
                .with_topics(vec![alter_partition_reassignments_request::ReassignableTopic::default()
                    .with_name(tn(topic))
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, rs)| {
                                alter_partition_reassignments_request::ReassignablePartition::default()
                                    .with_partition_index(p)
                                    .with_replicas(rs.map(|rs| rs.into_iter().map(BrokerId).collect()))
                            })
                            .collect(),
                    )])
        };
        let nope = ctx.name("ra-nope");
        for (label, v, req) in [
            (
                "alter v1 p0 to broker 42 (none such)",
                1,
                alter(&t, vec![(0, Some(vec![42]))]),
            ),
            (
                "alter v0 p0 to broker 42 (none such)",
                0,
                alter(&t, vec![(0, Some(vec![42]))]),
            ),
            (
                "alter v1 p0 to this node and 42",
                1,
                alter(&t, vec![(0, Some(vec![node, 42]))]),
            ),
            (
                "alter v1 p0 to no replicas",
                1,
                alter(&t, vec![(0, Some(vec![]))]),
            ),
            (
                "alter v1 p1 cancel (none in progress)",
                1,
                alter(&t, vec![(1, None)]),
            ),
            (
                "alter v1 p9 (none such) to this node",
                1,
                alter(&t, vec![(9, Some(vec![node]))]),
            ),
            (
                "alter v1 unknown topic",
                1,
                alter(&nope, vec![(0, Some(vec![node]))]),
            ),
            (
                "alter v1 p0 to this node (where it is)",
                1,
                alter(&t, vec![(0, Some(vec![node]))]),
            ),
        ] {
            let r: Reply<AlterPartitionReassignmentsResponse> =
                txn_call(&mut c, ApiKey::AlterPartitionReassignments, v, &req).await;
            o.rec(label, &r);
        }
        let r: Reply<ListPartitionReassignmentsResponse> =
            txn_call(&mut c, ApiKey::ListPartitionReassignments, 0, &list(None)).await;
        o.rec("list v0 all at the end", &r);
        o.rec("metadata at the end", &settled_shape(&mut c, &t, 2).await);
        o
    })
}

/// A9. __consumer_offsets in Metadata once a group has committed: internal,
///     offsets.topic.num.partitions partitions (1 on both brokers here).
fn admin_consumer_offsets_topic(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = Conn::new(&ctx).await;
        let t = ctx.name("co");
        let g = ctx.name("co-group");
        o.rec("create", &create_topic(&mut c, &t, 1, &[]).await);
        wait_group_coordinator(&mut c, &g).await;
        let r: Reply<OffsetCommitResponse> = txn_call(
            &mut c,
            ApiKey::OffsetCommit,
            8,
            &commit_req(&g, -1, "", &[(&t, 0, 0)]),
        )
        .await;
        o.rec("commit offset 0 (simple group)", &r);
        for v in [12, 1] {
            let r: Reply<MetadataResponse> = txn_call(
                &mut c,
                ApiKey::Metadata,
                v,
                &MetadataRequest::default().with_topics(None),
            )
            .await;
            o.rec(
                format!("v{v} all topics: __consumer_offsets"),
                &r.as_ref().map(|m| topic_shape(m, "__consumer_offsets")),
            );
            if let Some(m) = r.as_ref() {
                let mut internal: Vec<String> = m
                    .topics
                    .iter()
                    .filter(|t| t.is_internal)
                    .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                    .collect();
                internal.sort();
                o.info(format!("v{v} internal topics"), internal.join(", "));
                o.rec(
                    format!("v{v} all topics: this run's topic is not internal"),
                    &topic_shape(m, &t).map(|s| s.is_internal),
                );
            }
        }
        let r: Reply<MetadataResponse> = txn_call(
            &mut c,
            ApiKey::Metadata,
            12,
            &metadata_req(&["__consumer_offsets"], false),
        )
        .await;
        o.rec(
            "v12 by name: __consumer_offsets",
            &r.as_ref().map(|m| topic_shape(m, "__consumer_offsets")),
        );
        o
    })
}

/// A10. ApiVersions v3 and v4: supported and finalized features, and the
///      version ranges of the admin APIs.
fn admin_features(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = Conn::new(&ctx).await;
        for v in [3, 4] {
            let r: Reply<ApiVersionsResponse> = txn_call(
                &mut c,
                ApiKey::ApiVersions,
                v,
                &ApiVersionsRequest::default()
                    .with_client_software_name(sb("gregor-differential"))
                    .with_client_software_version(sb("1")),
            )
            .await;
            let Some(r) = r.as_ref() else {
                o.rec(format!("v{v}"), &r);
                continue;
            };
            o.rec(format!("v{v} error_code"), &r.error_code);
            o.rec(
                format!("v{v} finalized features epoch >= 0"),
                &(r.finalized_features_epoch >= 0),
            );
            let mut sup: Vec<String> = r
                .supported_features
                .iter()
                .map(|f| format!("{} {}-{}", f.name.as_str(), f.min_version, f.max_version))
                .collect();
            sup.sort();
            for f in sup {
                let (name, range) = f.split_once(' ').unwrap();
                o.rec(format!("v{v} supported {name}"), &range);
            }
            let mut fin: Vec<String> = r
                .finalized_features
                .iter()
                .map(|f| {
                    format!(
                        "{} {}-{}",
                        f.name.as_str(),
                        f.min_version_level,
                        f.max_version_level
                    )
                })
                .collect();
            fin.sort();
            for f in fin {
                let (name, range) = f.split_once(' ').unwrap();
                o.rec(format!("v{v} finalized {name}"), &range);
            }
            if v == 4 {
                // One step per API, so that a deliberate gap is allowlisted
                // alone (KNOWN).
                for key in [21, 32, 33, 35, 37, 43, 44, 45, 46, 48, 49, 57, 75] {
                    let name = ApiKey::try_from(key)
                        .map(|k| format!("{k:?}"))
                        .unwrap_or_default();
                    let range = r
                        .api_keys
                        .iter()
                        .find(|k| k.api_key == key)
                        .map(|k| format!("{}-{}", k.min_version, k.max_version));
                    o.rec(format!("v4 range of {name} ({key})"), &range);
                }
            }
        }
        o
    })
}

/// A batch of (key, value) records (None: no key / a tombstone), written
/// at `ts` (+ i ms), not idempotent.
fn kv_batch(entries: &[(Option<&str>, Option<&str>)], ts: i64) -> Bytes {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder splits batches when offset - sequence changes.
            sequence: i as i32 - 1,
            timestamp: ts + i as i64,
            key: k.map(|k| Bytes::from(k.to_owned())),
            value: v.map(|v| Bytes::from(v.to_owned())),
            headers: Default::default(),
        })
        .collect();
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    let mut b = out.to_vec();
    // Non-idempotent batches carry base sequence -1.
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

/// What a consumer reads from `offset` to the high watermark of partition
/// 0, as `offset key=value` lines (`null` for a null value); or the first
/// partition error. Kafka answers a Fetch from one segment at a time, so
/// this fetches again from after the last batch (bounded) and, as a
/// consumer does, skips records below the offset asked for.
async fn fetch_kv(c: &mut Conn, topic: &str, offset: i64) -> Reply<Result<Vec<String>, String>> {
    let mut out = Vec::new();
    let mut pos = offset;
    for _ in 0..20 {
        let r: Reply<FetchResponse> = txn_call(
            c,
            ApiKey::Fetch,
            12,
            &fetch_req(topic, &[(0, pos)], 1 << 20, 1 << 20),
        )
        .await;
        let Reply::Ok(r) = r else {
            return r.map(|_| Ok(out));
        };
        let p = &r.responses[0].partitions[0];
        if p.error_code != 0 {
            return Reply::Ok(Err(format!("error_code {} at {pos}", p.error_code)));
        }
        let bytes = p.records.clone().unwrap_or_default();
        let next = summarize(&bytes)
            .iter()
            .filter_map(|b| match b {
                BatchSummary::Batch {
                    base_offset,
                    last_offset_delta,
                    ..
                } => Some(base_offset + *last_offset_delta as i64 + 1),
                BatchSummary::Partial(_) => None,
            })
            .max();
        let mut b = bytes.clone();
        let sets = match kafka_protocol::records::RecordBatchDecoder::decode_all(&mut b) {
            Ok(s) => s,
            Err(e) => return Reply::Ok(Err(format!("undecodable records at {pos}: {e}"))),
        };
        let s = |x: &Option<Bytes>| {
            x.as_ref()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .unwrap_or_else(|| "null".into())
        };
        out.extend(
            sets.iter()
                .flat_map(|set| set.records.iter())
                .filter(|r| !r.control && r.offset >= pos)
                .map(|r| format!("{} {}={}", r.offset, s(&r.key), s(&r.value))),
        );
        match next {
            Some(n) if n > pos && n < p.high_watermark => pos = n,
            _ => break,
        }
    }
    Reply::Ok(Ok(out))
}

/// A11. Log compaction: what a compacted topic returns once the cleaner
///      has run (the latest value of every key, the tombstone kept for
///      delete.retention.ms, offsets kept), and the refusal of a record
///      without a key.
fn admin_compaction(ctx: Ctx) -> Fut {
    Box::pin(async move {
        let mut o = Obs::default();
        let mut c = Conn::new(&ctx).await;
        let t = ctx.name("cmp");
        // Kafka's cleaner sleeps log.cleaner.backoff.ms (15 s) when it
        // finds nothing to clean; a dynamic cluster default shortens that
        // (undone at the end).
        incremental(
            &mut c,
            &mut o,
            "broker default SET log.cleaner.backoff.ms=100",
            &incremental_req(
                RES_BROKER,
                "",
                &[("log.cleaner.backoff.ms", OP_SET, Some("100"))],
                false,
            ),
        )
        .await;
        // segment.ms=100: every batch below is more than 100 ms (by record
        // timestamp) after the previous one, so each one rolls the segment
        // and all but the last become cleanable.
        o.rec(
            "create compacted",
            &create_topic(
                &mut c,
                &t,
                1,
                &[
                    ("cleanup.policy", "compact"),
                    ("segment.ms", "100"),
                    ("min.cleanable.dirty.ratio", "0.01"),
                    ("min.compaction.lag.ms", "0"),
                ],
            )
            .await,
        );
        let batches: [&[(Option<&str>, Option<&str>)]; 4] = [
            &[
                (Some("k0"), Some("v0a")),
                (Some("k1"), Some("v1a")),
                (Some("k2"), Some("v2a")),
            ],
            &[(Some("k0"), Some("v0b")), (Some("k3"), Some("v3a"))],
            &[(Some("k1"), None), (Some("k2"), Some("v2b"))],
            &[(Some("k0"), Some("v0c"))],
        ];
        for (i, b) in batches.iter().enumerate() {
            o.rec(
                format!("produce batch {i}"),
                &produced(produce(&mut c, &t, 0, kv_batch(b, ts0() + 1000 * i as i64)).await),
            );
        }
        // Keyless records go to a topic of their own, so that one a broker
        // wrongly accepts does not change the log compacted below.
        let t_nokey = ctx.name("cmp-nokey");
        o.rec(
            "create a second compacted topic",
            &create_topic(&mut c, &t_nokey, 1, &[("cleanup.policy", "compact")]).await,
        );
        o.rec(
            "produce a record without a key",
            &produced(
                produce(
                    &mut c,
                    &t_nokey,
                    0,
                    kv_batch(&[(None, Some("no key"))], ts0() + 3500),
                )
                .await,
            ),
        );
        o.rec(
            "produce a batch with a keyed and a keyless record",
            &produced(
                produce(
                    &mut c,
                    &t_nokey,
                    0,
                    kv_batch(
                        &[(Some("k9"), Some("v9")), (None, Some("no key"))],
                        ts0() + 3600,
                    ),
                )
                .await,
            ),
        );
        o.rec(
            "latest offset of the second topic",
            &list_offsets_v8(&mut c, &t_nokey, 0, -1).await,
        );
        // Now: rolls the segment of batch 3; stays in the active segment.
        o.rec(
            "produce k4 an hour later",
            &produced(
                produce(
                    &mut c,
                    &t,
                    0,
                    kv_batch(&[(Some("k4"), Some("v4a"))], ts0() + 3_600_000),
                )
                .await,
            ),
        );
        // Not compared: Kafka's cleaner may already have run.
        o.info(
            "fetch before cleaning",
            format!("{:?}", fetch_kv(&mut c, &t, 0).await),
        );
        let want: Vec<String> = ["4 k3=v3a", "5 k1=null", "6 k2=v2b", "7 k0=v0c", "8 k4=v4a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(40);
        let cleaned = loop {
            let r = fetch_kv(&mut c, &t, 0).await;
            let done = matches!(&r, Reply::Ok(Ok(v)) if *v == want);
            if done || Instant::now() > deadline || !matches!(r, Reply::Ok(Ok(_))) {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        o.info(
            "cleaned after (s)",
            format!(
                "{:.1}",
                (Instant::now() + Duration::from_secs(40) - deadline).as_secs_f64()
            ),
        );
        o.rec("fetch from 0 once cleaned", &cleaned);
        o.rec(
            "fetch from 1 (a removed offset) once cleaned",
            &fetch_kv(&mut c, &t, 1).await,
        );
        o.rec(
            "ListOffsets v8 earliest",
            &list_offsets_v8(&mut c, &t, 0, -2).await,
        );
        o.rec(
            "ListOffsets v8 latest",
            &list_offsets_v8(&mut c, &t, 0, -1).await,
        );
        incremental(
            &mut c,
            &mut o,
            "broker default DELETE log.cleaner.backoff.ms",
            &incremental_req(
                RES_BROKER,
                "",
                &[("log.cleaner.backoff.ms", OP_DELETE, None)],
                false,
            ),
        )
        .await;
        o
    })
}
