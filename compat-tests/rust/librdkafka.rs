//! librdkafka (through the `rdkafka` crate) against a real `gregor` process.
//!
//! Every test starts its own broker (port 0, its own data dir), so the tests
//! run in parallel. A missing gregor binary fails every test with a message
//! saying how to build it (`cargo build -p gregor`, or set `GREGOR_BIN`).
//!
//! On failure a test prints the tail of the librdkafka clients' log and of
//! the broker's log, and saves both in full under `target/tmp/<test>.*.log`.
//! Knobs: `COMPAT_RDKAFKA_DEBUG=broker,protocol,msg,...` (librdkafka `debug`),
//! `COMPAT_PRINT_CLIENT_LOG=1` (print the client log of passing tests too),
//! `GREGOR_LOG=...` (RUST_LOG for the broker).
//!
//! Reading is `assign()` from `Offset::Beginning` with a `group.id` set,
//! auto-commit off, nothing ever committed (groups are not under test here).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use gregor_compat::{Broker, BrokerBuilder, CapturingContext, LogSink};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Bound for any single admin / metadata / watermark request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// Test environment
// ---------------------------------------------------------------------------

struct Env {
    broker: Broker,
    clients: LogSink,
    rt: tokio::runtime::Runtime,
    name: &'static str,
    started: Instant,
    client_seq: u32,
    /// When set, new clients bootstrap here instead of `broker`.
    target: Option<String>,
}

/// Launch a broker, run `body`, and on error fail with the error, the
/// clients' log and the broker's log.
fn run(name: &'static str, builder: BrokerBuilder, body: impl FnOnce(&mut Env) -> Result<()>) {
    let started = Instant::now();
    let broker = match builder.launch() {
        Ok(b) => b,
        Err(e) => panic!("{name}: could not start gregor: {e:#}"),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    eprintln!(
        "[{name}] broker up at {} in {:?}",
        broker.bootstrap(),
        started.elapsed()
    );
    let mut env = Env {
        broker,
        clients: LogSink::default(),
        rt,
        name,
        started,
        client_seq: 0,
        target: None,
    };
    match body(&mut env) {
        Ok(()) => {
            if std::env::var_os("COMPAT_PRINT_CLIENT_LOG").is_some() {
                eprintln!(
                    "--- [{name}] librdkafka client log ---\n{}",
                    env.clients.tail(usize::MAX)
                );
            }
            eprintln!("[{name}] PASSED in {:.1?}", started.elapsed());
        }
        Err(e) => {
            let files = save_logs(name, &env);
            let report = format!(
                "{name} FAILED after {:.1?}: {e:#}\n\
                 --- librdkafka client log (tail) ---\n{}\
                 --- gregor log (broker {}, tail) ---\n{}",
                started.elapsed(),
                env.clients.tail(80),
                env.broker.bootstrap(),
                env.broker.log_tail(150),
            ) + &files;
            drop(env); // kills the broker (not panicking yet: no duplicate log dump)
            panic!("{report}");
        }
    }
}

/// Write the full client and broker logs of a failed test next to the
/// build output; returns a line naming the files.
fn save_logs(name: &str, env: &Env) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let client = dir.join(format!("{name}.client.log"));
    let broker = dir.join(format!("{name}.broker.log"));
    let c = std::fs::write(&client, env.clients.lines().join("\n"));
    let b = std::fs::write(&broker, env.broker.log().lines().join("\n"));
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
    fn phase(&self, what: &str, since: Instant) {
        eprintln!(
            "[{}] {what}: {:.2?} (t={:.1?})",
            self.name,
            since.elapsed(),
            self.started.elapsed()
        );
    }

    fn context(&mut self, kind: &str) -> CapturingContext {
        self.client_seq += 1;
        CapturingContext::new(&format!("{kind}#{}", self.client_seq), &self.clients)
    }

    fn base_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        let bootstrap = self
            .target
            .clone()
            .unwrap_or_else(|| self.broker.bootstrap());
        c.set("bootstrap.servers", bootstrap)
            .set("broker.address.family", "v4");
        // e.g. COMPAT_RDKAFKA_DEBUG=broker,protocol,fetch (lines go to the
        // captured client log, shown on failure or with COMPAT_PRINT_CLIENT_LOG=1)
        // (the crate's default log level follows the `log` crate, which has
        // no logger here: Error only; the capturing context wants more)
        c.set_log_level(RDKafkaLogLevel::Info);
        if let Ok(d) = std::env::var("COMPAT_RDKAFKA_DEBUG") {
            c.set("debug", d).set_log_level(RDKafkaLogLevel::Debug);
        }
        c
    }

    fn admin(&mut self) -> Result<AdminClient<CapturingContext>> {
        let ctx = self.context("admin");
        self.base_config()
            .create_with_context(ctx)
            .context("creating AdminClient")
    }

    fn producer(&mut self, extra: &[(&str, &str)]) -> Result<FutureProducer<CapturingContext>> {
        Ok(self.producer_with_ctx(extra)?.0)
    }

    /// A producer plus a handle on its context (shares the error list).
    fn producer_with_ctx(
        &mut self,
        extra: &[(&str, &str)],
    ) -> Result<(FutureProducer<CapturingContext>, CapturingContext)> {
        let ctx = self.context("producer");
        let handle = ctx.clone();
        let mut cfg = self.base_config();
        cfg.set("message.timeout.ms", "60000")
            .set("queue.buffering.max.messages", "1000000")
            .set("linger.ms", "5");
        for (k, v) in extra {
            cfg.set(*k, *v);
        }
        let p = cfg
            .create_with_context(ctx)
            .context("creating FutureProducer")?;
        Ok((p, handle))
    }

    fn consumer(&mut self) -> Result<BaseConsumer<CapturingContext>> {
        let ctx = self.context("consumer");
        let group = format!("compat-{}-{}", self.name, self.client_seq);
        let mut cfg = self.base_config();
        cfg.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false");
        cfg.create_with_context(ctx)
            .context("creating BaseConsumer")
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Run `f` to completion, or give up after `limit`.
    fn within<F: std::future::Future>(
        &self,
        limit: Duration,
        f: F,
    ) -> std::result::Result<F::Output, tokio::time::error::Elapsed> {
        self.rt
            .block_on(async { tokio::time::timeout(limit, f).await })
    }

    fn create_topic(&mut self, topic: &str, partitions: i32) -> Result<()> {
        let admin = self.admin()?;
        let results = self.block_on(create_topics(&admin, topic, partitions))?;
        ensure!(
            results.len() == 1,
            "CreateTopics({topic}) returned {} results",
            results.len()
        );
        match &results[0] {
            Ok(name) if name == topic => Ok(()),
            other => bail!("CreateTopics({topic}, {partitions} partitions) failed: {other:?}"),
        }
    }
}

