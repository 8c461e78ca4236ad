//! The transaction coordinator's I/O around its state machine
//! ([`crate::coordinator::txn`]): persisting each transactional id's state
//! in the store, writing COMMIT/ABORT markers to the transaction's
//! partitions, making committed offsets visible, and the sweep that aborts
//! timed-out transactions and forgets idle ids.
//!
//! Order of an end, as Kafka's: the Prepare state is durable first; then
//! every marker is appended and made durable; then the Complete state and
//! the committed offsets are written together. A crash in between leaves
//! Prepare in the store, and the next start writes the markers again
//! ([`recover`]).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use gregor_protocol::records::{self, BatchHeader};
use gregor_storage::{AppendOptions, CommittedOffset, StorageError, Store};
use kafka_protocol::ResponseError;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::context::{now_ms, Broker};
use crate::coordinator::txn::{EndPlan, PendingOffset, TxnConfig, TxnCoordinator, TxnMeta};
use crate::topics;

/// The coordinator behind a lock. Held only for state changes, never
/// across an await.
pub struct Transactions {
    state: Mutex<TxnCoordinator>,
}

impl Transactions {
    /// Loads every stored transactional id.
    pub fn load(store: &Store, cfg: TxnConfig) -> Transactions {
        let stored = match store.txns() {
            Ok(v) => v,
            Err(e) => {
                warn!(cause = %e, "cannot read the transaction state; starting without it");
                Vec::new()
            }
        };
        let metas = stored.into_iter().filter_map(|(id, v)| match TxnMeta::decode(&v) {
            Ok(m) => Some((id, m)),
            Err(e) => {
                warn!(transactional_id = %id, cause = %e, "unreadable transaction state ignored");
                None
            }
        });
        Transactions {
            state: Mutex::new(TxnCoordinator::new(cfg, metas)),
        }
    }

