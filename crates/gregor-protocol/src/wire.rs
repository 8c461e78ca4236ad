//! The few primitives the hand-written response encoders (Fetch, Metadata)
//! share: unsigned varints and array lengths in both the classic and the
//! flexible (compact) forms.

use bytes::{BufMut, BytesMut};

/// Unsigned varint, as flexible versions encode compact lengths.
#[allow(clippy::cast_possible_truncation)] // each byte is masked to 7 bits
pub(crate) fn put_uvarint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8(((v & 0x7f) as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// A length as the wire's INT32. Responses are bounded far below 2 GiB;
/// saturating keeps a bug from wrapping negative.
pub(crate) fn wire_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// An array length: compact (n + 1 as a varint) or INT32.
pub(crate) fn put_array_len(out: &mut BytesMut, flexible: bool, n: usize) {
    if flexible {
        put_uvarint(out, n as u64 + 1);
    } else {
        out.put_i32(wire_i32(n));
    }
}
