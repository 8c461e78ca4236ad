//! Consumer groups (classic protocol) with stock clients against a real
//! `gregor` process: librdkafka through the `rdkafka` crate (subscribe(),
//! rebalance callbacks, commits), librdkafka members in child processes
//! that can be SIGKILLed, and Java kafka-clients 4.3.1 members
//! (`compat-tests/java`, `gregor.compat.GroupMember` / `GroupAdmin`).
//!
//! Every test starts its own broker (port 0, own data dir) with
//! `group.initial.rebalance.delay.ms=0` unless the test is about it.
//! Members use `session.timeout.ms=6000`, `heartbeat.interval.ms=1000`,
//! `max.poll.interval.ms=30000`.
//!
//! How the tests observe a group:
//! - in-process librdkafka members run a poll loop on their own thread; the
//!   rebalance callbacks (pre/post_rebalance) and every consumed record and
//!   commit result land in a shared [`MState`];
//! - child-process members (this test binary re-executed with
//!   `GREGOR_GROUPS_CHILD_MEMBER` set: the `zz_child_member` test, a no-op
//!   otherwise) and Java members print the same events as JSON lines, which
//!   a reader thread applies to their [`MState`];
//! - generations and member ids of librdkafka members come from their
//!   `debug=cgrp` log ("JoinGroup response: GenerationId N ... my MemberId
//!   M"), Java members report them from their rebalance listener.
//!
//! Duplicates: a record may be consumed twice only when the first
//! consumption was not covered by a successful commit (at-least-once);
//! any other duplicate, any missing record, fails the test.
//!
//! Rebalance times are printed as `TIMING <what> = <ms>` lines.
//!
//! Against another broker: `COMPAT_GROUPS_BOOTSTRAP=host:port` runs the
//! scenarios against it (e.g. the reference Kafka from
//! `compat-tests/reference/kafka.sh start`); the tests that restart the
//! broker process are skipped then. For `three_members_share_six_partitions`
//! the external broker needs `group.initial.rebalance.delay.ms` > 0
//! (`GREGOR_REFERENCE_GROUP_DELAY_MS=3000`).
//!
//! Java: tests with Java members need `java` (17+) and `mvn` on PATH (the
//! jar is built on first use with `mvn -q package`); without them they fail
//! and say so.
//!
//! On failure: the error, the tail of the clients' log (librdkafka, child
//! members, Java stderr) and of the broker log; full logs under
//! `target/tmp/groups-<test>.*.log`. `COMPAT_PRINT_CLIENT_LOG=1` prints the
//! client log of passing tests too; `GREGOR_LOG` sets the broker's RUST_LOG.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use gregor_compat::{Broker, BrokerBuilder, LogSink};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, RebalanceProtocol,
};
use rdkafka::error::KafkaError;
use rdkafka::groups::GroupInfo;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};

const PARTITIONS: i32 = 6;
const SESSION_MS: u64 = 6000;
const HEARTBEAT_MS: u64 = 1000;
const MAX_POLL_MS: u64 = 30000;
/// Bound for one admin / metadata / offset request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound for a group to settle after a membership change (fail, don't hang).
const SETTLE: Duration = Duration::from_secs(45);
/// Bound for consuming what was produced.
const CONSUME: Duration = Duration::from_secs(60);
/// A member must close within this.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

const CHILD_ENV: &str = "GREGOR_GROUPS_CHILD_MEMBER";
const CHILD_PREFIX: &str = "@@member ";
const EXTERNAL_ENV: &str = "COMPAT_GROUPS_BOOTSTRAP";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

// ---------------------------------------------------------------------------
// Environment: one broker (or an external one), names, logs
// ---------------------------------------------------------------------------

struct Env {
    broker: Option<Broker>,
    bootstrap: String,
    logs: LogSink,
    name: &'static str,
    tag: String,
    started: Instant,
    seq: u32,
    rt: tokio::runtime::Runtime,
}

/// A broker with the group settings the tests use by default.
fn gregor() -> BrokerBuilder {
    Broker::builder().prop("group.initial.rebalance.delay.ms", "0")
}

/// Launch a broker (or use `COMPAT_GROUPS_BOOTSTRAP`), run `body`, and on
/// error fail with the error and the logs. `needs_process`: the test
/// restarts the broker, so it cannot run against an external one.
fn run(
    name: &'static str,
    needs_process: bool,
    builder: BrokerBuilder,
    body: impl FnOnce(&mut Env) -> Result<()>,
) {
    let external = std::env::var(EXTERNAL_ENV).ok().filter(|s| !s.is_empty());
    if external.is_some() && needs_process {
        eprintln!("[{name}] SKIPPED: restarts the broker process; {EXTERNAL_ENV} is set");
        return;
    }
    let started = Instant::now();
    let (broker, bootstrap) = match external {
        Some(b) => (None, b),
        None => match builder.launch() {
            Ok(b) => {
                let addr = b.bootstrap();
                (Some(b), addr)
            }
            Err(e) => panic!("{name}: could not start gregor: {e:#}"),
        },
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tag = format!("{:x}", (std::process::id() << 12) ^ nanos);
    eprintln!("[{name}] broker at {bootstrap} ({:?})", started.elapsed());
    let mut env = Env {
        broker,
        bootstrap,
        logs: LogSink::default(),
        name,
        tag,
        started,
        seq: 0,
        rt,
    };
    match body(&mut env) {
        Ok(()) => {
            if std::env::var_os("COMPAT_PRINT_CLIENT_LOG").is_some() {
                eprintln!("--- [{name}] client log ---\n{}", env.logs.tail(usize::MAX));
            }
            eprintln!("[{name}] PASSED in {:.1?}", started.elapsed());
        }
        Err(e) => {
            let files = save_logs(&env);
            let broker_tail = env
                .broker
                .as_ref()
                .map(|b| b.log_tail(150))
                .unwrap_or_else(|| "(external broker)\n".to_owned());
            let report = format!(
                "{name} FAILED after {:.1?}: {e:#}\n\
                 --- client log (tail) ---\n{}\
                 --- broker log ({}, tail) ---\n{}{files}",
                started.elapsed(),
                env.logs.tail(120),
                env.bootstrap,
                broker_tail,
            );
            drop(env);
            panic!("{report}");
        }
    }
}

fn save_logs(env: &Env) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let client = dir.join(format!("groups-{}.client.log", env.name));
    let broker = dir.join(format!("groups-{}.broker.log", env.name));
    let c = std::fs::write(&client, env.logs.lines().join("\n"));
    let b = match &env.broker {
        Some(br) => std::fs::write(&broker, br.log().lines().join("\n")),
        None => Ok(()),
    };
    match (c, b) {
        (Ok(()), Ok(())) => format!(
            "--- full logs: {} and {}",
            client.display(),
            broker.display()
        ),
        (c, b) => format!("--- could not save full logs: {c:?} {b:?}"),
    }
}

impl Env {
    fn topic(&self, what: &str) -> String {
        format!("{}-{what}-{}", self.name, self.tag)
    }
    fn group(&self, what: &str) -> String {
        format!("g-{}-{what}-{}", self.name, self.tag)
    }
    fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }
    fn broker(&mut self) -> Result<&mut Broker> {
        self.broker
            .as_mut()
            .ok_or_else(|| anyhow!("no broker process (external broker)"))
    }
    fn note(&self, what: &str) {
        eprintln!("[{}] t={:.1?} {what}", self.name, self.started.elapsed());
    }
    fn timing(&self, what: &str, d: Duration) {
        eprintln!("[{}] TIMING {what} = {} ms", self.name, ms(d));
    }

    fn base_config(&self) -> ClientConfig {
        base_config(&self.bootstrap)
    }

    fn admin(&self) -> Result<AdminClient<DefaultClientContext>> {
        self.base_config().create().context("creating AdminClient")
    }

    /// A consumer that never subscribes (metadata, OffsetFetch, group list).
    fn tool(&mut self, group: &str) -> Result<BaseConsumer<GroupCtx>> {
        let n = self.next_seq();
        let ctx = GroupCtx::new(
            &format!("tool#{n}"),
            &self.logs,
            Arc::default(),
            None,
            false,
        );
        let mut cfg = self.base_config();
        cfg.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("allow.auto.create.topics", "false");
        cfg.create_with_context(ctx)
            .context("creating a tool consumer")
    }

    /// CreateTopics, then wait until Metadata shows every partition with a
    /// leader (Kafka propagates metadata asynchronously).
    fn create_topic(&mut self, topic: &str, partitions: i32) -> Result<()> {
        let admin = self.admin()?;
        let nt = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let opts = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let res = self
            .rt
            .block_on(async {
                tokio::time::timeout(REQUEST_TIMEOUT * 2, admin.create_topics([&nt], &opts)).await
            })
            .map_err(|_| anyhow!("CreateTopics({topic}) got no answer"))?
            .with_context(|| format!("CreateTopics({topic})"))?;
        match res.first() {
            Some(Ok(n)) if n == topic => {}
            other => bail!("CreateTopics({topic}) failed: {other:?}"),
        }
        let tool = self.tool("metadata-probe")?;
        wait_for(&format!("Metadata to show {topic}"), SETTLE, || {
            let md = match tool.fetch_metadata(Some(topic), REQUEST_TIMEOUT) {
                Ok(md) => md,
                Err(_) => return Ok(None),
            };
            let ok = md.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            });
            Ok(ok.then_some(()))
        })
    }

    /// Produce `count` keyed records `k{i}`/`v{i}` (i from `first`), record
    /// i to partition i % partitions; every one must be acknowledged.
    fn produce(
        &mut self,
        topic: &str,
        partitions: i32,
        first: usize,
        count: usize,
    ) -> Result<Vec<Produced>> {
        let mut cfg = self.base_config();
        cfg.set("linger.ms", "5").set("message.timeout.ms", "30000");
        let producer: FutureProducer = cfg.create().context("creating FutureProducer")?;
        let topic = topic.to_owned();
        self.rt.block_on(async move {
            let mut futs = Vec::with_capacity(count);
            for i in first..first + count {
                let key = format!("k{i}");
                let value = format!("v{i}");
                let p = (i % partitions as usize) as i32;
                let rec = FutureRecord::to(&topic)
                    .key(&key)
                    .payload(&value)
                    .partition(p);
                match producer.send_result(rec) {
                    Ok(f) => futs.push((key, f)),
                    Err((e, _)) => bail!("enqueueing k{i} failed: {e}"),
                }
            }
            let mut out = Vec::with_capacity(count);
            let all = async {
                for (key, f) in futs {
                    match f.await {
                        Ok(Ok(d)) => out.push(Produced {
                            partition: d.partition,
                            offset: d.offset,
                            key,
                        }),
                        Ok(Err((e, _))) => bail!("{key} not delivered: {e}"),
                        Err(_) => bail!("{key}: delivery future cancelled"),
                    }
                }
                Ok(())
            };
            tokio::time::timeout(Duration::from_secs(60), all)
                .await
                .map_err(|_| anyhow!("deliveries did not all arrive in 60 s"))??;
            Ok(out)
        })
    }

    /// (low, high) watermarks of every partition.
    fn high_watermarks(&mut self, topic: &str, partitions: i32) -> Result<BTreeMap<i32, i64>> {
        let tool = self.tool("watermarks")?;
        let mut out = BTreeMap::new();
        for p in 0..partitions {
            let (_, hi) = tool
                .fetch_watermarks(topic, p, REQUEST_TIMEOUT)
                .with_context(|| format!("watermarks {topic}/{p}"))?;
            out.insert(p, hi);
        }
        Ok(out)
    }

    /// OffsetFetch for `group` from a non-member: partition -> (offset,
    /// metadata); partitions without a committed offset are left out.
    fn committed(
        &mut self,
        group: &str,
        topic: &str,
        partitions: i32,
    ) -> Result<BTreeMap<i32, (i64, String)>> {
        let tool = self.tool(group)?;
        committed_with(&tool, topic, partitions)
    }

    /// DescribeGroups through librdkafka (`rd_kafka_list_groups` with a group).
    fn describe(&mut self, group: &str) -> Result<GroupView> {
        let tool = self.tool("describe")?;
        describe_with(&tool, group)
    }

    /// ListGroups (+ DescribeGroups) through librdkafka, all groups.
    fn list_groups(&mut self) -> Result<Vec<GroupView>> {
        let tool = self.tool("list")?;
        let list = tool
            .fetch_group_list(None, REQUEST_TIMEOUT)
            .context("ListGroups")?;
        Ok(list.groups().iter().map(GroupView::from).collect())
    }

    fn member_cfg(&mut self, group: &str, topic: &str, label: &str) -> MemberCfg {
        let n = self.next_seq();
        MemberCfg {
            bootstrap: self.bootstrap.clone(),
            group: group.to_owned(),
            topic: topic.to_owned(),
            name: format!("{label}#{n}"),
            client_id: format!("{}-{label}-{n}", self.name),
            strategy: "range,roundrobin".to_owned(),
            instance_id: None,
            commit: CommitPolicy::EachSync,
            debug_cgrp: false,
            max_records: None,
        }
    }
}

