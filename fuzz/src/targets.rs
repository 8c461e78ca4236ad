//! The codec targets. Each runs one input through the public API of
//! `gregor-protocol` the way the broker does and returns a signature of the
//! behaviour it saw (result kinds, error kinds, api and version), which the
//! engine uses to keep inputs that did something new.

use std::hash::{Hash, Hasher};

use bytes::Bytes;
use gregor_protocol::frame;
use gregor_protocol::kafka_protocol::messages::ApiKey;
use gregor_protocol::records::{self, BatchHeader};
use gregor_protocol::{decode_request, versions, Decoded, ProtocolError};

use crate::rng::Rng;
use crate::seeds;

/// A fuzz target.
pub trait Target {
    /// Its name on the command line.
    fn name(&self) -> &'static str;
    /// Starting inputs.
    fn seeds(&mut self) -> Vec<Vec<u8>>;
    /// Largest input to generate.
    fn max_len(&self) -> usize {
        64 * 1024
    }
    /// Target-specific mutation or repair after the generic mutations
    /// (a valid CRC, a served api version, ...).
    fn fixup(&mut self, _input: &mut Vec<u8>, _rng: &mut Rng) {}
    /// Runs one input. Panics are crashes; the result is a behaviour signature.
    fn run(&mut self, input: &[u8]) -> u64;
    /// An input slower than this is reported as a hang.
    fn hang_ms(&self) -> u64 {
        1000
    }
    /// True once the target cannot go on (a wedged broker): the run stops.
    fn dead(&self) -> bool {
        false
    }
}

fn sig(parts: impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// An error message without its numbers: the kind of failure, not its values.
fn shape(msg: &str) -> String {
    msg.chars()
        .filter(|c| !c.is_ascii_digit())
        .take(120)
        .collect()
}

fn request_sig(r: &Result<Decoded, ProtocolError>, detail: bool) -> u64 {
    match r {
        Err(ProtocolError::Malformed { api, version, .. }) if !detail => sig((2u8, api, version)),
        Ok(Decoded::Request(r)) => sig((0u8, r.api_key as i16, r.version)),
        Ok(Decoded::UnsupportedApiVersions { .. }) => sig(1u8),
        Err(ProtocolError::Malformed {
            api,
            version,
            reason,
        }) => sig((2u8, api, version, shape(reason))),
        Err(e) => sig((3u8, shape(&e.to_string()))),
    }
}

/// Frame splitting: a byte stream cut into length-prefixed frames, each
/// decoded, as a connection reads them.
#[derive(Default)]
pub struct FrameTarget;

/// The frame limit used by the frame target: small, so that
/// `FrameTooLarge` is reachable.
pub const FRAME_MAX: usize = 16 * 1024;

impl Target for FrameTarget {
    fn name(&self) -> &'static str {
        "frame"
    }
    fn seeds(&mut self) -> Vec<Vec<u8>> {
        let frames: Vec<Vec<u8>> = seeds::golden_frames()
            .into_iter()
            .map(|(_, b)| seeds::framed(&b))
            .collect();
        let mut out = frames.clone();
        // Streams of several frames, as pipelining clients send them.
        for w in frames.windows(3) {
            out.push(w.concat());
        }
        out
    }
    fn run(&mut self, input: &[u8]) -> u64 {
        let mut at = 0;
        let mut trace = Vec::new();
        loop {
            let rest = &input[at..];
            match frame::check(rest, FRAME_MAX) {
                Ok(Some(len)) => {
                    assert!(len <= FRAME_MAX, "check returned {len} > max");
                    assert!(
                        frame::LENGTH_PREFIX + len <= rest.len(),
                        "frame past the buffer"
                    );
                    let body = &rest[frame::LENGTH_PREFIX..frame::LENGTH_PREFIX + len];
                    trace.push(request_sig(
                        &decode_request(Bytes::copy_from_slice(body)),
                        false,
                    ));
                    at += frame::LENGTH_PREFIX + len;
                }
                Ok(None) => {
                    // Asks for more bytes only when the frame really is incomplete.
                    if rest.len() >= frame::LENGTH_PREFIX {
                        let mut p = [0u8; 4];
                        p.copy_from_slice(&rest[..4]);
                        let declared = i32::from_be_bytes(p);
                        assert!(
                            declared >= 0 && rest.len() < 4 + declared as usize,
                            "check wants more bytes for a complete frame"
                        );
                    }
                    trace.push(1);
                    break;
                }
                Err(e) => {
                    trace.push(sig(std::mem::discriminant(&e)));
                    break;
                }
            }
        }
        trace.truncate(4);
        sig(trace)
    }
}

