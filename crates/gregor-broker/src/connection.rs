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

use bytes::Bytes;
use gregor_protocol::frame::check_length;
use gregor_protocol::{decode_request, Decoded};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn, Instrument};

use crate::context::Broker;
use crate::error::ConnectionError;
use crate::handler::{self, Pending, Reply};

/// Replies queued per connection before the reader waits for the writer.
const MAX_IN_FLIGHT: usize = 32;
/// First allocation for a frame body; larger frames grow as bytes arrive,
/// so a length prefix alone never reserves memory.
const INITIAL_FRAME_ALLOC: usize = 1024 * 1024;

/// Serves one connection until the client closes it, it misbehaves, or the
/// broker shuts down.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Broker,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let (tx, rx) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_loop(wr, rx, peer).in_current_span());
    let max = broker.config().socket_request_max_bytes;
    debug!("connection opened");
    loop {
        let frame = tokio::select! {
            f = read_frame(&mut rd, max) => f,
            _ = stop.changed() => break,
            _ = tx.closed() => break,
        };
        let frame = match frame {
            Ok(Some(f)) => f,
            Ok(None) => break,
            // A client going away mid-stream (reset, EOF inside a frame) is
            // routine; a frame we refuse is worth a warning.
            Err(ConnectionError::Io(e)) => {
                debug!(%peer, reason = %e, "connection lost");
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
                    Ok(f) => Pending::Now(Reply::Frame(vec![f.freeze()])),
                    Err(e) => Pending::Now(Reply::Close(e.to_string())),
                }
            }
            Err(e) => {
                warn!(%peer, reason = %e, "closing connection");
                break;
            }
        };
        if tx.send(pending).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
    debug!("connection closed");
}

/// Reads one frame body. `Ok(None)` on a clean close between frames.
async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    max: usize,
) -> Result<Option<Bytes>, ConnectionError> {
    let mut prefix = [0u8; 4];
    if rd.read(&mut prefix[..1]).await? == 0 {
        return Ok(None);
    }
    rd.read_exact(&mut prefix[1..]).await?;
    let len = check_length(prefix, max)?;
    let mut body = Vec::with_capacity(len.min(INITIAL_FRAME_ALLOC));
    (&mut *rd).take(len as u64).read_to_end(&mut body).await?;
    if body.len() != len {
        return Err(ConnectionError::Io(
            std::io::ErrorKind::UnexpectedEof.into(),
        ));
    }
    Ok(Some(Bytes::from(body)))
}

async fn write_loop(mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Pending>, peer: SocketAddr) {
    while let Some(p) = rx.recv().await {
        let reply = match p {
            Pending::Now(r) => r,
            Pending::Later(f) => f.await,
        };
        match reply {
            Reply::Frame(chunks) => {
                if let Err(e) = write_chunks(&mut wr, &chunks).await {
                    debug!(cause = %e, "write failed");
                    break;
                }
            }
            Reply::Nothing => {}
            Reply::Close(reason) => {
                warn!(%peer, %reason, "closing connection");
                break;
            }
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
