//! gregor-bench: the same librdkafka workloads against a `gregor` process and
//! against librdkafka's in-memory mock cluster, printed as a markdown table.
//!
//! ```text
//! cargo run --release -p gregor-bench -- [--gregor-bin PATH] [--quick]
//!     [--out FILE] [--repeat N] [--data-root DIR] [--with-ephemeral]
//!     [--only TEXT] [--wait-quiet PCT]
//! ```
//!
//! Exits non-zero when a delivery fails, the consumed messages do not match
//! what was produced, or a broker fails to start or stop. Speed never fails
//! the run.

mod clients;
mod gregor_proc;
mod sys;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::ClientConfig;

use clients::ClientLog;
use gregor_proc::GregorProc;

const USAGE: &str = "usage: gregor-bench [--gregor-bin PATH] [--quick] [--out FILE] \
[--repeat N] [--data-root DIR] [--with-ephemeral] [--only TEXT] [--wait-quiet PCT]

  --gregor-bin PATH   gregor binary [default: <workspace>/target/release/gregor]
  --quick             10x fewer messages (smoke run)
  --out FILE          also write the markdown report to FILE
  --repeat N          run every workload N times, report medians
                      [default: 3, or 1 with --quick]
  --data-root DIR     where the durable data dirs are made [default: system temp dir]
  --with-ephemeral    also run every workload against `gregor --ephemeral`
  --only TEXT         only the rows whose \"WORKLOAD acks=ACKS TARGET\" contains TEXT,
                      no start-up section (e.g. --only \"1 KiB acks=all Gregor\")
  --wait-quiet PCT    before each row wait (2 min at most) until the whole machine's
                      CPU use over 1 s is below PCT % (for shared machines)";

struct Args {
    gregor_bin: PathBuf,
    quick: bool,
    out: Option<PathBuf>,
    /// None: 3 for a full run, 1 with --quick.
    repeat: Option<usize>,
    data_root: PathBuf,
    with_ephemeral: bool,
    /// Run only rows whose "workload acks=X target" contains this (and skip
    /// the start-up section): for profiling one row.
    only: Option<String>,
    /// Before each row, wait (up to 2 min) until the machine's CPU busy share
    /// over 1 s is below this percentage.
    wait_quiet: Option<f64>,
    argv: Vec<String>,
}

fn parse_args() -> Result<Args> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut a = Args {
        gregor_bin: gregor_proc::default_bin(),
        quick: false,
        out: None,
        repeat: None,
        data_root: std::env::temp_dir(),
        with_ephemeral: false,
        only: None,
        wait_quiet: None,
        argv: argv.clone(),
    };
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| anyhow!("{name} needs a value"));
        match arg.as_str() {
            "--gregor-bin" => a.gregor_bin = PathBuf::from(value("--gregor-bin")?),
            "--quick" => a.quick = true,
            "--out" => a.out = Some(PathBuf::from(value("--out")?)),
            "--repeat" => {
                let n: usize = value("--repeat")?.parse().context("--repeat")?;
                a.repeat = Some(n);
                if n == 0 {
                    bail!("--repeat must be at least 1");
                }
            }
            "--data-root" => a.data_root = PathBuf::from(value("--data-root")?),
            "--with-ephemeral" => a.with_ephemeral = true,
            "--only" => a.only = Some(value("--only")?),
            "--wait-quiet" => {
                a.wait_quiet = Some(value("--wait-quiet")?.parse().context("--wait-quiet")?)
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(a)
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Target {
    Gregor,
    GregorMem,
    Mock,
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::Gregor => "Gregor",
            Target::GregorMem => "Gregor --ephemeral",
            Target::Mock => "mock",
        }
    }
}

/// A running target for one row.
struct Live {
    bootstrap: String,
    broker: Option<GregorProc>,
    mock: Option<MockCluster<'static, DefaultProducerContext>>,
}

