//! Harness for the stock-client compatibility tests: runs a real `gregor`
//! process and captures everything it (and the librdkafka clients) log, so
//! that a failing test can show what the broker was doing.
//!
//! Binary: `$GREGOR_BIN` if set, else `<workspace>/target/debug/gregor`.
//! A missing binary is a hard error (tests fail, they never skip).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::Statistics;

/// How long a starting broker may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERMed broker may take to exit.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Path of the gregor binary under test.
pub fn gregor_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GREGOR_BIN") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("debug")
        .join("gregor")
}

/// Shared, thread-safe list of log lines.
#[derive(Clone, Default, Debug)]
pub struct LogSink(Arc<Mutex<Vec<String>>>);

impl LogSink {
    pub fn push(&self, line: String) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// The last `n` lines joined with newlines.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        let skip = lines.len().saturating_sub(n);
        let mut out = String::new();
        if skip > 0 {
            out.push_str(&format!("... ({skip} earlier lines omitted)\n"));
        }
        for l in &lines[skip..] {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Options for launching a broker.
#[derive(Clone, Debug, Default)]
pub struct BrokerBuilder {
    ephemeral: bool,
    props: Vec<(String, String)>,
    args: Vec<String>,
    data_dir: Option<PathBuf>,
}

impl BrokerBuilder {
    /// Use `--ephemeral` (in-memory storage) instead of a data dir.
    pub fn ephemeral(mut self) -> Self {
        self.ephemeral = true;
        self
    }
    /// Use an existing data dir (kept after the broker is dropped) instead
    /// of a fresh temporary one.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }
    /// `-o key=value`: a Kafka-named broker property.
    pub fn prop(mut self, key: &str, value: &str) -> Self {
        self.props.push((key.to_owned(), value.to_owned()));
        self
    }
    /// Any extra raw argument for `gregor serve`.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_owned());
        self
    }
    /// Start the broker and wait until it is listening.
    pub fn launch(self) -> Result<Broker> {
        let bin = gregor_bin();
        if !bin.is_file() {
            bail!(
                "gregor binary not found at {} -- build it first with \
                 `cargo build -p gregor` (or point GREGOR_BIN at a gregor binary)",
                bin.display()
            );
        }
        let data_dir = match &self.data_dir {
            Some(d) => DataDir::Given(d.clone()),
            None => DataDir::Temp(
                tempfile::Builder::new()
                    .prefix("gregor-compat-")
                    .tempdir()
                    .context("creating the broker data dir")?,
            ),
        };
        let mut broker = Broker {
            bin,
            opts: self,
            data_dir,
            addr: None,
            child: None,
            log: LogSink::default(),
            stderr_eof: None,
            starts: 0,
        };
        broker.start()?;
        Ok(broker)
    }
}

enum DataDir {
    Temp(tempfile::TempDir),
    Given(PathBuf),
}

enum ReaderEvent {
    Ready(String),
    Eof,
}

/// A running (or stopped) gregor process with a fixed data dir and, after the
/// first start, a fixed port.
pub struct Broker {
    bin: PathBuf,
    opts: BrokerBuilder,
    data_dir: DataDir,
    addr: Option<String>,
    child: Option<Child>,
    log: LogSink,
    stderr_eof: Option<Receiver<ReaderEvent>>,
    starts: u32,
}

impl Broker {
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    /// Launch with default options (sled data dir in a tempdir, port 0).
    pub fn launch() -> Result<Broker> {
        BrokerBuilder::default().launch()
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addr.clone().unwrap_or_default()
    }

