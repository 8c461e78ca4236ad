//! One client connection: read frames, decode, dispatch, answer in order.
//!
//! Requests are read and applied one at a time, in order, so their side
//! effects happen in the order the client sent them. A reply that must wait
//! (an acks=all Produce for its fsync, a long-poll Fetch) is queued as a
//! future; a writer task answers the queue in order. This lets a client
//! pipeline acks=all produces on one connection, which Kafka gets by not
//! syncing at all, without ever reordering replies.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use gregor_protocol::frame::check_length;
use gregor_protocol::{decode_request, Decoded};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn, Instrument};

use crate::budget::{Budget, Charge};
use crate::context::Broker;
use crate::error::ConnectionError;
use crate::handler::{self, Pending, Reply};

/// Replies queued per connection before the reader waits for the writer.
const MAX_IN_FLIGHT: usize = 32;

/// A queued reply and the budget its request holds until it is answered.
type Queued = (Pending, Charge);

/// Serves one connection until the client closes it, it misbehaves, it
/// idles past `connections.max.idle.ms`, or the broker shuts down.
///
/// An idle connection holds no buffers: it waits for the socket to become
/// readable before it allocates one, and what stays between requests is
/// the two tasks and the reply queue.
///
/// `node` is the broker id the client connected to; `down` reads true
/// when that (virtual) broker is taken down, which closes the connection.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Broker,
    mut stop: watch::Receiver<bool>,
    node: i32,
    mut down: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let _counted = broker.metrics().connection();
    let (mut rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Queued>(MAX_IN_FLIGHT);
    // Requests read and not yet answered: an idle timeout only closes a
    // connection that is waiting for nothing (a long poll is not idle).
    let in_flight = Arc::new(AtomicUsize::new(0));
    let idle = Duration::from_millis(broker.config().connections_max_idle_ms);
    let writer = tokio::spawn(write_loop(wr, rx, peer, in_flight.clone(), idle).in_current_span());
    let limits = Limits {
        max_frame: broker.config().socket_request_max_bytes,
        idle,
        memory: broker.memory().clone(),
    };
    // Bytes read past the last frame (pipelined requests).
    let mut carry = BytesMut::new();
    debug!("connection opened");
    loop {
        let frame = tokio::select! {
            f = read_frame(&mut rd, &mut carry, &limits, &in_flight) => f,
            _ = stop.changed() => break,
            _ = tx.closed() => break,
            _ = down.wait_for(|d| *d) => {
                debug!(%peer, node, "broker down: closing connection");
                writer.abort();
                break;
            }
        };
        let (frame, charge) = match frame {
            Ok(Some(f)) => f,
            Ok(None) => break,
            // A client going away mid-stream (reset, EOF inside a frame) is
            // routine; a frame we refuse is worth a warning.
            Err(ConnectionError::Io(e)) => {
                debug!(%peer, reason = %e, "connection lost");
                break;
            }
            Err(ConnectionError::Idle(ms)) => {
                debug!(%peer, idle_ms = ms, "closing idle connection");
                break;
            }
            Err(e) => {
                warn!(%peer, reason = %e, "closing connection");
                break;
            }
        };
        let pending = match decode_request(frame) {
            Ok(Decoded::Request(req)) => handler::dispatch(&broker, peer, node, *req).await,
            Ok(Decoded::UnsupportedApiVersions {
                correlation_id,
                version,
            }) => {
                debug!(
                    version,
                    "ApiVersions version unsupported; answering KIP-511 style"
                );
                match gregor_protocol::response::unsupported_api_versions(correlation_id) {
                    Ok(f) => Pending::Now(Reply::Frame(vec![f.freeze()], None)),
                    Err(e) => Pending::Now(Reply::Close(e.to_string())),
                }
            }
            Err(e) => {
                warn!(%peer, reason = %e, "closing connection");
                break;
            }
        };
        in_flight.fetch_add(1, Ordering::AcqRel);
        if tx.send((pending, charge)).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
    debug!("connection closed");
}

/// What bounds reading a frame.
struct Limits {
    /// `socket.request.max.bytes`.
    max_frame: usize,
    /// `connections.max.idle.ms`.
    idle: Duration,
    /// `queued.max.request.bytes`, shared by every connection.
    memory: Budget,
}

/// First buffer step of a frame body: most requests fit, so the common
/// case reads straight into one buffer with no reallocation.
const FIRST_STEP: usize = 1024 * 1024;

/// What one read between frames takes from the socket. A small request
/// (a Produce of one record is about 200 bytes), and often the next few
/// pipelined after it, arrive in one `recv` instead of four or five
/// (prefix byte, rest of the prefix, peek, body, then `EAGAIN`); the read
/// coming back short also tells tokio the socket is drained. That fixed cost
/// is what a request pays alone when a client sends them one at a time, as
/// librdkafka does across many partitions (issue 8).
const HEAD: usize = 16 * 1024;

/// Reads one frame body and the budget it holds. `Ok(None)` on a clean
/// close between frames. `carry` holds bytes read past the previous frame
/// (the start of the next ones); it is empty, and holds no buffer, between
/// frames of a connection that is not pipelining.
///
/// A frame that arrived whole with the read that brought its prefix is
/// copied out of that read. Any other body buffer grows (first
/// [`FIRST_STEP`], then doubling, up to the declared length) only when bytes
/// are there to fill it, and each step is charged to the budget first: a
/// peer that sends only a length prefix, however large, holds nothing, and
/// one that sends a byte holds one step.
async fn read_frame(
    rd: &mut OwnedReadHalf,
    carry: &mut BytesMut,
    limits: &Limits,
    in_flight: &AtomicUsize,
) -> Result<Option<(Bytes, Charge)>, ConnectionError> {
    if carry.is_empty() {
        // Between frames: wait for bytes holding no buffer; idle only
        // counts while nothing is in flight.
        let mut head = BytesMut::new();
        loop {
            let read = async {
                rd.readable().await?;
                head.reserve(HEAD);
                rd.read_buf(&mut head).await
            };
            match tokio::time::timeout(limits.idle, read).await {
                Ok(n) => {
                    if n? == 0 {
                        return Ok(None);
                    }
                    break;
                }
                Err(_) if in_flight.load(Ordering::Acquire) == 0 => {
                    return Err(ConnectionError::Idle(limits.idle.as_millis()))
                }
                Err(_) => continue,
            }
        }
        *carry = head;
    }
    let mut prefix = [0u8; 4];
    if carry.len() >= 4 {
        prefix.copy_from_slice(&carry[..4]);
        carry.advance(4);
    } else {
        // The prefix is split across reads (rare): finish it without
        // holding the read buffer while the peer takes its time.
        let have = carry.len();
        prefix[..have].copy_from_slice(carry);
        *carry = BytesMut::new();
        stalled(limits.idle, rd.read_exact(&mut prefix[have..])).await?;
    }
    let len = check_length(prefix, limits.max_frame)?;
    let mut charge = Charge::default();
    if carry.len() >= len {
        limits.memory.take(len, &mut charge).await;
        // Copied into a buffer of its own: a queued request then holds
        // what it is charged for, not the whole read.
        let frame = Bytes::copy_from_slice(&carry[..len]);
        carry.advance(len);
        if carry.is_empty() {
            *carry = BytesMut::new();
        }
        return Ok(Some((frame, charge)));
    }
    let mut body = Vec::new();
    if !carry.is_empty() {
        // carry.len() < len and < HEAD <= FIRST_STEP: the first step holds it.
        let step = FIRST_STEP.min(len);
        limits.memory.take(step, &mut charge).await;
        body.reserve_exact(step);
        body.extend_from_slice(carry);
    }
    *carry = BytesMut::new();
    while body.len() < len {
        if body.len() == body.capacity() {
            // Wait for bytes without taking them, then make room for them.
            if stalled(limits.idle, rd.peek(&mut [0u8; 1])).await? == 0 {
                return Err(ConnectionError::Io(
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
            let step = body.capacity().max(FIRST_STEP).min(len - body.len());
            limits.memory.take(step, &mut charge).await;
            body.reserve_exact(step);
        }
        let room = (body.capacity() - body.len()).min(len - body.len());
        let n = stalled(
            limits.idle,
            (&mut *rd).take(room as u64).read_buf(&mut body),
        )
        .await?;
        if n == 0 {
            return Err(ConnectionError::Io(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
    }
    Ok(Some((Bytes::from(body), charge)))
}

/// A read inside a frame: a peer that sends nothing for `idle` is closed
/// (slowloris), whatever else is in flight.
async fn stalled<T>(
    idle: Duration,
    io: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, ConnectionError> {
    match tokio::time::timeout(idle, io).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ConnectionError::Stalled(idle.as_millis())),
    }
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Queued>,
    peer: SocketAddr,
    in_flight: Arc<AtomicUsize>,
    idle: Duration,
) {
    while let Some((p, _request_budget)) = rx.recv().await {
        let reply = match p {
            Pending::Now(r) => r,
            Pending::Later(f) => f.await,
        };
        // The request's budget (and a Fetch response's) is released when
        // this iteration ends: once the reply is on the socket.
        let written = match reply {
            // A peer that stops reading is closed like one that stops
            // writing: it would otherwise hold its budget for good.
            Reply::Frame(chunks, _response_budget) => {
                match tokio::time::timeout(idle, write_chunks(&mut wr, &chunks)).await {
                    Ok(r) => r,
                    Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
                }
            }
            Reply::Nothing => Ok(()),
            Reply::Close(reason) => {
                warn!(%peer, %reason, "closing connection");
                break;
            }
        };
        in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Err(e) = written {
            debug!(cause = %e, "write failed");
            break;
        }
    }
    let _ = wr.shutdown().await;
}

/// Writes a response made of several chunks with vectored writes: stored
/// record batches go to the socket without being copied into one buffer.
async fn write_chunks(wr: &mut OwnedWriteHalf, chunks: &[Bytes]) -> std::io::Result<()> {
    if let [one] = chunks {
        return wr.write_all(one).await;
    }
    let (mut idx, mut off) = (0usize, 0usize);
    loop {
        // Skip what is written, including empty chunks (a vectored write of
        // only empty slices would report 0 and look like a dead socket).
        while idx < chunks.len() && off == chunks[idx].len() {
            idx += 1;
            off = 0;
        }
        if idx == chunks.len() {
            return Ok(());
        }
        let mut slices = Vec::with_capacity((chunks.len() - idx).min(64));
        slices.push(IoSlice::new(&chunks[idx][off..]));
        slices.extend(chunks[idx + 1..].iter().take(63).map(|c| IoSlice::new(c)));
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 && idx < chunks.len() {
            let left = chunks[idx].len() - off;
            if n >= left {
                n -= left;
                idx += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

    use super::*;
    use tokio::net::TcpListener;

    const MAX_FRAME: usize = 8 << 20;
    const BUDGET: usize = 64 << 20;

    fn limits() -> Limits {
        Limits {
            max_frame: MAX_FRAME,
            idle: Duration::from_secs(30),
            memory: Budget::new(BUDGET),
        }
    }

    /// A connected pair: the client's stream and the server's read half
    /// (its write half is returned too, to keep the socket open).
    async fn pair() -> (TcpStream, OwnedReadHalf, OwnedWriteHalf) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        client.set_nodelay(true).unwrap();
        let (server, _) = l.accept().await.unwrap();
        let (rd, wr) = server.into_split();
        (client, rd, wr)
    }

    /// Frame bodies of these sizes, each filled with a byte of its own.
    fn bodies(sizes: &[usize]) -> Vec<Vec<u8>> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| ((i * 31 + j) % 251) as u8).collect())
            .collect()
    }

    fn framed(bodies: &[Vec<u8>]) -> Vec<u8> {
        let mut wire = Vec::new();
        for b in bodies {
            let len = i32::try_from(b.len()).unwrap();
            wire.extend_from_slice(&len.to_be_bytes());
            wire.extend_from_slice(b);
        }
        wire
    }

    /// Reads frames until the client closes; checks each against `want`
    /// and that a frame's charge is its length while it is held.
    async fn read_all(rd: &mut OwnedReadHalf, want: &[Vec<u8>]) {
        let limits = limits();
        let in_flight = AtomicUsize::new(0);
        let mut carry = BytesMut::new();
        for (i, w) in want.iter().enumerate() {
            let (frame, charge) = read_frame(rd, &mut carry, &limits, &in_flight)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("connection closed before frame {i}"));
            assert_eq!(frame.len(), w.len(), "frame {i} length");
            assert!(frame[..] == w[..], "frame {i} bytes");
            // Small frames are charged exactly; large ones by whole steps.
            let charged = BUDGET - limits.memory.available();
            if w.len() < HEAD {
                assert_eq!(charged, w.len(), "frame {i} charge");
            } else {
                assert!(charged >= w.len(), "frame {i} charged {charged}");
            }
            drop(charge);
            assert_eq!(limits.memory.available(), BUDGET, "frame {i} released");
        }
        assert!(read_frame(rd, &mut carry, &limits, &in_flight)
            .await
            .unwrap()
            .is_none());
        assert!(carry.is_empty());
    }

    // Around every boundary the reader has: empty, tiny, one read (HEAD),
    // the first budget step, and beyond it.
    const SIZES: &[usize] = &[
        0,
        1,
        3,
        200,
        HEAD - 5,
        HEAD - 4,
        HEAD - 3,
        HEAD,
        HEAD + 1,
        7,
        FIRST_STEP + 3,
        2,
        3 * HEAD,
        0,
        9,
    ];

    #[tokio::test]
    async fn pipelined_frames_sent_in_one_write_come_out_one_by_one() {
        let (mut client, mut rd, _wr) = pair().await;
        let want = bodies(SIZES);
        let wire = framed(&want);
        let send = tokio::spawn(async move {
            client.write_all(&wire).await.unwrap();
        });
        read_all(&mut rd, &want).await;
        send.await.unwrap();
    }

    #[tokio::test]
    async fn frames_cut_anywhere_between_reads_come_out_whole() {
        let (mut client, mut rd, _wr) = pair().await;
        let want = bodies(SIZES);
        let wire = framed(&want);
        // Writes of 1, 2, 3, ... bytes (then big ones): cuts land inside
        // prefixes, inside bodies and on boundaries.
        let send = tokio::spawn(async move {
            let mut at = 0;
            let mut n = 1;
            while at < wire.len() {
                let end = (at + n).min(wire.len());
                client.write_all(&wire[at..end]).await.unwrap();
                at = end;
                n = if n < 64 { n + 1 } else { n * 2 };
            }
        });
        read_all(&mut rd, &want).await;
        send.await.unwrap();
    }

    #[tokio::test]
    async fn a_close_inside_a_frame_is_an_error_not_a_clean_end() {
        for cut in [2, 4 + 10] {
            let (mut client, mut rd, _wr) = pair().await;
            let wire = framed(&bodies(&[100]));
            client.write_all(&wire[..cut]).await.unwrap();
            drop(client);
            let r = read_frame(
                &mut rd,
                &mut BytesMut::new(),
                &limits(),
                &AtomicUsize::new(0),
            )
            .await;
            assert!(
                matches!(r, Err(ConnectionError::Io(_))),
                "cut at {cut}: {:?}",
                r.map(|f| f.map(|(b, _)| b.len()))
            );
        }
    }
}
