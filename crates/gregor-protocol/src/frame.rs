//! Length-prefixed framing, apart from I/O (mini-redis `check`/`parse`).
//!
//! A Kafka frame is an `i32` big-endian length and that many bytes. The
//! length is checked before a single byte of the body is allocated.

use crate::error::ProtocolError;

/// Size of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// Checks a frame's length prefix against the limit. Returns the body length.
pub fn check_length(prefix: [u8; 4], max: usize) -> Result<usize, ProtocolError> {
    let len = i32::from_be_bytes(prefix);
    let Ok(len) = usize::try_from(len) else {
        return Err(ProtocolError::NegativeLength(len));
    };
    if len > max {
        return Err(ProtocolError::FrameTooLarge { len, max });
    }
    Ok(len)
}

/// If `buf` starts with a whole frame, its body length; `Ok(None)` if more
/// bytes are needed.
pub fn check(buf: &[u8], max: usize) -> Result<Option<usize>, ProtocolError> {
    let Some(prefix) = buf.get(..LENGTH_PREFIX) else {
        return Ok(None);
    };
    let mut p = [0u8; 4];
    p.copy_from_slice(prefix);
    let len = check_length(p, max)?;
    Ok((buf.len() >= LENGTH_PREFIX + len).then_some(len))
}
