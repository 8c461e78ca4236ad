//! librdkafka clients: the producer and consumer settings shared by every
//! target, delivery-report latency capture, and the produce / consume loops.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Producer settings used for every target (acks and linger are per row).
pub const PRODUCER_SETTINGS: &[(&str, &str)] = &[
    ("compression.type", "none"),
    ("batch.size", "1000000"),
    ("batch.num.messages", "1000000"),
    ("queue.buffering.max.messages", "1000000"),
    ("queue.buffering.max.kbytes", "1048576"),
    ("message.timeout.ms", "300000"),
    ("enable.idempotence", "false"),
];

/// Consumer settings used for every target.
pub const CONSUMER_SETTINGS: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("enable.partition.eof", "false"),
    ("fetch.min.bytes", "1"),
    ("fetch.wait.max.ms", "100"),
    ("fetch.max.bytes", "52428800"),
    ("max.partition.fetch.bytes", "10485760"),
    ("queued.min.messages", "1000000"),
    ("queued.max.messages.kbytes", "262144"),
    ("check.crcs", "false"),
];

/// librdkafka warnings and errors, kept for the report.
#[derive(Clone, Default)]
pub struct ClientLog(Arc<Mutex<Vec<String>>>);

impl ClientLog {
    fn push(&self, s: String) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < 200 {
            v.push(s);
        }
    }
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn log_line(sink: &ClientLog, who: &str, level: RDKafkaLogLevel, fac: &str, msg: &str) {
    let lvl = match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => "ERROR",
        RDKafkaLogLevel::Warning => "WARN",
        _ => return,
    };
    sink.push(format!("{who} {lvl} {fac}: {msg}"));
}

#[derive(Default)]
struct DeliveryState {
    latencies_ns: Vec<u64>,
    ok: u64,
    failed: u64,
    bad_partition: u64,
    errors: Vec<String>,
}

/// Producer context: the delivery opaque is the send time (ns since `base`).
pub struct ProdCtx {
    base: Instant,
    state: Mutex<DeliveryState>,
    cv: Condvar,
    log: ClientLog,
    who: String,
}

impl ClientContext for ProdCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        log_line(&self.log, &self.who, level, fac, msg);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.log.push(format!(
            "{} ERROR (client error): {error}: {reason}",
            self.who
        ));
    }
}

impl ProducerContext for ProdCtx {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        let now = self.base.elapsed().as_nanos() as u64;
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.latencies_ns.push(now.saturating_sub(sent_ns as u64));
        match result {
            Ok(m) => {
                s.ok += 1;
                if m.partition() != 0 {
                    s.bad_partition += 1;
                }
            }
            Err((e, _)) => {
                s.failed += 1;
                let e = e.to_string();
                if s.errors.len() < 10 && !s.errors.contains(&e) {
                    s.errors.push(e);
                }
            }
        }
        drop(s);
        self.cv.notify_all();
    }
}

struct ConsCtx {
    log: ClientLog,
    who: String,
}

impl ClientContext for ConsCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        log_line(&self.log, &self.who, level, fac, msg);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.log.push(format!(
            "{} ERROR (client error): {error}: {reason}",
            self.who
        ));
    }
}

impl ConsumerContext for ConsCtx {}

pub struct ProduceStats {
    pub secs: f64,
    /// Delivery-report latencies, ns, sorted.
    pub latencies_ns: Vec<u64>,
}

pub struct Producing {
    producer: ThreadedProducer<ProdCtx>,
    topic: String,
}

/// Make a producer for `topic` and wait until it sees the topic with one
/// partition and a leader (connection set-up is kept out of the timing).
pub fn producer(
    bootstrap: &str,
    topic: &str,
    acks: &str,
    linger_ms: u32,
    log: &ClientLog,
    who: &str,
) -> Result<Producing> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("acks", acks)
        .set("linger.ms", linger_ms.to_string());
    for (k, v) in PRODUCER_SETTINGS {
        cfg.set(*k, *v);
    }
    let ctx = ProdCtx {
        base: Instant::now(),
        state: Mutex::new(DeliveryState::default()),
        cv: Condvar::new(),
        log: log.clone(),
        who: format!("[{who} producer]"),
    };
    let producer: ThreadedProducer<ProdCtx> = cfg
        .create_with_context(ctx)
        .context("creating the producer")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let md = producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(10));
        match md {
            Ok(md) => {
                if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                    if t.error().is_none() && !t.partitions().is_empty() {
                        ensure!(
                            t.partitions().len() == 1,
                            "topic {topic} has {} partitions, expected 1",
                            t.partitions().len()
                        );
                        if t.partitions()[0].leader() >= 0 {
                            break;
                        }
                    }
                }
            }
            Err(e) if Instant::now() > deadline => {
                return Err(anyhow!(e).context(format!("metadata for {topic}")))
            }
            Err(_) => {}
        }
        if Instant::now() > deadline {
            bail!("topic {topic} has no leader after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Producing {
        producer,
        topic: topic.to_string(),
    })
}

