//! A hand-encoded Fetch response, v4–12, whose record sections are the
//! stored batch bytes themselves: the frame is a list of chunks written with
//! vectored I/O, so records are never copied through the codec (which
//! re-encodes and copies `records`).

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::{put_array_len, put_uvarint, wire_i32};

/// One partition of a Fetch response.
#[derive(Debug, Clone, Default)]
pub struct FetchPartition {
    /// Partition index.
    pub partition: i32,
    /// Error code for this partition.
    pub error_code: i16,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset (= high watermark without transactions).
    pub last_stable_offset: i64,
    /// Log start offset.
    pub log_start_offset: i64,
    /// Stored batches, served as they are.
    pub records: Vec<Bytes>,
    /// Aborted transactions overlapping the records, as (producer id,
    /// first offset); `None` encodes null (read_uncommitted).
    pub aborted: Option<Vec<(i64, i64)>>,
    /// KIP-951 (v12+, tagged): (leader id, leader epoch) of a partition
    /// answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH.
    pub current_leader: Option<(i32, i32)>,
}

/// One topic of a Fetch response.
#[derive(Debug, Clone, Default)]
pub struct FetchTopic {
    /// Topic name.
    pub name: String,
    /// Its partitions, in request order.
    pub partitions: Vec<FetchPartition>,
}

/// The top level of a Fetch response.
#[derive(Debug, Clone, Default)]
pub struct FetchResponseParts {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Top-level error (v7+).
    pub error_code: i16,
    /// Fetch session id (v7+), 0 for none.
    pub session_id: i32,
    /// Topics, in request order.
    pub topics: Vec<FetchTopic>,
}

/// First flexible (compact, tagged) Fetch version.
const FLEXIBLE: i16 = 12;

/// Encodes the response frame (length prefix and response header included)
/// as chunks to be written in order.
pub fn encode_fetch_response(
    correlation_id: i32,
    version: i16,
    r: &FetchResponseParts,
) -> Vec<Bytes> {
    let flexible = version >= FLEXIBLE;
    let mut chunks = Vec::new();
    let mut cur = BytesMut::with_capacity(128);
    let mut total = 0usize;
    cur.put_i32(0); // length, patched below
    cur.put_i32(correlation_id);
    if flexible {
        put_uvarint(&mut cur, 0); // response header v1 tagged fields
    }
    cur.put_i32(r.throttle_time_ms);
    if version >= 7 {
        cur.put_i16(r.error_code);
        cur.put_i32(r.session_id);
    }
    put_array_len(&mut cur, flexible, r.topics.len());
    for t in &r.topics {
        if flexible {
            put_uvarint(&mut cur, t.name.len() as u64 + 1);
        } else {
            cur.put_i16(i16::try_from(t.name.len()).unwrap_or(i16::MAX));
        }
        cur.put_slice(t.name.as_bytes());
        put_array_len(&mut cur, flexible, t.partitions.len());
        for p in &t.partitions {
            cur.put_i32(p.partition);
            cur.put_i16(p.error_code);
            cur.put_i64(p.high_watermark);
            cur.put_i64(p.last_stable_offset);
            if version >= 5 {
                cur.put_i64(p.log_start_offset);
            }
            match &p.aborted {
                None if flexible => put_uvarint(&mut cur, 0),
                None => cur.put_i32(-1),
                Some(list) => {
                    put_array_len(&mut cur, flexible, list.len());
                    for (producer_id, first_offset) in list {
                        cur.put_i64(*producer_id);
                        cur.put_i64(*first_offset);
                        if flexible {
                            put_uvarint(&mut cur, 0);
                        }
                    }
                }
            }
            if version >= 11 {
                cur.put_i32(-1); // preferred_read_replica
            }
            let len: usize = p.records.iter().map(Bytes::len).sum();
            if flexible {
                put_uvarint(&mut cur, len as u64 + 1);
            } else {
                cur.put_i32(wire_i32(len));
            }
            for rec in &p.records {
                total += cur.len();
                chunks.push(cur.split().freeze());
                total += rec.len();
                chunks.push(rec.clone());
            }
            match (flexible, p.current_leader) {
                (true, Some((leader, epoch))) => {
                    // One tagged field: tag 1 (CurrentLeader), 9 bytes.
                    put_uvarint(&mut cur, 1);
                    put_uvarint(&mut cur, 1);
                    put_uvarint(&mut cur, 9);
                    cur.put_i32(leader);
                    cur.put_i32(epoch);
                    put_uvarint(&mut cur, 0);
                }
                (true, None) => put_uvarint(&mut cur, 0), // partition tagged fields
                (false, _) => {}
            }
        }
        if flexible {
            put_uvarint(&mut cur, 0); // topic tagged fields
        }
    }
    if flexible {
        put_uvarint(&mut cur, 0); // top-level tagged fields
    }
    total += cur.len();
    chunks.push(cur.freeze());
    let frame_len = wire_i32(total - 4).to_be_bytes();
    // The length sits in the first chunk, which is always ours.
    let mut first = BytesMut::from(&chunks[0][..]);
    first[..4].copy_from_slice(&frame_len);
    chunks[0] = first.freeze();
    chunks
}