/// OffsetFetch with `tool`'s group.id.
fn committed_with(
    tool: &BaseConsumer<GroupCtx>,
    topic: &str,
    partitions: i32,
) -> Result<BTreeMap<i32, (i64, String)>> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = tool
        .committed_offsets(tpl, REQUEST_TIMEOUT)
        .context("OffsetFetch")?;
    let mut out = BTreeMap::new();
    for e in got.elements() {
        e.error()
            .with_context(|| format!("OffsetFetch {topic}/{}", e.partition()))?;
        if let Offset::Offset(o) = e.offset() {
            out.insert(e.partition(), (o, e.metadata().to_owned()));
        }
    }
    Ok(out)
}

/// DescribeGroups for one group through `tool`.
fn describe_with(tool: &BaseConsumer<GroupCtx>, group: &str) -> Result<GroupView> {
    let list = tool
        .fetch_group_list(Some(group), REQUEST_TIMEOUT)
        .with_context(|| format!("DescribeGroups({group})"))?;
    let g = list
        .groups()
        .iter()
        .find(|g| g.name() == group)
        .ok_or_else(|| anyhow!("DescribeGroups({group}) did not return the group"))?;
    Ok(GroupView::from(g))
}

fn base_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    c.set_log_level(RDKafkaLogLevel::Info);
    if let Ok(d) = std::env::var("COMPAT_RDKAFKA_DEBUG") {
        c.set("debug", d).set_log_level(RDKafkaLogLevel::Debug);
    }
    c
}

/// Poll `f` every 20 ms until it yields a value; fail after `timeout`.
fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Clone, Debug)]
struct Produced {
    partition: i32,
    offset: i64,
    key: String,
}

/// A group as DescribeGroups shows it.
#[derive(Clone, Debug)]
struct GroupView {
    name: String,
    state: String,
    protocol: String,
    protocol_type: String,
    members: Vec<MemberView>,
}

#[derive(Clone, Debug)]
struct MemberView {
    id: String,
    client_id: String,
    client_host: String,
    /// Topics of the member's subscription (ConsumerProtocolSubscription).
    subscription: Result<Vec<String>, String>,
    /// Partitions of the member's assignment (ConsumerProtocolAssignment).
    assignment: Result<BTreeMap<String, Vec<i32>>, String>,
}

impl From<&GroupInfo> for GroupView {
    fn from(g: &GroupInfo) -> GroupView {
        GroupView {
            name: g.name().to_owned(),
            state: g.state().to_owned(),
            protocol: g.protocol().to_owned(),
            protocol_type: g.protocol_type().to_owned(),
            members: g
                .members()
                .iter()
                .map(|m| MemberView {
                    id: m.id().to_owned(),
                    client_id: m.client_id().to_owned(),
                    client_host: m.client_host().to_owned(),
                    subscription: decode_subscription(m.metadata().unwrap_or_default()),
                    assignment: decode_assignment(m.assignment().unwrap_or_default()),
                })
                .collect(),
        }
    }
}

impl GroupView {
    fn summary(&self) -> String {
        let members: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}({}) {:?}", m.client_id, m.id, m.assignment))
            .collect();
        format!(
            "{} state={} type={} protocol={} members={members:?}",
            self.name, self.state, self.protocol_type, self.protocol
        )
    }
}

/// Big-endian reader for the consumer-protocol blobs.
struct Blob<'a>(&'a [u8]);

impl Blob<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err(format!("truncated: need {n} bytes, {} left", self.0.len()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.i16()?;
        if n < 0 {
            return Err("null string".to_owned());
        }
        let b = self.take(n as usize)?;
        String::from_utf8(b.to_vec()).map_err(|e| e.to_string())
    }
    fn count(&mut self) -> Result<usize, String> {
        let n = self.i32()?;
        usize::try_from(n).map_err(|_| format!("bad array length {n}"))
    }
}

/// Topics of a ConsumerProtocolSubscription (any version: the topics come first).
fn decode_subscription(b: &[u8]) -> Result<Vec<String>, String> {
    let mut r = Blob(b);
    let _version = r.i16()?;
    let n = r.count()?;
    (0..n).map(|_| r.string()).collect()
}

/// Partitions of a ConsumerProtocolAssignment (any version).
fn decode_assignment(b: &[u8]) -> Result<BTreeMap<String, Vec<i32>>, String> {
    if b.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut r = Blob(b);
    let _version = r.i16()?;
    let n = r.count()?;
    let mut out = BTreeMap::new();
    for _ in 0..n {
        let topic = r.string()?;
        let np = r.count()?;
        let parts = (0..np).map(|_| r.i32()).collect::<Result<Vec<_>, _>>()?;
        out.insert(topic, parts);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Member state: what a member did, whatever client it is
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EvKind {
    Assign,
    Revoke,
    Lost,
}

#[derive(Clone, Debug)]
struct Ev {
    at: Instant,
    kind: EvKind,
    /// What the callback got (incremental for cooperative members).
    parts: BTreeSet<i32>,
    /// The member's whole assignment after the callback.
    owned_after: BTreeSet<i32>,
}

#[derive(Clone, Debug)]
struct Rec {
    at: Instant,
    partition: i32,
    offset: i64,
    key: String,
    /// Result of the commit that covered this record; None: none (yet).
    committed: Option<bool>,
}

#[derive(Clone, Debug, Default)]
struct MState {
    owned: BTreeSet<i32>,
    events: Vec<Ev>,
    records: Vec<Rec>,
    /// Indexes into `records` not yet covered by a commit result.
    uncommitted: Vec<usize>,
    commits_ok: usize,
    commit_errors: Vec<String>,
    /// Highest offset this member committed successfully, per partition.
    committed: BTreeMap<i32, i64>,
    /// Generations from JoinGroup responses (librdkafka, debug=cgrp) or
    /// from the rebalance listener (Java).
    generations: Vec<i32>,
    /// Whether the latest JoinGroup response named this member the leader
    /// (librdkafka, debug=cgrp).
    join_leader: Option<bool>,
    member_id: Option<String>,
    errors: Vec<String>,
    exited: Option<String>,
}

type Shared = Arc<Mutex<MState>>;
type Hook = Arc<dyn Fn(Value) + Send + Sync>;

fn parts_json(s: &BTreeSet<i32>) -> Value {
    Value::from(s.iter().copied().collect::<Vec<i32>>())
}

/// Applies events to a member's state (and, in a child process, prints them).
#[derive(Clone)]
struct Recorder {
    state: Shared,
    hook: Option<Hook>,
}

impl Recorder {
    fn emit(&self, v: Value) {
        if let Some(h) = &self.hook {
            h(v);
        }
    }

    fn rebalance(&self, kind: EvKind, parts: BTreeSet<i32>, incremental: bool) {
        let owned = {
            let mut s = lock(&self.state);
            match kind {
                EvKind::Assign if incremental => s.owned.extend(parts.iter().copied()),
                EvKind::Assign => s.owned = parts.clone(),
                EvKind::Revoke | EvKind::Lost => {
                    for p in &parts {
                        s.owned.remove(p);
                    }
                }
            }
            let owned = s.owned.clone();
            s.events.push(Ev {
                at: Instant::now(),
                kind,
                parts: parts.clone(),
                owned_after: owned.clone(),
            });
            owned
        };
        let name = match kind {
            EvKind::Assign => "assigned",
            EvKind::Revoke => "revoked",
            EvKind::Lost => "lost",
        };
        self.emit(
            json!({"event": name, "partitions": parts_json(&parts), "owned": parts_json(&owned)}),
        );
    }

    /// A rebalance event with the whole assignment known (child / Java output).
    fn rebalance_owned(&self, kind: EvKind, parts: BTreeSet<i32>, owned: BTreeSet<i32>) {
        let mut s = lock(&self.state);
        s.owned = owned.clone();
        s.events.push(Ev {
            at: Instant::now(),
            kind,
            parts,
            owned_after: owned,
        });
    }

    fn record(&self, partition: i32, offset: i64, key: String) {
        {
            let mut s = lock(&self.state);
            let i = s.records.len();
            s.records.push(Rec {
                at: Instant::now(),
                partition,
                offset,
                key: key.clone(),
                committed: None,
            });
            s.uncommitted.push(i);
        }
        self.emit(json!({"event": "record", "partition": partition, "offset": offset, "key": key}));
    }

    /// Result of a commit covering every record since the previous one.
    fn commit(&self, result: Result<&BTreeMap<i32, i64>, String>) {
        {
            let mut s = lock(&self.state);
            // A record is committed when the commit succeeded and covered
            // its partition past it; anything else is not committed.
            for i in std::mem::take(&mut s.uncommitted) {
                let r = &s.records[i];
                let covered = match &result {
                    Ok(offsets) => offsets.get(&r.partition).is_some_and(|o| *o > r.offset),
                    Err(_) => false,
                };
                s.records[i].committed = Some(covered);
            }
            match &result {
                Ok(offsets) => {
                    s.commits_ok += 1;
                    for (p, o) in offsets.iter() {
                        let e = s.committed.entry(*p).or_insert(*o);
                        *e = (*e).max(*o);
                    }
                }
                Err(e) => s.commit_errors.push(e.clone()),
            }
        }
        match result {
            Ok(offsets) => {
                let o: serde_json::Map<String, Value> = offsets
                    .iter()
                    .map(|(p, o)| (p.to_string(), Value::from(*o)))
                    .collect();
                self.emit(json!({"event": "commit", "ok": true, "offsets": o}));
            }
            Err(e) => self.emit(json!({"event": "commit", "ok": false, "error": e})),
        }
    }

    fn generation(&self, generation: i32, member: &str, leader: Option<bool>) {
        {
            let mut s = lock(&self.state);
            s.generations.push(generation);
            s.member_id = Some(member.to_owned());
            if leader.is_some() {
                s.join_leader = leader;
            }
        }
        self.emit(json!({"event": "generation", "generation": generation, "member": member, "leader": leader}));
    }

    fn error(&self, e: String) {
        lock(&self.state).errors.push(e.clone());
        self.emit(json!({"event": "error", "error": e}));
    }

    /// Applies one JSON event line from a child or Java member.
    fn apply(&self, v: &Value) -> Result<()> {
        let ints = |k: &str| -> Result<BTreeSet<i32>> {
            v.get(k)
                .and_then(Value::as_array)
                .ok_or_else(|| anyhow!("no {k} array in {v}"))?
                .iter()
                .map(|x| {
                    x.as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .ok_or_else(|| anyhow!("bad partition in {v}"))
                })
                .collect()
        };
        let event = v.get("event").and_then(Value::as_str).unwrap_or("");
        match event {
            "assigned" | "revoked" | "lost" => {
                let kind = match event {
                    "assigned" => EvKind::Assign,
                    "revoked" => EvKind::Revoke,
                    _ => EvKind::Lost,
                };
                self.rebalance_owned(kind, ints("partitions")?, ints("owned")?);
                // Java reports generation and member id with every callback.
                if let (Some(g), Some(m)) = (
                    v.get("generation").and_then(Value::as_i64),
                    v.get("member").and_then(Value::as_str),
                ) {
                    let mut s = lock(&self.state);
                    if g >= 0 && s.generations.last() != Some(&(g as i32)) {
                        s.generations.push(g as i32);
                    }
                    if !m.is_empty() {
                        s.member_id = Some(m.to_owned());
                    }
                }
            }
            "record" => {
                let p = v.get("partition").and_then(Value::as_i64).unwrap_or(-1) as i32;
                let o = v.get("offset").and_then(Value::as_i64).unwrap_or(-1);
                let k = v
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let mut s = lock(&self.state);
                let i = s.records.len();
                s.records.push(Rec {
                    at: Instant::now(),
                    partition: p,
                    offset: o,
                    key: k,
                    committed: None,
                });
                s.uncommitted.push(i);
            }
            "commit" => {
                if v.get("ok").and_then(Value::as_bool) == Some(true) {
                    let offsets: BTreeMap<i32, i64> = v
                        .get("offsets")
                        .and_then(Value::as_object)
                        .map(|m| {
                            m.iter()
                                .filter_map(|(p, o)| Some((p.parse().ok()?, o.as_i64()?)))
                                .collect()
                        })
                        .unwrap_or_default();
                    self.commit(Ok(&offsets));
                } else {
                    let e = v.get("error").map(|e| e.to_string()).unwrap_or_default();
                    self.commit(Err(e));
                }
            }
            "generation" => {
                let g = v.get("generation").and_then(Value::as_i64).unwrap_or(-1) as i32;
                let m = v.get("member").and_then(Value::as_str).unwrap_or("");
                self.generation(g, m, v.get("leader").and_then(Value::as_bool));
            }
            "error" => self.error(v.get("error").map(|e| e.to_string()).unwrap_or_default()),
            "exit" => {
                lock(&self.state).exited = Some(
                    v.get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_owned(),
                );
            }
            _ => {}
        }
        Ok(())
    }
}

/// `JoinGroup response: GenerationId N, Protocol P, LeaderId L[ (me)], my MemberId M, ...`
/// -> (generation, member id, named the leader)
fn parse_join_response(msg: &str) -> Option<(i32, String, bool)> {
    let at = msg.find("JoinGroup response: GenerationId ")?;
    let rest = &msg[at + "JoinGroup response: GenerationId ".len()..];
    let gen: i32 = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect::<String>()
        .parse()
        .ok()?;
    let m = rest.find("my MemberId ")?;
    let member: String = rest[m + "my MemberId ".len()..]
        .chars()
        .take_while(|c| *c != ',' && !c.is_whitespace())
        .collect();
    Some((gen, member, rest[..m].contains(" (me), ")))
}

// ---------------------------------------------------------------------------
// librdkafka member context
// ---------------------------------------------------------------------------

struct GroupCtx {
    name: String,
    sink: LogSink,
    rec: Recorder,
    echo_stderr: bool,
}

impl GroupCtx {
    fn new(name: &str, sink: &LogSink, state: Shared, hook: Option<Hook>, echo: bool) -> GroupCtx {
        GroupCtx {
            name: name.to_owned(),
            sink: sink.clone(),
            rec: Recorder { state, hook },
            echo_stderr: echo,
        }
    }
    fn line(&self, l: String) {
        if self.echo_stderr {
            eprintln!("{l}");
        } else {
            self.sink.push(l);
        }
    }
}

fn tpl_parts(tpl: &TopicPartitionList) -> BTreeSet<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

impl ClientContext for GroupCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        if let Some((g, m, leader)) = parse_join_response(msg) {
            if g >= 0 {
                self.rec.generation(g, &m, Some(leader));
            }
        }
        self.line(format!("[{}] {level:?} {fac}: {msg}", self.name));
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.line(format!("[{}] ERROR {error}: {reason}", self.name));
    }
}

