//! A mutation fuzzer for Gregor that runs on the stable toolchain: no
//! libFuzzer, no nightly sanitizers. Inputs start from real client frames
//! (the golden captures) and typed requests of every advertised api key
//! and version, are mutated byte-wise ([`mutate`]), and are run through a
//! [`targets::Target`]. A crash is a panic (also one caught inside the code
//! under test: the panic hook sees it), a single allocation above
//! [`ALLOC_LIMIT`], or an input slower than the target's hang budget.
//! Inputs that show a new behaviour signature join the corpus, a cheap
//! stand-in for coverage feedback.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub mod mutate;
pub mod rng;
pub mod seeds;
pub mod targets;
pub mod wire;

use rng::Rng;
use targets::Target;

/// A single allocation above this is a crash: no input here is more than
/// a few hundred KiB, and decompression is capped at 1 MiB.
pub const ALLOC_LIMIT: usize = 64 << 20;

#[allow(unsafe_code)] // GlobalAlloc is an unsafe trait; this one only forwards to System and counts
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::Ordering;

    /// Records the largest single allocation since the last reset.
    pub struct Counting;

    fn note(size: usize) {
        super::MAX_ALLOC.fetch_max(size, Ordering::Relaxed);
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            note(l.size());
            let p = unsafe { System.alloc(l) };
            if p.is_null() {
                super::allocation_failed(l.size());
            }
            p
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            note(l.size());
            let p = unsafe { System.alloc_zeroed(l) };
            if p.is_null() {
                super::allocation_failed(l.size());
            }
            p
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            note(new);
            let q = unsafe { System.realloc(p, l, new) };
            if q.is_null() {
                super::allocation_failed(new);
            }
            q
        }
    }
}

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

static MAX_ALLOC: AtomicUsize = AtomicUsize::new(0);
static PANICKED: AtomicBool = AtomicBool::new(false);
/// Start of the running input in ms since [`epoch`], 0 when idle.
static RUNNING_SINCE: AtomicU64 = AtomicU64::new(0);
static WATCHDOG_MS: AtomicU64 = AtomicU64::new(20_000);

fn panic_message() -> &'static Mutex<Option<String>> {
    static M: OnceLock<Mutex<Option<String>>> = OnceLock::new();
    M.get_or_init(|| Mutex::new(None))
}
/// The input being run and its target, for the paths that cannot return
/// (a failed allocation, the hang watchdog).
fn current() -> &'static Mutex<(String, Vec<u8>, PathBuf)> {
    static C: OnceLock<Mutex<(String, Vec<u8>, PathBuf)>> = OnceLock::new();
    C.get_or_init(|| Mutex::new((String::new(), Vec::new(), default_crash_dir())))
}
fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}
fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64 + 1
}

/// Where crash inputs go when no directory is given.
pub fn default_crash_dir() -> PathBuf {
    std::env::temp_dir().join("gregor-fuzz-crashes")
}

/// Writes the running input to the crash dir; for paths that end the process.
fn dump_current(kind: &str) {
    if let Ok(c) = current().try_lock() {
        let (target, input, dir) = &*c;
        let _ = std::fs::create_dir_all(dir);
        let path = dir.join(format!("{target}-{kind}-{:016x}.bin", fnv(input)));
        let _ = std::fs::write(&path, input);
        let _ = writeln!(
            std::io::stderr(),
            "gregor-fuzz: {kind}: input saved to {}",
            path.display()
        );
    }
}

fn allocation_failed(size: usize) {
    // The process is about to abort (handle_alloc_error): save the input first.
    let _ = writeln!(
        std::io::stderr(),
        "gregor-fuzz: allocation of {size} bytes failed"
    );
    dump_current("alloc-failed");
}

/// Installs the panic hook (quiet: it records instead of printing) and the
/// hang watchdog. Idempotent.
pub fn install_hooks() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        epoch();
        std::panic::set_hook(Box::new(|info| {
            PANICKED.store(true, Ordering::SeqCst);
            if let Ok(mut m) = panic_message().lock() {
                if m.is_none() {
                    *m = Some(info.to_string());
                }
            }
        }));
        std::thread::Builder::new()
            .name("gregor-fuzz-watchdog".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_millis(200));
                let since = RUNNING_SINCE.load(Ordering::SeqCst);
                if since != 0 && now_ms().saturating_sub(since) > WATCHDOG_MS.load(Ordering::SeqCst)
                {
                    // Stuck for good (an endless loop cannot be unwound).
                    dump_current("hang");
                    let _ = writeln!(std::io::stderr(), "gregor-fuzz: input stuck, exiting");
                    std::process::exit(3);
                }
            })
            .ok();
    });
}