    pub fn data_dir(&self) -> &Path {
        match &self.data_dir {
            DataDir::Temp(t) => t.path(),
            DataDir::Given(p) => p,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Everything the broker process wrote (stderr and stdout), across restarts.
    pub fn log(&self) -> &LogSink {
        &self.log
    }

    pub fn log_tail(&self, n: usize) -> String {
        self.log.tail(n)
    }

    /// Start the process (first start: port 0; later: the same port and dir)
    /// and wait for its ready line.
    pub fn start(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("broker already running (pid {:?})", self.pid());
        }
        self.starts += 1;
        let listen = self
            .addr
            .clone()
            .unwrap_or_else(|| "127.0.0.1:0".to_owned());
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve").arg("--listen").arg(&listen);
        if self.opts.ephemeral {
            cmd.arg("--ephemeral");
        } else {
            cmd.arg("--data-dir").arg(self.data_dir());
        }
        for (k, v) in &self.opts.props {
            cmd.arg("-o").arg(format!("{k}={v}"));
        }
        cmd.args(&self.opts.args);
        if let Some(level) = std::env::var_os("GREGOR_LOG") {
            cmd.env("RUST_LOG", level);
        }
        cmd.env("NO_COLOR", "1");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.log.push(format!(
            "=== harness: start #{} {:?} ===",
            self.starts,
            cmd_line(&cmd)
        ));
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", self.bin.display()))?;

        let (tx, rx) = mpsc::channel();
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow!("no stderr pipe"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout pipe"))?;
        spawn_reader(stderr, "", self.log.clone(), Some(tx));
        spawn_reader(stdout, "[stdout] ", self.log.clone(), None);
        self.child = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(ReaderEvent::Ready(addr)) => {
                    if let Some(prev) = self.addr.clone() {
                        if prev != addr {
                            self.kill_quietly();
                            bail!(
                                "broker restarted on {addr}, expected the previous address {prev}\n{}",
                                self.log_tail(100)
                            );
                        }
                    }
                    self.addr = Some(addr);
                    self.stderr_eof = Some(rx);
                    return Ok(());
                }
                Ok(ReaderEvent::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    // stderr closed before the ready line: the process is exiting.
                    let status = self.wait_exit(Duration::from_secs(5));
                    self.child = None;
                    bail!(
                        "gregor exited before it was ready ({}); log:\n{}",
                        describe_status(&status),
                        self.log_tail(200)
                    );
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(child) = self.child.as_mut() {
                        if let Ok(Some(status)) = child.try_wait() {
                            self.child = None;
                            // give the reader a moment to collect the last lines
                            let _ = rx.recv_timeout(Duration::from_millis(500));
                            bail!(
                                "gregor exited before it was ready ({status}); log:\n{}",
                                self.log_tail(200)
                            );
                        }
                    }
                    if Instant::now() >= deadline {
                        self.kill_quietly();
                        bail!(
                            "gregor printed no line matching `listening.*addr=HOST:PORT` on stderr \
                             within {:?}; log:\n{}",
                            READY_TIMEOUT,
                            self.log_tail(200)
                        );
                    }
                }
            }
        }
    }

    /// Graceful stop: SIGTERM, then the process must exit with status 0
    /// within [`STOP_TIMEOUT`].
    pub fn stop(&mut self) -> Result<()> {
        let pid = self.pid().ok_or_else(|| anyhow!("broker is not running"))?;
        self.log.push(format!("=== harness: SIGTERM pid {pid} ==="));
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .context("running `kill -TERM`")?;
        if !st.success() {
            bail!("`kill -TERM {pid}` failed: {st}");
        }
        let status = self.wait_exit(STOP_TIMEOUT);
        self.child = None;
        self.drain_stderr();
        match status {
            Ok(s) if s.success() => {
                self.log.push("=== harness: exited 0 ===".to_owned());
                Ok(())
            }
            other => bail!(
                "after SIGTERM gregor did not exit 0 ({}); log:\n{}",
                describe_status(&other),
                self.log_tail(200)
            ),
        }
    }

    /// Graceful stop, then start again on the same port and data dir.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.start()
    }

    /// SIGKILL the process and reap it. Start it again with [`Broker::start`].
    pub fn kill9(&mut self) -> Result<()> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow!("broker is not running"))?;
        self.log
            .push(format!("=== harness: SIGKILL pid {} ===", child.id()));
        child.kill().context("SIGKILL")?;
        let status = child.wait().context("reaping the killed broker")?;
        self.log.push(format!("=== harness: killed ({status}) ==="));
        self.drain_stderr();
        Ok(())
    }

    fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let child = self.child.as_mut().ok_or_else(|| anyhow!("no child"))?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("did not exit within {timeout:?} (SIGKILLed it)");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait (bounded) until the stderr reader saw EOF, so the log is complete.
    fn drain_stderr(&mut self) {
        if let Some(rx) = self.stderr_eof.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match rx.recv_timeout(left) {
                    Ok(ReaderEvent::Eof) | Err(_) => break,
                    Ok(ReaderEvent::Ready(_)) => {}
                }
            }
        }
    }

    fn kill_quietly(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill_quietly();
        if std::thread::panicking() {
            eprintln!(
                "--- gregor log (broker at {}, data dir {}) ---\n{}",
                self.bootstrap(),
                self.data_dir().display(),
                self.log_tail(200)
            );
        }
    }
}

/// Recursively copy a directory (e.g. a stopped broker's data dir).
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("mkdir {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn cmd_line(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn describe_status(s: &Result<ExitStatus>) -> String {
    match s {
        Ok(st) => st.to_string(),
        Err(e) => format!("{e:#}"),
    }
}

