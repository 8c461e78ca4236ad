//! The wire target: a live broker in this process (memory store, on
//! 127.0.0.1:0) fed mutated client frames over TCP, one connection per
//! input. After each input a fresh connection must still get an
//! ApiVersions answer; a broker task that panics is caught by tokio but
//! seen by the panic hook, so it is a crash too.

use std::net::SocketAddr;
use std::time::Duration;

use gregor_broker::{Broker, BrokerConfig};
use gregor_storage::{Store, StoreOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

use crate::rng::Rng;
use crate::seeds;
use crate::targets::Target;

/// Correlation id of the ApiVersions request sent after each input.
const SENTINEL: i32 = 0x05e4_71e1;
/// Inputs per broker before a fresh one (bounds the memory store's growth).
const INPUTS_PER_BROKER: u64 = 20_000;
/// How long an input's connection is read before moving on: requests may
/// legitimately park (Fetch max wait, JoinGroup), so silence is not a bug.
const READ_BUDGET: Duration = Duration::from_millis(300);
/// How long the liveness check may take before the broker counts as dead.
const LIVENESS: Duration = Duration::from_secs(5);
/// The broker's frame limit: small, so that a mutated length prefix cannot
/// make a legitimate buffer look like an allocation bug.
const FRAME_MAX: &str = "1048576";

/// ApiVersions v0 with correlation id `corr`, framed.
fn api_versions(corr: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&18i16.to_be_bytes());
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&corr.to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    seeds::framed(&b)
}

/// A broker in its own runtime. The client side runs on another runtime,
/// so that a broker whose workers are stuck cannot stall the timeouts that
/// detect it.
struct Live {
    rt: Option<Runtime>,
    addr: SocketAddr,
}

impl Drop for Live {
    fn drop(&mut self) {
        // Never wait for worker threads: a stuck one would never return.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Live {
    fn start() -> Live {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let addr = rt.block_on(async {
            let mut cfg = BrokerConfig::default();
            cfg.set("socket.request.max.bytes", FRAME_MAX)
                .expect("config");
            cfg.set("group.initial.rebalance.delay.ms", "0")
                .expect("config");
            spawn_broker(cfg).await
        });
        Live { rt: Some(rt), addr }
    }
}

/// Starts a broker with `cfg` on a memory store and 127.0.0.1:0 on the
/// current runtime; it serves until the runtime is dropped. Its address.
pub async fn spawn_broker(mut cfg: BrokerConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    cfg.listen = listener.local_addr().expect("addr");
    let addr = cfg.listen;
    let broker = Broker::new(cfg, Store::open_memory(StoreOptions::default()));
    tokio::spawn(gregor_broker::server::run(
        listener,
        broker,
        std::future::pending(),
    ));
    addr
}

/// Reads response frames until one with `corr` arrives (true), or EOF,
/// an error or the deadline (false). Returns (answered, frames read, closed).
async fn read_until(s: &mut TcpStream, corr: i32, budget: Duration) -> (bool, usize, bool) {
    let deadline = tokio::time::Instant::now() + budget;
    let mut buf = Vec::new();
    let mut frames = 0;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while buf.len() >= 8 {
            let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            assert!(len >= 4, "broker sent a response frame of length {len}");
            let len = len as usize;
            if buf.len() < 4 + len {
                break;
            }
            frames += 1;
            let c = i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
            if c == corr {
                return (true, frames, false);
            }
            buf.drain(..4 + len);
        }
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (false, frames, true),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return (false, frames, false),
        }
    }
}

/// The wire target.
pub struct WireTarget {
    live: Option<Live>,
    client: Runtime,
    inputs: u64,
    dead: bool,
}

impl Default for WireTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl WireTarget {
    /// A target; the broker starts at the first input.
    pub fn new() -> WireTarget {
        WireTarget {
            live: None,
            client: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime"),
            inputs: 0,
            dead: false,
        }
    }
}

impl Target for WireTarget {
    fn name(&self) -> &'static str {
        "wire"
    }
    fn hang_ms(&self) -> u64 {
        // Read budget plus a liveness check under load.
        READ_BUDGET.as_millis() as u64 + LIVENESS.as_millis() as u64
    }
    fn seeds(&mut self) -> Vec<Vec<u8>> {
        let golden: Vec<Vec<u8>> = seeds::golden_frames()
            .into_iter()
            .map(|(_, b)| seeds::framed(&b))
            .collect();
        let mut out = golden.clone();
        out.extend(seeds::generated_requests().iter().map(|b| seeds::framed(b)));
        // A client's first exchanges back to back.
        for w in golden.windows(2) {
            out.push(w.concat());
        }
        out
    }
    fn fixup(&mut self, input: &mut Vec<u8>, rng: &mut Rng) {
        // Most of the time make the framing consistent again: the last
        // frame (or the first whose prefix is out of range) gets the length
        // of what follows. Otherwise leave the prefixes as mutated.
        if rng.chance(3, 4) {
            let mut at = 0;
            while at + 4 <= input.len() {
                let d =
                    i32::from_be_bytes([input[at], input[at + 1], input[at + 2], input[at + 3]]);
                let rest = input.len() - at - 4;
                if d < 0 || d as usize > rest {
                    input[at..at + 4].copy_from_slice(&(rest as i32).to_be_bytes());
                    break;
                }
                at += 4 + d as usize;
            }
        }
    }
    fn run(&mut self, input: &[u8]) -> u64 {
        if self.inputs == INPUTS_PER_BROKER {
            self.live = None; // drops the old runtime and everything on it
            self.inputs = 0;
        }
        self.inputs += 1;
        let addr = self.live.get_or_insert_with(Live::start).addr;
        let r = self.client.block_on(async move {
            let connect = tokio::time::timeout(LIVENESS, TcpStream::connect(addr)).await;
            let Ok(Ok(mut s)) = connect else {
                return Err("broker did not accept a connection");
            };
            let _ = s.set_nodelay(true);
            let mut out = input.to_vec();
            out.extend_from_slice(&api_versions(SENTINEL));
            // The broker may close mid-write on a bad frame: not an error.
            let _ = s.write_all(&out).await;
            // EOF after the last byte: a frame left incomplete by the
            // mutation ends the connection instead of waiting out the budget.
            let _ = s.shutdown().await;
            let (answered, frames, closed) = read_until(&mut s, SENTINEL, READ_BUDGET).await;
            drop(s);

            // Liveness: a new connection still gets ApiVersions answered.
            let check = async {
                let mut c = TcpStream::connect(addr).await.ok()?;
                c.write_all(&api_versions(7)).await.ok()?;
                let (ok, _, _) = read_until(&mut c, 7, LIVENESS).await;
                ok.then_some(())
            };
            let alive = tokio::time::timeout(LIVENESS, check).await.ok().flatten();
            if alive.is_none() {
                return Err("broker stopped answering ApiVersions after this input");
            }
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(&(answered, frames.min(4), closed), &mut h);
            Ok(std::hash::Hasher::finish(&h))
        });
        match r {
            Ok(sig) => sig,
            Err(why) => {
                // A stuck broker may be burning a core and memory: stop
                // here rather than start another one next to it.
                self.dead = true;
                self.live = None;
                panic!("{why}");
            }
        }
    }
    fn dead(&self) -> bool {
        self.dead
    }
}