impl ConsumerContext for GroupCtx {
    fn pre_rebalance(&self, c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = r {
            let kind = if c.assignment_lost() {
                EvKind::Lost
            } else {
                EvKind::Revoke
            };
            self.line(format!(
                "[{}] REBALANCE {kind:?} {:?}",
                self.name,
                tpl_parts(tpl)
            ));
            self.rec.rebalance(kind, tpl_parts(tpl), true);
        }
    }
    fn post_rebalance(&self, c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        match r {
            Rebalance::Assign(tpl) => {
                let incremental = matches!(c.rebalance_protocol(), RebalanceProtocol::Cooperative);
                self.line(format!(
                    "[{}] REBALANCE Assign {:?} (incremental {incremental})",
                    self.name,
                    tpl_parts(tpl)
                ));
                self.rec
                    .rebalance(EvKind::Assign, tpl_parts(tpl), incremental);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => {
                self.line(format!("[{}] REBALANCE error {e}", self.name));
                self.rec.error(format!("rebalance error: {e}"));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Members: in-process librdkafka, child-process librdkafka, Java
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CommitPolicy {
    /// commit_message(Sync) after every record.
    EachSync,
    /// Synchronous commit of the consumed positions every n records.
    EverySync(usize),
    /// enable.auto.commit=true, auto.commit.interval.ms=100.
    Auto,
}

#[derive(Clone, Debug)]
struct MemberCfg {
    bootstrap: String,
    group: String,
    topic: String,
    name: String,
    client_id: String,
    /// partition.assignment.strategy (librdkafka names; Java: the same names).
    strategy: String,
    instance_id: Option<String>,
    commit: CommitPolicy,
    /// debug=cgrp: generations and member id from the JoinGroup responses.
    debug_cgrp: bool,
    /// Process at most this many records; later ones are polled and
    /// dropped unprocessed (and never committed).
    max_records: Option<usize>,
}

impl MemberCfg {
    fn to_json(&self) -> Value {
        json!({
            "bootstrap": self.bootstrap, "group": self.group, "topic": self.topic,
            "name": self.name, "client_id": self.client_id, "strategy": self.strategy,
            "instance_id": self.instance_id,
            "commit": match self.commit {
                CommitPolicy::EachSync => "each".to_owned(),
                CommitPolicy::EverySync(n) => format!("every{n}"),
                CommitPolicy::Auto => "auto".to_owned(),
            },
            "debug_cgrp": self.debug_cgrp, "max_records": self.max_records,
        })
    }
    fn from_json(v: &Value) -> Result<MemberCfg> {
        let s = |k: &str| -> Result<String> {
            Ok(v.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("child config: no {k}"))?
                .to_owned())
        };
        let commit = s("commit")?;
        Ok(MemberCfg {
            bootstrap: s("bootstrap")?,
            group: s("group")?,
            topic: s("topic")?,
            name: s("name")?,
            client_id: s("client_id")?,
            strategy: s("strategy")?,
            instance_id: v
                .get("instance_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            commit: match commit.as_str() {
                "each" => CommitPolicy::EachSync,
                "auto" => CommitPolicy::Auto,
                other => CommitPolicy::EverySync(
                    other
                        .strip_prefix("every")
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| anyhow!("bad commit policy {other}"))?,
                ),
            },
            debug_cgrp: v
                .get("debug_cgrp")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            max_records: v
                .get("max_records")
                .and_then(Value::as_u64)
                .map(|n| n as usize),
        })
    }
}

enum Handle {
    InProc {
        consumer: Option<Arc<BaseConsumer<GroupCtx>>>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    },
    Proc {
        child: Child,
        stdin: Option<ChildStdin>,
        java: bool,
    },
    Closed,
}

struct Member {
    name: String,
    cfg: MemberCfg,
    state: Shared,
    handle: Handle,
    logs: LogSink,
}

impl Member {
    fn snapshot(&self) -> MState {
        lock(&self.state).clone()
    }
    fn owned(&self) -> BTreeSet<i32> {
        lock(&self.state).owned.clone()
    }
    fn events_since(&self, t: Instant) -> Vec<Ev> {
        lock(&self.state)
            .events
            .iter()
            .filter(|e| e.at >= t)
            .cloned()
            .collect()
    }
    /// True once the member has had a rebalance callback and its latest
    /// one is an assignment (it is not between a revoke and an assign).
    fn settled(&self) -> bool {
        lock(&self.state)
            .events
            .last()
            .is_some_and(|e| e.kind == EvKind::Assign)
    }
    fn last_generation(&self) -> Option<i32> {
        lock(&self.state).generations.last().copied()
    }
    fn member_id(&self) -> Option<String> {
        lock(&self.state).member_id.clone()
    }
    fn consumer(&self) -> Result<&BaseConsumer<GroupCtx>> {
        match &self.handle {
            Handle::InProc {
                consumer: Some(c), ..
            } => Ok(c),
            _ => bail!("{} is not a running in-process member", self.name),
        }
    }
    /// consumer.assignment() of an in-process member (None for others).
    fn live_assignment(&self) -> Result<Option<BTreeSet<i32>>> {
        match &self.handle {
            Handle::InProc {
                consumer: Some(c), ..
            } => {
                Ok(Some(tpl_parts(&c.assignment().with_context(|| {
                    format!("{}: assignment()", self.name)
                })?)))
            }
            _ => Ok(None),
        }
    }
    fn unsubscribe(&self) -> Result<()> {
        self.consumer()?.unsubscribe();
        Ok(())
    }

    /// Clean close: librdkafka close (LeaveGroup unless static), child:
    /// stdin "close", Java: SIGTERM. Returns how long it took.
    fn close(&mut self) -> Result<Duration> {
        let t0 = Instant::now();
        match std::mem::replace(&mut self.handle, Handle::Closed) {
            Handle::InProc {
                consumer,
                stop,
                thread,
            } => {
                stop.store(true, Ordering::SeqCst);
                if let Some(t) = thread {
                    let _ = t.join();
                }
                if let Some(c) = consumer {
                    let (tx, rx) = mpsc::channel();
                    // Dropping the last reference closes the consumer; bounded.
                    std::thread::spawn(move || {
                        drop(c);
                        let _ = tx.send(());
                    });
                    rx.recv_timeout(CLOSE_TIMEOUT).map_err(|_| {
                        anyhow!(
                            "{}: consumer close did not finish in {CLOSE_TIMEOUT:?}",
                            self.name
                        )
                    })?;
                }
            }
            Handle::Proc {
                mut child,
                stdin,
                java,
            } => {
                if java {
                    signal(child.id(), "TERM")?;
                } else if let Some(mut s) = stdin {
                    let _ = s.write_all(b"close\n");
                    let _ = s.flush();
                }
                let status = wait_child(&mut child, CLOSE_TIMEOUT)
                    .with_context(|| format!("{}: waiting for a clean exit", self.name))?;
                ensure!(
                    status.success(),
                    "{} exited with {status} after a clean close",
                    self.name
                );
            }
            Handle::Closed => bail!("{} already closed", self.name),
        }
        Ok(t0.elapsed())
    }

    /// SIGKILL (child and Java members only): no LeaveGroup, no commit.
    fn kill9(&mut self) -> Result<()> {
        match std::mem::replace(&mut self.handle, Handle::Closed) {
            Handle::Proc { mut child, .. } => {
                self.logs.push(format!(
                    "=== harness: SIGKILL {} pid {} ===",
                    self.name,
                    child.id()
                ));
                child.kill().context("SIGKILL")?;
                child.wait().context("reaping")?;
                Ok(())
            }
            other => {
                self.handle = other;
                bail!("{} is not a process", self.name)
            }
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.handle, Handle::Closed) {
            Handle::InProc {
                consumer,
                stop,
                thread,
            } => {
                stop.store(true, Ordering::SeqCst);
                if let Some(t) = thread {
                    let _ = t.join();
                }
                if let Some(c) = consumer {
                    let (tx, rx) = mpsc::channel();
                    std::thread::spawn(move || {
                        drop(c);
                        let _ = tx.send(());
                    });
                    let _ = rx.recv_timeout(Duration::from_secs(10));
                }
            }
            Handle::Proc { mut child, .. } => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Handle::Closed => {}
        }
    }
}

fn signal(pid: u32, sig: &str) -> Result<()> {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .context("running kill")?;
    ensure!(st.success(), "kill -{sig} {pid} failed: {st}");
    Ok(())
}

fn wait_child(child: &mut Child, timeout: Duration) -> Result<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("did not exit within {timeout:?} (SIGKILLed)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rdkafka_member_config(cfg: &MemberCfg) -> ClientConfig {
    let mut c = base_config(&cfg.bootstrap);
    c.set("group.id", &cfg.group)
        .set("client.id", &cfg.client_id)
        .set("partition.assignment.strategy", &cfg.strategy)
        .set("session.timeout.ms", SESSION_MS.to_string())
        .set("heartbeat.interval.ms", HEARTBEAT_MS.to_string())
        .set("max.poll.interval.ms", MAX_POLL_MS.to_string())
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false");
    match cfg.commit {
        CommitPolicy::Auto => {
            c.set("enable.auto.commit", "true")
                .set("auto.commit.interval.ms", "100");
        }
        _ => {
            c.set("enable.auto.commit", "false");
        }
    }
    if let Some(i) = &cfg.instance_id {
        c.set("group.instance.id", i);
    }
    if cfg.debug_cgrp {
        let d = match std::env::var("COMPAT_RDKAFKA_DEBUG") {
            Ok(d) => format!("{d},cgrp"),
            Err(_) => "cgrp".to_owned(),
        };
        c.set("debug", d).set_log_level(RDKafkaLogLevel::Debug);
    }
    c
}

/// Start an in-process librdkafka member: subscribe and poll on a thread.
fn start_member(cfg: MemberCfg, logs: &LogSink, hook: Option<Hook>, echo: bool) -> Result<Member> {
    let state: Shared = Arc::default();
    let ctx = GroupCtx::new(&cfg.name, logs, state.clone(), hook.clone(), echo);
    let rec = ctx.rec.clone();
    let consumer: BaseConsumer<GroupCtx> = rdkafka_member_config(&cfg)
        .create_with_context(ctx)
        .with_context(|| format!("creating consumer {}", cfg.name))?;
    consumer
        .subscribe(&[&cfg.topic])
        .with_context(|| format!("{}: subscribe", cfg.name))?;
    let consumer = Arc::new(consumer);
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let consumer = consumer.clone();
        let stop = stop.clone();
        let cfg = cfg.clone();
        std::thread::Builder::new()
            .name(format!("member-{}", cfg.name))
            .spawn(move || poll_loop(&consumer, &rec, &stop, &cfg))
            .context("spawning the poll thread")?
    };
    Ok(Member {
        name: cfg.name.clone(),
        cfg,
        state,
        handle: Handle::InProc {
            consumer: Some(consumer),
            stop,
            thread: Some(thread),
        },
        logs: logs.clone(),
    })
}

fn poll_loop(
    consumer: &BaseConsumer<GroupCtx>,
    rec: &Recorder,
    stop: &AtomicBool,
    cfg: &MemberCfg,
) {
    let mut processed = 0usize;
    let mut pending: BTreeMap<i32, i64> = BTreeMap::new();
    let mut since_commit = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let msg = match consumer.poll(Duration::from_millis(50)) {
            None => continue,
            Some(Err(e)) => {
                rec.error(format!("consume error: {e}"));
                continue;
            }
            Some(Ok(m)) => m,
        };
        if msg.topic() != cfg.topic || cfg.max_records.is_some_and(|m| processed >= m) {
            continue; // not processed, never committed
        }
        processed += 1;
        let key = msg
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        rec.record(msg.partition(), msg.offset(), key);
        match cfg.commit {
            CommitPolicy::EachSync => {
                let offsets = BTreeMap::from([(msg.partition(), msg.offset() + 1)]);
                match consumer.commit_message(&msg, CommitMode::Sync) {
                    Ok(()) => rec.commit(Ok(&offsets)),
                    Err(e) => rec.commit(Err(e.to_string())),
                }
            }
            CommitPolicy::EverySync(n) => {
                pending.insert(msg.partition(), msg.offset() + 1);
                since_commit += 1;
                if since_commit >= n {
                    // Only partitions still owned: a revoked one may have a
                    // new owner that committed further already.
                    let owned = lock(&rec.state).owned.clone();
                    pending.retain(|p, _| owned.contains(p));
                    let mut tpl = TopicPartitionList::new();
                    for (p, o) in &pending {
                        if let Err(e) = tpl.add_partition_offset(&cfg.topic, *p, Offset::Offset(*o))
                        {
                            rec.error(format!("tpl: {e}"));
                        }
                    }
                    match if tpl.count() == 0 {
                        Ok(())
                    } else {
                        consumer.commit(&tpl, CommitMode::Sync)
                    } {
                        Ok(()) => rec.commit(Ok(&pending)),
                        Err(e) => rec.commit(Err(e.to_string())),
                    }
                    pending.clear();
                    since_commit = 0;
                }
            }
            CommitPolicy::Auto => {}
        }
    }
}

/// Reads a member process's stdout: event lines go to its state.
fn spawn_event_reader(
    out: impl Read + Send + 'static,
    name: String,
    rec: Recorder,
    logs: LogSink,
    prefix: Option<&'static str>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let body = match prefix {
                Some(p) => line.strip_prefix(p),
                None => line.starts_with('{').then_some(line.as_str()),
            };
            match body.map(serde_json::from_str::<Value>) {
                Some(Ok(v)) => {
                    if let Err(e) = rec.apply(&v) {
                        logs.push(format!("[{name}] bad event {line}: {e:#}"));
                    }
                    if v.get("event").and_then(Value::as_str) != Some("record") {
                        logs.push(format!("[{name}] {line}"));
                    }
                }
                Some(Err(e)) => logs.push(format!("[{name}] unparsable event {line}: {e}")),
                None => logs.push(format!("[{name} stdout] {line}")),
            }
        }
        logs.push(format!("[{name}] stdout closed"));
    });
}

