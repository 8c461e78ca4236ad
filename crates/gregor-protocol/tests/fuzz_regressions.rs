//! Inputs the fuzzer (`fuzz/`, `gregor-fuzz`) found to crash the codec, each
//! kept as it was found (hex) with the behaviour it must have now.

use gregor_protocol::records::{first_record_at_or_after, BatchHeader};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// `batch` target, seed 0x6e90: a client batch with base offset
/// `i64::MAX - 1` and `lastOffsetDelta` 2. `BatchHeader::last_offset` added
/// them with `+`, a debug-build overflow panic (records.rs:111). Kafka's
/// `DefaultRecordBatch.lastOffset()` is `baseOffset + lastOffsetDelta` in
/// Java `long` arithmetic, which wraps. The broker only calls it on batches
/// it stamped itself, so it was not reachable from the network.
#[test]
fn last_offset_of_a_client_base_offset_near_i64_max_wraps_like_kafka() {
    let b = unhex(
        "7ffffffffffffffe00000037ffffffff02bdfd1f5800001076616b0000018bcfe568e568ffffffffffffff\
         00000000260000000a6b65792d301076616c756520302001",
    );
    let h = BatchHeader::parse(&b).expect("a whole header");
    assert_eq!(h.base_offset, i64::MAX - 1);
    assert_eq!(
        h.last_offset(),
        (i64::MAX - 1).wrapping_add(i64::from(h.last_offset_delta))
    );
    // The by-timestamp lookup reads last_offset first: no panic either.
    let _ = first_record_at_or_after(&b, 0, 0, 1 << 20);
}
