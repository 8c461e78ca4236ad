//! The crash detector itself: a panic (also one caught inside the code
//! under test), an oversized allocation and a slow input are each reported
//! once with a reproducing input, and a harmless target reports nothing.
//! Its own test binary: the panic hook and allocation counter are global.

use gregor_fuzz::rng::Rng;
use gregor_fuzz::targets::Target;
use gregor_fuzz::{fuzz, Options, ALLOC_LIMIT};

/// Misbehaves on inputs starting with a marker byte.
struct Planted;

impl Target for Planted {
    fn name(&self) -> &'static str {
        "planted"
    }
    fn seeds(&mut self) -> Vec<Vec<u8>> {
        vec![vec![0; 4], vec![1, 2, 3]]
    }
    fn fixup(&mut self, input: &mut Vec<u8>, rng: &mut Rng) {
        if let Some(b) = input.first_mut() {
            if rng.chance(1, 50) {
                *b = [0xa1, 0xa2, 0xa3, 0xa4][rng.below(4)];
            }
        }
    }
    fn hang_ms(&self) -> u64 {
        50
    }
    fn run(&mut self, input: &[u8]) -> u64 {
        match input.first() {
            Some(0xa1) => panic!("planted panic"),
            // Caught where it happens, as decode_request does with the codec.
            Some(0xa2) => std::panic::catch_unwind(|| panic!("planted caught panic")).unwrap_or(2),
            Some(0xa3) => std::hint::black_box(vec![1u8; ALLOC_LIMIT + 1]).len() as u64,
            Some(0xa4) => {
                std::thread::sleep(std::time::Duration::from_millis(60));
                4
            }
            _ => input.len() as u64,
        }
    }
}

#[test]
fn planted_crashes_are_each_reported_with_their_input() {
    let r = fuzz(
        &mut Planted,
        &Options {
            max_execs: Some(3000),
            ..Options::default()
        },
    );
    let find = |kind: &str, what: &str| {
        r.crashes
            .iter()
            .find(|c| c.kind == kind && c.message.contains(what))
            .unwrap_or_else(|| panic!("no {kind} crash with {what:?} in {r}"))
    };
    assert_eq!(find("panic", "planted panic").input[0], 0xa1);
    assert_eq!(find("panic", "planted caught panic").input[0], 0xa2);
    assert_eq!(find("alloc", "single allocation").input[0], 0xa3);
    assert_eq!(find("hang", "budget 50 ms").input[0], 0xa4);
    assert_eq!(r.crashes.len(), 4, "{r}");
}
