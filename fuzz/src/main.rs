//! `gregor-fuzz <target|all> --seconds N [--seed S] [--corpus-out DIR] [--crashes DIR]`
//! `gregor-fuzz <target> --replay FILE...`

use std::path::PathBuf;
use std::process::ExitCode;

use gregor_fuzz::{exec, fuzz, target, Options, TARGETS};

fn usage() -> ExitCode {
    eprintln!(
        "usage: gregor-fuzz <{}|all> [--seconds N] [--execs N] [--seed S] [--corpus-out DIR] [--crashes DIR]\n       \
         gregor-fuzz <target> --replay FILE...",
        TARGETS.join("|")
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first().cloned() else {
        return usage();
    };
    let mut opts = Options {
        progress: true,
        crash_dir: Some(gregor_fuzz::default_crash_dir()),
        ..Options::default()
    };
    let mut replay = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let val = args.get(i + 1).cloned();
        match (args[i].as_str(), val) {
            ("--seconds", Some(v)) => opts.seconds = v.parse().unwrap_or(10.0),
            ("--execs", Some(v)) => opts.max_execs = v.parse().ok(),
            ("--seed", Some(v)) => opts.seed = v.parse().unwrap_or(1),
            ("--corpus-out", Some(v)) => opts.corpus_out = Some(PathBuf::from(v)),
            ("--crashes", Some(v)) => opts.crash_dir = Some(PathBuf::from(v)),
            ("--replay", Some(_)) => {
                replay.extend(args[i + 1..].iter().map(PathBuf::from));
                break;
            }
            _ => return usage(),
        }
        i += 2;
    }
    let names: Vec<&str> = if name == "all" {
        TARGETS.to_vec()
    } else if TARGETS.contains(&name.as_str()) {
        vec![name.as_str()]
    } else {
        return usage();
    };
    let mut failed = false;
    if !replay.is_empty() {
        let Some(mut t) = target(names[0]) else {
            return usage();
        };
        for f in replay {
            let Ok(input) = std::fs::read(&f) else {
                eprintln!("{}: cannot read", f.display());
                return ExitCode::from(2);
            };
            let e = exec(t.as_mut(), &input);
            match e.crash {
                Some((kind, msg, _)) => {
                    failed = true;
                    println!("{}: {kind}: {msg}", f.display());
                }
                None => println!(
                    "{}: ok ({} ms, largest allocation {} B)",
                    f.display(),
                    e.elapsed.as_millis(),
                    e.max_alloc
                ),
            }
        }
    } else {
        for n in names {
            let Some(mut t) = target(n) else {
                return usage();
            };
            let r = fuzz(t.as_mut(), &opts);
            println!("{r}");
            failed |= !r.crashes.is_empty();
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