/// Payload of message `seq`: its sequence number (LE u64) then filler.
fn fill(buf: &mut [u8], seq: u64) {
    let n = buf.len().min(8);
    buf[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
}

impl Producing {
    /// Send `count` messages of `size` bytes to partition 0. With
    /// `one_in_flight` each send waits for its delivery report first.
    pub fn run(self, count: u64, size: usize, one_in_flight: bool) -> Result<ProduceStats> {
        let ctx = Arc::clone(self.producer.context());
        {
            let mut s = ctx.state.lock().unwrap_or_else(|e| e.into_inner());
            s.latencies_ns = Vec::with_capacity(count as usize);
        }
        let mut buf: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let started = Instant::now();
        for seq in 0..count {
            fill(&mut buf, seq);
            loop {
                let sent_ns = ctx.base.elapsed().as_nanos() as usize;
                let rec = BaseRecord::<(), [u8], usize>::with_opaque_to(&self.topic, sent_ns)
                    .partition(0)
                    .payload(&buf[..]);
                match self.producer.send(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        std::thread::sleep(Duration::from_micros(500));
                    }
                    Err((e, _)) => bail!("produce() of message {seq} failed: {e}"),
                }
            }
            if one_in_flight {
                wait_delivered(&ctx, seq + 1, Duration::from_secs(60))?;
            }
        }
        wait_delivered(&ctx, count, Duration::from_secs(600))?;
        let secs = started.elapsed().as_secs_f64();
        self.producer
            .flush(Duration::from_secs(10))
            .context("flush after all delivery reports")?;
        let mut s = ctx.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.failed > 0 {
            bail!(
                "{} of {count} deliveries failed; errors seen: {}",
                s.failed,
                s.errors.join("; ")
            );
        }
        ensure!(
            s.ok == count,
            "{} delivery reports for {count} messages",
            s.ok
        );
        ensure!(
            s.bad_partition == 0,
            "{} messages delivered to a partition other than 0",
            s.bad_partition
        );
        let mut lat = std::mem::take(&mut s.latencies_ns);
        drop(s);
        lat.sort_unstable();
        drop(self.producer);
        Ok(ProduceStats {
            secs,
            latencies_ns: lat,
        })
    }
}

fn wait_delivered(ctx: &ProdCtx, n: u64, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    let mut s = ctx.state.lock().unwrap_or_else(|e| e.into_inner());
    while s.ok + s.failed < n {
        let now = Instant::now();
        if now >= deadline {
            bail!(
                "only {} of {n} delivery reports after {limit:?} ({} failed)",
                s.ok + s.failed,
                s.failed
            );
        }
        s = ctx
            .cv
            .wait_timeout(s, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    Ok(())
}

/// Percentile by nearest rank of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

pub struct ConsumeStats {
    pub consumed: u64,
    /// assign() to the first message.
    pub first_msg_secs: f64,
    /// First message to the last.
    pub stream_secs: f64,
}

/// Read partition 0 of `topic` from the beginning with assign() and check
/// that messages first..count arrive, in order, each once, with the right
/// size and sequence number. `first` must be 0 unless `head_may_be_gone`
/// (the mock cluster keeps only the last 5 MiB of a partition); then it must
/// be the partition's low watermark.
pub fn consume(
    bootstrap: &str,
    topic: &str,
    count: u64,
    size: usize,
    head_may_be_gone: bool,
    log: &ClientLog,
    who: &str,
) -> Result<ConsumeStats> {
    let mut cfg = ClientConfig::new();
    // librdkafka refuses assign() without a group.id; nothing is committed
    // and no group is joined.
    cfg.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("group.id", format!("gregor-bench-{topic}"));
    for (k, v) in CONSUMER_SETTINGS {
        cfg.set(*k, *v);
    }
    let consumer: BaseConsumer<ConsCtx> = cfg
        .create_with_context(ConsCtx {
            log: log.clone(),
            who: format!("[{who} consumer]"),
        })
        .context("creating the consumer")?;
    let (low, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .context("watermarks before consuming")?;
    ensure!(
        high == count as i64,
        "high watermark {high} after producing {count} messages"
    );
    ensure!(
        low == 0 || (head_may_be_gone && low > 0 && low < high),
        "low watermark {low} (high {high})"
    );
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    let started = Instant::now();
    consumer.assign(&tpl)?;
    let mut next = low as u64;
    let mut first_at: Option<Instant> = None;
    let mut last_progress = Instant::now();
    let mut errors: Vec<String> = Vec::new();
    while next < count {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                first_at.get_or_insert(last_progress);
                let off = m.offset();
                ensure!(
                    m.partition() == 0,
                    "message from partition {}",
                    m.partition()
                );
                ensure!(
                    off == next as i64,
                    "expected offset {next}, got {off} (log start {low})"
                );
                let p = m.payload().unwrap_or(&[]);
                ensure!(
                    p.len() == size,
                    "offset {off}: payload of {} bytes, expected {size}",
                    p.len()
                );
                let mut seq = [0u8; 8];
                let n = size.min(8);
                seq[..n].copy_from_slice(&p[..n]);
                let mask = if n == 8 {
                    u64::MAX
                } else {
                    (1u64 << (8 * n)) - 1
                };
                ensure!(
                    u64::from_le_bytes(seq) == next & mask,
                    "offset {off}: payload carries sequence {}, expected {next}",
                    u64::from_le_bytes(seq)
                );
                next += 1;
            }
            Some(Err(e)) if errors.len() < 10 => errors.push(e.to_string()),
            Some(Err(_)) => {}
            None => {}
        }
        if last_progress.elapsed() > Duration::from_secs(30) {
            bail!(
                "consumed up to offset {next} of {count}, then nothing for 30 s; consumer errors: [{}]",
                errors.join("; ")
            );
        }
    }
    let end = Instant::now();
    let first_at = first_at.unwrap_or(end);
    // Anything past the end would be a duplicate or a stray message.
    let extra_until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < extra_until {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            bail!(
                "consumed offsets {low}..{count} and then an extra message at offset {}",
                m.offset()
            );
        }
    }
    Ok(ConsumeStats {
        consumed: count - low as u64,
        first_msg_secs: (first_at - started).as_secs_f64(),
        stream_secs: (end - first_at).as_secs_f64(),
    })
}