async fn create_topics(
    admin: &AdminClient<CapturingContext>,
    topic: &str,
    partitions: i32,
) -> Result<Vec<rdkafka::admin::TopicResult>> {
    let nt = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .operation_timeout(Some(REQUEST_TIMEOUT));
    tokio::time::timeout(REQUEST_TIMEOUT * 2, admin.create_topics([&nt], &opts))
        .await
        .map_err(|_| {
            anyhow!(
                "CreateTopics({topic}) got no result in {:?}",
                REQUEST_TIMEOUT * 2
            )
        })?
        .with_context(|| format!("CreateTopics({topic})"))
}

async fn delete_topic(
    admin: &AdminClient<CapturingContext>,
    topic: &str,
) -> Result<Vec<rdkafka::admin::TopicResult>> {
    let opts = AdminOptions::new()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .operation_timeout(Some(REQUEST_TIMEOUT));
    tokio::time::timeout(REQUEST_TIMEOUT * 2, admin.delete_topics(&[topic], &opts))
        .await
        .map_err(|_| {
            anyhow!(
                "DeleteTopics({topic}) got no result in {:?}",
                REQUEST_TIMEOUT * 2
            )
        })?
        .with_context(|| format!("DeleteTopics({topic})"))
}

// ---------------------------------------------------------------------------
// Producing
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Msg {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    partition: Option<i32>,
    timestamp: Option<i64>,
}

impl Msg {
    fn keyed(key: String, value: String) -> Msg {
        Msg {
            key: Some(key.into_bytes()),
            value: value.into_bytes(),
            partition: None,
            timestamp: None,
        }
    }
}

/// Enqueue every message, then wait for every delivery report (bounded by
/// `deadline`). Errors unless every single message was delivered.
/// `result[i]` is the delivery of `msgs[i]`.
async fn produce_all(
    producer: &FutureProducer<CapturingContext>,
    topic: &str,
    msgs: &[Msg],
    deadline: Duration,
) -> Result<Vec<Delivery>> {
    let mut futures = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(&m.value[..]);
        if let Some(k) = &m.key {
            rec = rec.key(&k[..]);
        }
        if let Some(p) = m.partition {
            rec = rec.partition(p);
        }
        if let Some(ts) = m.timestamp {
            rec = rec.timestamp(ts);
        }
        match producer.send_result(rec) {
            Ok(f) => futures.push(f),
            Err((e, _)) => bail!("enqueueing message #{i} to {topic} failed locally: {e}"),
        }
    }
    let wait_all = async {
        let mut out = Vec::with_capacity(futures.len());
        let mut failures = Vec::new();
        let mut failed = 0usize;
        for (i, f) in futures.into_iter().enumerate() {
            match f.await {
                Ok(Ok(d)) => out.push(d),
                Ok(Err((e, _))) => {
                    failed += 1;
                    if failures.len() < 5 {
                        failures.push(format!("#{i}: {e}"));
                    }
                }
                Err(_) => {
                    failed += 1;
                    if failures.len() < 5 {
                        failures.push(format!("#{i}: delivery future cancelled"));
                    }
                }
            }
        }
        (out, failed, failures)
    };
    let (out, failed, failures) = tokio::time::timeout(deadline, wait_all)
        .await
        .map_err(|_| {
            anyhow!("not every delivery report for {topic} arrived within {deadline:?}")
        })?;
    ensure!(
        failed == 0,
        "{failed} of {} messages to {topic} were NOT delivered; first errors: {failures:?}",
        msgs.len()
    );
    Ok(out)
}

// ---------------------------------------------------------------------------
// Consuming and log checks
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Rec {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    timestamp: Option<i64>,
}

impl Rec {
    fn value_str(&self) -> Result<&str> {
        std::str::from_utf8(&self.value)
            .with_context(|| format!("value at p{} o{} is not UTF-8", self.partition, self.offset))
    }
    fn key_str(&self) -> Result<&str> {
        let k = self
            .key
            .as_deref()
            .ok_or_else(|| anyhow!("record at p{} o{} has no key", self.partition, self.offset))?;
        std::str::from_utf8(k)
            .with_context(|| format!("key at p{} o{} is not UTF-8", self.partition, self.offset))
    }
}

/// What one full read of a topic returned.
struct TopicRead {
    /// Records per partition, in the order the consumer received them.
    parts: BTreeMap<i32, Vec<Rec>>,
    /// (low, high) watermark per partition, queried after the read.
    watermarks: BTreeMap<i32, (i64, i64)>,
}

impl TopicRead {
    fn total(&self) -> usize {
        self.parts.values().map(Vec::len).sum()
    }
    fn all(&self) -> impl Iterator<Item = &Rec> {
        self.parts.values().flatten()
    }
    fn summary(&self) -> String {
        let mut s = String::new();
        for (p, (lo, hi)) in &self.watermarks {
            let n = self.parts.get(p).map_or(0, Vec::len);
            let _ = write!(s, "p{p}: read {n}, watermarks [{lo},{hi}); ");
        }
        s
    }
}

/// Number of partitions of `topic` according to Metadata (no auto-create).
fn partition_count(env: &mut Env, topic: &str) -> Result<i32> {
    let consumer = env.consumer()?;
    let md = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .with_context(|| format!("Metadata({topic})"))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| anyhow!("Metadata does not list {topic}"))?;
    ensure!(
        t.error().is_none(),
        "Metadata({topic}) topic error {:?}",
        t.error()
    );
    Ok(i32::try_from(t.partitions().len())?)
}

/// Read `topic` partitions `0..partitions` from the beginning until exactly
/// `expected` records arrived (bounded by `deadline`), then fetch the
/// watermarks. Consume errors are failures.
fn consume_exact(
    env: &mut Env,
    topic: &str,
    partitions: i32,
    expected: usize,
    deadline: Duration,
) -> Result<TopicRead> {
    consume(env, topic, partitions, Some(expected), deadline)
}

/// Read `topic` from the beginning up to the high watermarks it has now.
fn consume_to_end(
    env: &mut Env,
    topic: &str,
    partitions: i32,
    deadline: Duration,
) -> Result<TopicRead> {
    consume(env, topic, partitions, None, deadline)
}

fn watermarks(env: &mut Env, topic: &str, partitions: i32) -> Result<BTreeMap<i32, (i64, i64)>> {
    // A separate, idle client: on a reading client's connection each
    // ListOffsets would queue behind a long-polling Fetch (one request at a
    // time per connection, as in Kafka).
    let idle = env.consumer()?;
    let mut watermarks = BTreeMap::new();
    for p in 0..partitions {
        let wm = idle
            .fetch_watermarks(topic, p, REQUEST_TIMEOUT)
            .with_context(|| format!("fetch_watermarks({topic}, {p})"))?;
        watermarks.insert(p, wm);
    }
    Ok(watermarks)
}

