//! Every key the store writes, in one place.
//!
//! All of it lives in ONE ordered keyspace (one sled tree): a one-byte tag,
//! then fixed-width big-endian fields, so that byte order is numeric order
//! and one partition's entries are one contiguous range. Record batches are
//! not here: they live in segment files ([`crate::segment`]).
//!
//! | tag | key                                   | value                                   |
//! |-----|---------------------------------------|-----------------------------------------|
//! | `R` | log id u32                            | checkpoint: log start, recovery point, segments |
//! | `X` | log id u32, offset u64                | offset index: segment base u64, position u64 |
//! | `W` | log id u32, max ts (sign-flipped u64) | time index: base offset u64 of the batch that set it |
//! | `P` | log id u32, producer id u64           | producer state snapshot ([`crate::producer`]) |
//! | `A` | log id u32, last offset u64           | aborted transaction: producer id i64, first offset i64 |
//! | `Y` | transactional id                      | transaction coordinator state (the broker's encoding) |
//! | `M` | `t` topic name                        | topic JSON                              |
//! | `M` | `c` counter name                      | counter i64                             |
//! | `M` | `v`                                   | on-disk format version                  |
//! | `M` | `k`                                   | present while the store is cleanly closed |
//! | `M` | `x` name                              | broker values: cluster id, dynamic broker configs (JSON) |
//! | `O` | len u16, group, len u16, topic, partition (sign-flipped u32) | committed offset |
//! | `D` | log id u32                            | directory of a deleted partition, awaiting purge |
//!
//! The log id is a store-wide partition number from a persisted counter,
//! never reused, so a recreated topic can never see the old topic's keys.
//! (Not Kafka's producer id, which is `P`'s second field.)
//!
//! Format 1 (before segment files) kept batches under `L`, a summary under
//! `I`, a time index under `T` and the log start under `M s`; opening such a
//! store migrates it ([`crate::migrate`]).

/// Per-partition checkpoint.
pub const CHECKPOINT: u8 = b'R';
/// Sparse offset index.
pub const INDEX: u8 = b'X';
/// Sparse time index.
pub const TIME: u8 = b'W';
/// Producer state for idempotence.
pub const PRODUCER: u8 = b'P';
/// Aborted-transaction index (Kafka's `.txnindex`), keyed by the offset of
/// the ABORT marker.
pub const ABORTED: u8 = b'A';
/// Transaction coordinator state.
pub const TXN: u8 = b'Y';
/// Metadata.
pub const META: u8 = b'M';
/// Committed group offsets.
pub const OFFSETS: u8 = b'O';
/// Partitions of deleted topics that still have data to purge.
pub const DELETED: u8 = b'D';

/// Format 1 tags, removed by the migration.
pub const V1_LOG: u8 = b'L';
/// Format 1 batch summaries.
pub const V1_INDEX: u8 = b'I';
/// Format 1 time index.
pub const V1_TIME: u8 = b'T';

/// Tags that hold per-partition data (everything a purge removes).
pub const PARTITION_TAGS: [u8; 5] = [CHECKPOINT, INDEX, TIME, PRODUCER, ABORTED];

/// Current on-disk format version, stored under `M v`.
pub const FORMAT_VERSION: &[u8] = b"2";
/// Format 1: batches in sled.
pub const FORMAT_V1: &[u8] = b"1";

/// `M x <name>`: a named value of the broker's (cluster id, dynamic
/// broker configs).
pub fn meta_value_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + name.len());
    k.push(META);
    k.push(b'x');
    k.extend_from_slice(name.as_bytes());
    k
}

/// `Y <id>`: one transactional id's coordinator state.
pub fn txn_key(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(TXN);
    k.extend_from_slice(id.as_bytes());
    k
}

/// `A lid last_offset`.
pub fn aborted_key(lid: u32, last_offset: i64) -> Vec<u8> {
    offset_key(ABORTED, lid, last_offset)
}

/// `i64` that sorts like its numeric value when compared as big-endian bytes.
pub fn flip_i64(v: i64) -> [u8; 8] {
    // Flipping the sign bit maps i64 order onto unsigned byte order.
    (v ^ i64::MIN).to_be_bytes()
}

/// Inverse of [`flip_i64`].
pub fn unflip_i64(b: [u8; 8]) -> i64 {
    i64::from_be_bytes(b) ^ i64::MIN
}

fn tag_lid(tag: u8, lid: u32, extra: usize) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + extra);
    k.push(tag);
    k.extend_from_slice(&lid.to_be_bytes());
    k
}

/// `[tag lid]`: the prefix of one partition's entries under `tag`.
pub fn partition_prefix(tag: u8, lid: u32) -> Vec<u8> {
    tag_lid(tag, lid, 0)
}

/// `R lid`.
pub fn checkpoint_key(lid: u32) -> Vec<u8> {
    partition_prefix(CHECKPOINT, lid)
}

/// Log id of an `R`, `X`, `W`, `P` or `D` key.
pub fn lid_of(key: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(key.get(1..5)?.try_into().ok()?))
}