fn start(target: Target, args: &Args) -> Result<Live> {
    match target {
        Target::Mock => {
            let mock = MockCluster::new(1).context("creating the mock cluster")?;
            Ok(Live {
                bootstrap: mock.bootstrap_servers(),
                broker: None,
                mock: Some(mock),
            })
        }
        Target::Gregor | Target::GregorMem => {
            let root = (target == Target::Gregor).then_some(args.data_root.as_path());
            let broker = GregorProc::launch(&args.gregor_bin, root)?;
            Ok(Live {
                bootstrap: broker.bootstrap.clone(),
                broker: Some(broker),
                mock: None,
            })
        }
    }
}

fn create_topic(live: &Live, topic: &str) -> Result<()> {
    if let Some(mock) = &live.mock {
        return mock
            .create_topic(topic, 1, 1)
            .with_context(|| format!("mock create_topic {topic}"));
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &live.bootstrap)
        .set("broker.address.family", "v4")
        .create()
        .context("creating the admin client")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let res = rt
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(30), admin.create_topics([&new], &opts)).await
        })
        .map_err(|_| anyhow!("CreateTopics {topic}: no answer in 30 s"))?
        .with_context(|| format!("CreateTopics {topic}"))?;
    for r in res {
        if let Err((t, e)) = r {
            bail!("CreateTopics {t}: {e}");
        }
    }
    Ok(())
}

#[derive(Clone)]
struct Workload {
    key: &'static str,
    name: String,
    count: u64,
    size: usize,
    linger_ms: u32,
    one_in_flight: bool,
}

fn workloads(quick: bool) -> (Vec<Workload>, Vec<Workload>) {
    let s = if quick { 10 } else { 1 };
    let w = |key, count: u64, size, linger_ms, one| Workload {
        key,
        name: format!("{} x {}", human_count(count / s), human_size(size)),
        count: count / s,
        size,
        linger_ms,
        one_in_flight: one,
    };
    (
        vec![
            w("small", 1_000_000, 100, 5, false),
            w("large", 200_000, 1024, 5, false),
        ],
        vec![w("seq", 2_000, 1024, 0, true)],
    )
}

fn human_count(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

fn human_size(n: usize) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} B")
    }
}

/// What one (workload, acks, target) run measured.
#[derive(Clone, Default)]
struct RowResult {
    count: u64,
    size: usize,
    produce_secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    /// Messages read back (the mock keeps only the last 5 MiB).
    consumed: u64,
    /// assign() to the first message, ms.
    consume_first_ms: f64,
    /// First message to the last, s.
    consume_secs: f64,
    rss_produce_mib: Option<f64>,
    rss_consume_mib: Option<f64>,
    hwm_mib: Option<f64>,
    cpu_produce_s: Option<f64>,
    cpu_consume_s: Option<f64>,
    disk_mb: Option<f64>,
    connect_ms: Option<f64>,
    startup_ms: Option<f64>,
    shutdown_ms: Option<f64>,
    busy_before_pct: f64,
    load1_before: f64,
}

impl RowResult {
    fn mb(&self) -> f64 {
        self.count as f64 * self.size as f64 / 1e6
    }
}

fn mib(kib: Option<u64>) -> Option<f64> {
    kib.map(|k| k as f64 / 1024.0)
}

struct Ctx<'a> {
    args: &'a Args,
    notes: Vec<String>,
    failures: Vec<String>,
    topic_seq: u32,
}

impl Ctx<'_> {
    fn note_lines(&mut self, what: &str, lines: Vec<String>) {
        let uniq: BTreeSet<String> = lines.into_iter().collect();
        for l in uniq.into_iter().take(20) {
            self.notes
                .push(format!("{what}: `{}`", l.replace('`', "'")));
        }
    }
}