fn spawn_log_reader(err: impl Read + Send + 'static, name: String, logs: LogSink) {
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            logs.push(format!("[{name}] {line}"));
        }
    });
}

/// A librdkafka member in a child process (this test binary, re-executed).
fn spawn_child_member(cfg: MemberCfg, logs: &LogSink) -> Result<Member> {
    let exe = std::env::current_exe().context("current_exe")?;
    let mut child = Command::new(exe)
        .args([
            "zz_child_member",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, cfg.to_json().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning the child member")?;
    let state: Shared = Arc::default();
    let rec = Recorder {
        state: state.clone(),
        hook: None,
    };
    let out = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let err = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
    spawn_event_reader(out, cfg.name.clone(), rec, logs.clone(), Some(CHILD_PREFIX));
    spawn_log_reader(err, cfg.name.clone(), logs.clone());
    logs.push(format!(
        "=== harness: child member {} pid {} ===",
        cfg.name,
        child.id()
    ));
    let stdin = child.stdin.take();
    Ok(Member {
        name: cfg.name.clone(),
        cfg,
        state,
        handle: Handle::Proc {
            child,
            stdin,
            java: false,
        },
        logs: logs.clone(),
    })
}

/// Entry point of a child-process member (only with GREGOR_GROUPS_CHILD_MEMBER
/// set; a no-op in a normal test run). Runs until stdin says "close" or
/// closes (clean close), or until it is killed.
#[test]
fn zz_child_member() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let cfg = serde_json::from_str::<Value>(&spec)
        .map_err(anyhow::Error::from)
        .and_then(|v| MemberCfg::from_json(&v))
        .expect("child member config");
    let hook: Hook = Arc::new(|v: Value| {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let _ = writeln!(out, "{CHILD_PREFIX}{v}");
        let _ = out.flush();
    });
    let mut member = start_member(cfg, &LogSink::default(), Some(hook.clone()), true)
        .expect("child member start");
    hook(json!({"event": "started", "pid": std::process::id()}));
    let mut line = String::new();
    let stdin = std::io::stdin();
    loop {
        line.clear();
        match stdin.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.trim() == "close" => break,
            Ok(_) => {}
        }
    }
    let took = member.close().expect("child close");
    hook(json!({"event": "exit", "reason": "closed", "close_ms": ms(took) as u64}));
}

// ---------------------------------------------------------------------------
// Java
// ---------------------------------------------------------------------------

fn java_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("java")
}

fn newest_mtime(p: &Path) -> std::io::Result<std::time::SystemTime> {
    let md = std::fs::metadata(p)?;
    let mut t = md.modified()?;
    if md.is_dir() {
        for e in std::fs::read_dir(p)? {
            t = t.max(newest_mtime(&e?.path())?);
        }
    }
    Ok(t)
}

/// The Java classpath, building the jar with Maven once per test process if
/// it is missing or older than the sources. Fails clearly without Java/Maven.
fn java_classpath() -> Result<String> {
    static CP: OnceLock<Result<String, String>> = OnceLock::new();
    CP.get_or_init(|| build_java().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn build_java() -> Result<String> {
    let java_ok = Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ensure!(
        java_ok,
        "this test needs Java (JDK 17+): `java -version` failed or java is not on PATH \
         (Debian: apt-get install openjdk-17-jdk-headless maven)"
    );
    let dir = java_dir();
    let jar = dir.join("target").join("gregor-compat-java-0.1.0.jar");
    let stale = match std::fs::metadata(&jar).and_then(|m| m.modified()) {
        Err(_) => true,
        Ok(built) => {
            newest_mtime(&dir.join("src"))? > built || newest_mtime(&dir.join("pom.xml"))? > built
        }
    };
    if stale {
        let mvn_ok = Command::new("mvn")
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ensure!(
            mvn_ok,
            "this test needs Maven to build {} (`mvn -v` failed or mvn is not on PATH; \
             Debian: apt-get install maven)",
            jar.display()
        );
        let out = Command::new("mvn")
            .args(["-q", "-f"])
            .arg(dir.join("pom.xml"))
            .args(["-DskipTests", "package"])
            .output()
            .context("running mvn")?;
        ensure!(
            out.status.success(),
            "mvn package failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ensure!(jar.is_file(), "{} missing after the build", jar.display());
    Ok(format!(
        "{}:{}",
        jar.display(),
        dir.join("target").join("lib").join("*").display()
    ))
}

fn java_command(class: &str) -> Result<Command> {
    let cp = java_classpath()?;
    let mut c = Command::new("java");
    c.args([
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-Xmx256m",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-cp",
        &cp,
        class,
    ]);
    Ok(c)
}

/// A Java kafka-clients member (gregor.compat.GroupMember).
fn spawn_java_member(cfg: MemberCfg, logs: &LogSink) -> Result<Member> {
    let strategy = cfg.strategy.clone();
    let mut cmd = java_command("gregor.compat.GroupMember")?;
    cmd.arg(&cfg.bootstrap)
        .arg(&cfg.group)
        .arg(&cfg.topic)
        .arg(format!("strategy={strategy}"))
        .arg(format!("client.id={}", cfg.client_id))
        .arg(format!("session.timeout.ms={SESSION_MS}"))
        .arg(format!("heartbeat.interval.ms={HEARTBEAT_MS}"))
        .arg(format!("max.poll.interval.ms={MAX_POLL_MS}"))
        // a safety net: an orphaned JVM leaves after 2 idle minutes
        .arg("idle.exit.ms=120000");
    if let Some(i) = &cfg.instance_id {
        cmd.arg(format!("group.instance.id={i}"));
    }
    match cfg.commit {
        CommitPolicy::EachSync => {}
        other => bail!("Java members commit after each poll (commitSync); {other:?} unsupported"),
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning java")?;
    let state: Shared = Arc::default();
    let rec = Recorder {
        state: state.clone(),
        hook: None,
    };
    let out = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let err = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
    spawn_event_reader(out, cfg.name.clone(), rec, logs.clone(), None);
    spawn_log_reader(err, cfg.name.clone(), logs.clone());
    logs.push(format!(
        "=== harness: java member {} pid {} ===",
        cfg.name,
        child.id()
    ));
    Ok(Member {
        name: cfg.name.clone(),
        cfg,
        state,
        handle: Handle::Proc {
            child,
            stdin: None,
            java: true,
        },
        logs: logs.clone(),
    })
}

/// Run gregor.compat.GroupAdmin once; its JSON lines.
fn java_admin(env: &Env, group: &str) -> Result<Vec<Value>> {
    let mut cmd = java_command("gregor.compat.GroupAdmin")?;
    let mut child = cmd
        .arg(&env.bootstrap)
        .arg(group)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning java GroupAdmin")?;
    let err = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
    spawn_log_reader(err, "java-admin".to_owned(), env.logs.clone());
    let out = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(out).read_to_string(&mut s);
        let _ = tx.send(s);
    });
    let status = wait_child(&mut child, Duration::from_secs(90)).context("java GroupAdmin")?;
    let text = rx
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| anyhow!("GroupAdmin output not read"))?;
    for l in text.lines() {
        env.logs.push(format!("[java-admin] {l}"));
    }
    ensure!(status.success(), "java GroupAdmin exited with {status}");
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).with_context(|| format!("GroupAdmin line {l}")))
        .collect()
}