    /// The state machine.
    pub fn lock(&self) -> MutexGuard<'_, TxnCoordinator> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes `id`'s current state (or its removal) to the store.
pub fn persist(b: &Broker, c: &TxnCoordinator, id: &str) -> Result<(), ResponseError> {
    let v = c.get(id).map(TxnMeta::encode);
    b.store().write_txn(id, v.as_deref(), &[]).map_err(|e| {
        warn!(transactional_id = %id, cause = %e, "cannot store the transaction state");
        ResponseError::KafkaStorageError
    })
}

/// Waits for the store's next durable flush.
pub async fn durable(b: &Broker) -> Result<(), ResponseError> {
    b.store().sync().await.map_err(|e| {
        warn!(cause = %e, "durable flush failed");
        ResponseError::KafkaStorageError
    })
}

/// Append settings for a marker on `topic`.
fn marker_options(b: &Broker, topic: &str) -> AppendOptions {
    let configs = b
        .store()
        .topic(topic)
        .map(|m| m.configs)
        .unwrap_or_default();
    let log_append = topics::effective(&b.config(), &configs, "message.timestamp.type")
        .is_some_and(|v| v == "LogAppendTime");
    let segment_bytes = topics::effective_i64(&b.config(), &configs, "segment.bytes", 1 << 30);
    AppendOptions {
        log_append_time_ms: log_append.then(now_ms),
        leader_epoch: 0,
        segment_bytes: u64::try_from(segment_bytes).unwrap_or(1 << 30).max(1),
        segment_ms: topics::effective_i64(&b.config(), &configs, "segment.ms", 604_800_000),
    }
}

/// Carries out an end whose Prepare state the caller persisted: markers,
/// then the Complete state with the committed offsets. Returns the
/// producer id and epoch after it.
pub async fn finish(b: &Broker, plan: &EndPlan) -> Result<(i64, i16), ResponseError> {
    durable(b).await?;
    crash_point(b, "prepared");
    let store = b.store();
    let now = now_ms();
    let mut appends = Vec::with_capacity(plan.partitions.len());
    for (topic, p) in &plan.partitions {
        // A partition of a topic deleted meanwhile has nothing to mark.
        let Some(log) = store.partition(topic, *p) else {
            continue;
        };
        let batch = records::control_batch(plan.producer_id, plan.epoch, plan.commit, 0, now);
        let header = BatchHeader::parse(&batch).map_err(|_| ResponseError::UnknownServerError)?;
        let opts = marker_options(b, topic);
        appends.push((
            topic,
            *p,
            store.append(&log, Bytes::from(batch), header, opts, true),
        ));
    }
    for (topic, p, done) in appends {
        match done.await {
            Ok(_) => crash_point(b, "first-marker"),
            // The partition saw a newer epoch of this producer: a later
            // incarnation already closed what this marker would.
            Err(StorageError::InvalidProducerEpoch { .. }) => {
                warn!(transactional_id = %plan.id, topic = %topic, partition = p, "marker with a stale epoch skipped");
            }
            Err(e) => {
                warn!(transactional_id = %plan.id, topic = %topic, partition = p, cause = %e, "cannot write a transaction marker");
                return Err(ResponseError::KafkaStorageError);
            }
        }
    }
    crash_point(b, "marked");
    let ids = {
        let mut c = b.txns().lock();
        let released = c.complete(plan, now_ms());
        let offsets = by_group(released, now_ms());
        let (v, ids) = match c.get(&plan.id) {
            Some(m) => (Some(m.encode()), (m.producer_id, m.epoch)),
            None => (None, (plan.producer_id, plan.epoch)),
        };
        store
            .write_txn(&plan.id, v.as_deref(), &offsets)
            .map_err(|e| {
                warn!(transactional_id = %plan.id, cause = %e, "cannot store the transaction's completion");
                ResponseError::KafkaStorageError
            })?;
        ids
    };
    durable(b).await?;
    crash_point(b, "completed");
    Ok(ids)
}

/// The `gregor.test.txn.crash.at` hook: dies like a kill -9 (no flush, no
/// clean close) at the named step, so tests can check what a restart
/// makes of every step of an end.
fn crash_point(b: &Broker, step: &str) {
    if b.config().test_txn_crash_at.as_deref() == Some(step) {
        tracing::error!(step, "gregor.test.txn.crash.at: aborting the process");
        std::process::abort();
    }
}

fn by_group(pending: Vec<PendingOffset>, now: i64) -> Vec<(String, Vec<CommittedOffset>)> {
    let mut m: BTreeMap<String, Vec<CommittedOffset>> = BTreeMap::new();
    for p in pending {
        m.entry(p.group).or_default().push(CommittedOffset {
            topic: p.topic,
            partition: p.partition,
            offset: p.offset,
            leader_epoch: p.leader_epoch,
            metadata: p.metadata,
            commit_timestamp: now,
        });
    }
    m.into_iter().collect()
}

/// At start: ends left in Prepare by a crash are carried out again.
pub async fn recover(b: &Broker) {
    let plans = b.txns().lock().unfinished();
    for plan in plans {
        info!(transactional_id = %plan.id, commit = plan.commit, "completing a transaction left half-ended");
        if let Err(e) = finish(b, &plan).await {
            warn!(transactional_id = %plan.id, error = ?e, "cannot complete the transaction; will retry");
        }
    }
}

/// Aborts timed-out transactions every
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms` and
/// forgets idle transactional ids every
/// `transaction.remove.expired.transaction.cleanup.interval.ms`, until
/// `stop` turns true.
pub async fn run(b: Broker, mut stop: watch::Receiver<bool>) {
    recover(&b).await;
    let cfg = b.config();
    let abort_every = Duration::from_millis(
        cfg.transaction_abort_timed_out_transaction_cleanup_interval_ms
            .max(10),
    );
    let expire_every = cfg
        .transaction_remove_expired_transaction_cleanup_interval_ms
        .max(10);
    let mut since_expiry = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(abort_every) => {}
            _ = stop.changed() => return,
        }
        let plans = {
            let mut c = b.txns().lock();
            let plans = c.time_out(now_ms());
            for p in &plans {
                info!(transactional_id = %p.id, producer_id = p.producer_id, epoch = p.epoch, "aborting a timed-out transaction");
                let _ = persist(&b, &c, &p.id);
            }
            plans
        };
        // Also retries ends a storage failure interrupted.
        let mut all = plans;
        for p in b.txns().lock().unfinished() {
            if !all.iter().any(|q| q.id == p.id) {
                all.push(p);
            }
        }
        for plan in all {
            if let Err(e) = finish(&b, &plan).await {
                warn!(transactional_id = %plan.id, error = ?e, "cannot abort the timed-out transaction; will retry");
            }
        }
        since_expiry =
            since_expiry.saturating_add(u64::try_from(abort_every.as_millis()).unwrap_or(u64::MAX));
        if since_expiry >= expire_every {
            since_expiry = 0;
            let mut c = b.txns().lock();
            for id in c.expire_ids(now_ms()) {
                info!(transactional_id = %id, "expired an idle transactional id");
                let _ = persist(&b, &c, &id);
            }
        }
    }
}