/// Create the topic, produce, consume, read the broker's /proc figures.
fn measure(
    live: &mut Live,
    topic: &str,
    w: &Workload,
    acks: &str,
    log: &ClientLog,
    who: &str,
) -> Result<RowResult> {
    create_topic(live, topic)?;
    let producer = clients::producer(&live.bootstrap, topic, acks, w.linger_ms, log, who)?;
    let cpu0 = live.broker.as_ref().and_then(|b| b.cpu_secs());
    let ps = producer.run(w.count, w.size, w.one_in_flight)?;
    let mut r = RowResult {
        count: w.count,
        size: w.size,
        produce_secs: ps.secs,
        p50_ms: clients::percentile(&ps.latencies_ns, 50.0) / 1e6,
        p99_ms: clients::percentile(&ps.latencies_ns, 99.0) / 1e6,
        mean_ms: ps.latencies_ns.iter().map(|&x| x as f64).sum::<f64>()
            / ps.latencies_ns.len().max(1) as f64
            / 1e6,
        ..RowResult::default()
    };
    let cpu1 = live.broker.as_ref().and_then(|b| b.cpu_secs());
    if let Some(b) = live.broker.as_mut() {
        b.check_alive()?;
        r.rss_produce_mib = mib(b.rss_kib());
        r.disk_mb = b.data_dir().map(|d| sys::dir_bytes(d) as f64 / 1e6);
        r.connect_ms = Some(b.connect_ms);
        r.startup_ms = Some(b.startup_ms);
    }
    let cs = clients::consume(
        &live.bootstrap,
        topic,
        w.count,
        w.size,
        live.mock.is_some(),
        log,
        who,
    )?;
    r.consumed = cs.consumed;
    r.consume_first_ms = cs.first_msg_secs * 1e3;
    r.consume_secs = cs.stream_secs;
    if let Some(b) = live.broker.as_mut() {
        b.check_alive()?;
        r.rss_consume_mib = mib(b.rss_kib());
        r.hwm_mib = mib(b.hwm_kib());
        let cpu2 = b.cpu_secs();
        r.cpu_produce_s = cpu0.zip(cpu1).map(|(a, b)| b - a);
        r.cpu_consume_s = cpu1.zip(cpu2).map(|(a, b)| b - a);
    }
    Ok(r)
}

fn run_row(ctx: &mut Ctx<'_>, target: Target, w: &Workload, acks: &str) -> Result<RowResult> {
    let busy = settle(ctx.args);
    let load1 = sys::load1();
    ctx.topic_seq += 1;
    let topic = format!(
        "bench-{}-acks{}-{}",
        w.key,
        if acks == "all" { "all" } else { acks },
        ctx.topic_seq
    );
    let who = format!("{} {} acks={acks}", target.label(), w.name);
    eprintln!("[bench] {who}: start (load1 {load1:.2}, CPU busy {busy:.0}% before row)");
    let mut live =
        start(target, ctx.args).with_context(|| format!("{who}: starting the target"))?;
    let log = ClientLog::default();
    let result = measure(&mut live, &topic, w, acks, &log, &who).map(|mut r| {
        r.busy_before_pct = busy;
        r.load1_before = load1;
        r
    });
    ctx.note_lines(&format!("librdkafka ({who})"), log.lines());
    let result = match result {
        Ok(r) => Ok(r),
        Err(e) => match &live.broker {
            Some(b) => Err(anyhow!(
                "{who} (broker {}): {e:#}\nbroker log tail:\n{}",
                live.bootstrap,
                b.log_tail(60)
            )),
            None => Err(anyhow!("{who}: {e:#}")),
        },
    };
    live.mock = None;
    let mut result = result;
    if let Some(b) = live.broker.take() {
        ctx.note_lines(&format!("gregor log ({who})"), b.problems());
        let tail = b.log_tail(30);
        let st = b.stop();
        let clean = !st.killed && st.status.is_some_and(|s| s.success());
        if let Ok(r) = result.as_mut() {
            r.shutdown_ms = Some(st.shutdown_ms);
        }
        if !clean {
            let msg = format!(
                "{who}: broker did not stop cleanly on SIGTERM (status {:?}, killed {}, {:.0} ms); log tail:\n{tail}",
                st.status, st.killed, st.shutdown_ms
            );
            if result.is_ok() {
                result = Err(anyhow!(msg));
            } else {
                ctx.failures.push(msg);
            }
        }
    }
    if let Ok(r) = &result {
        eprintln!(
            "[bench] {who}: produce {:.2} s ({:.1} MB/s, p50 {:.2} ms, p99 {:.2} ms), consume {} msgs: first after {:.0} ms, then {:.2} s ({:.1} MB/s)",
            r.produce_secs,
            r.mb() / r.produce_secs,
            r.p50_ms,
            r.p99_ms,
            r.consumed,
            r.consume_first_ms,
            r.consume_secs,
            r.consumed as f64 * r.size as f64 / 1e6 / r.consume_secs
        );
    }
    result
}