/// Request header and body decode for every served api key and version.
#[derive(Default)]
pub struct RequestTarget;

impl Target for RequestTarget {
    fn name(&self) -> &'static str {
        "request"
    }
    fn seeds(&mut self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = seeds::golden_frames().into_iter().map(|(_, b)| b).collect();
        out.extend(seeds::generated_requests());
        out
    }
    fn fixup(&mut self, input: &mut Vec<u8>, rng: &mut Rng) {
        // Byte mutations rarely hit another valid (api, version): sometimes
        // retarget the header so that every decoder sees every body shape.
        if input.len() >= 4 && rng.chance(1, 8) {
            let apis = versions::supported();
            let r = apis[rng.below(apis.len())];
            let v = if rng.chance(1, 8) {
                rng.below(20) as i16 - 2
            } else {
                r.min + rng.below((r.max - r.min + 1) as usize) as i16
            };
            input[0..2].copy_from_slice(&(r.key as i16).to_be_bytes());
            input[2..4].copy_from_slice(&v.to_be_bytes());
        }
    }
    fn run(&mut self, input: &[u8]) -> u64 {
        let r = decode_request(Bytes::copy_from_slice(input));
        if let Ok(Decoded::Request(req)) = &r {
            // What was decoded must encode again (the broker echoes parts
            // of requests into responses); an error is fine, a panic is not.
            let mut out = bytes::BytesMut::new();
            let _ = req.body.encode(&mut out, req.version);
        }
        request_sig(&r, true)
    }
}

/// Record batch header validation and in-place patching, as Produce does.
#[derive(Default)]
pub struct BatchTarget;

impl Target for BatchTarget {
    fn name(&self) -> &'static str {
        "batch"
    }
    fn seeds(&mut self) -> Vec<Vec<u8>> {
        let mut out = seeds::golden_batches();
        out.extend(seeds::codec_batches());
        // Several batches end to end, as a fetch response carries them.
        let all = out.concat();
        out.push(all);
        out
    }
    fn fixup(&mut self, input: &mut Vec<u8>, rng: &mut Rng) {
        if rng.chance(3, 4) {
            if input.len() >= 61 && rng.chance(1, 2) {
                // A consistent count, to get past the count check.
                let count = i32::from_be_bytes([input[57], input[58], input[59], input[60]]);
                input[23..27].copy_from_slice(&count.wrapping_sub(1).to_be_bytes());
            }
            seeds::fix_batch(input, rng.chance(1, 2));
        }
    }
    fn run(&mut self, input: &[u8]) -> u64 {
        let parsed = BatchHeader::parse(input).ok();
        if let Some(h) = parsed {
            // The accessors the produce path uses before the broker stamps
            // the base offset (`last_offset` is only used on stamped batches).
            let _ = (h.total_len(), h.compression(), h.last_sequence());
            let _ = (h.is_log_append_time(), h.is_transactional(), h.is_control());
        }
        let mut n = 0usize;
        for (h, range) in records::batches(input) {
            assert_eq!(range.len(), h.total_len(), "batches() range");
            assert!(range.end <= input.len());
            n += 1;
        }
        let v = records::validate_client_batch(input);
        if let Ok(h) = v {
            // Patching outside the CRC keeps the batch valid; stamping
            // LogAppendTime recomputes the CRC and keeps it valid too.
            let mut b = input.to_vec();
            records::set_base_offset(&mut b, 1234);
            records::set_leader_epoch(&mut b, 7);
            let p = records::validate_client_batch(&b).expect("patched batch no longer valid");
            assert_eq!((p.base_offset, p.partition_leader_epoch), (1234, 7));
            assert_eq!(p.last_offset(), 1234 + i64::from(h.last_offset_delta));
            assert_eq!(p.crc, h.crc, "offset/epoch patch changed the CRC");
            records::set_log_append_time(&mut b, 1_800_000_000_000);
            let t =
                records::validate_client_batch(&b).expect("LogAppendTime batch no longer valid");
            assert!(t.is_log_append_time() && t.max_timestamp == 1_800_000_000_000);
            assert_eq!(t.compression(), h.compression());
        }
        let flags = parsed.map(|h| {
            (
                h.attributes & 0x3f,
                h.magic == 2,
                h.producer_id >= 0,
                h.base_sequence >= 0,
            )
        });
        sig((
            flags,
            n.min(3),
            v.map(|h| h.compression())
                .map_err(|e| std::mem::discriminant(&e)),
        ))
    }
}