/// `expected`: stop after exactly that many records; `None`: stop when every
/// partition reached the high watermark it had before reading.
fn consume(
    env: &mut Env,
    topic: &str,
    partitions: i32,
    expected: Option<usize>,
    deadline: Duration,
) -> Result<TopicRead> {
    let ends = match expected {
        Some(_) => None,
        None => Some(watermarks(env, topic, partitions)?),
    };
    let consumer = env.consumer()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl).context("assign")?;
    let mut parts: BTreeMap<i32, Vec<Rec>> = (0..partitions).map(|p| (p, Vec::new())).collect();
    let mut total = 0usize;
    let done = |parts: &BTreeMap<i32, Vec<Rec>>, total: usize| match (&ends, expected) {
        (_, Some(n)) => total >= n,
        (Some(ends), None) => parts.iter().all(|(p, recs)| {
            let hi = ends.get(p).map_or(0, |(_, hi)| *hi);
            recs.last().map_or(hi == 0, |r| r.offset + 1 >= hi)
        }),
        (None, None) => true,
    };
    let until = Instant::now() + deadline;
    while !done(&parts, total) {
        let Some(left) = until.checked_duration_since(Instant::now()) else {
            let counts: Vec<_> = parts
                .iter()
                .map(|(p, v)| format!("p{p}={}", v.len()))
                .collect();
            drop(consumer);
            let wm = watermarks(env, topic, partitions);
            bail!(
                "read only {total} records (wanted: {}) from {topic} within {deadline:?} \
                 (per partition: {counts:?}; watermarks now: {wm:?})",
                match expected {
                    Some(n) => format!("{n}"),
                    None => format!("up to the watermarks {ends:?}"),
                }
            );
        };
        match consumer.poll(left.min(Duration::from_millis(500))) {
            None => {}
            Some(Err(e)) => {
                bail!("consumer error while reading {topic} ({total} read so far): {e}")
            }
            Some(Ok(m)) => {
                ensure!(
                    m.topic() == topic,
                    "got a record of topic {} while reading {topic}",
                    m.topic()
                );
                let rec = Rec {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    timestamp: m.timestamp().to_millis(),
                };
                parts
                    .get_mut(&rec.partition)
                    .ok_or_else(|| anyhow!("record from unassigned partition {}", rec.partition))?
                    .push(rec);
                total += 1;
            }
        }
    }
    drop(consumer);
    let watermarks = watermarks(env, topic, partitions)?;
    Ok(TopicRead { parts, watermarks })
}

/// Offsets in each partition are exactly 0,1,2,... in order, the low
/// watermark is 0 and the high watermark equals the number of records (so
/// nothing beyond what was read exists).
fn check_log_shape(topic: &str, read: &TopicRead) -> Result<()> {
    for (p, recs) in &read.parts {
        for (i, r) in recs.iter().enumerate() {
            ensure!(
                r.offset == i as i64,
                "{topic} p{p}: record #{i} has offset {} (expected {i}: offsets must be contiguous from 0, \
                 no gaps, no duplicates, in order); previous offset {:?}",
                r.offset,
                i.checked_sub(1).map(|j| recs[j].offset)
            );
        }
        let (lo, hi) = read.watermarks[p];
        ensure!(lo == 0, "{topic} p{p}: low watermark {lo}, expected 0");
        ensure!(
            hi == recs.len() as i64,
            "{topic} p{p}: high watermark {hi} but {} records read from offset 0 ({})",
            recs.len(),
            read.summary()
        );
    }
    Ok(())
}

