//! The `gregor` binary: parse configuration, open the store, serve.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gregor_broker::config::Applied;
use gregor_broker::{Broker, BrokerConfig};
use gregor_storage::{DataDirInUse, Store, StoreOptions};
use tokio::net::TcpListener;
use tracing::{info, warn};

mod fault;

#[derive(Parser, Debug)]
#[command(
    name = "gregor",
    version,
    about = "A Kafka-wire-compatible broker in one native binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the broker.
    Serve(ServeArgs),
    /// Inject faults into a running broker, move leaders, reset it
    /// (through its --admin-listen HTTP API).
    Fault(fault::FaultArgs),
}

/// Precedence, lowest first: defaults, `--config` file, `GREGOR_*`
/// environment, flags (`-o key=value` last).
#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:9092].
    #[arg(long, env = "GREGOR_LISTEN")]
    listen: Option<String>,
    /// host:port announced to clients [default: the listen address].
    #[arg(long, env = "GREGOR_ADVERTISED_LISTENER")]
    advertised_listener: Option<String>,
    /// Data directory (sled) [default: ./gregor-data].
    #[arg(long, env = "GREGOR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML file of Kafka broker properties (`num.partitions = 3`).
    #[arg(long, env = "GREGOR_CONFIG")]
    config: Option<PathBuf>,
    /// Keep everything in memory; nothing survives a restart.
    #[arg(long)]
    ephemeral: bool,
    /// Set a Kafka broker property, e.g. `-o num.partitions=6` (repeatable).
    #[arg(short = 'o', long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Present N brokers (ids node.id..), each on its own port: the port
    /// of --listen and the following ones (or ports of their own for :0).
    #[arg(long, env = "GREGOR_VIRTUAL_BROKERS", value_name = "N")]
    virtual_brokers: Option<u16>,
    /// Serve the HTTP admin API (faults, inspection, /metrics) here,
    /// e.g. 127.0.0.1:9644 [default: off].
    #[arg(long, env = "GREGOR_ADMIN_LISTEN", value_name = "ADDR")]
    admin_listen: Option<String>,
    /// Test profile: no initial rebalance delay, fast retention and
    /// cleaner checks, one-partition internal topics (docs/TESTING-WITH-GREGOR.md).
    /// Explicit settings win.
    #[arg(long)]
    dev: bool,
}

// Not `main() -> anyhow::Result`: that prints the error's Debug form, a
// backtrace included when RUST_BACKTRACE is set.
fn main() -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GREGOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve(args, started),
        Command::Fault(args) => fault::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error for a person: its cause chain, outermost first, joined by ": ".
/// A data dir held by another process is said as is: it names the dir and
/// the holder, the rest of the chain adds nothing.
fn error_line(e: &anyhow::Error) -> String {
    for cause in e.chain() {
        let in_use = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<DataDirInUse>());
        if let Some(in_use) = in_use {
            return in_use.to_string();
        }
    }
    let mut line = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        // Some errors print their source and also return it (StorageError::Io
        // does): say it once.
        if line.ends_with(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    line
}

fn serve(args: ServeArgs, started: Instant) -> anyhow::Result<()> {
    let config = build_config(&args)?;
    let files = raise_open_files_limit();
    // Each connection is a descriptor; segment files and sled need some more.
    if files.is_some_and(|n| n < config.max_connections as u64 + 256) {
        warn!(
            open_files_limit = files,
            max_connections = config.max_connections,
            "the open-file limit is below max.connections; connections beyond it will be refused (raise it with ulimit -n)"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let store = if config.ephemeral {
            Store::open_memory(store_options(&config))
        } else {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
            Store::open_sled(&config.data_dir, store_options(&config))
                .with_context(|| format!("opening store in {}", config.data_dir.display()))?
        };
        // The error already names the address ("binding 127.0.0.1:9092: ...").
        let listeners = gregor_broker::server::bind_all(&config).await?;
        let admin = match config.admin_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the admin API on {addr}"))?,
            ),
            None => None,
        };
        let mut config = config;
        config.bound = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<std::io::Result<_>>()?;
        config.listen = config.bound[0];
        let admin_addr = admin.as_ref().map(TcpListener::local_addr).transpose()?;
        let broker = Broker::new(config, store);
        let shutdown = shutdown_signal()?;
        // Every broker as id@host:port, for scripts that start a virtual
        // cluster on ephemeral ports.
        let brokers = broker
            .cluster()
            .nodes()
            .iter()
            .map(|n| format!("{}@{}:{}", n.id, n.host, n.port))
            .collect::<Vec<_>>()
            .join(",");
        let admin_field = admin_addr.map(tracing::field::display);
        info!(
            addr = %broker.config().listen,
            advertised = %broker.config().advertised_or_listen(),
            data_dir = %if broker.config().ephemeral { "(memory)".to_string() } else { broker.config().data_dir.display().to_string() },
            // 0.1 ms is all the precision a start-up time needs.
            startup_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0,
            brokers = %brokers,
            admin = admin_field,
            dev = broker.config().dev.then_some(true),
            "listening"
        );
        gregor_broker::server::serve_all(listeners, admin, broker, shutdown).await;
        anyhow::Ok(())
    })
}