fn spawn_reader(
    pipe: impl Read + Send + 'static,
    prefix: &'static str,
    log: LogSink,
    ready: Option<Sender<ReaderEvent>>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        let mut announced = false;
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = strip_ansi(String::from_utf8_lossy(&buf).trim_end());
                    if !announced {
                        if let (Some(tx), Some(addr)) = (&ready, parse_ready_line(&line)) {
                            announced = true;
                            let _ = tx.send(ReaderEvent::Ready(addr));
                        }
                    }
                    log.push(format!("{prefix}{line}"));
                }
            }
        }
        if let Some(tx) = ready {
            let _ = tx.send(ReaderEvent::Eof);
        }
    });
}

/// Matches `listening.*addr=(\S+:\d+)` and returns the address.
pub fn parse_ready_line(line: &str) -> Option<String> {
    let at = line.find("listening")?;
    let rest = &line[at..];
    let a = rest.find("addr=")?;
    let token: String = rest[a + 5..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    // `\S+:\d+` with backtracking: longest prefix ending in `:digits`.
    let bytes = token.as_bytes();
    let mut end = bytes.len();
    while end > 0 {
        let cand = &token[..end];
        if let Some(colon) = cand.rfind(':') {
            let port = &cand[colon + 1..];
            if colon > 0 && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                return Some(cand.to_owned());
            }
        }
        end -= 1;
        while end > 0 && !token.is_char_boundary(end) {
            end -= 1;
        }
    }
    None
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // CSI: parameters then one final byte in @..~
                for n in chars.by_ref() {
                    if ('@'..='~').contains(&n) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// A librdkafka client context that records the client's log lines and
/// global errors (instead of sending them to the `log` crate, which nobody
/// listens to here), so failures can show what the client saw.
#[derive(Clone, Debug)]
pub struct CapturingContext {
    name: String,
    sink: LogSink,
    errors: LogSink,
    stats: Arc<(Mutex<Option<Statistics>>, Condvar)>,
}

impl CapturingContext {
    pub fn new(name: &str, sink: &LogSink) -> Self {
        CapturingContext {
            name: name.to_owned(),
            sink: sink.clone(),
            errors: LogSink::default(),
            stats: Arc::default(),
        }
    }

    /// Wait (at most `timeout`) for a statistics report (needs
    /// `statistics.interval.ms`) satisfying `pred`; returns it.
    pub fn wait_stats(
        &self,
        timeout: Duration,
        pred: impl Fn(&Statistics) -> bool,
    ) -> Result<Statistics> {
        let (lock, cv) = &*self.stats;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = cv
            .wait_timeout_while(guard, timeout, |s| !s.as_ref().is_some_and(&pred))
            .unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(s) if pred(s) => Ok(s.clone()),
            Some(s) => bail!(
                "[{}] no matching statistics within {timeout:?}; last: txmsgs={} txmsg_bytes={} tx_bytes={}",
                self.name,
                s.txmsgs,
                s.txmsg_bytes,
                s.tx_bytes
            ),
            None => bail!("[{}] no statistics report within {timeout:?}", self.name),
        }
    }
    /// Global errors reported to this client (`error_cb`).
    pub fn errors(&self) -> Vec<String> {
        self.errors.lines()
    }
}

impl ClientContext for CapturingContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.sink
            .push(format!("[{}] {level:?} {fac}: {log_message}", self.name));
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let line = format!("[{}] ERROR {error}: {reason}", self.name);
        self.errors.push(line.clone());
        self.sink.push(line);
    }

    fn stats(&self, statistics: Statistics) {
        let (lock, cv) = &*self.stats;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(statistics);
        cv.notify_all();
    }
}

impl ConsumerContext for CapturingContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_parsing() {
        assert_eq!(
            parse_ready_line("2026-11-23T10:00:00Z  INFO gregor: listening addr=127.0.0.1:40123"),
            Some("127.0.0.1:40123".to_owned())
        );
        assert_eq!(
            parse_ready_line("INFO listening on kafka addr=127.0.0.1:9092, node_id=1"),
            Some("127.0.0.1:9092".to_owned())
        );
        assert_eq!(
            parse_ready_line("listening addr=[::1]:9092"),
            Some("[::1]:9092".to_owned())
        );
        assert_eq!(parse_ready_line("addr=127.0.0.1:1 listening"), None);
        assert_eq!(parse_ready_line("listening addr=nowhere"), None);
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[32mINFO\u{1b}[0m listening"),
            "2026 INFO listening"
        );
    }
}