/// 64-bit FNV-1a, to name crash files.
pub fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
        (h ^ u64::from(*x)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How to run a target.
#[derive(Debug, Clone)]
pub struct Options {
    /// Wall-clock budget.
    pub seconds: f64,
    /// Stop after this many executions (for deterministic smoke tests).
    pub max_execs: Option<u64>,
    /// PRNG seed: the same seed and budget in executions give the same inputs.
    pub seed: u64,
    /// Write every corpus addition here.
    pub corpus_out: Option<PathBuf>,
    /// Write crash inputs here (default: [`default_crash_dir`]); `None` in
    /// the smoke test keeps them in memory only.
    pub crash_dir: Option<PathBuf>,
    /// Print progress every 10 s to stderr.
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            seconds: 10.0,
            max_execs: None,
            seed: 1,
            corpus_out: None,
            crash_dir: None,
            progress: false,
        }
    }
}

/// One unique crash.
#[derive(Debug, Clone)]
pub struct Crash {
    /// `panic`, `alloc` or `hang`.
    pub kind: &'static str,
    /// The panic message with its location, or the size or time.
    pub message: String,
    /// The input.
    pub input: Vec<u8>,
    /// Where it was saved.
    pub saved: Option<PathBuf>,
    /// How many inputs hit it.
    pub hits: u64,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Target name.
    pub target: &'static str,
    /// Inputs run.
    pub execs: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Unique crashes (by kind and panic location).
    pub crashes: Vec<Crash>,
    /// Seeds.
    pub seeds: usize,
    /// Corpus size at the end (seeds and inputs with new signatures).
    pub corpus: usize,
    /// Distinct behaviour signatures seen.
    pub signatures: usize,
    /// Largest single allocation during any input.
    pub max_alloc: usize,
    /// Slowest input.
    pub slowest: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        write!(
            f,
            "{}: {} execs in {:.1} s ({:.0}/s), {} seeds, corpus {}, {} signatures, \
             largest allocation {} B, slowest input {} ms, {} unique crashes",
            self.target,
            self.execs,
            secs,
            self.execs as f64 / secs.max(1e-9),
            self.seeds,
            self.corpus,
            self.signatures,
            self.max_alloc,
            self.slowest.as_millis(),
            self.crashes.len()
        )?;
        for c in &self.crashes {
            write!(f, "\n  {} x{}: {}", c.kind, c.hits, c.message)?;
            if let Some(p) = &c.saved {
                write!(f, " [{}]", p.display())?;
            }
        }
        Ok(())
    }
}

/// The result of one input.
pub struct Exec {
    /// Behaviour signature (0 after a panic).
    pub signature: u64,
    /// A crash, if any: kind, message, dedup key.
    pub crash: Option<(&'static str, String, String)>,
    /// Largest allocation.
    pub max_alloc: usize,
    /// Time taken.
    pub elapsed: Duration,
}

/// Runs one input under `catch_unwind`, with allocation and time checks.
pub fn exec(target: &mut dyn Target, input: &[u8]) -> Exec {
    install_hooks();
    if let Ok(mut c) = current().lock() {
        c.0.clear();
        c.0.push_str(target.name());
        c.1.clear();
        c.1.extend_from_slice(input);
    }
    if let Ok(mut m) = panic_message().lock() {
        *m = None;
    }
    PANICKED.store(false, Ordering::SeqCst);
    MAX_ALLOC.store(0, Ordering::SeqCst);
    WATCHDOG_MS.store((target.hang_ms() * 10).max(20_000), Ordering::SeqCst);
    let t0 = Instant::now();
    RUNNING_SINCE.store(now_ms(), Ordering::SeqCst);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target.run(input)));
    RUNNING_SINCE.store(0, Ordering::SeqCst);
    let elapsed = t0.elapsed();
    let max_alloc = MAX_ALLOC.load(Ordering::SeqCst);
    let mut crash = None;
    if PANICKED.load(Ordering::SeqCst) || r.is_err() {
        let msg = panic_message()
            .lock()
            .ok()
            .and_then(|m| m.clone())
            .unwrap_or_else(|| "panic".into());
        // Dedup by location: the message's first line up to the payload.
        let key = msg
            .lines()
            .next()
            .unwrap_or("")
            .split(':')
            .take(3)
            .collect::<Vec<_>>()
            .join(":");
        crash = Some(("panic", msg, key));
    } else if max_alloc > ALLOC_LIMIT {
        crash = Some((
            "alloc",
            format!(
                "single allocation of {max_alloc} bytes for a {}-byte input",
                input.len()
            ),
            "alloc".into(),
        ));
    } else if elapsed.as_millis() as u64 > target.hang_ms() {
        crash = Some((
            "hang",
            format!(
                "{} ms for a {}-byte input (budget {} ms)",
                elapsed.as_millis(),
                input.len(),
                target.hang_ms()
            ),
            "hang".into(),
        ));
    }
    Exec {
        signature: r.unwrap_or(0),
        crash,
        max_alloc,
        elapsed,
    }
}