fn store_options(c: &BrokerConfig) -> StoreOptions {
    StoreOptions {
        flush_interval_ms: c.log_flush_interval_ms,
        ..StoreOptions::default()
    }
}

fn build_config(args: &ServeArgs) -> anyhow::Result<BrokerConfig> {
    let mut c = BrokerConfig::default();
    let mut apply = |key: &str, value: &str, origin: &str| -> anyhow::Result<()> {
        match c.set(key, value).with_context(|| format!("in {origin}"))? {
            Applied::Set => {}
            // Kafka warns about properties it does not know and goes on.
            Applied::Unknown => warn!(key, origin, "ignoring unknown or unsupported property"),
        }
        Ok(())
    };
    if let Some(path) = &args.config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .with_context(|| format!("parsing {}", path.display()))?;
        let mut flat = Vec::new();
        flatten("", &toml::Value::Table(table), &mut flat);
        for (k, v) in flat {
            apply(&k, &v, &path.display().to_string())?;
        }
    }
    // GREGOR_NUM_PARTITIONS=3 sets num.partitions; the flags' own env
    // variables are handled by clap below.
    for (k, v) in std::env::vars() {
        if let Some(rest) = k.strip_prefix("GREGOR_") {
            if [
                "LISTEN",
                "ADVERTISED_LISTENER",
                "DATA_DIR",
                "CONFIG",
                "LOG",
                "VIRTUAL_BROKERS",
                "ADMIN_LISTEN",
                "ADMIN",
            ]
            .contains(&rest)
            {
                continue;
            }
            let key = rest.to_ascii_lowercase().replace('_', ".");
            apply(&key, &v, &k)?;
        }
    }
    if let Some(v) = &args.listen {
        apply("listen", v, "--listen")?;
    }
    if let Some(v) = &args.advertised_listener {
        apply("advertised.listener", v, "--advertised-listener")?;
    }
    if let Some(v) = &args.data_dir {
        apply("data.dir", &v.display().to_string(), "--data-dir")?;
    }
    if args.ephemeral {
        apply("ephemeral", "true", "--ephemeral")?;
    }
    if let Some(n) = args.virtual_brokers {
        apply("virtual.brokers", &n.to_string(), "--virtual-brokers")?;
    }
    if let Some(v) = &args.admin_listen {
        apply("admin.listen", v, "--admin-listen")?;
    }
    for o in &args.overrides {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("-o {o}: expected KEY=VALUE"))?;
        apply(k.trim(), v, "-o")?;
    }
    // Last, so that it fills in only what nothing above set.
    if args.dev {
        apply("dev", "true", "--dev")?;
    }
    Ok(c)
}

/// TOML's dotted keys nest (`num.partitions = 3` is `num = { partitions = 3 }`):
/// flatten back to Kafka's property names.
fn flatten(prefix: &str, v: &toml::Value, out: &mut Vec<(String, String)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        toml::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        toml::Value::Array(a) => out.push((
            prefix.to_string(),
            a.iter()
                .map(|x| match x {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
        )),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// SIGINT or SIGTERM. The handlers are installed here, before the
/// `listening` line: a signal sent as soon as the broker says it is ready
/// must stop it gracefully (flushing the store), not kill it.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Raises the soft limit on open files to the hard limit, as the JVM does
/// for Kafka (`-XX:+MaxFDLimit`): `max.connections` needs more descriptors
/// than the 1024 many systems start a process with. Returns the limit now
/// in force, if it could be read.
#[allow(unsafe_code)]
fn raise_open_files_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    Some(lim.rlim_cur)
}
