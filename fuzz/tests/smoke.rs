//! CI smoke test: every target for a fixed number of inputs from a fixed
//! seed (deterministic inputs, bounded time in debug builds); any crash
//! fails the test with the input in hex. Long runs use the binary, see
//! fuzz/README.md.

use gregor_fuzz::{fuzz, target, Options, Report};

fn smoke(name: &str, execs: u64) -> Report {
    let mut t = target(name).unwrap_or_else(|| panic!("no target {name}"));
    let r = fuzz(
        t.as_mut(),
        &Options {
            max_execs: Some(execs),
            seed: 0x6e90,
            ..Options::default()
        },
    );
    println!("{r}");
    assert!(r.execs >= execs, "{name}: ran {} of {execs}", r.execs);
    assert!(r.seeds > 0, "{name}: no seeds");
    // More than one behaviour: the mutations reach past the first check.
    assert!(r.signatures > 1, "{name}: every input behaved the same");
    for c in &r.crashes {
        let hex: String = c.input.iter().map(|b| format!("{b:02x}")).collect();
        eprintln!(
            "{name}: {} crash: {}\ninput ({} bytes): {hex}",
            c.kind,
            c.message,
            c.input.len()
        );
    }
    assert!(
        r.crashes.is_empty(),
        "{name}: {} unique crashes",
        r.crashes.len()
    );
    r
}

// One test function: the targets share the process-wide panic hook and
// allocation counter, so they must not run in parallel.
#[test]
fn every_target_runs_without_crashing() {
    smoke("frame", 100_000);
    smoke("request", 100_000);
    smoke("batch", 100_000);
    smoke("records", 30_000);
    smoke("wire", 3_000);
}
