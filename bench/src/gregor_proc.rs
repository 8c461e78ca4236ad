//! A `gregor serve` child process: start-up timing, log capture, /proc
//! readings, graceful stop.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};

use crate::sys;

const LOG_TAIL: usize = 400;

#[derive(Default)]
struct Log {
    tail: VecDeque<String>,
    /// Every WARN / ERROR line (bounded), for the report's problem list.
    problems: Vec<String>,
}

pub struct GregorProc {
    child: Child,
    pub pid: u32,
    pub bootstrap: String,
    /// Spawn to the first TCP connect that succeeded, in ms.
    pub connect_ms: f64,
    /// The broker's own `startup_ms=` from its `listening` line.
    pub startup_ms: f64,
    log: Arc<Mutex<Log>>,
    data_dir: Option<tempfile::TempDir>,
}

/// Result of a graceful stop.
pub struct Stopped {
    pub shutdown_ms: f64,
    pub status: Option<ExitStatus>,
    /// Needed SIGKILL after the grace period.
    pub killed: bool,
}

impl GregorProc {
    /// Start `bin serve` on a free loopback port; `data_root` None means
    /// `--ephemeral`, otherwise a fresh empty data dir is made under it.
    pub fn launch(bin: &Path, data_root: Option<&Path>) -> Result<GregorProc> {
        // Pick the port up front so that connects can be attempted from the
        // moment of spawn (with port 0 we would only learn it from the log).
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let data_dir = match data_root {
            Some(root) => Some(
                tempfile::Builder::new()
                    .prefix("gregor-bench-")
                    .tempdir_in(root)
                    .with_context(|| format!("creating a data dir under {}", root.display()))?,
            ),
            None => None,
        };
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg("--listen").arg(addr.to_string());
        match &data_dir {
            Some(d) => cmd.arg("--data-dir").arg(d.path()),
            None => cmd.arg("--ephemeral"),
        };
        cmd.args(["-o", "num.partitions=1"])
            .env_remove("GREGOR_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let spawned = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let pid = child.id();

        let log = Arc::new(Mutex::new(Log::default()));
        let (tx, rx) = mpsc::channel::<(String, f64)>();
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow!("no stderr pipe"))?;
        {
            let log = Arc::clone(&log);
            std::thread::Builder::new()
                .name(format!("gregor-{pid}-stderr"))
                .spawn(move || {
                    let mut tx = Some(tx);
                    for line in BufReader::new(stderr).lines() {
                        let Ok(line) = line else { break };
                        if tx.is_some() && line.contains("listening") {
                            if let (Some(a), Some(ms)) =
                                (field(&line, "addr="), field(&line, "startup_ms="))
                            {
                                if let (Some(t), Ok(ms)) = (tx.take(), ms.parse::<f64>()) {
                                    let _ = t.send((a.to_string(), ms));
                                }
                            }
                        }
                        let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                        if (line.contains(" WARN ") || line.contains(" ERROR "))
                            && l.problems.len() < 200
                        {
                            l.problems.push(line.clone());
                        }
                        l.tail.push_back(line);
                        if l.tail.len() > LOG_TAIL {
                            l.tail.pop_front();
                        }
                    }
                })?;
        }

        let mut proc = GregorProc {
            child,
            pid,
            bootstrap: addr.to_string(),
            connect_ms: f64::NAN,
            startup_ms: f64::NAN,
            log,
            data_dir,
        };
        // Connect loop: 200 us between attempts, 10 s at most.
        let deadline = spawned + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                proc.connect_ms = spawned.elapsed().as_secs_f64() * 1e3;
                break;
            }
            if let Some(st) = proc.child.try_wait()? {
                std::thread::sleep(Duration::from_millis(50)); // let the log drain
                bail!(
                    "gregor exited during start-up ({st}); log:\n{}",
                    proc.log_tail(40)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "gregor did not accept connections on {addr} within 10 s; log:\n{}",
                    proc.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok((logged_addr, ms)) => {
                proc.startup_ms = ms;
                if logged_addr != proc.bootstrap {
                    bail!(
                        "gregor logged addr={logged_addr} but was asked to listen on {}",
                        proc.bootstrap
                    );
                }
            }
            Err(_) => bail!(
                "gregor accepted a connection but logged no `listening ... addr= startup_ms=` line; log:\n{}",
                proc.log_tail(40)
            ),
        }
        Ok(proc)
    }

    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_ref().map(|d| d.path())
    }

    pub fn rss_kib(&self) -> Option<u64> {
        sys::status_kib(self.pid, "VmRSS")
    }

    pub fn hwm_kib(&self) -> Option<u64> {
        sys::status_kib(self.pid, "VmHWM")
    }

    pub fn cpu_secs(&self) -> Option<f64> {
        sys::cpu_secs(self.pid)
    }

    /// Err if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(st) = self.child.try_wait()? {
            std::thread::sleep(Duration::from_millis(50));
            bail!("gregor exited unexpectedly ({st})");
        }
        Ok(())
    }

    pub fn log_tail(&self, n: usize) -> String {
        let l = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let skip = l.tail.len().saturating_sub(n);
        let mut s = String::new();
        for line in l.tail.iter().skip(skip) {
            s.push_str("    ");
            s.push_str(line);
            s.push('\n');
        }
        s
    }

    pub fn problems(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .problems
            .clone()
    }

    /// SIGTERM, then wait up to 15 s (SIGKILL after that).
    pub fn stop(mut self) -> Stopped {
        let t = Instant::now();
        if let Ok(Some(st)) = self.child.try_wait() {
            return Stopped {
                shutdown_ms: 0.0,
                status: Some(st),
                killed: false,
            };
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = t + Duration::from_secs(15);
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => {
                    return Stopped {
                        shutdown_ms: t.elapsed().as_secs_f64() * 1e3,
                        status: Some(st),
                        killed: false,
                    }
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                _ => {
                    let _ = self.child.kill();
                    let st = self.child.wait().ok();
                    return Stopped {
                        shutdown_ms: t.elapsed().as_secs_f64() * 1e3,
                        status: st,
                        killed: true,
                    };
                }
            }
        }
    }
}

impl Drop for GregorProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The value after `key` up to the next whitespace.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let i = line.find(key)? + key.len();
    line[i..].split_whitespace().next()
}

/// Default binary: `<workspace>/target/release/gregor`.
pub fn default_bin() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("..").join("target"));
    target.join("release").join("gregor")
}