/// `tag lid offset` (`X`, and format 1's `L`/`I`). Offsets are never negative.
pub fn offset_key(tag: u8, lid: u32, offset: i64) -> Vec<u8> {
    let mut k = tag_lid(tag, lid, 8);
    k.extend_from_slice(&offset.max(0).to_be_bytes());
    k
}

/// Offset field of an `X` (or `L`/`I`/`P`) key.
pub fn offset_of(key: &[u8]) -> Option<i64> {
    let b: [u8; 8] = key.get(5..13)?.try_into().ok()?;
    Some(i64::from_be_bytes(b))
}

/// `W lid ts`.
pub fn time_key(lid: u32, ts: i64) -> Vec<u8> {
    let mut k = tag_lid(TIME, lid, 8);
    k.extend_from_slice(&flip_i64(ts));
    k
}

/// The timestamp of a `W` key.
pub fn time_of(key: &[u8]) -> Option<i64> {
    let ts: [u8; 8] = key.get(5..13)?.try_into().ok()?;
    Some(unflip_i64(ts))
}

/// `P lid producer_id`.
pub fn producer_key(lid: u32, producer_id: i64) -> Vec<u8> {
    offset_key(PRODUCER, lid, producer_id)
}

/// The first key after every key that starts with `prefix` (exclusive end of
/// a prefix scan), or `None` if there is none (prefix of all 0xff).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// `[from, to)` covering every key starting with `prefix`.
pub fn prefix_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    // No tag is 0xff, so a prefix always has an end.
    let end = prefix_end(prefix).unwrap_or_else(|| vec![0xff; prefix.len() + 1]);
    (prefix.to_vec(), end)
}

/// `M t name`.
pub fn topic_key(name: &str) -> Vec<u8> {
    let mut k = vec![META, b't'];
    k.extend_from_slice(name.as_bytes());
    k
}

/// Prefix of every topic key.
pub fn topic_prefix() -> Vec<u8> {
    vec![META, b't']
}

/// `M s lid`: format 1's log start offset of a partition.
pub fn v1_log_start_key(lid: u32) -> Vec<u8> {
    let mut k = vec![META, b's'];
    k.extend_from_slice(&lid.to_be_bytes());
    k
}

/// `M k`: written by a clean close, removed by the next open.
pub fn clean_key() -> Vec<u8> {
    vec![META, b'k']
}

/// `M c name`: a persisted counter.
pub fn counter_key(name: &str) -> Vec<u8> {
    let mut k = vec![META, b'c'];
    k.extend_from_slice(name.as_bytes());
    k
}

/// `M v`.
pub fn format_key() -> Vec<u8> {
    vec![META, b'v']
}

/// `D lid`.
pub fn deleted_key(lid: u32) -> Vec<u8> {
    partition_prefix(DELETED, lid)
}

fn push_str16(k: &mut Vec<u8>, s: &str) {
    // Kafka strings are at most i16::MAX bytes, so u16 always fits; clamp anyway.
    let b = s.as_bytes();
    let len = u16::try_from(b.len()).unwrap_or(u16::MAX);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(&b[..usize::from(len)]);
}

/// `O len group`: prefix of one group's committed offsets.
pub fn group_prefix(group: &str) -> Vec<u8> {
    let mut k = vec![OFFSETS];
    push_str16(&mut k, group);
    k
}

/// `O len group len topic partition`.
pub fn offset_commit_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut k = group_prefix(group);
    push_str16(&mut k, topic);
    k.extend_from_slice(&(partition ^ i32::MIN).to_be_bytes());
    k
}

fn read_str16(b: &[u8], at: usize) -> Option<(String, usize)> {
    let len = usize::from(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?));
    let s = b.get(at + 2..at + 2 + len)?;
    Some((String::from_utf8(s.to_vec()).ok()?, at + 2 + len))
}

/// (group, topic, partition) of an `O` key.
pub fn parse_offset_commit_key(k: &[u8]) -> Option<(String, String, i32)> {
    if k.first() != Some(&OFFSETS) {
        return None;
    }
    let (group, at) = read_str16(k, 1)?;
    let (topic, at) = read_str16(k, at)?;
    let p: [u8; 4] = k.get(at..at + 4)?.try_into().ok()?;
    if k.len() != at + 4 {
        return None;
    }
    Some((group, topic, i32::from_be_bytes(p) ^ i32::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipped_timestamps_sort_numerically() {
        let ts = [i64::MIN, -5, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        for w in ts.windows(2) {
            assert!(flip_i64(w[0]) < flip_i64(w[1]));
            assert_eq!(unflip_i64(flip_i64(w[0])), w[0]);
        }
    }

    #[test]
    fn offset_commit_keys_round_trip_and_group_by_prefix() {
        let k = offset_commit_key("g", "topic", -3);
        assert_eq!(
            parse_offset_commit_key(&k),
            Some(("g".into(), "topic".into(), -3))
        );
        assert!(k.starts_with(&group_prefix("g")));
        // "g" and "g2" must not share a prefix: the length comes first.
        assert!(!offset_commit_key("g2", "t", 0).starts_with(&group_prefix("g")));
        assert!(offset_commit_key("g", "t", 1) < offset_commit_key("g", "t", 2));
    }

    #[test]
    fn prefix_end_carries() {
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