fn save(dir: &Path, name: &str, bytes: &[u8]) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let p = dir.join(name);
    std::fs::write(&p, bytes).ok()?;
    Some(p)
}

/// Fuzzes `target` within the budget of `opts`.
pub fn fuzz(target: &mut dyn Target, opts: &Options) -> Report {
    install_hooks();
    if let Ok(mut c) = current().lock() {
        c.2 = opts.crash_dir.clone().unwrap_or_else(default_crash_dir);
    }
    let max_len = target.max_len();
    let mut corpus: Vec<Vec<u8>> = target.seeds();
    for s in &mut corpus {
        s.truncate(max_len);
    }
    if corpus.is_empty() {
        corpus.push(vec![0; 8]);
    }
    let seeds = corpus.len();
    let mut rng = Rng::new(opts.seed);
    let mut seen: HashSet<u64> = HashSet::new();
    let mut crashes: Vec<Crash> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let (mut execs, mut max_alloc, mut slowest) = (0u64, 0usize, Duration::ZERO);
    let start = Instant::now();
    let mut last_progress = Instant::now();
    let budget = Duration::from_secs_f64(opts.seconds.max(0.0));
    loop {
        if target.dead()
            || opts.max_execs.is_some_and(|m| execs >= m)
            || (opts.max_execs.is_none() && start.elapsed() >= budget)
        {
            break;
        }
        let input = if (execs as usize) < seeds {
            // Every seed runs once as it is.
            corpus[execs as usize].clone()
        } else {
            let mut d = corpus[rng.below(corpus.len())].clone();
            let other = &corpus[rng.below(corpus.len())];
            mutate::mutate(&mut d, other, &mut rng, max_len);
            target.fixup(&mut d, &mut rng);
            d.truncate(max_len);
            d
        };
        let e = exec(target, &input);
        execs += 1;
        max_alloc = max_alloc.max(e.max_alloc);
        slowest = slowest.max(e.elapsed);
        if let Some((kind, message, key)) = e.crash {
            let key = format!("{kind}:{key}");
            if let Some(&i) = by_key.get(&key) {
                crashes[i].hits += 1;
                // Keep the smallest reproducer.
                if input.len() < crashes[i].input.len() {
                    crashes[i].input = input.clone();
                    if let Some(dir) = &opts.crash_dir {
                        let name = format!("{}-{}-{}.bin", target.name(), kind, i);
                        crashes[i].saved = save(dir, &name, &input);
                    }
                }
            } else {
                let saved = opts.crash_dir.as_ref().and_then(|dir| {
                    let name = format!("{}-{}-{}.bin", target.name(), kind, crashes.len());
                    let _ = save(dir, &format!("{name}.txt"), message.as_bytes());
                    save(dir, &name, &input)
                });
                if opts.progress {
                    eprintln!("[{}] new crash ({kind}): {message}", target.name());
                }
                by_key.insert(key, crashes.len());
                crashes.push(Crash {
                    kind,
                    message,
                    input: input.clone(),
                    saved,
                    hits: 1,
                });
            }
        } else if seen.insert(e.signature) && (execs as usize) > seeds {
            if let Some(dir) = &opts.corpus_out {
                let _ = save(
                    &dir.join(target.name()),
                    &format!("{:016x}.bin", fnv(&input)),
                    &input,
                );
            }
            if corpus.len() < 8192 {
                corpus.push(input);
            }
        }
        if opts.progress && last_progress.elapsed() >= Duration::from_secs(10) {
            last_progress = Instant::now();
            let s = start.elapsed().as_secs_f64();
            eprintln!(
                "[{}] {:.0} s: {} execs ({:.0}/s), corpus {}, {} signatures, {} crashes",
                target.name(),
                s,
                execs,
                execs as f64 / s,
                corpus.len(),
                seen.len(),
                crashes.len()
            );
        }
    }
    Report {
        target: target.name(),
        execs,
        elapsed: start.elapsed(),
        crashes,
        seeds,
        corpus: corpus.len(),
        signatures: seen.len(),
        max_alloc,
        slowest,
    }
}

/// The target called `name`.
pub fn target(name: &str) -> Option<Box<dyn Target>> {
    Some(match name {
        "frame" => Box::<targets::FrameTarget>::default(),
        "request" => Box::<targets::RequestTarget>::default(),
        "batch" => Box::<targets::BatchTarget>::default(),
        "records" => Box::<targets::RecordsTarget>::default(),
        "wire" => Box::new(wire::WireTarget::new()),
        _ => return None,
    })
}

/// Every target name, in the order `all` runs them.
pub const TARGETS: &[&str] = &["frame", "request", "batch", "records", "wire"];
