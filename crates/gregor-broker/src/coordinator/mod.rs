//! The group coordinator: the map of groups, the waiting JoinGroup and
//! SyncGroup replies, and the timer task that drives session and rebalance
//! timeouts. The protocol itself lives in [`group::Group`], a state machine
//! that takes `now` and is tested without sockets.

pub mod group;
pub mod txn;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{oneshot, watch, Notify};
use tokio::time::Instant;

pub use group::{code, GroupConfig, JoinRequest, JoinResult, State, SyncResult};
use group::{Group, Outbound, Reply};

/// A group plus the reply channels of members waiting on it.
struct Slot {
    group: Group,
    joins: HashMap<String, oneshot::Sender<JoinResult>>,
    syncs: HashMap<String, oneshot::Sender<SyncResult>>,
}

impl Slot {
    /// Delivers every reply the state machine completed.
    fn deliver(&mut self) {
        for out in self.group.take_outbox() {
            match out {
                Outbound::Join(id, r) => {
                    if let Some(tx) = self.joins.remove(&id) {
                        let _ = tx.send(r);
                    }
                }
                Outbound::Sync(id, r) => {
                    if let Some(tx) = self.syncs.remove(&id) {
                        let _ = tx.send(r);
                    }
                }
            }
        }
    }
}

/// A summary of a group for DescribeGroups.
#[derive(Debug, Clone)]
pub struct GroupSummary {
    /// State.
    pub state: State,
    /// Protocol type.
    pub protocol_type: String,
    /// Selected protocol (only when Stable).
    pub protocol: String,
    /// Members: (id, instance id, client id, host, metadata, assignment).
    pub members: Vec<MemberSummary>,
    /// Generation.
    pub generation: i32,
    /// The leader's member id, if there is one.
    pub leader: Option<String>,
}

/// One member in a [`GroupSummary`].
#[derive(Debug, Clone)]
pub struct MemberSummary {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata for the selected protocol (Stable only).
    pub metadata: bytes::Bytes,
    /// Assignment (Stable only).
    pub assignment: bytes::Bytes,
}