/// Every consumed record sits at the (partition, offset) its delivery report
/// announced, and carries the produced key and value.
fn check_matches_deliveries(
    topic: &str,
    read: &TopicRead,
    msgs: &[Msg],
    dels: &[Delivery],
) -> Result<()> {
    ensure!(
        msgs.len() == dels.len(),
        "internal: {} msgs vs {} deliveries",
        msgs.len(),
        dels.len()
    );
    let mut at: HashMap<(i32, i64), usize> = HashMap::with_capacity(dels.len());
    for (i, d) in dels.iter().enumerate() {
        if let Some(prev) = at.insert((d.partition, d.offset), i) {
            bail!(
                "{topic}: delivery reports of messages #{prev} and #{i} both say p{} o{}",
                d.partition,
                d.offset
            );
        }
    }
    ensure!(
        read.total() == msgs.len(),
        "{topic}: read {} records, produced {}",
        read.total(),
        msgs.len()
    );
    for r in read.all() {
        let i = *at.get(&(r.partition, r.offset)).ok_or_else(|| {
            anyhow!(
                "{topic}: record at p{} o{} matches no delivery report",
                r.partition,
                r.offset
            )
        })?;
        let m = &msgs[i];
        ensure!(
            r.key == m.key && r.value == m.value,
            "{topic} p{} o{}: read key {:?} value {:?}, but message #{i} delivered there was key {:?} value {:?}",
            r.partition,
            r.offset,
            r.key.as_deref().map(String::from_utf8_lossy),
            String::from_utf8_lossy(&r.value),
            m.key.as_deref().map(String::from_utf8_lossy),
            String::from_utf8_lossy(&m.value)
        );
        if let Some(ts) = m.timestamp {
            ensure!(
                r.timestamp == Some(ts),
                "{topic} p{} o{}: timestamp {:?}, produced with {ts}",
                r.partition,
                r.offset,
                r.timestamp
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Keyed workload: value = "<tag>|<key>|seq=<n>|<padding>"
// ---------------------------------------------------------------------------

const PAD: &str =
    "the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs";

fn keyed_workload(tag: &str, keys: u32, per_key: u32) -> Vec<Msg> {
    let mut v = Vec::with_capacity((keys * per_key) as usize);
    for seq in 0..per_key {
        for k in 0..keys {
            let key = format!("key-{k:04}");
            let value = format!("{tag}|{key}|seq={seq:06}|{PAD}");
            v.push(Msg::keyed(key, value));
        }
    }
    v
}

/// Keyed checks: exact count, every key in exactly one partition, per key the
/// sequence numbers arrive as 0,1,2,... (order kept, no loss, no duplicates).
fn check_keyed(topic: &str, tag: &str, read: &TopicRead, keys: u32, per_key: u32) -> Result<()> {
    let expected = (keys * per_key) as usize;
    ensure!(
        read.total() == expected,
        "{topic}: read {} records, expected {expected}",
        read.total()
    );
    let mut home: HashMap<String, i32> = HashMap::new();
    let mut next_seq: HashMap<String, u32> = HashMap::new();
    for r in read.all() {
        let key = r.key_str()?;
        let v = r.value_str()?;
        let mut it = v.split('|');
        let (vtag, vkey, vseq) = (it.next(), it.next(), it.next());
        ensure!(
            vtag == Some(tag) && vkey == Some(key),
            "{topic} p{} o{}: value {v:?} does not belong to key {key:?}/tag {tag}",
            r.partition,
            r.offset
        );
        let seq: u32 = vseq
            .and_then(|s| s.strip_prefix("seq="))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("{topic} p{} o{}: bad value {v:?}", r.partition, r.offset))?;
        let p = *home.entry(key.to_owned()).or_insert(r.partition);
        ensure!(
            p == r.partition,
            "{topic}: key {key} found in partitions {p} and {} (o{})",
            r.partition,
            r.offset
        );
        let next = next_seq.entry(key.to_owned()).or_insert(0);
        ensure!(
            seq == *next,
            "{topic} p{} o{}: key {key} has seq {seq} but seq {} was expected next (per-key order broken, \
             or a message lost/duplicated)",
            r.partition,
            r.offset,
            *next
        );
        *next += 1;
    }
    ensure!(
        home.len() == keys as usize,
        "{topic}: {} distinct keys, expected {keys}",
        home.len()
    );
    for (k, n) in &next_seq {
        ensure!(
            *n == per_key,
            "{topic}: key {k} has {n} messages, expected {per_key}"
        );
    }
    let hw_sum: i64 = read.watermarks.values().map(|(_, hi)| hi).sum();
    ensure!(
        hw_sum == expected as i64,
        "{topic}: high watermarks sum to {hw_sum}, expected {expected} ({})",
        read.summary()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// 100,000 keyed messages per compression codec (acks=all, linger.ms=5) into a
/// 6-partition topic, read back completely; then a graceful restart and
/// everything is read again with the same checks.
#[test]
fn hundred_k_keyed_per_codec() {
    const KEYS: u32 = 1000;
    const PER_KEY: u32 = 100;
    const PARTITIONS: i32 = 6;
    const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
    run("hundred_k_keyed_per_codec", Broker::builder(), |env| {
        let mut produced = Vec::new();
        let mut not_compressed = Vec::new();
        for codec in CODECS {
            let topic = format!("compat-100k-{codec}");
            let t = Instant::now();
            env.create_topic(&topic, PARTITIONS)?;
            let msgs = keyed_workload(codec, KEYS, PER_KEY);
            let (producer, pctx) = env.producer_with_ctx(&[
                ("acks", "all"),
                ("compression.type", codec),
                ("statistics.interval.ms", "100"),
            ])?;
            let t_prod = Instant::now();
            let dels = env
                .block_on(produce_all(
                    &producer,
                    &topic,
                    &msgs,
                    Duration::from_secs(90),
                ))
                .with_context(|| format!("producing 100k with compression.type={codec}"))?;
            env.phase(
                &format!("{codec}: produced {} (acks=all)", msgs.len()),
                t_prod,
            );
            // The codec really was used on the wire: compare the bytes sent
            // with the uncompressed key+value bytes (librdkafka's counters).
            let st = pctx.wait_stats(Duration::from_secs(10), |s| s.txmsgs >= msgs.len() as i64)?;
            let ratio = st.tx_bytes as f64 / st.txmsg_bytes as f64;
            eprintln!(
                "[{}] {codec}: {} bytes on the wire for {} key+value bytes (ratio {ratio:.3})",
                env.name, st.tx_bytes, st.txmsg_bytes
            );
            // Not fatal right away, so that every codec gets its data checks;
            // reported at the end.
            if codec == "none" && ratio <= 1.0 {
                not_compressed.push(format!(
                    "compression.type=none but wire/payload ratio {ratio:.3}"
                ));
            } else if codec != "none" && ratio >= 0.5 {
                not_compressed.push(format!(
                    "compression.type={codec}: librdkafka sent the batches UNCOMPRESSED \
                     ({} wire bytes for {} key+value bytes, ratio {ratio:.3}){}",
                    st.tx_bytes,
                    st.txmsg_bytes,
                    if codec == "lz4" {
                        " -- librdkafka 2.12 enables lz4 only if the broker's ApiVersions \
                         response lists FindCoordinator (key 10, any version); with \
                         COMPAT_RDKAFKA_DEBUG=msg its log says 'Broker does not support \
                         compression type lz4: not compressing batch'"
                    } else {
                        ""
                    }
                ));
            }
            drop(producer);
            let t_cons = Instant::now();
            let read = consume_exact(env, &topic, PARTITIONS, msgs.len(), Duration::from_secs(90))?;
            env.phase(&format!("{codec}: consumed {}", read.total()), t_cons);
            check_log_shape(&topic, &read)?;
            check_keyed(&topic, codec, &read, KEYS, PER_KEY)?;
            check_matches_deliveries(&topic, &read, &msgs, &dels)?;
            env.phase(&format!("{codec}: total"), t);
            produced.push((topic, codec, msgs, dels));
        }

        let t = Instant::now();
        env.broker.restart().context("graceful restart")?;
        env.phase("graceful restart", t);

        for (topic, codec, msgs, dels) in &produced {
            let t = Instant::now();
            let parts = partition_count(env, topic)?;
            ensure!(
                parts == PARTITIONS,
                "after restart {topic} has {parts} partitions"
            );
            let read = consume_exact(env, topic, PARTITIONS, msgs.len(), Duration::from_secs(90))
                .with_context(|| format!("re-reading {topic} after restart"))?;
            check_log_shape(topic, &read).context("after restart")?;
            check_keyed(topic, codec, &read, KEYS, PER_KEY).context("after restart")?;
            check_matches_deliveries(topic, &read, msgs, dels).context("after restart")?;
            env.phase(&format!("{codec}: re-read after restart"), t);
        }
        ensure!(
            not_compressed.is_empty(),
            "all data checks passed, but compression was not exercised:\n  {}",
            not_compressed.join("\n  ")
        );
        Ok(())
    });
}

/// enable.idempotence=true: 20,000 messages with explicit partitions; each is
/// delivered exactly once, at offsets 0,1,2,... per partition in send order.
#[test]
fn idempotent_producer() {
    const N: u32 = 20_000;
    const PARTITIONS: i32 = 3;
    run("idempotent_producer", Broker::builder(), |env| {
        let topic = "compat-idempotent";
        env.create_topic(topic, PARTITIONS)?;
        let mut per_part = [0u32; PARTITIONS as usize];
        let msgs: Vec<Msg> = (0..N)
            .map(|i| {
                let p = (i % PARTITIONS as u32) as i32;
                let n = per_part[p as usize];
                per_part[p as usize] += 1;
                Msg {
                    key: Some(format!("k{}", i % 97).into_bytes()),
                    value: format!("p{p}|n={n}|i={i}").into_bytes(),
                    partition: Some(p),
                    timestamp: None,
                }
            })
            .collect();
        let (producer, pctx) = env.producer_with_ctx(&[("enable.idempotence", "true")])?;
        let t = Instant::now();
        let dels = env.block_on(produce_all(
            &producer,
            topic,
            &msgs,
            Duration::from_secs(60),
        ))?;
        env.phase("produced 20k idempotently", t);
        ensure!(
            producer.client().fatal_error().is_none(),
            "idempotent producer hit a fatal error: {:?}",
            producer.client().fatal_error()
        );
        let errors = pctx.errors();
        ensure!(
            errors.is_empty(),
            "idempotent producer reported errors: {errors:?}"
        );
        // Send order == offset order, per partition.
        let mut next = [0i64; PARTITIONS as usize];
        for (i, (m, d)) in msgs.iter().zip(&dels).enumerate() {
            let p = m.partition.unwrap_or(-1);
            ensure!(
                d.partition == p,
                "message #{i} for p{p} delivered to p{}",
                d.partition
            );
            ensure!(
                d.offset == next[p as usize],
                "message #{i}: delivered to p{p} o{}, expected o{} (exactly once, in order)",
                d.offset,
                next[p as usize]
            );
            next[p as usize] += 1;
        }
        drop(producer);
        let t = Instant::now();
        let read = consume_exact(env, topic, PARTITIONS, N as usize, Duration::from_secs(60))?;
        env.phase("consumed", t);
        check_log_shape(topic, &read)?;
        check_matches_deliveries(topic, &read, &msgs, &dels)?;
        for (p, recs) in &read.parts {
            for r in recs {
                let want = format!("p{p}|n={}|", r.offset);
                ensure!(
                    r.value_str()?.starts_with(&want),
                    "{topic} p{p} o{}: value {:?}, expected prefix {want:?}",
                    r.offset,
                    r.value_str()?
                );
            }
        }
        Ok(())
    });
}

/// acks=0 and acks=1 producers (topics auto-created by the producer with the
/// broker's num.partitions=4); every message is readable afterwards, exactly
/// once, in per-key order.
#[test]
fn acks_0_and_1() {
    const KEYS: u32 = 50;
    const PER_KEY: u32 = 100;
    const PARTITIONS: i32 = 4;
    run(
        "acks_0_and_1",
        Broker::builder().prop("num.partitions", "4"),
        |env| {
            for acks in ["0", "1"] {
                let topic = format!("compat-acks{acks}");
                let tag = format!("acks{acks}");
                let msgs = keyed_workload(&tag, KEYS, PER_KEY);
                // Keep the producer alive until everything has been read: with
                // acks=0 "delivered" only means "written to the socket".
                let (producer, pctx) = env.producer_with_ctx(&[("acks", acks)])?;
                let t = Instant::now();
                let dels = env.block_on(produce_all(
                    &producer,
                    &topic,
                    &msgs,
                    Duration::from_secs(60),
                ))?;
                env.phase(&format!("acks={acks}: produced {}", msgs.len()), t);
                let parts = partition_count(env, &topic)?;
                ensure!(
                parts == PARTITIONS,
                "auto-created {topic} has {parts} partitions, broker runs with num.partitions={PARTITIONS}"
            );
                let t = Instant::now();
                let read =
                    consume_exact(env, &topic, PARTITIONS, msgs.len(), Duration::from_secs(60))?;
                env.phase(&format!("acks={acks}: consumed {}", read.total()), t);
                check_log_shape(&topic, &read)?;
                check_keyed(&topic, &tag, &read, KEYS, PER_KEY)?;
                if acks == "1" {
                    check_matches_deliveries(&topic, &read, &msgs, &dels)?;
                } else {
                    // No offsets in acks=0 delivery reports; the partition is the client's choice.
                    let mut home: HashMap<&[u8], i32> = HashMap::new();
                    for (m, d) in msgs.iter().zip(&dels) {
                        home.insert(m.key.as_deref().unwrap_or_default(), d.partition);
                    }
                    for r in read.all() {
                        let want = home.get(r.key.as_deref().unwrap_or_default()).copied();
                        ensure!(
                            want == Some(r.partition),
                            "{topic}: key {:?} read from p{}, the producer sent it to {want:?}",
                            r.key_str()?,
                            r.partition
                        );
                    }
                }
                let errors = pctx.errors();
                ensure!(
                    errors.is_empty(),
                    "acks={acks} producer reported errors: {errors:?}"
                );
                drop(producer);
            }
            Ok(())
        },
    );
}

/// acks=all: wait for every delivery report, SIGKILL the broker, start it on
/// the same data dir: every acknowledged message is there exactly once at its
/// acknowledged offset; appending afterwards continues at the old end.
#[test]
fn kill9_keeps_acked() {
    const KEYS: u32 = 200;
    const PER_KEY: u32 = 100;
    const PARTITIONS: i32 = 3;
    run("kill9_keeps_acked", Broker::builder(), |env| {
        let topic = "compat-kill9";
        env.create_topic(topic, PARTITIONS)?;
        let msgs = keyed_workload("before", KEYS, PER_KEY);
        let producer = env.producer(&[("acks", "all")])?;
        let t = Instant::now();
        let dels = env.block_on(produce_all(
            &producer,
            topic,
            &msgs,
            Duration::from_secs(60),
        ))?;
        env.phase(&format!("produced and acked {}", msgs.len()), t);
        // Kill right after the last ack: no grace period for the broker to flush.
        env.broker.kill9()?;
        drop(producer);
        let t = Instant::now();
        env.broker.start().context("start after SIGKILL")?;
        env.phase("start after SIGKILL", t);

        let read = consume_exact(env, topic, PARTITIONS, msgs.len(), Duration::from_secs(60))
            .context("reading acked messages after SIGKILL")?;
        check_log_shape(topic, &read).context("after SIGKILL")?;
        check_keyed(topic, "before", &read, KEYS, PER_KEY).context("after SIGKILL")?;
        check_matches_deliveries(topic, &read, &msgs, &dels).context("after SIGKILL")?;

        // The recovered log accepts appends at its end.
        let ends: BTreeMap<i32, i64> = read
            .watermarks
            .iter()
            .map(|(p, (_, hi))| (*p, *hi))
            .collect();
        let more: Vec<Msg> = (0..PARTITIONS)
            .flat_map(|p| {
                (0..100).map(move |n| Msg {
                    key: None,
                    value: format!("after|p{p}|n={n}").into_bytes(),
                    partition: Some(p),
                    timestamp: None,
                })
            })
            .collect();
        let producer = env.producer(&[("acks", "all")])?;
        let more_dels = env.block_on(produce_all(
            &producer,
            topic,
            &more,
            Duration::from_secs(60),
        ))?;
        for (m, d) in more.iter().zip(&more_dels) {
            let p = m.partition.unwrap_or(-1);
            let n: i64 = String::from_utf8_lossy(&m.value)
                .rsplit("n=")
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(-1);
            ensure!(
                d.partition == p && d.offset == ends[&p] + n,
                "append after recovery: {:?} delivered at p{} o{}, expected p{p} o{}",
                String::from_utf8_lossy(&m.value),
                d.partition,
                d.offset,
                ends[&p] + n
            );
        }
        drop(producer);
        let read2 = consume_exact(
            env,
            topic,
            PARTITIONS,
            msgs.len() + more.len(),
            Duration::from_secs(60),
        )?;
        check_log_shape(topic, &read2)?;
        let all_msgs: Vec<Msg> = msgs.iter().chain(&more).cloned().collect();
        let all_dels: Vec<Delivery> = dels
            .iter()
            .chain(&more_dels)
            .map(|d| Delivery {
                partition: d.partition,
                offset: d.offset,
                timestamp: d.timestamp,
            })
            .collect();
        check_matches_deliveries(topic, &read2, &all_msgs, &all_dels)?;
        Ok(())
    });
}

/// CreateTopics / Metadata / DeleteTopics through AdminClient, plus
/// watermarks and offsets_for_times (ListOffsets by timestamp).
#[test]
fn metadata_and_admin() {
    run("metadata_and_admin", Broker::builder(), |env| {
        let topic = "compat-meta";
        let admin = env.admin()?;

        // Create.
        let r = env.block_on(create_topics(&admin, topic, 3))?;
        ensure!(
            r.len() == 1 && r[0] == Ok(topic.to_owned()),
            "CreateTopics({topic}, 3): {r:?}"
        );

        // Metadata: topic, its 3 partitions led by node 1, and the broker itself.
        let consumer = env.consumer()?;
        let md = consumer
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .context("Metadata")?;
        let brokers: Vec<(i32, String)> = md
            .brokers()
            .iter()
            .map(|b| (b.id(), format!("{}:{}", b.host(), b.port())))
            .collect();
        ensure!(
            brokers == vec![(1, env.broker.bootstrap())],
            "Metadata brokers {brokers:?}, expected exactly node 1 at {}",
            env.broker.bootstrap()
        );
        let t = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(|| anyhow!("Metadata does not list {topic}"))?;
        ensure!(t.error().is_none(), "topic error {:?}", t.error());
        let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        ids.sort_unstable();
        ensure!(
            ids == vec![0, 1, 2],
            "partitions {ids:?}, expected [0, 1, 2]"
        );
        for p in t.partitions() {
            ensure!(
                p.error().is_none() && p.leader() == 1 && p.replicas() == [1] && p.isr() == [1],
                "partition {}: error {:?} leader {} replicas {:?} isr {:?}; expected leader 1, replicas [1], isr [1]",
                p.id(),
                p.error(),
                p.leader(),
                p.replicas(),
                p.isr()
            );
        }

        // Create again: TopicAlreadyExists.
        let r = env.block_on(create_topics(&admin, topic, 3))?;
        ensure!(
            r == vec![Err((
                topic.to_owned(),
                RDKafkaErrorCode::TopicAlreadyExists
            ))],
            "creating {topic} a second time: {r:?}, expected TopicAlreadyExists"
        );

        // Watermarks on the empty topic.
        for p in 0..3 {
            let wm = consumer.fetch_watermarks(topic, p, REQUEST_TIMEOUT)?;
            ensure!(
                wm == (0, 0),
                "empty {topic} p{p}: watermarks {wm:?}, expected (0, 0)"
            );
        }

        // 10 messages into p0 with timestamps base, base+1000, ...
        let base: i64 = 1_700_000_000_000;
        let msgs: Vec<Msg> = (0..10)
            .map(|i| Msg {
                key: Some(format!("k{i}").into_bytes()),
                value: format!("v{i}").into_bytes(),
                partition: Some(0),
                timestamp: Some(base + 1000 * i),
            })
            .collect();
        let producer = env.producer(&[("acks", "all")])?;
        let dels = env.block_on(produce_all(
            &producer,
            topic,
            &msgs,
            Duration::from_secs(30),
        ))?;
        let offs: Vec<i64> = dels.iter().map(|d| d.offset).collect();
        ensure!(
            offs == (0..10).collect::<Vec<i64>>(),
            "delivered offsets {offs:?}"
        );
        drop(producer);

        for (p, want) in [(0, (0, 10)), (1, (0, 0)), (2, (0, 0))] {
            let wm = consumer.fetch_watermarks(topic, p, REQUEST_TIMEOUT)?;
            ensure!(
                wm == want,
                "{topic} p{p}: watermarks {wm:?}, expected {want:?}"
            );
        }

        // offsets_for_times: first offset whose timestamp >= the asked one;
        // past the last timestamp (or on an empty partition): end (-1).
        let cases: [(i32, i64, Offset); 7] = [
            (0, 0, Offset::Offset(0)),
            (0, base, Offset::Offset(0)),
            (0, base + 1, Offset::Offset(1)),
            (0, base + 5000, Offset::Offset(5)),
            (0, base + 9000, Offset::Offset(9)),
            (0, base + 9001, Offset::End),
            (1, base, Offset::End),
        ];
        for (p, ts, want) in cases {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, p, Offset::Offset(ts))?;
            let res = consumer
                .offsets_for_times(tpl, REQUEST_TIMEOUT)
                .with_context(|| format!("offsets_for_times(p{p}, ts {ts})"))?;
            let e = res
                .find_partition(topic, p)
                .ok_or_else(|| anyhow!("offsets_for_times result lacks p{p}"))?;
            ensure!(
                e.error().is_ok(),
                "offsets_for_times(p{p}, ts {ts}): error {:?}",
                e.error()
            );
            ensure!(
                e.offset() == want,
                "offsets_for_times(p{p}, ts {ts}) = {:?}, expected {want:?}",
                e.offset()
            );
        }

        // The timestamps come back on consume, too.
        let read = consume_exact(env, topic, 3, 10, Duration::from_secs(30))?;
        check_log_shape(topic, &read)?;
        check_matches_deliveries(topic, &read, &msgs, &dels)?;

        // Delete; the topic is gone from Metadata; deleting again fails.
        let r = env.block_on(delete_topic(&admin, topic))?;
        ensure!(
            r == vec![Ok(topic.to_owned())],
            "DeleteTopics({topic}): {r:?}"
        );
        let md = consumer
            .fetch_metadata(None, REQUEST_TIMEOUT)
            .context("Metadata (all topics)")?;
        let names: Vec<&str> = md.topics().iter().map(|t| t.name()).collect();
        ensure!(
            !names.contains(&topic),
            "{topic} still in Metadata after delete: {names:?}"
        );
        let r = env.block_on(delete_topic(&admin, topic))?;
        ensure!(
            r == vec![Err((
                topic.to_owned(),
                RDKafkaErrorCode::UnknownTopicOrPartition
            ))],
            "deleting {topic} again: {r:?}, expected UnknownTopicOrPartition"
        );

        // Re-created under the same name, the topic starts empty.
        let r = env.block_on(create_topics(&admin, topic, 2))?;
        ensure!(
            r == vec![Ok(topic.to_owned())],
            "re-creating {topic}: {r:?}"
        );
        let consumer = env.consumer()?;
        for p in 0..2 {
            let wm = consumer.fetch_watermarks(topic, p, REQUEST_TIMEOUT)?;
            ensure!(
                wm == (0, 0),
                "re-created {topic} p{p}: watermarks {wm:?}, expected (0, 0)"
            );
        }
        ensure!(
            partition_count(env, topic)? == 2,
            "re-created {topic} should have 2 partitions"
        );
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// SIGKILL while messages are in flight
// ---------------------------------------------------------------------------

/// What happened to each message of a produce run interrupted by SIGKILL.
struct KilledRun {
    outcomes: Vec<std::result::Result<Delivery, String>>,
    /// Whether the message's delivery report arrived before the restart.
    reported_before_restart: Vec<bool>,
    /// Messages without a delivery report when the broker was killed.
    unreported_at_kill: usize,
    /// What the killed broker's data dir holds.
    durable: TopicRead,
    /// Messages that had no delivery report before the restart although the
    /// killed broker had made them durable: the producer sends them again.
    resent_but_durable: usize,
}

type DeliveryOutcome = std::result::Result<Delivery, String>;

fn to_outcome<E>(
    r: std::result::Result<rdkafka::producer::future_producer::OwnedDeliveryResult, E>,
) -> DeliveryOutcome {
    match r {
        Ok(Ok(d)) => Ok(d),
        Ok(Err((e, _))) => Err(format!("{e}")),
        Err(_) => Err("delivery future cancelled".to_owned()),
    }
}

/// Enqueue every message, await the delivery reports in send order, and right
/// after the `kill_after`-th report SIGKILL the broker. Before starting it
/// again on the same dir, look at what it had made durable (a second broker
/// on a copy of the dir) and at which messages already have their delivery
/// report; then wait (bounded) for all remaining reports.
fn produce_through_kill9(
    env: &mut Env,
    producer: &FutureProducer<CapturingContext>,
    topic: &str,
    msgs: &[Msg],
    kill_after: usize,
) -> Result<KilledRun> {
    let mut pending = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(&m.value[..]);
        if let Some(k) = &m.key {
            rec = rec.key(&k[..]);
        }
        if let Some(p) = m.partition {
            rec = rec.partition(p);
        }
        match producer.send_result(rec) {
            Ok(f) => pending.push(Some(f)),
            Err((e, _)) => bail!("enqueueing message #{i} to {topic} failed locally: {e}"),
        }
    }
    let mut outcomes: Vec<Option<DeliveryOutcome>> = (0..msgs.len()).map(|_| None).collect();

    // 1. The first `kill_after` reports, in send order.
    env.within(Duration::from_secs(60), async {
        for i in 0..kill_after {
            if let Some(f) = pending[i].take() {
                outcomes[i] = Some(to_outcome(f.await));
            }
        }
    })
    .map_err(|_| anyhow!("the first {kill_after} delivery reports did not arrive within 60s"))?;

    // 2. SIGKILL right away.
    env.broker.kill9()?;

    // 3. What the killed broker had made durable.
    let copy = tempfile::tempdir()?;
    gregor_compat::copy_dir(env.broker.data_dir(), copy.path())?;
    let snapshot = Broker::builder()
        .data_dir(copy.path())
        .launch()
        .context("starting a broker on a copy of the killed broker's dir")?;
    env.target = Some(snapshot.bootstrap());
    let partitions = msgs.iter().filter_map(|m| m.partition).max().unwrap_or(0) + 1;
    let durable = consume_to_end(env, topic, partitions, Duration::from_secs(60))
        .context("reading a copy of the killed broker's dir");
    env.target = None;
    let durable = durable?;
    check_log_shape(topic, &durable).context("the killed broker's dir")?;
    drop(snapshot);
    drop(copy);
    let durable_values: std::collections::HashSet<&[u8]> =
        durable.all().map(|r| &r.value[..]).collect();

    // 4. Reports that arrived up to now (the client has long noticed the
    //    dead connection): poll each remaining future once.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    for (i, slot) in pending.iter_mut().enumerate() {
        if let Some(f) = slot.as_mut() {
            if let std::task::Poll::Ready(r) =
                std::future::Future::poll(std::pin::Pin::new(f), &mut cx)
            {
                outcomes[i] = Some(to_outcome(r));
                *slot = None;
            }
        }
    }
    let unreported_at_kill = pending.iter().filter(|f| f.is_some()).count();
    let reported_before_restart: Vec<bool> = pending.iter().map(|f| f.is_none()).collect();
    let resent_but_durable = pending
        .iter()
        .zip(msgs)
        .filter(|(f, m)| f.is_some() && durable_values.contains(&m.value[..]))
        .count();
    drop(durable_values);

    // 5. Restart and collect the rest.
    let t = Instant::now();
    env.broker.start().context("start after SIGKILL")?;
    env.phase(
        &format!(
            "SIGKILL after {kill_after} reports ({unreported_at_kill} messages without report, \
             {} records durable, {resent_but_durable} of them unreported), restarted",
            durable.total()
        ),
        t,
    );
    env.within(Duration::from_secs(90), async {
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot.take() {
                outcomes[i] = Some(to_outcome(f.await));
            }
        }
    })
    .map_err(|_| anyhow!("delivery reports after the restart did not all arrive within 90s"))?;
    Ok(KilledRun {
        outcomes: outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err("no outcome".to_owned())))
            .collect(),
        reported_before_restart,
        unreported_at_kill,
        durable,
        resent_but_durable,
    })
}

impl KilledRun {
    /// The core crash guarantee, checked on the killed broker's own dir:
    /// every message acknowledged before the restart is there, at the offset
    /// its delivery report gave.
    fn check_acked_were_durable(&self, topic: &str, msgs: &[Msg]) -> Result<()> {
        let mut at: HashMap<(i32, i64), &Rec> = HashMap::new();
        for r in self.durable.all() {
            at.insert((r.partition, r.offset), r);
        }
        let mut checked = 0;
        for (i, o) in self.outcomes.iter().enumerate() {
            if !self.reported_before_restart[i] {
                continue;
            }
            let Ok(d) = o else { continue };
            checked += 1;
            let r = at.get(&(d.partition, d.offset)).ok_or_else(|| {
                anyhow!(
                    "message #{i} was acknowledged (p{} o{}) before the SIGKILL, but the killed \
                     broker's dir does not have that offset ({})",
                    d.partition,
                    d.offset,
                    self.durable.summary()
                )
            })?;
            ensure!(
                r.value == msgs[i].value,
                "message #{i} was acknowledged at p{} o{} before the SIGKILL, but the killed broker's \
                 dir holds {:?} there",
                d.partition,
                d.offset,
                String::from_utf8_lossy(&r.value)
            );
        }
        ensure!(
            checked > 0,
            "{topic}: no acknowledgement before the kill to check"
        );
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "{} acknowledged before the restart, {} unreported at the kill, {} records durable at the \
             kill, {} of them among the unreported (the producer sends those again)",
            self.reported_before_restart.iter().filter(|b| **b).count(),
            self.unreported_at_kill,
            self.durable.total(),
            self.resent_but_durable
        )
    }
}

/// Messages `p{p}|n={n}|i={i}` for partitions `i % partitions`.
fn partitioned_workload(n: u32, partitions: i32) -> Vec<Msg> {
    let mut per_part = vec![0u32; partitions as usize];
    (0..n)
        .map(|i| {
            let p = (i % partitions as u32) as i32;
            let k = per_part[p as usize];
            per_part[p as usize] += 1;
            Msg {
                key: Some(format!("k{}", i % 97).into_bytes()),
                value: format!("p{p}|n={k}|i={i}|{PAD}").into_bytes(),
                partition: Some(p),
                timestamp: None,
            }
        })
        .collect()
}

/// acks=all, not idempotent, SIGKILL while thousands of messages are in
/// flight. Every message whose delivery report said "delivered" (before or
/// after the restart) is in the log at the reported offset. Unacknowledged
/// messages may be missing or (retried) duplicated; that is reported, not
/// failed.
#[test]
fn kill9_mid_stream_acked() {
    const N: u32 = 30_000;
    const PARTITIONS: i32 = 3;
    run("kill9_mid_stream_acked", Broker::builder(), |env| {
        let topic = "compat-kill9-mid";
        env.create_topic(topic, PARTITIONS)?;
        let msgs = partitioned_workload(N, PARTITIONS);
        let producer = env.producer(&[("acks", "all"), ("batch.num.messages", "200")])?;
        let run = produce_through_kill9(env, &producer, topic, &msgs, 3000)?;
        eprintln!("[{}] {}", env.name, run.describe());
        drop(producer);
        run.check_acked_were_durable(topic, &msgs)?;
        ensure!(
            run.unreported_at_kill > 0,
            "nothing was in flight at the kill: the scenario did not happen (make the workload bigger)"
        );
        let acked: Vec<(usize, &Delivery)> = run
            .outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.as_ref().ok().map(|d| (i, d)))
            .collect();
        let failed: Vec<String> = run
            .outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.as_ref().err().map(|e| format!("#{i}: {e}")))
            .take(5)
            .collect();
        eprintln!(
            "[{}] {} of {N} acknowledged; first failures: {failed:?}",
            env.name,
            acked.len()
        );
        let read = consume_to_end(env, topic, PARTITIONS, Duration::from_secs(60))?;
        check_log_shape(topic, &read)?;
        let mut at: HashMap<(i32, i64), &Rec> = HashMap::new();
        for r in read.all() {
            at.insert((r.partition, r.offset), r);
        }
        for (i, d) in &acked {
            let r = at.get(&(d.partition, d.offset)).ok_or_else(|| {
                anyhow!(
                    "message #{i} was acknowledged at p{} o{}, but that offset does not exist ({})",
                    d.partition,
                    d.offset,
                    read.summary()
                )
            })?;
            ensure!(
                r.value == msgs[*i].value,
                "message #{i} was acknowledged at p{} o{}, but that offset holds {:?}",
                d.partition,
                d.offset,
                String::from_utf8_lossy(&r.value)
            );
        }
        let mut copies: HashMap<&[u8], usize> = HashMap::new();
        for r in read.all() {
            *copies.entry(&r.value[..]).or_default() += 1;
        }
        let dups = copies.values().filter(|&&c| c > 1).count();
        let missing = msgs
            .iter()
            .filter(|m| !copies.contains_key(&m.value[..]))
            .count();
        eprintln!(
            "[{}] log holds {} records: {dups} messages twice or more ({} were durable but \
             unacknowledged at the kill, so sent again), {missing} missing",
            env.name,
            read.total(),
            run.resent_but_durable
        );
        Ok(())
    });
}

