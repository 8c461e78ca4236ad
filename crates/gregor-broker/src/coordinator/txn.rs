//! The transaction coordinator's state machine, as Apache Kafka's
//! `TransactionCoordinator` and `TransactionMetadata` run it: one entry per
//! transactional id (producer id, epoch, state, partitions, groups, pending
//! offset commits, timeout), driven by InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn, TxnOffsetCommit, EndTxn, transactional Produce and the
//! timeout sweep. Every method takes `now` and does no I/O: the caller
//! persists [`TxnMeta::encode`] and writes the markers an [`EndPlan`] names
//! (`crate::txn`), so this is tested without sockets or a store.
//!
//! States: Empty -> Ongoing (first partition or group) -> PrepareCommit |
//! PrepareAbort (EndTxn, durable before any marker) -> CompleteCommit |
//! CompleteAbort (every marker written) -> Ongoing again on the next add.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

/// Kafka's `TransactionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    /// No transaction.
    Empty,
    /// Partitions or groups added.
    Ongoing,
    /// EndTxn(commit) accepted; markers being written.
    PrepareCommit,
    /// EndTxn(abort), a fence or a timeout; markers being written.
    PrepareAbort,
    /// Committed.
    CompleteCommit,
    /// Aborted.
    CompleteAbort,
}

impl TxnState {
    /// The name Kafka's admin APIs use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }

    fn preparing(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// An offset a TxnOffsetCommit stages until the transaction ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOffset {
    /// Group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Leader epoch, -1 if none.
    pub leader_epoch: i32,
    /// Metadata.
    pub metadata: Option<String>,
}

/// One transactional id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMeta {
    /// Current producer id.
    pub producer_id: i64,
    /// The producer id before the last change (epoch exhaustion), -1.
    pub prev_producer_id: i64,
    /// Current epoch.
    pub epoch: i16,
    /// Epoch before the last bump, -1: lets a retried request that never
    /// saw its answer be recognised (KIP-360, KIP-890).
    pub last_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    /// State.
    pub state: TxnState,
    /// Partitions in the transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// Groups whose offsets the transaction commits.
    pub groups: BTreeSet<String>,
    /// Offsets staged by TxnOffsetCommit, at most one per group/partition.
    pub pending: Vec<PendingOffset>,
    /// When the current transaction started (ms), -1 when none.
    pub start_ms: i64,
    /// Last state change (ms).
    pub update_ms: i64,
}

impl TxnMeta {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain data to memory cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Inverse of [`TxnMeta::encode`].
    pub fn decode(v: &[u8]) -> Result<TxnMeta, String> {
        serde_json::from_slice(v).map_err(|e| e.to_string())
    }
}

/// What the coordinator needs from its configuration.
#[derive(Debug, Clone, Copy)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
}

/// Markers to write to end a transaction, then [`TxnCoordinator::complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndPlan {
    /// Transactional id.
    pub id: String,
    /// Producer id of the markers.
    pub producer_id: i64,
    /// Epoch of the markers.
    pub epoch: i16,
    /// COMMIT or ABORT.
    pub commit: bool,
    /// Partitions to mark.
    pub partitions: Vec<(String, i32)>,
}

/// Result of InitProducerId.
#[derive(Debug, PartialEq, Eq)]
pub enum InitOutcome {
    /// Answer with this producer id and epoch (after persisting).
    Ready(i64, i16),
    /// An ongoing transaction must be aborted first (its producer fenced):
    /// write these markers, complete, then ask again.
    AbortFirst(EndPlan),
}

/// Result of EndTxn.
#[derive(Debug, PartialEq, Eq)]
pub enum EndOutcome {
    /// Write the markers, complete, then answer with the producer id and
    /// epoch after completion.
    Markers(EndPlan),
    /// Nothing to write (a retry of a completed end, or an empty
    /// transaction): answer with this producer id and epoch.
    Done(i64, i16),
}

/// Kafka's `isEpochExhausted`: the last epochs are kept for bumps.
fn exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

type Code = ResponseError;

/// Every transactional id this node coordinates.
#[derive(Debug)]
pub struct TxnCoordinator {
    cfg: TxnConfig,
    txns: BTreeMap<String, TxnMeta>,
}