/// Handle on the coordinator; cheap to clone.
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: GroupConfig,
    groups: Mutex<HashMap<String, Slot>>,
    /// Woken when a deadline may have moved earlier.
    timers: Notify,
    /// Set at shutdown: nothing may park a reply any more.
    closed: std::sync::atomic::AtomicBool,
    epoch: Instant,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Group updates are applied step by step under the lock and each step
    // leaves the map consistent: recover from a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Coordinator {
    /// A coordinator with no groups.
    pub fn new(cfg: GroupConfig) -> Coordinator {
        Coordinator {
            inner: Arc::new(Inner {
                cfg,
                groups: Mutex::new(HashMap::new()),
                timers: Notify::new(),
                closed: std::sync::atomic::AtomicBool::new(false),
                epoch: Instant::now(),
            }),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn with_slot<R>(
        &self,
        group_id: &str,
        create: bool,
        f: impl FnOnce(&mut Slot, u64) -> R,
    ) -> Option<R> {
        let now = self.now();
        let mut groups = lock(&self.inner.groups);
        if self.inner.closed.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        if create && !groups.contains_key(group_id) {
            groups.insert(
                group_id.to_string(),
                Slot {
                    group: Group::new(group_id, self.inner.cfg),
                    joins: HashMap::new(),
                    syncs: HashMap::new(),
                },
            );
        }
        let slot = groups.get_mut(group_id)?;
        let before = (slot.group.state(), slot.group.generation());
        let r = f(slot, now);
        slot.deliver();
        let after = (slot.group.state(), slot.group.generation());
        if before != after {
            // Kafka logs each rebalance step at INFO too; one line each.
            tracing::info!(
                group = group_id,
                from = before.0.name(),
                to = after.0.name(),
                generation = after.1,
                members = slot.group.members().len(),
                "group state"
            );
        }
        if create && slot.group.is_pristine() {
            groups.remove(group_id);
        }
        drop(groups);
        self.inner.timers.notify_one();
        Some(r)
    }

    /// JoinGroup: applied now; the reply may come when the join phase ends.
    pub fn join(&self, group_id: &str, req: JoinRequest) -> oneshot::Receiver<JoinResult> {
        let (tx, rx) = oneshot::channel();
        self.with_slot(group_id, true, move |slot, now| {
            match slot.group.join(now, req) {
                Reply::Now(r) => {
                    let _ = tx.send(r);
                }
                Reply::Later(id) => {
                    // Registered before the outbox is delivered, so a join phase
                    // that completed within this call reaches this waiter.
                    if let Some(old) = slot.joins.insert(id.clone(), tx) {
                        // The member sent JoinGroup again while one was pending.
                        let _ = old.send(JoinResult::error(&id, code::REBALANCE_IN_PROGRESS));
                    }
                }
            }
        });
        rx
    }

    /// SyncGroup: followers wait for the leader's assignment.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, bytes::Bytes)>,
    ) -> oneshot::Receiver<SyncResult> {
        let (tx, rx) = oneshot::channel();
        let found = self.with_slot(group_id, false, |slot, now| {
            match slot.group.sync(
                now,
                member_id,
                instance_id,
                generation,
                protocol_type,
                protocol_name,
                assignments,
            ) {
                Reply::Now(r) => {
                    let _ = tx.send(r);
                }
                Reply::Later(id) => {
                    slot.syncs.insert(id, tx);
                }
            }
        });
        if found.is_none() {
            let (tx, rx) = oneshot::channel();
            let _ = tx.send(SyncResult {
                error: code::UNKNOWN_MEMBER_ID,
                protocol_type: None,
                protocol_name: None,
                assignment: bytes::Bytes::new(),
            });
            return rx;
        }
        rx
    }

    /// Heartbeat: an error code.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        self.with_slot(group_id, false, |slot, now| {
            slot.group
                .heartbeat(now, member_id, instance_id, generation)
        })
        .unwrap_or(code::UNKNOWN_MEMBER_ID)
    }

    /// LeaveGroup: one error code per (member id, instance id).
    pub fn leave(&self, group_id: &str, members: &[(String, Option<String>)]) -> Vec<i16> {
        self.with_slot(group_id, false, |slot, now| {
            members
                .iter()
                .map(|(m, i)| slot.group.leave(now, m, i.as_deref()))
                .collect()
        })
        .unwrap_or_else(|| vec![code::UNKNOWN_MEMBER_ID; members.len()])
    }

    /// OffsetCommit validation. A commit for a group that does not exist
    /// creates it (Empty) when it comes from an assign() user (generation
    /// < 0); otherwise it is refused as Kafka 4 refuses it.
    pub fn validate_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        version: i16,
    ) -> Result<(), i16> {
        let exists = lock(&self.inner.groups).contains_key(group_id);
        if !exists {
            if generation >= 0 {
                return Err(if version >= 9 {
                    code::GROUP_ID_NOT_FOUND
                } else {
                    code::ILLEGAL_GENERATION
                });
            }
            return Ok(());
        }
        self.with_slot(group_id, false, |slot, _| {
            slot.group
                .validate_commit(member_id, instance_id, generation)
        })
        .unwrap_or(Ok(()))
    }

    /// A group's summary, if it exists in memory.
    pub fn describe(&self, group_id: &str) -> Option<GroupSummary> {
        let groups = lock(&self.inner.groups);
        let g = &groups.get(group_id)?.group;
        let stable = g.state() == State::Stable;
        let protocol = g.protocol().unwrap_or("").to_string();
        Some(GroupSummary {
            generation: g.generation(),
            leader: g.leader().map(str::to_string),
            state: g.state(),
            protocol_type: g.protocol_type().unwrap_or("").to_string(),
            protocol: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: g
                .members()
                .iter()
                .map(|m| MemberSummary {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.protocols
                            .iter()
                            .find(|(n, _)| *n == protocol)
                            .map(|(_, b)| b.clone())
                            .unwrap_or_default()
                    } else {
                        bytes::Bytes::new()
                    },
                    // Kafka 4 keeps showing the current assignment during a
                    // rebalance; metadata only once a protocol is chosen.
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// Groups in memory: (id, protocol type, state).
    pub fn list(&self) -> Vec<(String, String, State)> {
        lock(&self.inner.groups)
            .values()
            .map(|s| {
                (
                    s.group.id.clone(),
                    s.group.protocol_type().unwrap_or("").to_string(),
                    s.group.state(),
                )
            })
            .collect()
    }

    /// Topics a live group's members subscribe to (consumer protocol), for
    /// OffsetDelete's GROUP_SUBSCRIBED_TO_TOPIC.
    pub fn subscribed_topics(&self, group_id: &str) -> Vec<String> {
        let groups = lock(&self.inner.groups);
        let Some(slot) = groups.get(group_id) else {
            return Vec::new();
        };
        let g = &slot.group;
        if g.protocol_type() != Some("consumer") {
            return Vec::new();
        }
        let protocol = g.protocol().unwrap_or("");
        let mut topics = Vec::new();
        for m in g.members() {
            if let Some((_, meta)) = m.protocols.iter().find(|(n, _)| n == protocol) {
                topics.extend(consumer_subscription_topics(meta));
            }
        }
        topics.sort();
        topics.dedup();
        topics
    }

    /// Removes an Empty group (DeleteGroups). `Err(code)` if it has members.
    pub fn delete(&self, group_id: &str) -> Result<bool, i16> {
        let mut groups = lock(&self.inner.groups);
        match groups.get_mut(group_id) {
            None => Ok(false),
            Some(slot) if slot.group.state() == State::Empty => {
                slot.group.mark_dead();
                groups.remove(group_id);
                Ok(true)
            }
            Some(_) => Err(code::NON_EMPTY_GROUP),
        }
    }

    /// Answers every waiting JoinGroup and SyncGroup with NOT_COORDINATOR,
    /// as Kafka does when it unloads a group: at shutdown nothing else
    /// would complete them, and the connections must drain.
    pub fn release_waiters(&self) {
        let mut groups = lock(&self.inner.groups);
        // Under the lock: no request can park a reply after this.
        self.inner
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        answer_waiters(&mut groups);
    }

    /// Forgets every group (the admin API's reset): parked JoinGroup and
    /// SyncGroup replies get NOT_COORDINATOR, as when Kafka unloads a
    /// group, and their members rejoin a group that starts afresh.
    pub fn clear(&self) {
        let mut groups = lock(&self.inner.groups);
        answer_waiters(&mut groups);
        for slot in groups.values_mut() {
            slot.group.mark_dead();
        }
        groups.clear();
    }
}

impl Coordinator {
    /// Drives session, join and sync timeouts until `stop` turns true.
    pub async fn run_timers(self, mut stop: watch::Receiver<bool>) {
        loop {
            let next = {
                let groups = lock(&self.inner.groups);
                groups
                    .values()
                    .filter_map(|s| s.group.next_deadline())
                    .min()
            };
            let wait = match next {
                Some(at) => Duration::from_millis(at.saturating_sub(self.now())),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.inner.timers.notified() => continue,
                _ = stop.changed() => return,
            }
            let now = self.now();
            let mut groups = lock(&self.inner.groups);
            for slot in groups.values_mut() {
                if slot.group.next_deadline().is_some_and(|d| d <= now) {
                    let before = (slot.group.state(), slot.group.members().len());
                    slot.group.tick(now);
                    slot.deliver();
                    let after = (slot.group.state(), slot.group.members().len());
                    if before != after {
                        tracing::info!(
                            group = %slot.group.id,
                            from = before.0.name(),
                            to = after.0.name(),
                            generation = slot.group.generation(),
                            members = after.1,
                            "group state (timer)"
                        );
                    }
                }
            }
        }
    }
}

/// Topics in a consumer-protocol subscription (`ConsumerProtocolSubscription`
/// behind its i16 version prefix); empty if it does not parse.
pub fn consumer_subscription_topics(meta: &[u8]) -> Vec<String> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    if meta.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([meta[0], meta[1]]);
    let mut buf = bytes::Bytes::copy_from_slice(&meta[2..]);
    let v = version.clamp(0, 3);
    match std::panic::catch_unwind(move || ConsumerProtocolSubscription::decode(&mut buf, v)) {
        Ok(Ok(s)) => s.topics.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;

/// Answers every parked JoinGroup and SyncGroup with NOT_COORDINATOR.
fn answer_waiters(groups: &mut HashMap<String, Slot>) {
    for slot in groups.values_mut() {
        for (id, tx) in slot.joins.drain() {
            let _ = tx.send(JoinResult::error(&id, code::NOT_COORDINATOR));
        }
        for (_, tx) in slot.syncs.drain() {
            let _ = tx.send(SyncResult {
                error: code::NOT_COORDINATOR,
                protocol_type: None,
                protocol_name: None,
                assignment: bytes::Bytes::new(),
            });
        }
    }
}