/// Cap on inflated record bytes given to the record decoder.
pub const MAX_INFLATED: usize = 1 << 20;

/// Record decoding of every codec: a batch whose CRC is right after the
/// mutation, walked record by record with bounded decompression.
#[derive(Default)]
pub struct RecordsTarget;

impl Target for RecordsTarget {
    fn name(&self) -> &'static str {
        "records"
    }
    fn max_len(&self) -> usize {
        256 * 1024
    }
    fn seeds(&mut self) -> Vec<Vec<u8>> {
        let mut out = seeds::codec_batches();
        out.extend(seeds::golden_batches());
        out.extend(seeds::bomb_batches());
        out
    }
    fn fixup(&mut self, input: &mut Vec<u8>, rng: &mut Rng) {
        if input.len() > 61 && rng.chance(1, 4) {
            // Compress the (mutated) bytes after the header with a real
            // codec: malformed records inside a well-formed stream reach the
            // record walker through every decompressor.
            let codec = 1 + rng.below(4) as i16;
            let body = seeds::compress(codec, &input[61..]);
            input.truncate(61);
            input.extend_from_slice(&body);
            let attrs = i16::from_be_bytes([input[21], input[22]]) & !7 | codec;
            input[21..23].copy_from_slice(&attrs.to_be_bytes());
        } else if input.len() >= 23 && rng.chance(1, 8) {
            // Another codec on the same bytes.
            let codec = rng.below(8) as i16;
            let attrs = i16::from_be_bytes([input[21], input[22]]) & !7 | codec;
            input[21..23].copy_from_slice(&attrs.to_be_bytes());
        }
        if input.len() >= 61 && rng.chance(3, 4) {
            let count = i32::from_be_bytes([input[57], input[58], input[59], input[60]]);
            input[23..27].copy_from_slice(&count.wrapping_sub(1).to_be_bytes());
        }
        if rng.chance(15, 16) {
            seeds::fix_batch(input, rng.chance(3, 4));
        }
    }
    fn run(&mut self, input: &[u8]) -> u64 {
        // Both run on batches that passed the header checks, as in the
        // broker (Produce validates first; lookups read stored batches,
        // whose base offset the broker stamped outside the CRC).
        let header_ok = records::validate_client_batch(input);
        let (v, f) = if header_ok.is_ok() {
            let v = records::validate_records(input, MAX_INFLATED);
            let mut stored = input.to_vec();
            records::set_base_offset(&mut stored, 1000);
            let ts = header_ok
                .as_ref()
                .map_or(0, |h| h.base_timestamp.wrapping_add(3));
            let f = records::first_record_at_or_after(&stored, ts, 1001, MAX_INFLATED);
            (Some(v), Some(f))
        } else {
            (None, None)
        };
        sig((
            header_ok
                .map(|h| h.compression())
                .map_err(|e| std::mem::discriminant(&e)),
            v.map(|v| v.map(|s| s.count.min(3)).map_err(|e| shape(&e.to_string()))),
            f.map(|f| f.map(|o| o.is_some()).map_err(|e| shape(&e.to_string()))),
        ))
    }
}

/// The api keys and versions the broker advertises, for reports.
pub fn advertised() -> Vec<(ApiKey, i16, i16)> {
    versions::supported()
        .iter()
        .map(|r| (r.key, r.min, r.max))
        .collect()
}