impl TxnCoordinator {
    /// From the stored entries.
    pub fn new(cfg: TxnConfig, stored: impl IntoIterator<Item = (String, TxnMeta)>) -> Self {
        TxnCoordinator {
            cfg,
            txns: stored.into_iter().collect(),
        }
    }

    /// One id's state.
    pub fn get(&self, id: &str) -> Option<&TxnMeta> {
        self.txns.get(id)
    }

    /// Forgets every id (the admin API's reset).
    pub fn clear(&mut self) {
        self.txns.clear();
    }

    /// Every id, in order.
    pub fn all(&self) -> impl Iterator<Item = (&String, &TxnMeta)> {
        self.txns.iter()
    }

    /// The configuration.
    pub fn config(&self) -> TxnConfig {
        self.cfg
    }

    /// InitProducerId with a transactional id. `alloc` hands out a new
    /// producer id. `expected` is the (producer id, epoch) of a KIP-360
    /// request (v3+), if any.
    pub fn init(
        &mut self,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now: i64,
        alloc: &mut dyn FnMut() -> Option<i64>,
    ) -> Result<InitOutcome, Code> {
        if timeout_ms <= 0 || timeout_ms > self.cfg.max_timeout_ms {
            return Err(Code::InvalidTransactionTimeout);
        }
        let Some(m) = self.txns.get_mut(id) else {
            let pid = alloc().ok_or(Code::KafkaStorageError)?;
            self.txns.insert(
                id.to_string(),
                TxnMeta {
                    producer_id: pid,
                    prev_producer_id: -1,
                    epoch: 0,
                    last_epoch: -1,
                    timeout_ms,
                    state: TxnState::Empty,
                    partitions: BTreeSet::new(),
                    groups: BTreeSet::new(),
                    pending: Vec::new(),
                    start_ms: -1,
                    update_ms: now,
                },
            );
            return Ok(InitOutcome::Ready(pid, 0));
        };
        if let Some((pid, epoch)) = expected {
            // Kafka's `isValidProducerId`.
            let valid = pid == m.producer_id || (pid == m.prev_producer_id && exhausted(epoch));
            if !valid {
                return Err(Code::ProducerFenced);
            }
            // A retry of the bump this producer never saw the answer to.
            if pid == m.producer_id
                && epoch == m.last_epoch
                && !matches!(m.state, TxnState::Ongoing)
                && !m.state.preparing()
            {
                return Ok(InitOutcome::Ready(m.producer_id, m.epoch));
            }
            if pid == m.producer_id && epoch != m.epoch {
                return Err(Code::ProducerFenced);
            }
        }
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => Err(Code::ConcurrentTransactions),
            TxnState::Ongoing => {
                // Fence the current producer: bump the epoch and abort its
                // transaction with the new one (Kafka's
                // `prepareFenceProducerEpoch` then `endTransaction`).
                if !exhausted(m.epoch) {
                    m.last_epoch = m.epoch;
                    m.epoch += 1;
                }
                m.state = TxnState::PrepareAbort;
                m.update_ms = now;
                Ok(InitOutcome::AbortFirst(plan(id, m, false)))
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                if exhausted(m.epoch) {
                    let pid = alloc().ok_or(Code::KafkaStorageError)?;
                    m.prev_producer_id = m.producer_id;
                    m.producer_id = pid;
                    m.epoch = 0;
                    m.last_epoch = -1;
                } else {
                    m.last_epoch = m.epoch;
                    m.epoch += 1;
                }
                m.timeout_ms = timeout_ms;
                m.state = TxnState::Empty;
                m.update_ms = now;
                clear(m);
                m.start_ms = -1;
                Ok(InitOutcome::Ready(m.producer_id, m.epoch))
            }
        }
    }

    /// `id`'s state if `pid` is its producer (INVALID_PRODUCER_ID_MAPPING
    /// for an unknown id or another producer, as Kafka answers both).
    fn member(&mut self, id: &str, pid: i64) -> Result<&mut TxnMeta, Code> {
        match self.txns.get_mut(id) {
            Some(m) if m.producer_id == pid => Ok(m),
            _ => Err(Code::InvalidProducerIdMapping),
        }
    }

    /// Checks a request's producer id and epoch against `id`'s (Kafka's
    /// order: unknown id or producer id, then epoch, then state).
    fn checked(&mut self, id: &str, pid: i64, epoch: i16) -> Result<&mut TxnMeta, Code> {
        let m = self.member(id, pid)?;
        if m.epoch != epoch {
            return Err(Code::ProducerFenced);
        }
        if m.state.preparing() {
            return Err(Code::ConcurrentTransactions);
        }
        Ok(m)
    }

    /// AddPartitionsToTxn (and the implicit add of a transaction version 2
    /// Produce). Returns whether the state changed (persist if so).
    pub fn add_partitions(
        &mut self,
        id: &str,
        pid: i64,
        epoch: i16,
        parts: &[(String, i32)],
        now: i64,
    ) -> Result<bool, Code> {
        let m = self.checked(id, pid, epoch)?;
        if m.state == TxnState::Ongoing && parts.iter().all(|p| m.partitions.contains(p)) {
            return Ok(false);
        }
        begin(m, now);
        m.partitions.extend(parts.iter().cloned());
        Ok(true)
    }

    /// AddPartitionsToTxn's verify-only form (KIP-890 part 1): is every
    /// partition in the ongoing transaction? Per partition: `None` when it
    /// is, else the error.
    pub fn verify(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        parts: &[(String, i32)],
    ) -> Result<Vec<Option<Code>>, Code> {
        let m = match self.txns.get(id) {
            Some(m) if m.producer_id == pid => m,
            _ => return Err(Code::InvalidProducerIdMapping),
        };
        if m.epoch != epoch {
            return Err(Code::ProducerFenced);
        }
        Ok(parts
            .iter()
            .map(|p| {
                (m.state != TxnState::Ongoing || !m.partitions.contains(p))
                    .then_some(Code::TransactionAbortable)
            })
            .collect())
    }

    /// Whether a transactional Produce from (`pid`, `epoch`) may write to
    /// `part`; with `implicit` (Produce v12+, transaction version 2) an
    /// absent partition is added. Returns whether the state changed.
    pub fn produce(
        &mut self,
        id: &str,
        pid: i64,
        epoch: i16,
        part: &(String, i32),
        implicit: bool,
        now: i64,
    ) -> Result<bool, Code> {
        let m = self.member(id, pid)?;
        if epoch != m.epoch {
            return Err(Code::InvalidProducerEpoch);
        }
        if m.state.preparing() {
            return Err(Code::ConcurrentTransactions);
        }
        if m.state == TxnState::Ongoing && m.partitions.contains(part) {
            return Ok(false);
        }
        if !implicit {
            return Err(Code::InvalidTxnState);
        }
        begin(m, now);
        m.partitions.insert(part.clone());
        Ok(true)
    }

    /// AddOffsetsToTxn.
    pub fn add_offsets(
        &mut self,
        id: &str,
        pid: i64,
        epoch: i16,
        group: &str,
        now: i64,
    ) -> Result<bool, Code> {
        let m = self.checked(id, pid, epoch)?;
        if m.state == TxnState::Ongoing && m.groups.contains(group) {
            return Ok(false);
        }
        begin(m, now);
        m.groups.insert(group.to_string());
        Ok(true)
    }

    /// TxnOffsetCommit: stages offsets until the transaction ends. With
    /// `implicit` (v5+, transaction version 2) the group is added if absent.
    #[allow(clippy::too_many_arguments)] // the request's fields, one call site
    pub fn stage_offsets(
        &mut self,
        id: &str,
        pid: i64,
        epoch: i16,
        group: &str,
        offsets: Vec<PendingOffset>,
        implicit: bool,
        now: i64,
    ) -> Result<(), Code> {
        let m = self.checked(id, pid, epoch)?;
        let joined = m.state == TxnState::Ongoing && m.groups.contains(group);
        if !joined {
            if !implicit {
                return Err(Code::InvalidTxnState);
            }
            begin(m, now);
            m.groups.insert(group.to_string());
        }
        for o in offsets {
            m.pending.retain(|p| {
                !(p.group == o.group && p.topic == o.topic && p.partition == o.partition)
            });
            m.pending.push(o);
        }
        m.update_ms = now;
        Ok(())
    }

    /// Groups with offsets staged by an open transaction, per partition
    /// (OffsetFetch `require_stable`).
    pub fn pending_partitions(&self, group: &str) -> BTreeSet<(String, i32)> {
        self.txns
            .values()
            .flat_map(|m| m.pending.iter())
            .filter(|p| p.group == group)
            .map(|p| (p.topic.clone(), p.partition))
            .collect()
    }

    /// EndTxn. `v2` for a transaction version 2 request (EndTxn v5+): the
    /// epoch is bumped with every end, and a retry is recognised by the
    /// previous epoch.
    pub fn end(
        &mut self,
        id: &str,
        pid: i64,
        epoch: i16,
        commit: bool,
        v2: bool,
        now: i64,
    ) -> Result<EndOutcome, Code> {
        let m = self.member(id, pid)?;
        let done = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        let preparing = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        if v2 && epoch == m.last_epoch && epoch + 1 == m.epoch {
            // A retry of an end that bumped the epoch.
            return match m.state {
                s if s == done => Ok(EndOutcome::Done(m.producer_id, m.epoch)),
                s if s == preparing => Err(Code::ConcurrentTransactions),
                _ => Err(Code::ProducerFenced),
            };
        }
        if epoch != m.epoch {
            return Err(Code::ProducerFenced);
        }
        match m.state {
            TxnState::Ongoing => {
                if v2 && !exhausted(m.epoch) {
                    m.last_epoch = m.epoch;
                    m.epoch += 1;
                }
                m.state = preparing;
                m.update_ms = now;
                Ok(EndOutcome::Markers(plan(id, m, commit)))
            }
            s if s == done && !v2 => Ok(EndOutcome::Done(m.producer_id, m.epoch)),
            s if s == preparing => Err(Code::ConcurrentTransactions),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                if v2 && !commit =>
            {
                // Transaction version 2 lets a producer abort when no
                // transaction is open, to get a fresh epoch.
                if !exhausted(m.epoch) {
                    m.last_epoch = m.epoch;
                    m.epoch += 1;
                }
                m.state = TxnState::CompleteAbort;
                m.update_ms = now;
                Ok(EndOutcome::Done(m.producer_id, m.epoch))
            }
            _ => Err(Code::InvalidTxnState),
        }
    }

    /// After every marker of `plan` is written: the transaction is
    /// complete. Returns the offsets its commit makes visible, per group.
    pub fn complete(&mut self, plan: &EndPlan, now: i64) -> Vec<PendingOffset> {
        let Some(m) = self.txns.get_mut(&plan.id) else {
            return Vec::new();
        };
        let preparing = if plan.commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        if m.state != preparing || m.producer_id != plan.producer_id {
            return Vec::new();
        }
        m.state = if plan.commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        m.update_ms = now;
        let pending = std::mem::take(&mut m.pending);
        clear(m);
        if plan.commit {
            pending
        } else {
            Vec::new()
        }
    }

    /// Ongoing transactions past their timeout: each is aborted with a
    /// bumped epoch, which fences its producer (Kafka's
    /// `abortTimedOutTransactions`). Returns the plans to carry out.
    pub fn time_out(&mut self, now: i64) -> Vec<EndPlan> {
        let mut plans = Vec::new();
        for (id, m) in &mut self.txns {
            if m.state == TxnState::Ongoing
                && m.start_ms >= 0
                && now.saturating_sub(m.start_ms) > i64::from(m.timeout_ms)
            {
                if !exhausted(m.epoch) {
                    m.last_epoch = m.epoch;
                    m.epoch += 1;
                }
                m.state = TxnState::PrepareAbort;
                m.update_ms = now;
                plans.push(plan(id, m, false));
            }
        }
        plans
    }

    /// Transactions left half-ended (a crash between prepare and
    /// complete): their markers are written again.
    pub fn unfinished(&self) -> Vec<EndPlan> {
        self.txns
            .iter()
            .filter(|(_, m)| m.state.preparing())
            .map(|(id, m)| plan(id, m, m.state == TxnState::PrepareCommit))
            .collect()
    }

    /// Ids idle longer than `transactional.id.expiration.ms` with no open
    /// transaction: forgotten (Kafka's `removeExpiredTransactionalIds`).
    pub fn expire_ids(&mut self, now: i64) -> Vec<String> {
        let cutoff = now.saturating_sub(self.cfg.id_expiration_ms);
        let gone: Vec<String> = self
            .txns
            .iter()
            .filter(|(_, m)| {
                matches!(
                    m.state,
                    TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                ) && m.update_ms <= cutoff
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            self.txns.remove(id);
        }
        gone
    }
}

