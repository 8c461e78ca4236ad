//! Idempotent producer state, per (producer id, partition), with Kafka's
//! `ProducerStateManager` rules: the producer epoch plus the last five
//! batches' sequence ranges, so that a retried batch is recognised and
//! answered with its original offset instead of being written twice.

use std::collections::VecDeque;

use gregor_protocol::records::BatchHeader;

use crate::error::{Result, StorageError};

/// Batches remembered per producer (Kafka's `NUM_BATCHES_TO_RETAIN`; clients
/// allow at most 5 in flight, so a retry is always among them).
pub(crate) const BATCHES_TO_RETAIN: usize = 5;

/// One remembered batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub(crate) first_seq: i32,
    pub(crate) last_seq: i32,
    pub(crate) base_offset: i64,
    pub(crate) last_offset_delta: i32,
}

/// What a partition knows about one producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProducerState {
    pub(crate) epoch: i16,
    /// Max timestamp of the last batch (Kafka's `lastTimestamp`), for expiry.
    pub(crate) last_timestamp: i64,
    /// Oldest first, at most [`BATCHES_TO_RETAIN`]; empty after a marker
    /// that bumped the epoch.
    pub(crate) batches: VecDeque<BatchMeta>,
    /// First offset of the producer's open transaction on this partition,
    /// -1 when none (Kafka's `currentTxnFirstOffset`): what holds the LSO.
    pub(crate) txn_first_offset: i64,
    /// Coordinator epoch of the last marker, -1 before any (Kafka reports
    /// it in DescribeProducers).
    pub(crate) coordinator_epoch: i32,
}

/// Outcome of checking a batch against the producer's state.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Write it.
    Append,
    /// A retry of a batch already written at this base offset.
    Duplicate(i64),
}

/// Sequence after `seq`, wrapping at `i32::MAX` like Kafka.
fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// Checks an idempotent batch (`producer_id >= 0`) against `state`.
pub(crate) fn check(state: Option<&ProducerState>, h: &BatchHeader) -> Result<Check> {
    let Some(s) = state else {
        // Unknown producer (new, or its state expired): accept any sequence.
        return Ok(Check::Append);
    };
    if h.producer_epoch < s.epoch {
        return Err(StorageError::InvalidProducerEpoch {
            current: s.epoch,
            got: h.producer_epoch,
        });
    }
    if h.producer_epoch > s.epoch {
        // A bumped epoch restarts the sequence.
        if h.base_sequence != 0 {
            return Err(StorageError::OutOfOrderSequence {
                expected: 0,
                got: h.base_sequence,
            });
        }
        return Ok(Check::Append);
    }
    let last_seq = h.last_sequence();
    if let Some(dup) = s
        .batches
        .iter()
        .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
    {
        return Ok(Check::Duplicate(dup.base_offset));
    }
    let expected = s.batches.back().map(|b| next_seq(b.last_seq)).unwrap_or(0);
    if h.base_sequence != expected {
        return Err(StorageError::OutOfOrderSequence {
            expected,
            got: h.base_sequence,
        });
    }
    Ok(Check::Append)
}

/// The state after appending `h` (already checked) at `base_offset`.
pub(crate) fn updated(
    state: Option<&ProducerState>,
    h: &BatchHeader,
    base_offset: i64,
) -> ProducerState {
    let mut next = match state {
        Some(s) if s.epoch == h.producer_epoch => s.clone(),
        _ => ProducerState {
            epoch: h.producer_epoch,
            last_timestamp: h.max_timestamp,
            batches: VecDeque::new(),
            // An open transaction outlives an epoch change: only its
            // marker closes it.
            txn_first_offset: state.map_or(-1, |s| s.txn_first_offset),
            coordinator_epoch: state.map_or(-1, |s| s.coordinator_epoch),
        },
    };
    next.last_timestamp = h.max_timestamp;
    next.batches.push_back(BatchMeta {
        first_seq: h.base_sequence,
        last_seq: h.last_sequence(),
        base_offset,
        last_offset_delta: h.last_offset_delta,
    });
    while next.batches.len() > BATCHES_TO_RETAIN {
        next.batches.pop_front();
    }
    if h.is_transactional() && next.txn_first_offset < 0 {
        next.txn_first_offset = base_offset;
    }
    next
}

/// Checks a transaction marker (control batch) against `state`: a marker
/// from an older epoch than the producer's is refused, as Kafka's
/// `appendEndTxnMarker` does.
pub(crate) fn check_marker(state: Option<&ProducerState>, h: &BatchHeader) -> Result<()> {
    match state {
        Some(s) if h.producer_epoch < s.epoch => Err(StorageError::InvalidProducerEpoch {
            current: s.epoch,
            got: h.producer_epoch,
        }),
        _ => Ok(()),
    }
}