// ---------------------------------------------------------------------------
// Group-level checks
// ---------------------------------------------------------------------------

fn summary(members: &[&Member]) -> String {
    let mut s = String::new();
    for m in members {
        let st = m.snapshot();
        let last: Vec<String> = st
            .events
            .iter()
            .rev()
            .take(4)
            .map(|e| format!("{:?}{:?}->{:?}", e.kind, e.parts, e.owned_after))
            .collect();
        s.push_str(&format!(
            "\n  {}: owned {:?}, {} records, {} commits ok, {} failed, gens {:?}, last events {:?}, errors {:?}, exited {:?}",
            m.name,
            st.owned,
            st.records.len(),
            st.commits_ok,
            st.commit_errors.len(),
            st.generations,
            last,
            st.errors.iter().take(3).collect::<Vec<_>>(),
            st.exited,
        ));
    }
    s
}

/// The members' assignments once they form a complete, disjoint, balanced
/// (sizes differ by at most one) cover of `0..partitions`, every member has
/// seen an assignment as its latest callback, and DescribeGroups says
/// Stable with exactly these members. Returns (time waited, assignments).
fn wait_balanced(
    env: &mut Env,
    group: &str,
    members: &[&Member],
    partitions: i32,
) -> Result<(Duration, Vec<BTreeSet<i32>>)> {
    let t0 = Instant::now();
    let all: BTreeSet<i32> = (0..partitions).collect();
    let mut last_describe = String::new();
    let tool = env.tool("describe")?;
    let found = wait_for("a balanced, stable assignment", SETTLE, || {
        if !members.iter().all(|m| m.settled()) {
            return Ok(None);
        }
        let owned: Vec<BTreeSet<i32>> = members.iter().map(|m| m.owned()).collect();
        let total: usize = owned.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<i32> = owned.iter().flatten().copied().collect();
        let min = owned.iter().map(BTreeSet::len).min().unwrap_or(0);
        let max = owned.iter().map(BTreeSet::len).max().unwrap_or(0);
        if union != all || total != all.len() || max - min > 1 {
            return Ok(None);
        }
        let d = describe_with(&tool, group)?;
        last_describe = d.summary();
        if d.state != "Stable" || d.members.len() != members.len() {
            return Ok(None);
        }
        Ok(Some(owned))
    })
    .with_context(|| {
        format!(
            "members:{}\nlast describe: {last_describe}",
            summary(members)
        )
    })?;
    let waited = t0.elapsed();
    // What the callbacks said must be what librdkafka holds.
    for m in members {
        if let Some(live) = m.live_assignment()? {
            let tracked = m.owned();
            ensure!(
                live == tracked,
                "{}: consumer.assignment() {live:?} != assignment from the rebalance callbacks {tracked:?}",
                m.name
            );
        }
    }
    Ok((waited, found))
}

/// Wait until the members together consumed every produced record (each at
/// least once).
fn wait_consumed(members: &[&Member], produced: &[Produced]) -> Result<Duration> {
    let t0 = Instant::now();
    let want: BTreeSet<(i32, i64)> = produced.iter().map(|p| (p.partition, p.offset)).collect();
    wait_for(
        &format!("{} records to be consumed", want.len()),
        CONSUME,
        || {
            let mut seen = BTreeSet::new();
            for m in members {
                let s = lock(&m.state);
                seen.extend(s.records.iter().map(|r| (r.partition, r.offset)));
            }
            Ok(want.is_subset(&seen).then_some(()))
        },
    )
    .with_context(|| format!("members:{}", summary(members)))?;
    Ok(t0.elapsed())
}

struct ConsumeReport {
    consumptions: usize,
    distinct: usize,
    /// Re-consumptions after an uncommitted (or failed-commit) consumption.
    redelivered: usize,
}

/// Every produced record consumed, nothing else; a record consumed more
/// than once only if every earlier consumption was not covered by a
/// successful commit. `states`: (name, state) of every member that ever
/// consumed from the topic.
fn check_consumption(produced: &[Produced], states: &[(String, MState)]) -> Result<ConsumeReport> {
    let by_pos: BTreeMap<(i32, i64), &str> = produced
        .iter()
        .map(|p| ((p.partition, p.offset), p.key.as_str()))
        .collect();
    // (partition, offset) -> every consumption: (when, by whom, committed)
    type Consumptions<'a> = BTreeMap<(i32, i64), Vec<(Instant, &'a str, Option<bool>)>>;
    let mut seen: Consumptions<'_> = BTreeMap::new();
    let mut consumptions = 0;
    for (name, st) in states {
        for r in &st.records {
            consumptions += 1;
            match by_pos.get(&(r.partition, r.offset)) {
                Some(k) if *k == r.key => {}
                Some(k) => bail!(
                    "{name} consumed p{} o{} with key {:?}, produced with key {k:?}",
                    r.partition,
                    r.offset,
                    r.key
                ),
                None => bail!(
                    "{name} consumed p{} o{} (key {:?}) which was not produced",
                    r.partition,
                    r.offset,
                    r.key
                ),
            }
            seen.entry((r.partition, r.offset))
                .or_default()
                .push((r.at, name, r.committed));
        }
    }
    let missing: Vec<_> = by_pos.keys().filter(|k| !seen.contains_key(k)).collect();
    ensure!(
        missing.is_empty(),
        "{} produced records never consumed, e.g. {:?}",
        missing.len(),
        missing.iter().take(10).collect::<Vec<_>>()
    );
    let mut redelivered = 0;
    let mut bad = Vec::new();
    for (pos, mut list) in seen.clone() {
        if list.len() < 2 {
            continue;
        }
        list.sort_by_key(|(at, _, _)| *at);
        redelivered += list.len() - 1;
        for (at, name, committed) in &list[..list.len() - 1] {
            if *committed == Some(true) {
                bad.push(format!(
                    "p{} o{}: consumed and committed by {name} at {:?}, consumed again: {:?}",
                    pos.0,
                    pos.1,
                    at,
                    list.iter().map(|(_, n, c)| (*n, *c)).collect::<Vec<_>>()
                ));
            }
        }
    }
    ensure!(
        bad.is_empty(),
        "{} committed records consumed again, e.g.:\n{}",
        bad.len(),
        bad.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
    Ok(ConsumeReport {
        consumptions,
        distinct: seen.len(),
        redelivered,
    })
}

fn states(members: &[&Member]) -> Vec<(String, MState)> {
    members
        .iter()
        .map(|m| (m.name.clone(), m.snapshot()))
        .collect()
}

