//! Byte-level mutations in the AFL/libFuzzer style, aimed at a length-prefixed
//! big-endian protocol: boundary bytes, interesting 16/32/64-bit integers,
//! varints (Kafka's compact lengths and record fields), lengths that are off
//! by one, truncation, insertion, chunk duplication and splicing.

use crate::rng::Rng;

const BYTES: &[u8] = &[0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe];
const I16S: &[i16] = &[0, 1, -1, 0x7f, 0x80, 0xff, 0x100, i16::MAX, i16::MIN, 16];
const I32S: &[i32] = &[
    0,
    1,
    -1,
    -2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xffff,
    0x10000,
    0x7fff_fffe,
    i32::MAX,
    i32::MIN,
    61,
    49,
];
const I64S: &[i64] = &[
    0,
    1,
    -1,
    i64::MAX,
    i64::MIN,
    i32::MAX as i64 + 1,
    i64::MAX - 1,
];
/// Values for unsigned varints; lengths written compact are `n + 1`.
const VARINTS: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0x3fff,
    0x4000,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    u64::MAX,
];

/// Applies a stack of 1, 2, 4 or 8 random mutations to `data`, keeping it
/// at most `max_len` bytes. `other` is another corpus entry, for splicing.
pub fn mutate(data: &mut Vec<u8>, other: &[u8], rng: &mut Rng, max_len: usize) {
    let n = 1usize << rng.below(4);
    for _ in 0..n {
        mutate_once(data, other, rng);
    }
    data.truncate(max_len);
}

fn pos(data: &[u8], rng: &mut Rng) -> usize {
    rng.below(data.len())
}

/// Unsigned LEB128, as Kafka's unsigned varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Zigzag varint, as Kafka's signed record fields.
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn overwrite(data: &mut [u8], at: usize, bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        if let Some(d) = data.get_mut(at + i) {
            *d = *b;
        }
    }
}

fn mutate_once(data: &mut Vec<u8>, other: &[u8], rng: &mut Rng) {
    if data.is_empty() {
        let n = 1 + rng.below(16);
        data.extend((0..n).map(|_| rng.next_u64() as u8));
        return;
    }
    match rng.below(17) {
        0 => {
            let p = pos(data, rng);
            data[p] ^= 1 << rng.below(8);
        }
        1 => {
            let p = pos(data, rng);
            data[p] = rng.pick(BYTES);
        }
        2 => {
            let p = pos(data, rng);
            data[p] = rng.next_u64() as u8;
        }
        3 => {
            let p = pos(data, rng);
            let v = rng.pick(I16S);
            overwrite(data, p, &v.to_be_bytes());
        }
        4 => {
            // A 32-bit field, often a length: interesting values and values
            // relative to what really follows.
            let p = pos(data, rng);
            let rest = (data.len() - p) as i32;
            let v = match rng.below(3) {
                0 => rng.pick(I32S),
                1 => rest - 4 + rng.pick(&[-1, 0, 1]),
                _ => data.len() as i32 + rng.pick(&[-1, 0, 1]),
            };
            overwrite(data, p, &v.to_be_bytes());
        }
        5 => {
            let p = pos(data, rng);
            let v = rng.pick(I64S);
            overwrite(data, p, &v.to_be_bytes());
        }
        6 => {
            // Small arithmetic on a big-endian 8/16/32-bit value.
            let p = pos(data, rng);
            let delta = rng.below(35) as i64 - 17;
            match rng.below(3) {
                0 => data[p] = (data[p] as i64).wrapping_add(delta) as u8,
                1 if p + 2 <= data.len() => {
                    let v = i16::from_be_bytes([data[p], data[p + 1]]).wrapping_add(delta as i16);
                    overwrite(data, p, &v.to_be_bytes());
                }
                _ if p + 4 <= data.len() => {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(&data[p..p + 4]);
                    let v = i32::from_be_bytes(a).wrapping_add(delta as i32);
                    overwrite(data, p, &v.to_be_bytes());
                }
                _ => data[p] = data[p].wrapping_add(1),
            }
        }
        7 => {
            // Replace the varint at a random position with another one,
            // possibly of another length, or a malformed one.
            let p = pos(data, rng);
            let mut end = p;
            while end < data.len() && end - p < 10 && data[end] & 0x80 != 0 {
                end += 1;
            }
            end = (end + 1).min(data.len());
            let mut v = Vec::new();
            match rng.below(5) {
                0 => put_uvarint(&mut v, rng.pick(VARINTS)),
                1 => put_varint(&mut v, rng.pick(I64S)),
                2 => put_varint(&mut v, rng.below(40) as i64 - 20),
                3 => put_uvarint(&mut v, (data.len() - p) as u64 + rng.below(3) as u64),
                // Unterminated or overlong.
                _ => v.extend(std::iter::repeat_n(0xff, 5 + rng.below(6))),
            }
            data.splice(p..end, v);
        }
        8 => {
            let p = pos(data, rng);
            data.truncate(p);
        }
        9 => {
            let p = pos(data, rng);
            let n = 1 + rng.below((data.len() - p).min(64));
            data.drain(p..p + n);
        }
        10 => {
            let p = rng.below(data.len() + 1);
            let n = 1 + rng.below(32);
            let b = if rng.chance(1, 2) {
                rng.pick(BYTES)
            } else {
                rng.next_u64() as u8
            };
            let fill: Vec<u8> = (0..n)
                .map(|_| {
                    if rng.chance(1, 2) {
                        b
                    } else {
                        rng.next_u64() as u8
                    }
                })
                .collect();
            data.splice(p..p, fill);
        }
        11 => {
            // Duplicate a chunk (repeated array elements, repeated frames).
            let p = pos(data, rng);
            let n = 1 + rng.below((data.len() - p).min(256));
            let chunk = data[p..p + n].to_vec();
            let at = rng.below(data.len() + 1);
            data.splice(at..at, chunk);
        }
        12 => {
            // Copy a chunk over another place.
            let p = pos(data, rng);
            let n = 1 + rng.below((data.len() - p).min(64));
            let chunk = data[p..p + n].to_vec();
            let at = pos(data, rng);
            overwrite(data, at, &chunk);
        }
        13 if !other.is_empty() => {
            // Splice: head of this input, tail of another.
            let a = rng.below(data.len() + 1);
            let b = rng.below(other.len());
            data.truncate(a);
            data.extend_from_slice(&other[b..]);
        }
        14 if !other.is_empty() => {
            // Insert a chunk of another input.
            let b = rng.below(other.len());
            let n = 1 + rng.below((other.len() - b).min(256));
            let at = rng.below(data.len() + 1);
            data.splice(at..at, other[b..b + n].iter().copied());
        }
        15 => {
            // A Kafka string/bytes length: i16 or compact, set to -1 (null) or 0.
            let p = pos(data, rng);
            if rng.chance(1, 2) {
                overwrite(data, p, &rng.pick(&[-1i16, 0]).to_be_bytes());
            } else {
                data[p] = rng.pick(&[0u8, 1]);
            }
        }
        _ => {
            let p = pos(data, rng);
            data[p] = data[p].wrapping_sub(1);
        }
    }
}
