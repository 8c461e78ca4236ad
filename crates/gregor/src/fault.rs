//! `gregor fault ...`: drives a running broker's HTTP admin API
//! (`--admin-listen`) from a shell or any test harness. Each command is
//! one request; the broker's JSON answer is printed as is.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

#[derive(Args, Debug)]
pub struct FaultArgs {
    /// The broker's admin API (its --admin-listen address).
    #[arg(
        long,
        env = "GREGOR_ADMIN",
        default_value = "127.0.0.1:9644",
        global = true
    )]
    admin: String,
    #[command(subcommand)]
    command: FaultCommand,
}

/// Which requests a fault hits.
#[derive(Args, Debug, Default)]
struct Target {
    /// Only requests sent to this broker id.
    #[arg(long)]
    broker: Option<i32>,
    /// Only requests naming this topic.
    #[arg(long)]
    topic: Option<String>,
    /// Only requests naming this partition.
    #[arg(long)]
    partition: Option<i32>,
    /// Only requests naming this group (or transactional id).
    #[arg(long)]
    group: Option<String>,
    /// Only requests from this client id.
    #[arg(long)]
    client_id: Option<String>,
}

impl Target {
    fn into_json(self, m: &mut Map<String, Value>) {
        if let Some(v) = self.broker {
            m.insert("broker".into(), json!(v));
        }
        if let Some(v) = self.topic {
            m.insert("topic".into(), json!(v));
        }
        if let Some(v) = self.partition {
            m.insert("partition".into(), json!(v));
        }
        if let Some(v) = self.group {
            m.insert("group".into(), json!(v));
        }
        if let Some(v) = self.client_id {
            m.insert("client_id".into(), json!(v));
        }
    }
}

#[derive(Subcommand, Debug)]
enum FaultCommand {
    /// Answer the next requests of an API with an error (not processed).
    Errors {
        /// The API, by Kafka's name (Produce, JoinGroup, ...) or key.
        #[arg(long)]
        api: String,
        /// The error, by Kafka's name (NOT_LEADER_OR_FOLLOWER) or code;
        /// repeat for a sequence.
        #[arg(long, required = true)]
        error: Vec<String>,
        /// How many requests get the (single) error.
        #[arg(long)]
        count: Option<u32>,
        #[command(flatten)]
        target: Target,
    },
    /// Delay responses (0 removes the delay).
    Latency {
        #[arg(long)]
        ms: u64,
        #[arg(long)]
        broker: Option<i32>,
        #[arg(long)]
        api: Option<String>,
    },
    /// Process the next requests, then close the connection before answering.
    Close {
        #[arg(long)]
        api: Option<String>,
        #[arg(long, default_value_t = 1)]
        count: u32,
        #[command(flatten)]
        target: Target,
    },
    /// Make writes fail with KAFKA_STORAGE_ERROR (`fail`), or stop (`ok`).
    Storage {
        #[arg(value_parser = ["fail", "ok"])]
        state: String,
    },
    /// Set throttle_time_ms in responses (0 removes).
    Throttle {
        #[arg(long)]
        ms: i32,
        #[arg(long)]
        api: Option<String>,
        #[arg(long)]
        broker: Option<i32>,
        #[arg(long)]
        count: Option<u32>,
    },
    /// Take a virtual broker down or bring it up.
    Broker {
        #[arg(value_parser = ["down", "up"])]
        state: String,
        id: i32,
    },
    /// Move one partition's leadership (--topic --partition --to), or every
    /// partition a broker leads (--from [--to]).
    Leader {
        #[arg(long)]
        topic: Option<String>,
        #[arg(long)]
        partition: Option<i32>,
        #[arg(long)]
        from: Option<i32>,
        #[arg(long)]
        to: Option<i32>,
    },
    /// Move the group and transaction coordinator.
    Coordinator {
        #[arg(long)]
        to: i32,
    },
    /// Remove every fault.
    Clear,
    /// Wipe topics, groups and transactions (--ephemeral or --dev brokers).
    Reset,
    /// Show the faults in force.
    List,
}

pub fn run(args: FaultArgs) -> anyhow::Result<()> {
    let (method, path, body) = request(args.command)?;
    let answer = call(&args.admin, method, &path, body.as_ref())?;
    println!("{answer}");
    Ok(())
}

fn request(c: FaultCommand) -> anyhow::Result<(&'static str, String, Option<Value>)> {
    let mut m = Map::new();
    Ok(match c {
        FaultCommand::Errors {
            api,
            error,
            count,
            target,
        } => {
            m.insert("api".into(), json!(api));
            match (error.as_slice(), count) {
                ([one], Some(n)) => {
                    m.insert("error".into(), json!(one));
                    m.insert("count".into(), json!(n));
                }
                (_, Some(_)) => bail!("--count goes with a single --error"),
                (list, None) => {
                    m.insert("errors".into(), json!(list));
                }
            }
            target.into_json(&mut m);
            ("POST", "/faults/errors".into(), Some(Value::Object(m)))
        }
        FaultCommand::Latency { ms, broker, api } => (
            "POST",
            "/faults/latency".into(),
            Some(json!({ "ms": ms, "broker": broker, "api": api })),
        ),
        FaultCommand::Close { api, count, target } => {
            if let Some(a) = api {
                m.insert("api".into(), json!(a));
            }
            m.insert("count".into(), json!(count));
            target.into_json(&mut m);
            ("POST", "/faults/close".into(), Some(Value::Object(m)))
        }
        FaultCommand::Storage { state } => (
            "POST",
            "/faults/storage".into(),
            Some(json!({ "failed": state == "fail" })),
        ),
        FaultCommand::Throttle {
            ms,
            api,
            broker,
            count,
        } => (
            "POST",
            "/faults/throttle".into(),
            Some(json!({ "ms": ms, "api": api, "broker": broker, "count": count })),
        ),
        FaultCommand::Broker { state, id } => ("POST", format!("/brokers/{id}/{state}"), None),
        FaultCommand::Leader {
            topic,
            partition,
            from,
            to,
        } => match (topic, partition, from) {
            (Some(t), Some(p), None) => {
                let to = to.context("--to is required to move one partition")?;
                (
                    "POST",
                    "/leaders".into(),
                    Some(json!({ "topic": t, "partition": p, "leader": to })),
                )
            }
            (None, None, Some(f)) => (
                "POST",
                "/leaders".into(),
                Some(json!({ "from": f, "to": to })),
            ),
            _ => bail!("give --topic, --partition and --to, or --from [--to]"),
        },
        FaultCommand::Coordinator { to } => {
            ("POST", "/coordinator".into(), Some(json!({ "broker": to })))
        }
        FaultCommand::Clear => ("DELETE", "/faults".into(), None),
        FaultCommand::Reset => ("POST", "/reset".into(), None),
        FaultCommand::List => ("GET", "/faults".into(), None),
    })
}

/// Drops nulls (flags not given) from a JSON object.
fn compact(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One HTTP/1.1 request with `Connection: close`; the body of a 2xx
/// answer, or the broker's one-line error.
fn call(admin: &str, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<String> {
    let addr = admin.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(addr).with_context(|| {
        format!("cannot reach the admin API at {addr} (is the broker running with --admin-listen {addr}?)")
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let payload = body.map(|b| compact(b).to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        payload.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(payload.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .context("the admin API sent no HTTP answer")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the admin API sent no HTTP status")?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    if (200..300).contains(&status) {
        return Ok(body.trim().to_string());
    }
    let msg = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string());
    bail!("{msg} (HTTP {status})")
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