/// The machine's CPU busy share over 1 s; with --wait-quiet, sampled again
/// (for 2 min at most) until it is below the limit.
fn settle(args: &Args) -> f64 {
    let mut busy = sys::cpu_busy_pct(Duration::from_secs(1));
    if let Some(limit) = args.wait_quiet {
        let give_up = Instant::now() + Duration::from_secs(120);
        while busy >= limit && Instant::now() < give_up {
            busy = sys::cpu_busy_pct(Duration::from_secs(1));
        }
    }
    busy
}

/// Start-up samples of one broker mode.
#[derive(Default)]
struct Startup {
    connect_ms: Vec<f64>,
    startup_ms: Vec<f64>,
    idle_rss_mib: Vec<f64>,
    idle_hwm_mib: Vec<f64>,
    shutdown_ms: Vec<f64>,
}

fn startup_runs(ctx: &mut Ctx<'_>, ephemeral: bool, runs: usize) -> Startup {
    let mut s = Startup::default();
    let what = if ephemeral {
        "--ephemeral"
    } else {
        "empty data dir"
    };
    for i in 0..runs {
        if ctx.args.wait_quiet.is_some() {
            settle(ctx.args);
        }
        let root = (!ephemeral).then_some(ctx.args.data_root.as_path());
        match GregorProc::launch(&ctx.args.gregor_bin, root) {
            Ok(b) => {
                s.connect_ms.push(b.connect_ms);
                s.startup_ms.push(b.startup_ms);
                // "Idle": one second after start, no client has spoken.
                std::thread::sleep(Duration::from_secs(1));
                if let Some(r) = mib(b.rss_kib()) {
                    s.idle_rss_mib.push(r);
                }
                if let Some(h) = mib(b.hwm_kib()) {
                    s.idle_hwm_mib.push(h);
                }
                ctx.note_lines(&format!("gregor log (start-up, {what})"), b.problems());
                let tail = b.log_tail(20);
                let st = b.stop();
                if st.killed || !st.status.is_some_and(|x| x.success()) {
                    ctx.failures.push(format!(
                        "start-up run {i} ({what}): broker did not stop cleanly (status {:?}, killed {}); log tail:\n{tail}",
                        st.status, st.killed
                    ));
                } else {
                    s.shutdown_ms.push(st.shutdown_ms);
                }
            }
            Err(e) => ctx
                .failures
                .push(format!("start-up run {i} ({what}): {e:#}")),
        }
    }
    eprintln!(
        "[bench] start-up ({what}): connect {:?} ms, startup_ms {:?}, idle RSS {:?} MiB",
        s.connect_ms, s.startup_ms, s.idle_rss_mib
    );
    s
}