/// The state after a marker at `offset`; returns the closed transaction's
/// first offset, if one was open.
pub(crate) fn after_marker(
    state: Option<&ProducerState>,
    h: &BatchHeader,
) -> (ProducerState, Option<i64>) {
    let mut next = state.cloned().unwrap_or(ProducerState {
        epoch: h.producer_epoch,
        last_timestamp: h.max_timestamp,
        batches: VecDeque::new(),
        txn_first_offset: -1,
        coordinator_epoch: -1,
    });
    // Gregor's markers all carry coordinator epoch 0 (one coordinator).
    next.coordinator_epoch = 0;
    if next.epoch != h.producer_epoch {
        // A bumped epoch (transaction version 2) restarts the sequences.
        next.epoch = h.producer_epoch;
        next.batches.clear();
    }
    next.last_timestamp = h.max_timestamp;
    let first = (next.txn_first_offset >= 0).then_some(next.txn_first_offset);
    next.txn_first_offset = -1;
    (next, first)
}

const ENTRY_LEN: usize = 20;
const HEAD_LEN: usize = 11;

impl ProducerState {
    /// `epoch i16, last_timestamp i64, n u8, n × (first i32, last i32, base
    /// i64, delta i32), txn_first_offset i64, coordinator_epoch i32` (the
    /// last two are absent in snapshots written before transactions).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEAD_LEN + ENTRY_LEN * self.batches.len());
        v.extend_from_slice(&self.epoch.to_be_bytes());
        v.extend_from_slice(&self.last_timestamp.to_be_bytes());
        // At most five batches are kept (Kafka's window), so this fits.
        v.push(u8::try_from(self.batches.len()).unwrap_or(u8::MAX));
        for b in &self.batches {
            v.extend_from_slice(&b.first_seq.to_be_bytes());
            v.extend_from_slice(&b.last_seq.to_be_bytes());
            v.extend_from_slice(&b.base_offset.to_be_bytes());
            v.extend_from_slice(&b.last_offset_delta.to_be_bytes());
        }
        v.extend_from_slice(&self.txn_first_offset.to_be_bytes());
        v.extend_from_slice(&self.coordinator_epoch.to_be_bytes());
        v
    }

    /// Inverse of [`ProducerState::encode`].
    pub(crate) fn decode(v: &[u8]) -> Result<ProducerState> {
        let bad = || StorageError::Corrupt(format!("producer state of {} bytes", v.len()));
        if v.len() < HEAD_LEN {
            return Err(bad());
        }
        let n = v[10] as usize;
        let body = HEAD_LEN + n * ENTRY_LEN;
        if v.len() != body && v.len() != body + 12 {
            return Err(bad());
        }
        let i32_at = |at: usize| i32::from_be_bytes([v[at], v[at + 1], v[at + 2], v[at + 3]]);
        let i64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&v[at..at + 8]);
            i64::from_be_bytes(a)
        };
        let batches = (0..n)
            .map(|i| {
                let at = HEAD_LEN + i * ENTRY_LEN;
                BatchMeta {
                    first_seq: i32_at(at),
                    last_seq: i32_at(at + 4),
                    base_offset: i64_at(at + 8),
                    last_offset_delta: i32_at(at + 16),
                }
            })
            .collect();
        Ok(ProducerState {
            epoch: i16::from_be_bytes([v[0], v[1]]),
            last_timestamp: i64_at(2),
            batches,
            txn_first_offset: if v.len() == body { -1 } else { i64_at(body) },
            coordinator_epoch: if v.len() == body {
                -1
            } else {
                i32_at(body + 8)
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(epoch: i16, base_seq: i32, count: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 7,
            producer_id: 1,
            producer_epoch: epoch,
            base_sequence: base_seq,
            records_count: count,
        }
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let h = header(0, i32::MAX - 1, 2);
        let s = updated(None, &h, 10);
        assert_eq!(s.batches.back().map(|b| b.last_seq), Some(i32::MAX));
        assert_eq!(check(Some(&s), &header(0, 0, 1)).ok(), Some(Check::Append));
        assert!(matches!(
            check(Some(&s), &header(0, 1, 1)),
            Err(StorageError::OutOfOrderSequence {
                expected: 0,
                got: 1
            })
        ));
    }

    #[test]
    fn keeps_five_batches_and_round_trips() {
        let mut s: Option<ProducerState> = None;
        for i in 0..7 {
            let h = header(3, i * 2, 2);
            assert_eq!(check(s.as_ref(), &h).ok(), Some(Check::Append));
            s = Some(updated(s.as_ref(), &h, i64::from(i) * 2));
        }
        let s = s.expect("state");
        assert_eq!(s.batches.len(), BATCHES_TO_RETAIN);
        assert_eq!(s.batches.front().map(|b| b.first_seq), Some(4));
        assert_eq!(ProducerState::decode(&s.encode()).ok(), Some(s.clone()));
        // The oldest retained batch is still a duplicate; the one before it is not.
        assert_eq!(
            check(Some(&s), &header(3, 4, 2)).ok(),
            Some(Check::Duplicate(4))
        );
        assert!(check(Some(&s), &header(3, 2, 2)).is_err());
    }
}
