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

use bytes::Bytes;
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
/// An idle connection holds no buffers: frames are read straight from the
/// socket into a body sized by the (checked) length prefix, so what stays
/// between requests is the two tasks and the reply queue.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Broker,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
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
    debug!("connection opened");
    loop {
        let frame = tokio::select! {
            f = read_frame(&mut rd, &limits, &in_flight) => f,
            _ = stop.changed() => break,
            _ = tx.closed() => break,
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
            Ok(Decoded::Request(req)) => handler::dispatch(&broker, peer, *req).await,
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

/// Reads one frame body and the budget it holds. `Ok(None)` on a clean
/// close between frames.
///
/// The body buffer grows (first [`FIRST_STEP`], then doubling, up to the
/// declared length) only when bytes are there to fill it, and each step is
/// charged to the budget first: a peer that sends only a length prefix,
/// however large, holds nothing, and one that sends a byte holds one step.
async fn read_frame(
    rd: &mut OwnedReadHalf,
    limits: &Limits,
    in_flight: &AtomicUsize,
) -> Result<Option<(Bytes, Charge)>, ConnectionError> {
    let mut prefix = [0u8; 4];
    // Between frames: idle only counts while nothing is in flight.
    loop {
        match tokio::time::timeout(limits.idle, rd.read(&mut prefix[..1])).await {
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
    stalled(limits.idle, rd.read_exact(&mut prefix[1..])).await?;
    let len = check_length(prefix, limits.max_frame)?;
    let mut charge = Charge::default();
    let mut body = Vec::new();
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