/// enable.idempotence=true, SIGKILL while thousands of messages are in
/// flight. The producer retries across the restart with the same producer id
/// and sequence numbers; the broker must have recovered its producer state
/// from the log, so every message is delivered exactly once, in send order
/// per partition, and the producer never hits a fatal error.
#[test]
fn kill9_mid_stream_idempotent() {
    const ATTEMPTS: u32 = 3;
    run("kill9_mid_stream_idempotent", Broker::builder(), |env| {
        // A kill only tests duplicate detection if it lands while some
        // durable batch is still unacknowledged; retry the scenario (new
        // topic, same broker) until that happened, at most ATTEMPTS times.
        for attempt in 1..=ATTEMPTS {
            let resent = idempotent_through_kill9(env, &format!("compat-kill9-idem-{attempt}"))?;
            if resent > 0 {
                return Ok(());
            }
            eprintln!(
                "[{}] attempt {attempt}: no durable message was left unacknowledged at the kill \
                 (duplicate detection not exercised)",
                env.name
            );
        }
        eprintln!(
            "[{}] NOTE: in {ATTEMPTS} attempts no kill landed between a durable write and its \
             acknowledgement; only sequence continuity across the restart was tested",
            env.name
        );
        Ok(())
    });
}

/// One idempotent produce run through a SIGKILL (see
/// `kill9_mid_stream_idempotent`); returns how many durable messages were
/// unacknowledged at the kill (and so sent again).
fn idempotent_through_kill9(env: &mut Env, topic: &str) -> Result<usize> {
    const N: u32 = 30_000;
    const PARTITIONS: i32 = 3;
    env.create_topic(topic, PARTITIONS)?;
    let msgs = partitioned_workload(N, PARTITIONS);
    let (producer, pctx) = env.producer_with_ctx(&[
        ("enable.idempotence", "true"),
        ("batch.num.messages", "200"),
    ])?;
    let run = produce_through_kill9(env, &producer, topic, &msgs, 3000)?;
    eprintln!("[{}] {}", env.name, run.describe());
    run.check_acked_were_durable(topic, &msgs)?;
    ensure!(
        run.unreported_at_kill > 0,
        "nothing was in flight at the kill: the scenario did not happen (make the workload bigger)"
    );
    let fatal = producer.client().fatal_error();
    drop(producer);
    let failed: Vec<String> = run
        .outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.as_ref().err().map(|e| format!("#{i}: {e}")))
        .collect();
    ensure!(
        fatal.is_none() && failed.is_empty(),
        "idempotent producer across SIGKILL: fatal error {fatal:?}; {} of {N} not delivered, first: {:?}; \
         client errors: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)],
        pctx.errors().iter().take(5).collect::<Vec<_>>()
    );
    let resent = run.resent_but_durable;
    let dels: Vec<Delivery> = run
        .outcomes
        .into_iter()
        .map(|o| o.map_err(|e| anyhow!(e)))
        .collect::<Result<_>>()?;
    let read = consume_to_end(env, topic, PARTITIONS, Duration::from_secs(60))?;
    check_log_shape(topic, &read)?;
    check_matches_deliveries(topic, &read, &msgs, &dels)?;
    for (p, recs) in &read.parts {
        for r in recs {
            let want = format!("p{p}|n={}|", r.offset);
            ensure!(
                r.value_str()?.starts_with(&want),
                "{topic} p{p} o{}: value {:?}, expected prefix {want:?} (send order per partition)",
                r.offset,
                r.value_str()?
            );
        }
    }
    Ok(resent)
}