fn plan(id: &str, m: &TxnMeta, commit: bool) -> EndPlan {
    EndPlan {
        id: id.to_string(),
        producer_id: m.producer_id,
        epoch: m.epoch,
        commit,
        partitions: m.partitions.iter().cloned().collect(),
    }
}

/// Starts a transaction if none is open.
fn begin(m: &mut TxnMeta, now: i64) {
    if m.state != TxnState::Ongoing {
        clear(m);
        m.state = TxnState::Ongoing;
        m.start_ms = now;
    }
    m.update_ms = now;
}

/// Forgets the transaction's contents; its start time stays until the
/// next one starts or the id is re-initialised (DescribeTransactions shows
/// it on a completed transaction, as Kafka's).
fn clear(m: &mut TxnMeta) {
    m.partitions.clear();
    m.groups.clear();
    m.pending.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coord() -> TxnCoordinator {
        TxnCoordinator::new(
            TxnConfig {
                max_timeout_ms: 900_000,
                id_expiration_ms: 604_800_000,
            },
            Vec::new(),
        )
    }

    fn ids() -> impl FnMut() -> Option<i64> {
        let mut next = 100;
        move || {
            next += 1;
            Some(next)
        }
    }

    fn p(t: &str, i: i32) -> (String, i32) {
        (t.to_string(), i)
    }

    #[test]
    fn init_allocates_then_bumps_and_checks_the_timeout() {
        let mut c = coord();
        let mut alloc = ids();
        assert_eq!(
            c.init("t", 0, None, 0, &mut alloc),
            Err(Code::InvalidTransactionTimeout)
        );
        assert_eq!(
            c.init("t", 900_001, None, 0, &mut alloc),
            Err(Code::InvalidTransactionTimeout)
        );
        assert_eq!(
            c.init("t", 60_000, None, 0, &mut alloc),
            Ok(InitOutcome::Ready(101, 0))
        );
        assert_eq!(
            c.init("t", 60_000, None, 1, &mut alloc),
            Ok(InitOutcome::Ready(101, 1))
        );
        // KIP-360: a stale epoch is fenced; the previous epoch is a retry.
        assert_eq!(
            c.init("t", 60_000, Some((101, 0)), 2, &mut alloc),
            Ok(InitOutcome::Ready(101, 1))
        );
        assert_eq!(
            c.init("t", 60_000, Some((999, 1)), 2, &mut alloc),
            Err(Code::ProducerFenced)
        );
        assert_eq!(
            c.init("t", 60_000, Some((101, 1)), 2, &mut alloc),
            Ok(InitOutcome::Ready(101, 2))
        );
    }

    #[test]
    fn commit_runs_through_prepare_to_complete_and_releases_offsets() {
        let mut c = coord();
        let mut alloc = ids();
        c.init("t", 60_000, None, 0, &mut alloc).ok();
        assert_eq!(
            c.add_partitions("t", 101, 0, &[p("a", 0), p("a", 1)], 5),
            Ok(true)
        );
        assert_eq!(c.add_partitions("t", 101, 0, &[p("a", 0)], 6), Ok(false));
        assert_eq!(
            c.stage_offsets("t", 101, 0, "g", vec![], false, 6),
            Err(Code::InvalidTxnState)
        );
        assert_eq!(c.add_offsets("t", 101, 0, "g", 7), Ok(true));
        let off = PendingOffset {
            group: "g".into(),
            topic: "in".into(),
            partition: 0,
            offset: 42,
            leader_epoch: -1,
            metadata: None,
        };
        assert_eq!(
            c.stage_offsets("t", 101, 0, "g", vec![off.clone()], false, 8),
            Ok(())
        );
        assert_eq!(c.pending_partitions("g").len(), 1);
        let EndOutcome::Markers(plan) = c.end("t", 101, 0, true, false, 9).expect("end") else {
            panic!("no markers")
        };
        assert_eq!(plan.partitions, vec![p("a", 0), p("a", 1)]);
        assert!(plan.commit);
        // While the markers are written, everything else waits.
        assert_eq!(
            c.add_partitions("t", 101, 0, &[p("a", 2)], 10),
            Err(Code::ConcurrentTransactions)
        );
        assert_eq!(
            c.end("t", 101, 0, true, false, 10),
            Err(Code::ConcurrentTransactions)
        );
        assert_eq!(
            c.end("t", 101, 0, false, false, 10),
            Err(Code::InvalidTxnState)
        );
        assert_eq!(c.complete(&plan, 11), vec![off]);
        assert_eq!(c.get("t").map(|m| m.state), Some(TxnState::CompleteCommit));
        assert!(c.pending_partitions("g").is_empty());
        // A retried commit succeeds; an abort now is a state error.
        assert_eq!(
            c.end("t", 101, 0, true, false, 12),
            Ok(EndOutcome::Done(101, 0))
        );
        assert_eq!(
            c.end("t", 101, 0, false, false, 12),
            Err(Code::InvalidTxnState)
        );
    }

    #[test]
    fn a_new_incarnation_fences_and_aborts_the_old_one() {
        let mut c = coord();
        let mut alloc = ids();
        c.init("t", 60_000, None, 0, &mut alloc).ok();
        c.add_partitions("t", 101, 0, &[p("a", 0)], 1).ok();
        let Ok(InitOutcome::AbortFirst(plan)) = c.init("t", 60_000, None, 2, &mut alloc) else {
            panic!("no abort")
        };
        assert_eq!((plan.epoch, plan.commit), (1, false));
        assert_eq!(
            c.init("t", 60_000, None, 3, &mut alloc),
            Err(Code::ConcurrentTransactions)
        );
        assert!(c.complete(&plan, 4).is_empty());
        assert_eq!(
            c.init("t", 60_000, None, 5, &mut alloc),
            Ok(InitOutcome::Ready(101, 2))
        );
        // The zombie, at epoch 0, is fenced everywhere.
        assert_eq!(
            c.add_partitions("t", 101, 0, &[p("a", 0)], 6),
            Err(Code::ProducerFenced)
        );
        assert_eq!(
            c.end("t", 101, 0, true, false, 6),
            Err(Code::ProducerFenced)
        );
        assert_eq!(
            c.produce("t", 101, 0, &p("a", 0), false, 6),
            Err(Code::InvalidProducerEpoch)
        );
    }

    #[test]
    fn version_2_adds_implicitly_and_bumps_on_every_end() {
        let mut c = coord();
        let mut alloc = ids();
        c.init("t", 60_000, None, 0, &mut alloc).ok();
        assert_eq!(
            c.produce("t", 101, 0, &p("a", 0), false, 1),
            Err(Code::InvalidTxnState)
        );
        assert_eq!(c.produce("t", 101, 0, &p("a", 0), true, 1), Ok(true));
        let EndOutcome::Markers(plan) = c.end("t", 101, 0, true, true, 2).expect("end") else {
            panic!("no markers")
        };
        assert_eq!(plan.epoch, 1);
        c.complete(&plan, 3);
        // The retry with the old epoch gets the new one back.
        assert_eq!(
            c.end("t", 101, 0, true, true, 4),
            Ok(EndOutcome::Done(101, 1))
        );
        // Aborting an empty transaction bumps the epoch.
        assert_eq!(
            c.end("t", 101, 1, false, true, 5),
            Ok(EndOutcome::Done(101, 2))
        );
    }

    #[test]
    fn timeouts_abort_with_a_bumped_epoch_and_idle_ids_expire() {
        let mut c = coord();
        let mut alloc = ids();
        c.init("t", 1_000, None, 0, &mut alloc).ok();
        c.add_partitions("t", 101, 0, &[p("a", 0)], 10).ok();
        assert!(c.time_out(1_010).is_empty());
        let plans = c.time_out(1_011);
        assert_eq!(plans.len(), 1);
        assert_eq!((plans[0].epoch, plans[0].commit), (1, false));
        assert_eq!(c.unfinished(), plans);
        c.complete(&plans[0], 1_012);
        assert_eq!(
            c.end("t", 101, 0, true, false, 1_013),
            Err(Code::ProducerFenced)
        );
        assert!(c.expire_ids(1_012 + 604_800_000 - 1).is_empty());
        assert_eq!(c.expire_ids(1_012 + 604_800_000), vec!["t".to_string()]);
        assert!(c.get("t").is_none());
    }

    #[test]
    fn state_round_trips() {
        let mut c = coord();
        let mut alloc = ids();
        c.init("t", 60_000, None, 0, &mut alloc).ok();
        c.add_partitions("t", 101, 0, &[p("a", 0)], 1).ok();
        let m = c.get("t").cloned().expect("meta");
        assert_eq!(TxnMeta::decode(&m.encode()), Ok(m));
    }
}