fn no_commit_failures(members: &[&Member]) -> Result<()> {
    for m in members {
        let s = m.snapshot();
        ensure!(
            s.commit_errors.is_empty(),
            "{}: {} commits failed: {:?}",
            m.name,
            s.commit_errors.len(),
            s.commit_errors.iter().take(5).collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// Committed offsets of the group must be the high watermarks.
fn wait_committed_to_end(env: &mut Env, group: &str, topic: &str) -> Result<BTreeMap<i32, i64>> {
    let hw = env.high_watermarks(topic, PARTITIONS)?;
    let mut last = BTreeMap::new();
    let tool = env.tool(group)?;
    wait_for(
        "committed offsets to reach the high watermarks",
        CONSUME,
        || {
            let c = committed_with(&tool, topic, PARTITIONS)?;
            last = c.iter().map(|(p, (o, _))| (*p, *o)).collect();
            Ok((last == hw).then_some(()))
        },
    )
    .with_context(|| format!("high watermarks {hw:?}, committed {last:?}"))?;
    Ok(hw)
}

// ---------------------------------------------------------------------------
// 1. Three members, six partitions, each record once
// ---------------------------------------------------------------------------

/// Three librdkafka members subscribe at once to a 6-partition topic
/// holding N keyed records. The broker keeps its default
/// group.initial.rebalance.delay.ms (3000), so the three form the first
/// generation together: each member gets exactly one assignment (no
/// rebalance afterwards), the six partitions are split 2/2/2 with none
/// shared, and with a synchronous commit after every record each record is
/// consumed exactly once (N in total, no duplicates, no failed commit).
#[test]
fn three_members_share_six_partitions() {
    run(
        "three_members_share_six_partitions",
        false,
        Broker::builder(),
        |env| {
            const N: usize = 3000;
            let topic = env.topic("t");
            let group = env.group("g");
            env.create_topic(&topic, PARTITIONS)?;
            let produced = env.produce(&topic, PARTITIONS, 0, N)?;
            let t0 = Instant::now();
            let mut members = Vec::new();
            for _ in 0..3 {
                let cfg = env.member_cfg(&group, &topic, "m");
                members.push(start_member(cfg, &env.logs, None, false)?);
            }
            let refs: Vec<&Member> = members.iter().collect();
            let (_, owned) = wait_balanced(env, &group, &refs, PARTITIONS)?;
            env.timing(
                "three members to a stable group (initial delay 3000 ms)",
                t0.elapsed(),
            );
            for (m, o) in members.iter().zip(&owned) {
                ensure!(o.len() == 2, "{} owns {o:?}, expected 2 partitions", m.name);
            }
            let took = wait_consumed(&refs, &produced)?;
            env.note(&format!(
                "{N} records consumed in {took:.1?} after the group settled"
            ));
            for m in &members {
                let events = m.snapshot().events;
                ensure!(
                    events.len() == 1 && events[0].kind == EvKind::Assign,
                    "{} saw more than one rebalance callback (a rebalance after the first \
                     generation, although all three joined within the initial delay): {}",
                    m.name,
                    summary(&refs)
                );
            }
            no_commit_failures(&refs)?;
            let report = check_consumption(&produced, &states(&refs))?;
            ensure!(
                report.consumptions == N && report.distinct == N && report.redelivered == 0,
                "expected each of {N} records exactly once: {} consumptions, {} distinct",
                report.consumptions,
                report.distinct
            );
            // Each record went to the member that owned its partition.
            for (m, o) in members.iter().zip(&owned) {
                let st = m.snapshot();
                ensure!(
                    st.records.iter().all(|r| o.contains(&r.partition)),
                    "{} consumed from partitions it did not own ({o:?})",
                    m.name
                );
                ensure!(
                    st.records.len() == N / 3,
                    "{} consumed {} records, expected {}",
                    m.name,
                    st.records.len(),
                    N / 3
                );
            }
            let hw = wait_committed_to_end(env, &group, &topic)?;
            env.note(&format!("committed == high watermarks {hw:?}"));
            for m in &mut members {
                m.close()?;
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// 2. A killed member vs a member that leaves
// ---------------------------------------------------------------------------

/// A: in-process; B joins (timed: join of a new member); C, a member in a
/// child process, joins; all records consumed. C is SIGKILLed (no
/// LeaveGroup): its partitions move to A and B only after the session
/// timeout (timed). Then B closes cleanly (LeaveGroup): A gets everything
/// at once (timed). New records after each change are consumed by the new
/// owners from the committed offsets.
#[test]
fn kill_and_clean_leave_rebalance_times() {
    run(
        "kill_and_clean_leave_rebalance_times",
        false,
        gregor(),
        |env| {
            let topic = env.topic("t");
            let group = env.group("g");
            env.create_topic(&topic, PARTITIONS)?;
            let mut produced = env.produce(&topic, PARTITIONS, 0, 600)?;

            let cfg = env.member_cfg(&group, &topic, "a");
            let mut a = start_member(cfg, &env.logs, None, false)?;
            let (t, _) = wait_balanced(env, &group, &[&a], PARTITIONS)?;
            env.timing("first member alone to stable", t);

            let t0 = Instant::now();
            let cfg = env.member_cfg(&group, &topic, "b");
            let mut b = start_member(cfg, &env.logs, None, false)?;
            wait_balanced(env, &group, &[&a, &b], PARTITIONS)?;
            let join = t0.elapsed();
            env.timing(
                "join of a new member (2nd member, until both hold 3/3)",
                join,
            );

            let t0 = Instant::now();
            let cfg = env.member_cfg(&group, &topic, "c-child");
            let mut c = spawn_child_member(cfg, &env.logs)?;
            let (_, owned) = wait_balanced(env, &group, &[&a, &b, &c], PARTITIONS)?;
            env.timing(
                "join of a new member (3rd, child process, incl. its start)",
                t0.elapsed(),
            );
            let c_parts = owned[2].clone();
            wait_consumed(&[&a, &b, &c], &produced)?;

            // SIGKILL: no LeaveGroup; the group notices at session expiry.
            let t0 = Instant::now();
            c.kill9()?;
            let a_before = a.owned();
            let b_before = b.owned();
            wait_balanced(env, &group, &[&a, &b], PARTITIONS)?;
            let removal = t0.elapsed();
            env.timing(
            &format!("removal after SIGKILL (session.timeout.ms={SESSION_MS}, heartbeat {HEARTBEAT_MS})"),
            removal,
        );
            let ab: BTreeSet<i32> = a.owned().union(&b.owned()).copied().collect();
            ensure!(
            c_parts.is_subset(&ab),
            "the killed member's partitions {c_parts:?} did not move (A {:?} B {:?}, before A {a_before:?} B {b_before:?})",
            a.owned(),
            b.owned()
        );
            produced.extend(env.produce(&topic, PARTITIONS, 600, 600)?);
            wait_consumed(&[&a, &b, &c], &produced)?;

            // Clean leave: LeaveGroup, rebalance at once.
            let t0 = Instant::now();
            let close_took = b.close()?;
            wait_balanced(env, &group, &[&a], PARTITIONS)?;
            let leave = t0.elapsed();
            env.timing("clean leave (close) until the survivor owns all", leave);
            env.timing("  of which the leaving consumer's close()", close_took);
            produced.extend(env.produce(&topic, PARTITIONS, 1200, 600)?);
            wait_consumed(&[&a, &b, &c], &produced)?;
            let report = check_consumption(&produced, &states(&[&a, &b, &c]))?;
            env.note(&format!(
                "{} records, {} consumptions, {} redelivered after uncommitted consumption",
                report.distinct, report.consumptions, report.redelivered
            ));
            wait_committed_to_end(env, &group, &topic)?;
            ensure!(
            leave < Duration::from_millis(SESSION_MS),
            "a clean leave took {leave:?}, not less than the session timeout: no LeaveGroup effect?"
        );
            eprintln!(
            "[kill_and_clean_leave_rebalance_times] SUMMARY join={} ms, kill->moved={} ms, leave->moved={} ms",
            ms(join),
            ms(removal),
            ms(leave)
        );
            a.close()?;
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// 3. Seven members, six partitions
// ---------------------------------------------------------------------------

/// Seven librdkafka members on six partitions: six own one partition each,
/// exactly one sits idle with an empty assignment (also in DescribeGroups).
/// When a member owning a partition unsubscribes, the idle one takes over.
#[test]
fn seven_members_one_idle() {
    run("seven_members_one_idle", false, gregor(), |env| {
        let topic = env.topic("t");
        let group = env.group("g");
        env.create_topic(&topic, PARTITIONS)?;
        let produced = env.produce(&topic, PARTITIONS, 0, 60)?;
        let t0 = Instant::now();
        let mut members = Vec::new();
        for _ in 0..7 {
            let cfg = env.member_cfg(&group, &topic, "m");
            members.push(start_member(cfg, &env.logs, None, false)?);
        }
        let refs: Vec<&Member> = members.iter().collect();
        let (_, owned) = wait_balanced(env, &group, &refs, PARTITIONS)?;
        env.timing("seven members to a stable group", t0.elapsed());
        let idle: Vec<usize> = (0..7).filter(|i| owned[*i].is_empty()).collect();
        ensure!(
            idle.len() == 1,
            "expected exactly one idle member: {owned:?}"
        );
        ensure!(
            owned.iter().filter(|o| o.len() == 1).count() == 6,
            "expected six members with one partition each: {owned:?}"
        );
        let d = env.describe(&group)?;
        let empty_in_describe = d
            .members
            .iter()
            .filter(|m| matches!(&m.assignment, Ok(a) if a.values().all(Vec::is_empty)))
            .count();
        ensure!(
            empty_in_describe == 1,
            "DescribeGroups should show one member with an empty assignment: {}",
            d.summary()
        );
        wait_consumed(&refs, &produced)?;
        check_consumption(&produced, &states(&refs))?;

        // A partition owner unsubscribes: the idle member takes over.
        let idle_i = idle[0];
        let leaver = (0..7).find(|i| *i != idle_i).unwrap_or(0);
        let t0 = Instant::now();
        members[leaver].unsubscribe()?;
        let rest: Vec<&Member> = (0..7)
            .filter(|i| *i != leaver)
            .map(|i| &members[i])
            .collect();
        let (_, owned) = wait_balanced(env, &group, &rest, PARTITIONS)?;
        env.timing("unsubscribe until the idle member took over", t0.elapsed());
        ensure!(
            owned.iter().all(|o| o.len() == 1),
            "after the unsubscribe every remaining member should own one partition: {owned:?}"
        );
        for m in &mut members {
            m.close()?;
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// 4. librdkafka and Java in one group
// ---------------------------------------------------------------------------

/// Two librdkafka members and one Java member in one group with the same
/// assignor (range / roundrobin): all six partitions covered exactly once
/// across the clients, every record consumed, committed offsets at the end.
/// Java's AdminClient then describes the group (Stable, the assignor, the
/// three client ids and the assignments the members hold), lists it, and
/// lists its offsets; with `metadata`, offsets committed with metadata by
/// librdkafka after the members left are read back through the Java admin.
fn mixed_group(name: &'static str, strategy: &'static str, metadata: bool) {
    run(name, false, gregor(), |env| {
        let topic = env.topic("t");
        let group = env.group("g");
        env.create_topic(&topic, PARTITIONS)?;
        let mut produced = env.produce(&topic, PARTITIONS, 0, 600)?;
        let mut cfg = env.member_cfg(&group, &topic, "java");
        cfg.strategy = strategy.to_owned();
        let t0 = Instant::now();
        let mut j = spawn_java_member(cfg, &env.logs)?;
        let mut rd = Vec::new();
        for _ in 0..2 {
            let mut cfg = env.member_cfg(&group, &topic, "rdk");
            cfg.strategy = strategy.to_owned();
            rd.push(start_member(cfg, &env.logs, None, false)?);
        }
        let refs = [&j, &rd[0], &rd[1]];
        let (_, owned) = wait_balanced(env, &group, &refs, PARTITIONS)?;
        env.timing(
            "java + 2 librdkafka members to a stable group (incl. JVM start)",
            t0.elapsed(),
        );
        for (m, o) in refs.iter().zip(&owned) {
            ensure!(
                o.len() == 2,
                "{} owns {o:?}, expected 2 ({strategy})",
                m.name
            );
        }
        // Records produced now go to the members owning their partitions.
        let settled_at = Instant::now();
        produced.extend(env.produce(&topic, PARTITIONS, 600, 600)?);
        wait_consumed(&refs, &produced)?;
        let report = check_consumption(&produced, &states(&refs))?;
        for (m, o) in refs.iter().zip(&owned) {
            let late: Vec<i32> = m
                .snapshot()
                .records
                .iter()
                .filter(|r| r.at >= settled_at)
                .map(|r| r.partition)
                .collect();
            ensure!(
                late.len() >= 200 && late.iter().all(|p| o.contains(p)),
                "{} consumed {} records after the group settled, expected >= 200 from its partitions {o:?}",
                m.name,
                late.len()
            );
        }
        env.note(&format!(
            "{} consumptions, {} redelivered; java consumed {}",
            report.consumptions,
            report.redelivered,
            j.snapshot().records.len()
        ));
        let hw = wait_committed_to_end(env, &group, &topic)?;

        let d = env.describe(&group)?;
        ensure!(
            d.state == "Stable" && d.protocol == strategy && d.protocol_type == "consumer",
            "librdkafka DescribeGroups: {}",
            d.summary()
        );
        // Java AdminClient's view.
        let lines = java_admin(env, &group)?;
        let find = |ev: &str| lines.iter().find(|l| l["event"] == ev).cloned();
        let listed = lines
            .iter()
            .find(|l| l["event"] == "group" && l["group"] == group.as_str())
            .ok_or_else(|| anyhow!("Java listGroups does not show {group}: {lines:?}"))?;
        ensure!(
            listed["protocol"] == "consumer" && listed["state"] == "Stable",
            "Java listGroups entry: {listed}"
        );
        let desc = find("describe").ok_or_else(|| anyhow!("no describe line"))?;
        ensure!(
            desc["state"] == "Stable" && desc["assignor"] == strategy && desc["type"] == "Classic",
            "Java describeConsumerGroups: {desc}"
        );
        let jm = desc["members"].as_array().cloned().unwrap_or_default();
        ensure!(jm.len() == 3, "Java describe: {} members: {desc}", jm.len());
        for (m, o) in refs.iter().zip(&owned) {
            let entry = jm
                .iter()
                .find(|x| x["client"] == m.cfg.client_id.as_str())
                .ok_or_else(|| anyhow!("Java describe lacks client {}: {desc}", m.cfg.client_id))?;
            let want: Vec<String> = o.iter().map(|p| format!("{topic}:{p}")).collect();
            let got: Vec<String> = entry["assignment"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            ensure!(
                got == want,
                "Java describe: {} assignment {got:?}, member holds {want:?}",
                m.name
            );
        }
        let offs = find("offsets").ok_or_else(|| anyhow!("no offsets line"))?;
        for (p, h) in &hw {
            let o = &offs["offsets"][format!("{topic}:{p}")];
            ensure!(
                o["offset"] == *h,
                "Java listConsumerGroupOffsets {topic}:{p} = {o}, expected {h}"
            );
        }

        let jc = j.close()?;
        env.note(&format!("java member closed (SIGTERM) in {jc:.1?}"));
        ensure!(
            j.snapshot().exited.as_deref() == Some("signal"),
            "java member exit: {:?}",
            j.snapshot().exited
        );
        for m in &mut rd {
            m.close()?;
        }
        if metadata {
            // The group is Empty now: a non-member may commit (generation -1).
            let tool = env.tool("describe")?;
            wait_for("the group to become Empty", SETTLE, || {
                Ok((describe_with(&tool, &group)?.state == "Empty").then_some(()))
            })?;
            let tool = env.tool(&group)?;
            let mut tpl = TopicPartitionList::new();
            for (p, h) in &hw {
                let mut e = tpl.add_partition(&topic, *p);
                e.set_offset(Offset::Offset(*h))?;
                e.set_metadata(format!("java-sees-{p}"));
            }
            tool.commit(&tpl, CommitMode::Sync)
                .context("commit with metadata to the Empty group")?;
            let lines = java_admin(env, &group)?;
            let offs = lines
                .iter()
                .find(|l| l["event"] == "offsets")
                .ok_or_else(|| anyhow!("no offsets line"))?;
            for (p, h) in &hw {
                let o = &offs["offsets"][format!("{topic}:{p}")];
                ensure!(
                    o["offset"] == *h && o["metadata"] == format!("java-sees-{p}").as_str(),
                    "Java listConsumerGroupOffsets {topic}:{p} = {o}"
                );
            }
            let desc = lines
                .iter()
                .find(|l| l["event"] == "describe")
                .ok_or_else(|| anyhow!("no describe line"))?;
            ensure!(
                desc["state"] == "Empty" && desc["members"].as_array().is_some_and(Vec::is_empty),
                "Java describe of the empty group: {desc}"
            );
        }
        Ok(())
    });
}

#[test]
fn mixed_java_librdkafka_range() {
    mixed_group("mixed_java_librdkafka_range", "range", true);
}

#[test]
fn mixed_java_librdkafka_roundrobin() {
    mixed_group("mixed_java_librdkafka_roundrobin", "roundrobin", false);
}

// ---------------------------------------------------------------------------
// 5. Cooperative sticky
// ---------------------------------------------------------------------------

/// After `since`, `m` was never left without partitions, never had all its
/// partitions revoked, and ended with a subset of what it held before.
fn check_incremental(m: &Member, before: &BTreeSet<i32>, since: Instant) -> Result<Vec<Ev>> {
    let evs = m.events_since(since);
    for e in &evs {
        ensure!(
            e.kind != EvKind::Lost,
            "{}: partitions lost {:?}: {evs:?}",
            m.name,
            e.parts
        );
        ensure!(
            !e.owned_after.is_empty(),
            "{}: left with no partitions during the cooperative rebalance (a full revoke): {evs:?}",
            m.name
        );
    }
    let revoked: BTreeSet<i32> = evs
        .iter()
        .filter(|e| e.kind == EvKind::Revoke)
        .flat_map(|e| e.parts.iter().copied())
        .collect();
    ensure!(
        !revoked.is_empty() && revoked.len() < before.len(),
        "{}: expected some but not all of {before:?} revoked, revoked {revoked:?}: {evs:?}",
        m.name
    );
    let now = m.owned();
    ensure!(
        now.is_subset(before) && now.len() + revoked.len() == before.len(),
        "{}: kept {now:?}, revoked {revoked:?}, held {before:?}",
        m.name
    );
    Ok(evs)
}

/// librdkafka only: A (cooperative-sticky) holds all six; B joins: A gives
/// up three through an incremental revoke and keeps the other three
/// throughout; C joins: A and B each give up one and keep the rest.
#[test]
fn cooperative_sticky_librdkafka() {
    run("cooperative_sticky_librdkafka", false, gregor(), |env| {
        let topic = env.topic("t");
        let group = env.group("g");
        env.create_topic(&topic, PARTITIONS)?;
        let produced = env.produce(&topic, PARTITIONS, 0, 600)?;
        let mk = |env: &mut Env, label: &str| {
            let mut cfg = env.member_cfg(&group, &topic, label);
            cfg.strategy = "cooperative-sticky".to_owned();
            start_member(cfg, &env.logs, None, false)
        };
        let mut a = mk(env, "a")?;
        wait_balanced(env, &group, &[&a], PARTITIONS)?;
        let a0 = a.owned();

        let t0 = Instant::now();
        let mut b = mk(env, "b")?;
        wait_balanced(env, &group, &[&a, &b], PARTITIONS)?;
        env.timing(
            "cooperative join of a 2nd member (two rebalances)",
            t0.elapsed(),
        );
        let evs = check_incremental(&a, &a0, t0)?;
        env.note(&format!(
            "A's callbacks while B joined: {:?}",
            evs.iter()
                .map(|e| (e.kind, e.parts.clone()))
                .collect::<Vec<_>>()
        ));
        let (a1, b1) = (a.owned(), b.owned());

        let t0 = Instant::now();
        let mut c = mk(env, "c")?;
        let (_, owned) = wait_balanced(env, &group, &[&a, &b, &c], PARTITIONS)?;
        env.timing("cooperative join of a 3rd member", t0.elapsed());
        check_incremental(&a, &a1, t0)?;
        check_incremental(&b, &b1, t0)?;
        ensure!(owned[2].len() == 2, "C owns {:?}", owned[2]);
        wait_consumed(&[&a, &b, &c], &produced)?;
        check_consumption(&produced, &states(&[&a, &b, &c]))?;
        for m in [&mut a, &mut b, &mut c] {
            m.close()?;
        }
        Ok(())
    });
}

/// Java (CooperativeStickyAssignor) holds all six; a librdkafka
/// cooperative-sticky member joins: the Java member revokes only what moves
/// and keeps the rest throughout (its listener never sees a full revoke).
#[test]
fn cooperative_sticky_java_and_librdkafka() {
    run(
        "cooperative_sticky_java_and_librdkafka",
        false,
        gregor(),
        |env| {
            let topic = env.topic("t");
            let group = env.group("g");
            env.create_topic(&topic, PARTITIONS)?;
            let produced = env.produce(&topic, PARTITIONS, 0, 600)?;
            let mut cfg = env.member_cfg(&group, &topic, "java");
            cfg.strategy = "cooperative-sticky".to_owned();
            let mut j = spawn_java_member(cfg, &env.logs)?;
            wait_balanced(env, &group, &[&j], PARTITIONS)?;
            let j0 = j.owned();
            let gen0 = j.last_generation();

            let t0 = Instant::now();
            let mut cfg = env.member_cfg(&group, &topic, "rdk");
            cfg.strategy = "cooperative-sticky".to_owned();
            let mut r = start_member(cfg, &env.logs, None, false)?;
            wait_balanced(env, &group, &[&j, &r], PARTITIONS)?;
            env.timing(
                "cooperative join of librdkafka to a Java member",
                t0.elapsed(),
            );
            let evs = check_incremental(&j, &j0, t0)?;
            env.note(&format!(
                "Java's callbacks: {:?}; generations {gen0:?} -> {:?}",
                evs.iter()
                    .map(|e| (e.kind, e.parts.clone()))
                    .collect::<Vec<_>>(),
                j.snapshot().generations
            ));
            wait_consumed(&[&j, &r], &produced)?;
            check_consumption(&produced, &states(&[&j, &r]))?;
            r.close()?;
            j.close()?;
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// 6. Static membership
// ---------------------------------------------------------------------------

/// A (dynamic) and B (group.instance.id) share the topic; A is the leader,
/// or B with `b_leader` (it joined first). B goes away without a
/// LeaveGroup and a new B with the same instance id comes back within the
/// session timeout: it gets B's partitions back, at the same generation,
/// and A sees no rebalance at all (no callback, no JoinGroup), watched
/// until well past the old session's expiry.
fn static_rejoin(name: &'static str, kill: bool, b_leader: bool) {
    run(name, false, gregor(), |env| {
        let topic = env.topic("t");
        let group = env.group("g");
        env.create_topic(&topic, PARTITIONS)?;
        let mut produced = env.produce(&topic, PARTITIONS, 0, 300)?;
        let mk_a = |env: &mut Env| -> Result<Member> {
            let mut cfg = env.member_cfg(&group, &topic, "a");
            cfg.debug_cgrp = true;
            start_member(cfg, &env.logs, None, false)
        };
        let instance = format!("static-b-{}", env.tag);
        let mk = |env: &mut Env| -> Result<Member> {
            let mut cfg = env.member_cfg(&group, &topic, if kill { "b-child" } else { "b" });
            cfg.debug_cgrp = true;
            cfg.instance_id = Some(instance.clone());
            if kill {
                spawn_child_member(cfg, &env.logs)
            } else {
                start_member(cfg, &env.logs, None, false)
            }
        };
        let (mut a, mut b) = if b_leader {
            let b = mk(env)?;
            wait_balanced(env, &group, &[&b], PARTITIONS)?;
            (mk_a(env)?, b)
        } else {
            let a = mk_a(env)?;
            wait_balanced(env, &group, &[&a], PARTITIONS)?;
            (a, mk(env)?)
        };
        let (_, owned) = wait_balanced(env, &group, &[&a, &b], PARTITIONS)?;
        ensure!(
            lock(&b.state).join_leader == Some(b_leader),
            "B leader {:?}, expected {b_leader}",
            lock(&b.state).join_leader
        );
        wait_consumed(&[&a, &b], &produced)?;
        let (b_parts, b_gen, b_id) = (owned[1].clone(), b.last_generation(), b.member_id());
        let a_events = a.snapshot().events.len();
        let a_gens = a.snapshot().generations.clone();
        ensure!(
            b_gen.is_some() && a_gens.last() == b_gen.as_ref(),
            "generations from the JoinGroup responses: A {a_gens:?}, B {b_gen:?}"
        );

        let t0 = Instant::now();
        if kill {
            b.kill9()?;
        } else {
            let took = b.close()?;
            env.note(&format!(
                "static member closed (no LeaveGroup) in {took:.1?}"
            ));
        }
        let mut b2 = mk(env)?;
        wait_for(
            "the restarted static member to get its partitions back",
            SETTLE,
            || {
                Ok(
                    (b2.settled() && b2.owned() == b_parts && b2.last_generation().is_some())
                        .then_some(()),
                )
            },
        )
        .with_context(|| summary(&[&a, &b2]))?;
        env.timing(
            &format!(
                "static member {} to rejoin with its partitions",
                if kill {
                    "SIGKILL+restart"
                } else {
                    "close+restart"
                }
            ),
            t0.elapsed(),
        );
        env.note(&format!(
            "the restarted static member's JoinGroup response named it the leader: {:?} \
             (B was the leader: {b_leader})",
            lock(&b2.state).join_leader
        ));
        ensure!(
            b2.last_generation() == b_gen,
            "the static member rejoined at generation {:?}, it was {b_gen:?}: a rebalance happened",
            b2.last_generation()
        );
        ensure!(
            b2.member_id().is_some() && b2.member_id() != b_id,
            "the restarted static member should have a new member id (old {b_id:?}, new {:?})",
            b2.member_id()
        );
        // Watch A until well past the old incarnation's session expiry.
        let until = t0 + Duration::from_millis(SESSION_MS + 2 * HEARTBEAT_MS + 1000);
        let tool = env.tool("describe")?;
        let d = loop {
            let d = describe_with(&tool, &group)?;
            ensure!(
                a.snapshot().events.len() == a_events,
                "A saw a rebalance although the static member came back in time: {}",
                summary(&[&a, &b2])
            );
            if Instant::now() >= until {
                break d;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        ensure!(
            a.snapshot().generations == a_gens,
            "A joined again (generations {:?}, before {a_gens:?})",
            a.snapshot().generations
        );
        ensure!(
            d.state == "Stable" && d.members.len() == 2,
            "after the static rejoin: {}",
            d.summary()
        );
        let new_id = b2.member_id().unwrap_or_default();
        ensure!(
            d.members.iter().any(|m| m.id == new_id)
                && d.members.iter().all(|m| Some(&m.id) != b_id.as_ref()),
            "DescribeGroups should list the new incarnation {new_id} and not the old {b_id:?}: {}",
            d.summary()
        );
        // The new incarnation resumes from B's commits.
        produced.extend(env.produce(&topic, PARTITIONS, 300, 300)?);
        wait_consumed(&[&a, &b, &b2], &produced)?;
        check_consumption(&produced, &states(&[&a, &b, &b2]))?;
        let b2_first: BTreeMap<i32, i64> =
            b2.snapshot()
                .records
                .iter()
                .fold(BTreeMap::new(), |mut m, r| {
                    m.entry(r.partition).or_insert(r.offset);
                    m
                });
        ensure!(
            b2_first.values().all(|o| *o >= 50),
            "the new incarnation re-read committed records: first offsets {b2_first:?}"
        );
        b2.close()?;
        a.close()?;
        Ok(())
    });
}

#[test]
fn static_member_kill_and_rejoin() {
    static_rejoin("static_member_kill_and_rejoin", true, false);
}

#[test]
fn static_leader_kill_and_rejoin() {
    static_rejoin("static_leader_kill_and_rejoin", true, true);
}

#[test]
fn static_member_close_and_rejoin() {
    static_rejoin("static_member_close_and_rejoin", false, false);
}

// ---------------------------------------------------------------------------
// 7. Broker restart
// ---------------------------------------------------------------------------

/// Two members consume with a synchronous commit every 7 records and stop
/// processing after 250 records each (later records are dropped
/// unprocessed, uncommitted). The broker restarts (gracefully after the
/// members closed / kill -9 while they are still in the group). The
/// committed offsets survive unchanged; two new members resume exactly at
/// them: only records consumed after the last commit are consumed again.
fn restart_resume(name: &'static str, kill9: bool) {
    run(name, true, gregor(), |env| {
        const N: usize = 1200;
        let topic = env.topic("t");
        let group = env.group("g");
        env.create_topic(&topic, PARTITIONS)?;
        let produced = env.produce(&topic, PARTITIONS, 0, N)?;
        let mut phase1 = Vec::new();
        for _ in 0..2 {
            let mut cfg = env.member_cfg(&group, &topic, "p1");
            cfg.commit = CommitPolicy::EverySync(7);
            cfg.max_records = Some(250);
            phase1.push(start_member(cfg, &env.logs, None, false)?);
        }
        // 250 processed, the last commit (after record 245) answered.
        wait_for("both members to process 250 records", CONSUME, || {
            Ok(phase1
                .iter()
                .all(|m| {
                    let s = lock(&m.state);
                    s.records.len() == 250 && s.uncommitted.len() == 250 % 7
                })
                .then_some(()))
        })
        .with_context(|| summary(&phase1.iter().collect::<Vec<_>>()))?;
        let p1: Vec<(String, MState)> = phase1
            .iter()
            .map(|m| (m.name.clone(), m.snapshot()))
            .collect();
        // What the members' successful commits say is committed.
        let mut expect: BTreeMap<i32, i64> = BTreeMap::new();
        for (_, s) in &p1 {
            for (p, o) in &s.committed {
                let e = expect.entry(*p).or_insert(*o);
                *e = (*e).max(*o);
            }
        }
        let before = env.committed(&group, &topic, PARTITIONS)?;
        let before: BTreeMap<i32, i64> = before.iter().map(|(p, (o, _))| (*p, *o)).collect();
        ensure!(
            before == expect,
            "OffsetFetch {before:?} != the members' successful commits {expect:?}"
        );
        let uncommitted: BTreeSet<(i32, i64)> = p1
            .iter()
            .flat_map(|(_, s)| &s.records)
            .filter(|r| r.offset >= before.get(&r.partition).copied().unwrap_or(0))
            .map(|r| (r.partition, r.offset))
            .collect();
        let uncommitted = uncommitted.len();
        env.note(&format!("committed before the restart {before:?}; {uncommitted} processed records not committed"));

        if kill9 {
            env.broker()?.kill9()?;
            env.broker()?.start()?;
            for m in &mut phase1 {
                m.close()?;
            }
        } else {
            for m in &mut phase1 {
                m.close()?;
            }
            env.broker()?.restart()?;
        }
        let after = env.committed(&group, &topic, PARTITIONS)?;
        let after: BTreeMap<i32, i64> = after.iter().map(|(p, (o, _))| (*p, *o)).collect();
        ensure!(
            after == before,
            "committed offsets changed across the restart: before {before:?}, after {after:?}"
        );

        let mut phase2 = Vec::new();
        for _ in 0..2 {
            let cfg = env.member_cfg(&group, &topic, "p2");
            phase2.push(start_member(cfg, &env.logs, None, false)?);
        }
        let refs2: Vec<&Member> = phase2.iter().collect();
        wait_balanced(env, &group, &refs2, PARTITIONS)?;
        let remaining: Vec<Produced> = produced
            .iter()
            .filter(|p| p.offset >= after.get(&p.partition).copied().unwrap_or(0))
            .cloned()
            .collect();
        wait_consumed(&refs2, &remaining)?;
        let p2 = states(&refs2);
        for (name, s) in &p2 {
            for r in &s.records {
                let c = after.get(&r.partition).copied().unwrap_or(0);
                ensure!(
                    r.offset >= c,
                    "{name} consumed p{} o{} below the committed offset {c}",
                    r.partition,
                    r.offset
                );
            }
        }
        let mut first: BTreeMap<i32, i64> = BTreeMap::new();
        for (_, s) in &p2 {
            for r in &s.records {
                let e = first.entry(r.partition).or_insert(r.offset);
                *e = (*e).min(r.offset);
            }
        }
        let hw = env.high_watermarks(&topic, PARTITIONS)?;
        for p in 0..PARTITIONS {
            let c = after.get(&p).copied().unwrap_or(0);
            let want = (c < hw[&p]).then_some(c);
            ensure!(
                first.get(&p).copied() == want,
                "partition {p}: the new members started at {:?}, the committed offset is {c} (end {})",
                first.get(&p),
                hw[&p]
            );
        }
        // Below the committed offsets nothing (checked above); from them on
        // each record exactly once.
        let p2_count: usize = p2.iter().map(|(_, s)| s.records.len()).sum();
        ensure!(
            p2_count == remaining.len(),
            "the new members consumed {p2_count} records for {} past the committed offsets (duplicates)",
            remaining.len()
        );
        let all: Vec<(String, MState)> = p1.into_iter().chain(p2).collect();
        let report = check_consumption(&produced, &all)?;
        env.note(&format!(
            "{} consumptions of {N} records; consumed again after the restart: {uncommitted} \
             (processed before it, never committed), {} redeliveries in all",
            report.consumptions, report.redelivered
        ));
        for m in &mut phase2 {
            m.close()?;
        }
        Ok(())
    });
}

#[test]
fn broker_restart_resumes_from_commits() {
    restart_resume("broker_restart_resumes_from_commits", false);
}

#[test]
fn broker_kill9_resumes_from_commits() {
    restart_resume("broker_kill9_resumes_from_commits", true);
}

// ---------------------------------------------------------------------------
// 8. Auto-commit, commit metadata, ListGroups / DescribeGroups
// ---------------------------------------------------------------------------

/// Two auto-committing members (auto.commit.interval.ms=100) consume
/// everything: the committed offsets reach the high watermarks. ListGroups
/// and DescribeGroups agree with the members (member ids from their
/// JoinGroup responses, client ids, hosts, Stable, consumer/range,
/// subscriptions and assignments). A member commits its partitions with
/// metadata, read back through OffsetFetch; after the members leave (Empty
/// group) a non-member commits with metadata, read back the same way;
/// DeleteGroups then removes the group and its offsets.
#[test]
fn auto_commit_metadata_list_describe() {
    run(
        "auto_commit_metadata_list_describe",
        false,
        gregor(),
        |env| {
            let topic = env.topic("t");
            let group = env.group("g");
            env.create_topic(&topic, PARTITIONS)?;
            let produced = env.produce(&topic, PARTITIONS, 0, 600)?;
            let mut members = Vec::new();
            for _ in 0..2 {
                let mut cfg = env.member_cfg(&group, &topic, "auto");
                cfg.commit = CommitPolicy::Auto;
                cfg.debug_cgrp = true;
                members.push(start_member(cfg, &env.logs, None, false)?);
            }
            let refs: Vec<&Member> = members.iter().collect();
            let (_, owned) = wait_balanced(env, &group, &refs, PARTITIONS)?;
            wait_consumed(&refs, &produced)?;
            check_consumption(&produced, &states(&refs))?;
            let t0 = Instant::now();
            let hw = wait_committed_to_end(env, &group, &topic)?;
            env.note(&format!(
                "auto-commit reached the high watermarks {hw:?} ({:.1?} after consuming)",
                t0.elapsed()
            ));

            // ListGroups and DescribeGroups vs the members.
            let listed = env.list_groups()?;
            let g = listed
                .iter()
                .find(|g| g.name == group)
                .ok_or_else(|| anyhow!("ListGroups does not show {group}: {listed:?}"))?;
            let d = env.describe(&group)?;
            for v in [g, &d] {
                ensure!(
                    v.state == "Stable" && v.protocol_type == "consumer" && v.protocol == "range",
                    "group listing: {}",
                    v.summary()
                );
                ensure!(
                    v.members.len() == 2,
                    "two members expected: {}",
                    v.summary()
                );
                for (m, o) in members.iter().zip(&owned) {
                    let id = m
                        .member_id()
                        .ok_or_else(|| anyhow!("{}: no member id seen in its log", m.name))?;
                    let mv = v.members.iter().find(|x| x.id == id).ok_or_else(|| {
                        anyhow!("member {id} ({}) not listed: {}", m.name, v.summary())
                    })?;
                    ensure!(
                        mv.client_id == m.cfg.client_id,
                        "{id}: client id {} != {}",
                        mv.client_id,
                        m.cfg.client_id
                    );
                    ensure!(!mv.client_host.is_empty(), "{id}: empty client host");
                    ensure!(
                        mv.subscription
                            .as_ref()
                            .is_ok_and(|t| t == &vec![topic.clone()]),
                        "{id}: subscription {:?}",
                        mv.subscription
                    );
                    let want: BTreeMap<String, Vec<i32>> =
                        BTreeMap::from([(topic.clone(), o.iter().copied().collect())]);
                    ensure!(
                        mv.assignment.as_ref().is_ok_and(|a| *a == want),
                        "{id}: DescribeGroups assignment {:?}, member holds {want:?}",
                        mv.assignment
                    );
                }
            }

            // A member commits its own partitions with metadata.
            let a = &members[0];
            let mut tpl = TopicPartitionList::new();
            for p in &owned[0] {
                let mut e = tpl.add_partition(&topic, *p);
                e.set_offset(Offset::Offset(hw[p]))?;
                e.set_metadata(format!("member-meta-{p} ünïcødé"));
            }
            a.consumer()?
                .commit(&tpl, CommitMode::Sync)
                .context("member commit with metadata")?;
            let c = env.committed(&group, &topic, PARTITIONS)?;
            for p in &owned[0] {
                ensure!(
                    c.get(p) == Some(&(hw[p], format!("member-meta-{p} ünïcødé"))),
                    "OffsetFetch p{p}: {:?}",
                    c.get(p)
                );
            }
            // The member's own view (OffsetFetch from the member).
            let mut tpl = TopicPartitionList::new();
            for p in &owned[0] {
                tpl.add_partition(&topic, *p);
            }
            let mine = a.consumer()?.committed_offsets(tpl, REQUEST_TIMEOUT)?;
            for e in mine.elements() {
                ensure!(
                    e.metadata() == format!("member-meta-{} ünïcødé", e.partition()),
                    "member's committed_offsets p{}: metadata {:?}",
                    e.partition(),
                    e.metadata()
                );
            }

            for m in &mut members {
                m.close()?;
            }
            let tool = env.tool("describe")?;
            wait_for("the group to become Empty", SETTLE, || {
                Ok((describe_with(&tool, &group)?.state == "Empty").then_some(()))
            })?;
            let d = env.describe(&group)?;
            ensure!(
                d.members.is_empty(),
                "Empty group lists members: {}",
                d.summary()
            );

            // A non-member commits with metadata to the Empty group.
            let tool = env.tool(&group)?;
            let mut tpl = TopicPartitionList::new();
            for (p, h) in &hw {
                let mut e = tpl.add_partition(&topic, *p);
                e.set_offset(Offset::Offset(h - 1))?;
                e.set_metadata(if *p == 0 {
                    String::new()
                } else {
                    format!("{}-{p}", "x".repeat(300))
                });
            }
            tool.commit(&tpl, CommitMode::Sync)
                .context("commit with metadata to the Empty group")?;
            let c = env.committed(&group, &topic, PARTITIONS)?;
            for (p, h) in &hw {
                let want = if *p == 0 {
                    String::new()
                } else {
                    format!("{}-{p}", "x".repeat(300))
                };
                ensure!(
                    c.get(p) == Some(&(h - 1, want)),
                    "OffsetFetch p{p}: {:?}",
                    c.get(p)
                );
            }

            // DeleteGroups removes the group and its offsets.
            let admin = env.admin()?;
            let opts = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
            let res = env
                .rt
                .block_on(async {
                    tokio::time::timeout(REQUEST_TIMEOUT * 2, admin.delete_groups(&[&group], &opts))
                        .await
                })
                .map_err(|_| anyhow!("DeleteGroups got no answer"))??;
            ensure!(
                matches!(res.first(), Some(Ok(g)) if *g == group),
                "DeleteGroups: {res:?}"
            );
            let c = env.committed(&group, &topic, PARTITIONS)?;
            ensure!(
                c.is_empty(),
                "offsets still there after DeleteGroups: {c:?}"
            );
            let listed = env.list_groups()?;
            ensure!(
                !listed.iter().any(|g| g.name == group),
                "ListGroups still shows the deleted group"
            );
            Ok(())
        },
    );
}