/// Mock cluster creation until its listener accepts a TCP connection.
fn mock_startup(runs: usize) -> Result<Vec<f64>> {
    let mut v = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mock = MockCluster::new(1)?;
        let addr = mock.bootstrap_servers();
        let addr = addr.split(',').next().unwrap_or(&addr).to_string();
        loop {
            if TcpStream::connect(&addr).is_ok() {
                break;
            }
            if t.elapsed() > Duration::from_secs(10) {
                bail!("mock cluster at {addr} not accepting after 10 s");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        v.push(t.elapsed().as_secs_f64() * 1e3);
        drop(mock);
    }
    Ok(v)
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn num(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let a = x.abs();
    if a >= 10_000.0 {
        let s = format!("{:.0}", x);
        // thousands separators
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_else(|| "n/a".into())
}

fn spread(v: &[f64]) -> String {
    match median(v) {
        None => "n/a".into(),
        Some(m) if v.len() == 1 => num(m),
        Some(m) => {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{} ({}–{})", num(m), num(lo), num(hi))
        }
    }
}

fn ratio(g: Option<f64>, m: Option<f64>) -> String {
    match (g, m) {
        (Some(g), Some(m)) if m > 0.0 && g.is_finite() && m.is_finite() => format!("{:.2}", g / m),
        _ => "–".into(),
    }
}

type Metric = (&'static str, fn(&RowResult) -> Option<f64>);

const THROUGHPUT_METRICS: &[Metric] = &[
    ("produce msgs/s", |r| Some(r.count as f64 / r.produce_secs)),
    ("produce MB/s", |r| Some(r.mb() / r.produce_secs)),
    ("produce latency p50 (ms)", |r| Some(r.p50_ms)),
    ("produce latency p99 (ms)", |r| Some(r.p99_ms)),
    ("messages consumed", |r| Some(r.consumed as f64)),
    ("consume: assign → first message (ms)", |r| {
        Some(r.consume_first_ms)
    }),
    ("consume msgs/s, first → last message", |r| {
        Some(r.consumed.saturating_sub(1) as f64 / r.consume_secs)
    }),
    ("consume MB/s, first → last message", |r| {
        Some(r.consumed.saturating_sub(1) as f64 * r.size as f64 / 1e6 / r.consume_secs)
    }),
    ("broker RSS after produce (MiB)", |r| r.rss_produce_mib),
    ("broker RSS after consume (MiB)", |r| r.rss_consume_mib),
    ("broker peak RSS, VmHWM (MiB)", |r| r.hwm_mib),
    ("broker CPU during produce (s)", |r| r.cpu_produce_s),
    ("broker CPU during consume (s)", |r| r.cpu_consume_s),
    ("data dir size after produce (MB)", |r| r.disk_mb),
];

/// Rows where a ratio would mean nothing.
const NO_RATIO: &[&str] = &["messages consumed"];

const SEQ_METRICS: &[Metric] = &[
    ("round trips/s", |r| Some(r.count as f64 / r.produce_secs)),
    ("latency p50 (ms)", |r| Some(r.p50_ms)),
    ("latency p99 (ms)", |r| Some(r.p99_ms)),
    ("latency mean (ms)", |r| Some(r.mean_ms)),
];

struct RowSet {
    workload: Workload,
    acks: &'static str,
    /// Per target, one result per repeat (failed repeats are left out).
    results: Vec<(Target, Vec<RowResult>)>,
}

impl RowSet {
    fn metric(&self, t: Target, f: fn(&RowResult) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self
            .results
            .iter()
            .find(|(x, _)| *x == t)
            .map(|(_, rs)| rs.iter().filter_map(f).collect())
            .unwrap_or_default();
        median(&v)
    }
}

fn table(out: &mut String, sets: &[RowSet], targets: &[Target], metrics: &[Metric]) {
    let gregors: Vec<Target> = targets
        .iter()
        .copied()
        .filter(|t| *t != Target::Mock)
        .collect();
    let _ = write!(out, "| workload | acks | metric |");
    for t in targets {
        let _ = write!(out, " {} |", t.label());
    }
    for g in &gregors {
        let _ = write!(out, " {}/mock |", g.label());
    }
    out.push('\n');
    let _ = write!(out, "|---|---|---|");
    for _ in 0..targets.len() + gregors.len() {
        out.push_str("--:|");
    }
    out.push('\n');
    for s in sets {
        for (name, f) in metrics {
            let vals: Vec<Option<f64>> = targets.iter().map(|t| s.metric(*t, *f)).collect();
            if vals.iter().all(|v| v.is_none()) {
                continue;
            }
            let _ = write!(out, "| {} | {} | {name} |", s.workload.name, s.acks);
            for v in &vals {
                let _ = write!(out, " {} |", opt(*v));
            }
            let mock = s.metric(Target::Mock, *f);
            for g in &gregors {
                if NO_RATIO.contains(name) {
                    out.push_str(" – |");
                } else {
                    let _ = write!(out, " {} |", ratio(s.metric(*g, *f), mock));
                }
            }
            out.push('\n');
        }
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn main() {
    match real_main() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("gregor-bench: {e:#}");
            std::process::exit(2);
        }
    }
}

fn real_main() -> Result<bool> {
    let args = parse_args()?;
    if !args.gregor_bin.is_file() {
        bail!(
            "gregor binary not found at {} (build it with `cargo build --release -p gregor`, or pass --gregor-bin)",
            args.gregor_bin.display()
        );
    }
    let command = format!(
        "cargo run --release -p gregor-bench --{}",
        args.argv
            .iter()
            .map(|a| format!(" {}", shell_quote(a)))
            .collect::<String>()
    );
    let load_start = sys::loadavg();
    let started_at = sys::utc_now();
    let t_run = Instant::now();
    let mut ctx = Ctx {
        args: &args,
        notes: Vec::new(),
        failures: Vec::new(),
        topic_seq: 0,
    };

    let mut targets = vec![Target::Gregor];
    if args.with_ephemeral {
        targets.push(Target::GregorMem);
    }
    targets.push(Target::Mock);

    // Start-up and idle memory.
    let startup_n = match (&args.only, args.quick) {
        (Some(_), _) => 0,
        (None, true) => 3,
        (None, false) => 5,
    };
    let st_durable = startup_runs(&mut ctx, false, startup_n);
    let st_mem = startup_runs(&mut ctx, true, startup_n);
    let st_mock = match mock_startup(startup_n) {
        Ok(v) => v,
        Err(e) => {
            ctx.failures.push(format!("mock start-up: {e:#}"));
            Vec::new()
        }
    };

    // Workloads: rows interleave the targets so that both see the same
    // background load; repeats go round the whole list again.
    let (tp, seq) = workloads(args.quick);
    let mut sets: Vec<RowSet> = Vec::new();
    for w in tp.iter().chain(seq.iter()) {
        for acks in ["1", "all"] {
            sets.push(RowSet {
                workload: w.clone(),
                acks,
                results: targets.iter().map(|t| (*t, Vec::new())).collect(),
            });
        }
    }
    let repeat = args.repeat.unwrap_or(if args.quick { 1 } else { 3 });
    for rep in 0..repeat {
        if repeat > 1 {
            eprintln!("[bench] round {} of {repeat}", rep + 1);
        }
        for set in sets.iter_mut() {
            for (t, rs) in set.results.iter_mut() {
                if let Some(only) = &args.only {
                    let name = format!("{} acks={} {}", set.workload.name, set.acks, t.label());
                    if !name.contains(only.as_str()) {
                        continue;
                    }
                }
                match run_row(&mut ctx, *t, &set.workload, set.acks) {
                    Ok(r) => rs.push(r),
                    Err(e) => {
                        let msg = format!("{e:#}");
                        eprintln!("[bench] FAILED: {msg}");
                        ctx.failures.push(msg);
                    }
                }
            }
        }
    }
    let load_end = sys::loadavg();

    // ---- report ----
    let mut out = String::new();
    let _ = writeln!(out, "# Gregor vs librdkafka mock cluster\n");
    let _ = writeln!(out, "Command: `{command}`\n");
    let gregor_version =
        sys::command_output(&args.gregor_bin.display().to_string(), &["--version"], None)
            .unwrap_or_else(|| "?".into());
    let git = sys::command_output(
        "git",
        &["describe", "--always", "--dirty"],
        Some(Path::new(env!("CARGO_MANIFEST_DIR"))),
    )
    .unwrap_or_else(|| "?".into());
    let (_, rdk) = rdkafka::util::get_rdkafka_version();
    let _ = writeln!(
        out,
        "- date: {started_at}, {:.0} s run",
        t_run.elapsed().as_secs_f64()
    );
    let _ = writeln!(
        out,
        "- machine: {} CPUs ({}), {:.1} GiB RAM, Linux {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        sys::cpu_model(),
        sys::mem_total_gib(),
        sys::kernel()
    );
    let _ = writeln!(
        out,
        "- load average (1/5/15 min): {load_start} at start, {load_end} at end"
    );
    let _ = writeln!(
        out,
        "- gregor: `{}` ({gregor_version}, tree {git}); durable data dirs under {} on {}",
        args.gregor_bin.display(),
        args.data_root.display(),
        sys::fs_of(&args.data_root)
    );
    let _ = writeln!(out, "- librdkafka {rdk} (rdkafka crate 0.39), mock cluster: `MockCluster::new(1)`, in the benchmark's own process");
    let _ = writeln!(
        out,
        "- repeats: {}{}",
        repeat,
        if repeat > 1 { " (medians shown)" } else { "" }
    );
    let _ = writeln!(
        out,
        "- producer: {}, acks per row, linger.ms=5 (0 in the one-in-flight rows); \
         consumer: BaseConsumer, assign() partition 0 from the beginning, {}",
        clients::PRODUCER_SETTINGS
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", "),
        clients::CONSUMER_SETTINGS
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "- MB = 10^6 bytes of payload; MiB = 2^20 bytes. One fresh broker (and data dir) and one single-partition topic per row.\n"
    );

    let (tp_sets, seq_sets): (Vec<RowSet>, Vec<RowSet>) =
        sets.into_iter().partition(|s| !s.workload.one_in_flight);
    let _ = writeln!(out, "## Throughput\n");
    let _ = writeln!(
        out,
        "Produce: first produce() to the last delivery report. Latency: produce() call to its delivery report \
         (includes the time queued in the client, so at full speed it mostly measures the queue). \
         Consume: a new consumer reads partition 0 from the beginning; rates are first to last message, \
         the set-up (assign() to first message) is its own row. \
         librdkafka's mock keeps only the last 5 MiB of a partition (hard-coded in rdkafka_mock.c), \
         so its consume rows cover that tail only (see 'messages consumed'); Gregor's cover every message.\n"
    );
    table(&mut out, &tp_sets, &targets, THROUGHPUT_METRICS);
    if repeat > 1 {
        let _ = writeln!(
            out,
            "\nProduce MB/s of every repeat, in run order (the table shows the median):\n"
        );
        let _ = writeln!(
            out,
            "| workload | acks | target | produce MB/s per repeat |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for s in &tp_sets {
            for (t, rs) in s.results.iter().filter(|(_, rs)| !rs.is_empty()) {
                let v: Vec<String> = rs.iter().map(|r| num(r.mb() / r.produce_secs)).collect();
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    s.workload.name,
                    s.acks,
                    t.label(),
                    v.join(", ")
                );
            }
        }
    }
    let _ = writeln!(out, "\n## Produce round trip, one message in flight\n");
    let _ = writeln!(
        out,
        "Each produce() waits for the previous delivery report (linger.ms=0), so latency is one request's round trip.\n"
    );
    table(&mut out, &seq_sets, &targets, SEQ_METRICS);

    let _ = writeln!(out, "\n## Start-up and idle memory\n");
    let _ = writeln!(
        out,
        "{startup_n} starts each; median (min–max). Idle: 1 s after the first accepted connection, no client requests.\n"
    );
    let _ = writeln!(
        out,
        "| metric | Gregor, empty data dir | Gregor --ephemeral | mock |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|");
    let _ = writeln!(
        out,
        "| spawn → first TCP connect accepted (ms) | {} | {} | {} |",
        spread(&st_durable.connect_ms),
        spread(&st_mem.connect_ms),
        spread(&st_mock)
    );
    let _ = writeln!(
        out,
        "| broker's own `startup_ms` (ms) | {} | {} | n/a |",
        spread(&st_durable.startup_ms),
        spread(&st_mem.startup_ms)
    );
    let _ = writeln!(
        out,
        "| idle VmRSS (MiB) | {} | {} | n/a (in-process) |",
        spread(&st_durable.idle_rss_mib),
        spread(&st_mem.idle_rss_mib)
    );
    let _ = writeln!(
        out,
        "| idle VmHWM (MiB) | {} | {} | n/a |",
        spread(&st_durable.idle_hwm_mib),
        spread(&st_mem.idle_hwm_mib)
    );
    let _ = writeln!(
        out,
        "| SIGTERM → exit (ms) | {} | {} | n/a |",
        spread(&st_durable.shutdown_ms),
        spread(&st_mem.shutdown_ms)
    );
    // Start-up samples from the durable workload rows (fresh dir each).
    let row_connect: Vec<f64> = tp_sets
        .iter()
        .chain(seq_sets.iter())
        .flat_map(|s| s.results.iter())
        .filter(|(t, _)| *t == Target::Gregor)
        .flat_map(|(_, rs)| rs.iter().filter_map(|r| r.connect_ms))
        .collect();
    let row_startup: Vec<f64> = tp_sets
        .iter()
        .chain(seq_sets.iter())
        .flat_map(|s| s.results.iter())
        .filter(|(t, _)| *t == Target::Gregor)
        .flat_map(|(_, rs)| rs.iter().filter_map(|r| r.startup_ms))
        .collect();
    let _ = writeln!(
        out,
        "\nThe {} durable brokers started for the workload rows: spawn → connect {} ms, `startup_ms` {} ms.",
        row_connect.len(),
        spread(&row_connect),
        spread(&row_startup)
    );

    // Aims.
    let _ = writeln!(out, "\n## Aims\n");
    let _ = writeln!(out, "| aim | measured | met? |");
    let _ = writeln!(out, "|---|---|---|");
    let yes = |b: bool| if b { "yes" } else { "**no**" };
    for s in tp_sets.iter().filter(|s| s.acks == "all") {
        let f: fn(&RowResult) -> Option<f64> = |r| Some(r.mb() / r.produce_secs);
        let g = s.metric(Target::Gregor, f);
        let m = s.metric(Target::Mock, f);
        let (txt, met) = match (g, m) {
            (Some(g), Some(m)) => (
                format!(
                    "{} vs {} MB/s ({}x)",
                    num(g),
                    num(m),
                    ratio(Some(g), Some(m))
                ),
                yes(g >= m),
            ),
            _ => ("no result".into(), "**no**"),
        };
        let _ = writeln!(
            out,
            "| durable acks=all produce ≥ mock, {} | {txt} | {met} |",
            s.workload.name
        );
    }
    let cm = median(&st_durable.connect_ms);
    let sm = median(&st_durable.startup_ms);
    let _ = writeln!(
        out,
        "| start-up < 20 ms, empty data dir | spawn → connect {} ms, `startup_ms` {} ms (medians) | {} |",
        opt(cm),
        opt(sm),
        match (cm, sm) {
            (Some(c), Some(s)) => yes(c < 20.0 && s < 20.0),
            _ => "**no**",
        }
    );
    let rm = median(&st_durable.idle_rss_mib);
    let _ = writeln!(
        out,
        "| idle RSS < 15 MB | {} MiB ({} MB) VmRSS, empty data dir | {} |",
        opt(rm),
        opt(rm.map(|m| m * 1.048576)),
        rm.map(|m| yes(m * 1.048576 < 15.0)).unwrap_or("**no**")
    );

    // Conditions per row.
    let _ = writeln!(out, "\n## Conditions per row\n");
    let _ = writeln!(
        out,
        "Machine CPU busy (all cores, % over 1 s) and 1-min load just before each row started, median over repeats.\n"
    );
    let _ = writeln!(
        out,
        "| workload | acks | target | CPU busy before | load1 before |"
    );
    let _ = writeln!(out, "|---|---|---|--:|--:|");
    for s in tp_sets.iter().chain(seq_sets.iter()) {
        for (t, rs) in s.results.iter().filter(|(_, rs)| !rs.is_empty()) {
            let busy: Vec<f64> = rs.iter().map(|r| r.busy_before_pct).collect();
            let l: Vec<f64> = rs.iter().map(|r| r.load1_before).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {}% | {} |",
                s.workload.name,
                s.acks,
                t.label(),
                opt(median(&busy)),
                opt(median(&l))
            );
        }
    }

    if !ctx.notes.is_empty() {
        let _ = writeln!(out, "\n## Warnings and errors logged\n");
        for n in &ctx.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    let ok = ctx.failures.is_empty();
    if !ok {
        let _ = writeln!(out, "\n## FAILURES\n");
        for f in &ctx.failures {
            let _ = writeln!(out, "```text\n{f}\n```");
        }
    }
    print!("{out}");
    if let Some(path) = &args.out {
        std::fs::write(path, &out).with_context(|| format!("writing {}", path.display()))?;
    }
    if !ok {
        eprintln!(
            "gregor-bench: {} failure(s), see the report",
            ctx.failures.len()
        );
    }
    Ok(ok)
}
