//! Bounded, streaming decompression of a record batch's records.
//!
//! A client can send a few hundred KB that inflate to gigabytes (a
//! "decompression bomb"). Nothing here inflates a batch into one buffer:
//! every codec is read as a stream, and the stream fails once it has
//! produced more than a caller-given number of bytes.

use std::io::{self, BufRead, BufReader, Read};

use crate::error::BatchError;

/// How much larger than the largest batch a topic accepts
/// (`max.message.bytes`) a compressed batch may inflate. Clients size
/// their batches before compressing (librdkafka `batch.size` 1 MB, Java 16
/// KiB, a single Java record at most `max.request.size`), so real batches
/// stay far below 32x; bombs inflate thousands of times.
pub const INFLATE_FACTOR: usize = 32;

/// The cap on a batch's inflated records for a topic whose
/// `max.message.bytes` is `max_message_bytes`.
pub fn inflate_limit(max_message_bytes: i64) -> usize {
    usize::try_from(max_message_bytes.max(1))
        .unwrap_or(usize::MAX)
        .saturating_mul(INFLATE_FACTOR)
}

/// Buffer between a decoder and the record parser.
const STREAM_BUF: usize = 16 * 1024;

/// Xerial snappy framing (snappy-java's `SnappyOutputStream`), which Kafka
/// and librdkafka write: magic, version and compatible version.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

/// Fails the read once more than `left` bytes came out of the decoder.
struct Capped<R> {
    inner: R,
    left: usize,
    limit: usize,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for one byte more than allowed so that reaching the cap
        // exactly is fine and passing it is seen.
        let want = buf.len().min(self.left.saturating_add(1));
        if want == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        if n > self.left {
            return Err(io::Error::other(OverCap(self.limit)));
        }
        self.left -= n;
        Ok(n)
    }
}

/// The error a [`Capped`] stream fails with, recognised by [`map_io`].
#[derive(Debug)]
struct OverCap(usize);

impl std::fmt::Display for OverCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "records inflate beyond {} bytes", self.0)
    }
}
impl std::error::Error for OverCap {}

/// Maps a stream error to the batch error Kafka's answer follows.
pub(crate) fn map_io(e: io::Error) -> BatchError {
    if let Some(cap) = e.get_ref().and_then(|i| i.downcast_ref::<OverCap>()) {
        return BatchError::InflatedTooLarge { limit: cap.0 };
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return BatchError::Records("record stream ends early".into());
    }
    BatchError::Decompress(e.to_string())
}

/// Snappy as Kafka writes it: xerial-framed blocks, or (older clients) one
/// raw snappy block. Each block's declared length is checked against what
/// is left of the cap before anything is allocated for it.
struct SnappyReader<'a> {
    input: &'a [u8],
    framed: bool,
    block: Vec<u8>,
    pos: usize,
    left: usize,
    limit: usize,
}

impl<'a> SnappyReader<'a> {
    fn new(input: &'a [u8], limit: usize) -> SnappyReader<'a> {
        let framed = input.len() >= XERIAL_HEADER_LEN && input.starts_with(XERIAL_MAGIC);
        SnappyReader {
            input: if framed {
                &input[XERIAL_HEADER_LEN..]
            } else {
                input
            },
            framed,
            block: Vec::new(),
            pos: 0,
            left: limit,
            limit,
        }
    }

    /// Decodes the next block into `self.block`; false at the end.
    fn next_block(&mut self) -> io::Result<bool> {
        if self.input.is_empty() {
            return Ok(false);
        }
        let compressed = if self.framed {
            let Some((len, rest)) = self.input.split_first_chunk::<4>() else {
                return Err(io::Error::other("snappy block length truncated"));
            };
            let len = u32::from_be_bytes(*len) as usize;
            if len > rest.len() {
                return Err(io::Error::other("snappy block truncated"));
            }
            let (block, rest) = rest.split_at(len);
            self.input = rest;
            block
        } else {
            std::mem::take(&mut self.input)
        };
        let n = snap::raw::decompress_len(compressed).map_err(io::Error::other)?;
        if n > self.left {
            return Err(io::Error::other(OverCap(self.limit)));
        }
        self.left -= n;
        self.block.clear();
        self.block.resize(n, 0);
        snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(io::Error::other)?;
        self.pos = 0;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A buffered stream of the records of a batch with codec `codec`, which
/// fails once it has inflated more than `limit` bytes.
pub(crate) fn records_stream<'a>(
    codec: i16,
    compressed: &'a [u8],
    limit: usize,
) -> Result<Box<dyn BufRead + 'a>, BatchError> {
    fn capped<'a, R: Read + 'a>(r: R, limit: usize) -> Box<dyn BufRead + 'a> {
        Box::new(BufReader::with_capacity(
            STREAM_BUF,
            Capped {
                inner: r,
                left: limit,
                limit,
            },
        ))
    }
    Ok(match codec {
        0 => Box::new(compressed),
        // Java's GZIPInputStream reads concatenated members; so does this.
        1 => capped(flate2::read::MultiGzDecoder::new(compressed), limit),
        2 => capped(SnappyReader::new(compressed, limit), limit),
        3 => capped(
            lz4::Decoder::new(compressed).map_err(|e| BatchError::Decompress(e.to_string()))?,
            limit,
        ),
        // The streaming decoder never sizes a buffer from the frame's
        // declared content size; its window is capped by zstd's default
        // limit (2^27).
        4 => capped(
            zstd::stream::read::Decoder::with_buffer(compressed)
                .map_err(|e| BatchError::Decompress(e.to_string()))?,
            limit,
        ),
        other => return Err(BatchError::UnknownCompression(other)),
    })
}
