//! The virtual cluster (issue 11): one process presents N broker ids, each
//! on its own listener, over one store. Partition leadership and the
//! coordinator are the only per-broker state; moving them, or taking a
//! broker down, is what an application's failover code is tested against.
//!
//! With one broker (the default) nothing here is consulted on the data
//! path beyond one atomic load: every partition is led by that broker at
//! the epoch recorded for it, 0 unless a former virtual run moved it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use gregor_storage::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Store key of the persisted leadership (epochs are in the batches, so
/// they must not go back across a restart).
const STATE_KEY: &str = "virtual.cluster";

/// One broker id of the cluster and where clients reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Broker id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// The address its listener binds.
    #[serde(skip)]
    pub bind: SocketAddr,
}

/// A partition's leader and leader epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leader {
    /// Broker id.
    pub id: i32,
    /// Leader epoch.
    pub epoch: i32,
}

/// Why a change of the cluster's shape was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No such broker id.
    #[error("no broker {0} in this cluster")]
    NoSuchBroker(i32),
    /// The broker is down.
    #[error("broker {0} is down")]
    Down(i32),
    /// Taking the last live broker down would leave no leader.
    #[error("broker {0} is the last one up")]
    LastLive(i32),
    /// No such topic or partition.
    #[error("no partition {0}-{1}")]
    NoSuchPartition(String, i32),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PartState {
    leader: i32,
    epoch: i32,
    /// (epoch, start offset) of every epoch after 0 (epoch 0 starts at 0).
    epochs: Vec<(i32, i64)>,
    /// An explicitly assigned replica set, in order; empty: every broker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    replicas: Vec<i32>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    coordinator: Option<i32>,
    /// Keyed "topic\0partition" for JSON.
    partitions: HashMap<String, PartState>,
    #[serde(skip)]
    down: Vec<bool>,
}

fn key(topic: &str, partition: i32) -> String {
    format!("{topic}\0{partition}")
}

/// The cluster's brokers, leadership and coordinator.
pub struct Cluster {
    nodes: Vec<Node>,
    state: RwLock<State>,
    /// Nothing recorded and every broker up: every partition is led by its
    /// default leader at epoch 0, without taking the lock.
    plain: AtomicBool,
    /// Per broker: true while down. Its listener and connections watch it.
    signals: Vec<watch::Sender<bool>>,
    store: Arc<Store>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("nodes", &self.nodes)
            .finish()
    }
}

/// FNV-1a: a stable start broker per topic (Kafka starts each topic's
/// round robin at a random broker).
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Cluster {
    /// A cluster of `nodes` (at least one), loading recorded leadership.
    pub fn new(nodes: Vec<Node>, store: Arc<Store>) -> Cluster {
        let mut state: State = match store.meta_value(STATE_KEY) {
            Ok(Some(v)) => serde_json::from_slice(&v).unwrap_or_else(|e| {
                tracing::warn!(cause = %e, "unreadable virtual cluster state ignored");
                State::default()
            }),
            _ => State::default(),
        };
        state.down = vec![false; nodes.len()];
        if state
            .coordinator
            .is_some_and(|c| !nodes.iter().any(|n| n.id == c))
        {
            state.coordinator = None;
        }
        let plain = state.partitions.is_empty() && state.coordinator.is_none();
        let signals = nodes.iter().map(|_| watch::channel(false).0).collect();
        Cluster {
            nodes,
            state: RwLock::new(state),
            plain: AtomicBool::new(plain),
            signals,
            store,
        }
    }

    /// Every broker, up or down.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Every partition led by its default leader at epoch 0, every broker
    /// up, the first coordinating.
    pub fn is_plain(&self) -> bool {
        self.plain.load(Ordering::Acquire)
    }

    /// More than one broker id.
    pub fn is_virtual(&self) -> bool {
        self.nodes.len() > 1
    }

    fn index(&self, id: i32) -> Result<usize, ClusterError> {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .ok_or(ClusterError::NoSuchBroker(id))
    }

    /// The broker with this id.
    pub fn node(&self, id: i32) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Whether broker `id` is up.
    pub fn is_up(&self, id: i32) -> bool {
        let s = self.read();
        self.index(id)
            .is_ok_and(|i| !s.down.get(i).copied().unwrap_or(false))
    }

    /// The brokers that are up, in id order.
    pub fn live(&self) -> Vec<Node> {
        let s = self.read();
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !s.down[*i])
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// Ids of the brokers that are down.
    pub fn down_ids(&self) -> Vec<i32> {
        let s = self.read();
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| s.down[*i])
            .map(|(_, n)| n.id)
            .collect()
    }

    /// A receiver that reads true while broker `index` is down.
    pub fn watch_down(&self, index: usize) -> Option<watch::Receiver<bool>> {
        self.signals.get(index).map(watch::Sender::subscribe)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The group and transaction coordinator.
    pub fn coordinator(&self) -> i32 {
        if self.plain.load(Ordering::Acquire) {
            return self.nodes[0].id;
        }
        let s = self.read();
        s.coordinator.unwrap_or(self.nodes[0].id)
    }

    /// Where a partition's round robin puts it, skipping brokers that are
    /// down (the first live one after it).
    fn default_leader(&self, s: &State, topic: &str, partition: i32) -> i32 {
        let n = self.nodes.len();
        let p = usize::try_from(partition).unwrap_or(0);
        let start = usize::try_from(fnv(topic) % n as u64).unwrap_or(0);
        let first = (start + p) % n;
        (0..n)
            .map(|k| (first + k) % n)
            .find(|i| !s.down[*i])
            .map_or(self.nodes[first].id, |i| self.nodes[i].id)
    }

    /// The leader of a partition and its epoch.
    pub fn leader(&self, topic: &str, partition: i32) -> Leader {
        if self.plain.load(Ordering::Acquire) {
            if self.nodes.len() == 1 {
                return Leader {
                    id: self.nodes[0].id,
                    epoch: 0,
                };
            }
            let s = self.read();
            return Leader {
                id: self.default_leader(&s, topic, partition),
                epoch: 0,
            };
        }
        let s = self.read();
        match s.partitions.get(&key(topic, partition)) {
            // A recorded leader that is no longer a broker of this run (a
            // restart with fewer virtual brokers) leads nothing: the
            // partition moves, one epoch on, the next time it is changed;
            // until then the default live broker answers at that epoch.
            Some(p) if self.index(p.leader).is_ok_and(|i| !s.down[i]) => Leader {
                id: p.leader,
                epoch: p.epoch,
            },
            Some(p) => Leader {
                id: self.default_leader(&s, topic, partition),
                epoch: p.epoch,
            },
            None => Leader {
                id: self.default_leader(&s, topic, partition),
                epoch: 0,
            },
        }
    }

    /// The end offset of `epoch` in a partition whose log ends at
    /// `log_end` (Kafka's `LeaderEpochFileCache.endOffsetFor`): the epoch
    /// itself, or the largest before it, and where the next one starts.
    /// (-1, -1) for an epoch after the current one.
    pub fn epoch_end(&self, topic: &str, partition: i32, epoch: i32, log_end: i64) -> (i32, i64) {
        let history: Vec<(i32, i64)> = if self.plain.load(Ordering::Acquire) {
            vec![(0, 0)]
        } else {
            let s = self.read();
            let mut h = vec![(0, 0)];
            if let Some(p) = s.partitions.get(&key(topic, partition)) {
                h.extend(p.epochs.iter().copied());
            }
            h
        };
        let latest = history.last().map_or(0, |e| e.0);
        if epoch < 0 {
            return (-1, -1);
        }
        if epoch == latest {
            return (epoch, log_end);
        }
        let Some(higher) = history.iter().find(|(e, _)| *e > epoch) else {
            return (-1, -1);
        };
        match history.iter().rev().find(|(e, _)| *e <= epoch) {
            Some((floor, _)) => (*floor, higher.1),
            None => (epoch, higher.1),
        }
    }

    /// The leader epoch the record at `offset` was written in (the
    /// largest epoch starting at or before it).
    pub fn epoch_at(&self, topic: &str, partition: i32, offset: i64) -> i32 {
        if self.plain.load(Ordering::Acquire) {
            return 0;
        }
        let s = self.read();
        s.partitions
            .get(&key(topic, partition))
            .and_then(|p| p.epochs.iter().rev().find(|(_, start)| *start <= offset))
            .map_or(0, |(e, _)| *e)
    }

    /// Moves a partition to broker `to` with the next epoch; `log_end` is
    /// where the new epoch starts. Moving to the current leader still
    /// bumps the epoch, as a Kafka re-election does.
    pub fn move_partition(
        &self,
        topic: &str,
        partition: i32,
        to: i32,
        log_end: i64,
    ) -> Result<Leader, ClusterError> {
        let i = self.index(to)?;
        let mut s = self.write();
        if s.down[i] {
            return Err(ClusterError::Down(to));
        }
        let l = self.bump(&mut s, topic, partition, to, log_end);
        self.save(&s);
        Ok(l)
    }

    /// Records the replica set a client assigned to a new partition; its
    /// first replica that is up leads, at epoch 0 (Kafka's preferred
    /// leader). Unknown brokers, or a partition already recorded, change
    /// nothing.
    pub fn place(&self, topic: &str, partition: i32, replicas: &[i32]) {
        // One broker: its only possible set, nothing to record (and the
        // fast path stays).
        if !self.is_virtual()
            || replicas.is_empty()
            || replicas.iter().any(|id| self.index(*id).is_err())
        {
            return;
        }
        let mut s = self.write();
        if s.partitions.contains_key(&key(topic, partition)) {
            return;
        }
        let leader = replicas
            .iter()
            .copied()
            .find(|id| self.index(*id).is_ok_and(|i| !s.down[i]))
            .unwrap_or_else(|| self.default_leader(&s, topic, partition));
        s.partitions.insert(
            key(topic, partition),
            PartState {
                leader,
                replicas: replicas.to_vec(),
                ..PartState::default()
            },
        );
        self.plain.store(false, Ordering::Release);
        self.save(&s);
    }

    /// A partition's own replica set (an assigned one), in order, with its
    /// leader added if leadership was moved off it; None: every broker.
    pub fn replicas(&self, topic: &str, partition: i32) -> Option<Vec<i32>> {
        if self.plain.load(Ordering::Acquire) {
            return None;
        }
        let leader = self.leader(topic, partition).id;
        let s = self.read();
        let p = s.partitions.get(&key(topic, partition))?;
        if p.replicas.is_empty() {
            return None;
        }
        let mut r = p.replicas.clone();
        if !r.contains(&leader) {
            r.push(leader);
        }
        Some(r)
    }

    fn bump(&self, s: &mut State, topic: &str, partition: i32, to: i32, log_end: i64) -> Leader {
        let p = s.partitions.entry(key(topic, partition)).or_default();
        p.leader = to;
        p.epoch += 1;
        let epoch = p.epoch;
        p.epochs.push((epoch, log_end));
        self.plain.store(false, Ordering::Release);
        tracing::info!(
            topic,
            partition,
            leader = to,
            epoch,
            "partition leadership moved"
        );
        Leader { id: to, epoch }
    }

    /// Moves every partition that `from` leads, to `to` or spread over the
    /// other live brokers. `partitions` lists (topic, partition, log end)
    /// of the whole store. Returns how many moved.
    pub fn move_all(
        &self,
        from: i32,
        to: Option<i32>,
        partitions: &[(String, i32, i64)],
    ) -> Result<usize, ClusterError> {
        self.index(from)?;
        if let Some(t) = to {
            let i = self.index(t)?;
            if self.read().down[i] {
                return Err(ClusterError::Down(t));
            }
        }
        let mut s = self.write();
        let n = self.move_led_by(&mut s, from, to, partitions);
        self.save(&s);
        Ok(n)
    }

    fn move_led_by(
        &self,
        s: &mut State,
        from: i32,
        to: Option<i32>,
        partitions: &[(String, i32, i64)],
    ) -> usize {
        let targets: Vec<i32> = match to {
            Some(t) => vec![t],
            None => self
                .nodes
                .iter()
                .enumerate()
                .filter(|(i, n)| !s.down[*i] && n.id != from)
                .map(|(_, n)| n.id)
                .collect(),
        };
        if targets.is_empty() {
            return 0;
        }
        let mut moved = 0;
        for (topic, partition, log_end) in partitions {
            let current = match s.partitions.get(&key(topic, *partition)) {
                Some(p) => p.leader,
                // Where it is served now (`from` is not down yet).
                None => self.default_leader(s, topic, *partition),
            };
            if current == from {
                // An assigned replica set elects from its own live members
                // first, as Kafka elects from the ISR.
                let own = s.partitions.get(&key(topic, *partition)).and_then(|p| {
                    p.replicas
                        .iter()
                        .copied()
                        .find(|id| *id != from && to.is_none() && targets.contains(id))
                });
                let to = own.unwrap_or(targets[moved % targets.len()]);
                self.bump(s, topic, *partition, to, *log_end);
                moved += 1;
            }
        }
        moved
    }

    /// Takes a broker down: its listener and connections close, and its
    /// partitions (and the coordinator) move to live brokers.
    pub fn down(&self, id: i32, partitions: &[(String, i32, i64)]) -> Result<usize, ClusterError> {
        let i = self.index(id)?;
        let mut s = self.write();
        if s.down[i] {
            return Ok(0);
        }
        if s.down.iter().filter(|d| !**d).count() <= 1 {
            return Err(ClusterError::LastLive(id));
        }
        let moved = self.move_led_by(&mut s, id, None, partitions);
        s.down[i] = true;
        if s.coordinator.unwrap_or(self.nodes[0].id) == id {
            let next = self
                .nodes
                .iter()
                .enumerate()
                .find(|(j, _)| !s.down[*j])
                .map(|(_, n)| n.id);
            s.coordinator = next;
            tracing::info!(coordinator = next, "coordinator moved");
        }
        self.plain.store(false, Ordering::Release);
        self.save(&s);
        drop(s);
        self.signals[i].send_replace(true);
        tracing::info!(broker = id, moved, "broker down");
        Ok(moved)
    }

    /// Brings a broker back up. Leadership stays where it is.
    /// `partitions` as for [`Cluster::down`]: those served elsewhere only
    /// because `id` was down stay where they are (a leader never changes
    /// without a new epoch).
    pub fn up(&self, id: i32, partitions: &[(String, i32, i64)]) -> Result<(), ClusterError> {
        let i = self.index(id)?;
        let mut s = self.write();
        if !s.down[i] {
            return Ok(());
        }
        for (topic, partition, _) in partitions {
            let k = key(topic, *partition);
            if !s.partitions.contains_key(&k) {
                let leader = self.default_leader(&s, topic, *partition);
                s.partitions.insert(
                    k,
                    PartState {
                        leader,
                        ..PartState::default()
                    },
                );
            }
        }
        s.down[i] = false;
        self.save(&s);
        drop(s);
        self.signals[i].send_replace(false);
        tracing::info!(broker = id, "broker up");
        Ok(())
    }

    /// Moves the group and transaction coordinator.
    pub fn set_coordinator(&self, id: i32) -> Result<(), ClusterError> {
        let i = self.index(id)?;
        let mut s = self.write();
        if s.down[i] {
            return Err(ClusterError::Down(id));
        }
        s.coordinator = Some(id);
        self.plain.store(false, Ordering::Release);
        self.save(&s);
        tracing::info!(coordinator = id, "coordinator moved");
        Ok(())
    }

    /// Forgets a deleted topic's leadership.
    pub fn forget_topic(&self, topic: &str) {
        if self.plain.load(Ordering::Acquire) {
            return;
        }
        let prefix = format!("{topic}\0");
        let mut s = self.write();
        s.partitions.retain(|k, _| !k.starts_with(&prefix));
        self.save(&s);
    }

    /// Every broker up, default leaders at epoch 0, the first broker
    /// coordinating: the shape a fresh start has (for `POST /reset`, once
    /// the topics are gone).
    pub fn reset(&self) {
        let mut s = self.write();
        s.partitions.clear();
        s.coordinator = None;
        for d in &mut s.down {
            *d = false;
        }
        self.save(&s);
        self.plain.store(true, Ordering::Release);
        drop(s);
        for tx in &self.signals {
            tx.send_replace(false);
        }
    }

    fn save(&self, s: &State) {
        match serde_json::to_vec(s) {
            Ok(json) => {
                if let Err(e) = self.store.set_meta_value(STATE_KEY, Some(&json)) {
                    tracing::warn!(cause = %e, "cannot store the virtual cluster state");
                }
            }
            Err(e) => tracing::warn!(cause = %e, "cannot encode the virtual cluster state"),
        }
    }
}

/// The brokers of a configuration: ids from `node_id`, bound addresses as
/// given, advertised as `advertised` says (one `host:port`, then the
/// following ports; or a comma list) or as bound.
pub fn nodes(node_id: i32, bound: &[SocketAddr], advertised: Option<&str>) -> Vec<Node> {
    let list: Vec<&str> = advertised
        .map(|a| {
            a.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    bound
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            let step = i32::try_from(i).unwrap_or(0);
            let (host, port) = match (list.get(i), list.first()) {
                (Some(a), _) => split(a, addr),
                (None, Some(first)) => {
                    let (h, p) = split(first, addr);
                    (h, p + step)
                }
                (None, None) => (addr.ip().to_string(), i32::from(addr.port())),
            };
            Node {
                id: node_id + step,
                host,
                port,
                bind: *addr,
            }
        })
        .collect()
}

fn split(a: &str, bound: &SocketAddr) -> (String, i32) {
    let a = a.rsplit("://").next().unwrap_or(a);
    match a.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_matches(|c| c == '[' || c == ']').to_string(),
            p.parse().unwrap_or(i32::from(bound.port())),
        ),
        None => (a.to_string(), i32::from(bound.port())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn cluster(n: usize) -> Cluster {
        let bound: Vec<SocketAddr> = (0..n)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 9092 + u16::try_from(i).unwrap())))
            .collect();
        Cluster::new(
            nodes(1, &bound, None),
            Store::open_memory(Default::default()),
        )
    }

    #[test]
    fn one_broker_leads_everything_at_epoch_0() {
        let c = cluster(1);
        assert_eq!(c.leader("t", 5), Leader { id: 1, epoch: 0 });
        assert_eq!(c.coordinator(), 1);
        assert_eq!(c.epoch_end("t", 5, 0, 42), (0, 42));
        assert_eq!(c.epoch_end("t", 5, 1, 42), (-1, -1));
    }

    #[test]
    fn partitions_spread_round_robin_and_move_with_epochs() {
        let c = cluster(3);
        let leaders: Vec<i32> = (0..6).map(|p| c.leader("orders", p).id).collect();
        // Consecutive partitions on consecutive brokers.
        for w in leaders.windows(2) {
            assert_eq!(w[1], w[0] % 3 + 1);
        }
        let l = c.move_partition("orders", 0, 3, 100).unwrap();
        assert_eq!(l.epoch, 1);
        let l = c.move_partition("orders", 0, 2, 250).unwrap();
        assert_eq!(l, Leader { id: 2, epoch: 2 });
        // Kafka's endOffsetFor: epoch 0 ends where 1 starts, and so on.
        assert_eq!(c.epoch_end("orders", 0, 0, 300), (0, 100));
        assert_eq!(c.epoch_end("orders", 0, 1, 300), (1, 250));
        assert_eq!(c.epoch_end("orders", 0, 2, 300), (2, 300));
        assert_eq!(c.epoch_end("orders", 0, 3, 300), (-1, -1));
    }

    #[test]
    fn a_broker_going_down_hands_over_its_partitions_and_the_coordinator() {
        let c = cluster(3);
        let parts: Vec<(String, i32, i64)> = (0..6).map(|p| ("t".to_string(), p, 10)).collect();
        let mut rx = c.watch_down(0).unwrap();
        let moved = c.down(1, &parts).unwrap();
        assert_eq!(moved, 2);
        assert!(*rx.borrow_and_update());
        for p in 0..6 {
            let l = c.leader("t", p);
            assert_ne!(l.id, 1);
        }
        assert_ne!(c.coordinator(), 1);
        c.down(2, &parts).unwrap();
        assert!(matches!(c.down(3, &parts), Err(ClusterError::LastLive(3))));
        let before: Vec<Leader> = (0..6).map(|p| c.leader("t", p)).collect();
        c.up(1, &parts).unwrap();
        assert!(!*rx.borrow_and_update());
        // Nothing moves back by itself.
        assert_eq!(before, (0..6).map(|p| c.leader("t", p)).collect::<Vec<_>>());
        assert!(matches!(c.set_coordinator(2), Err(ClusterError::Down(2))));
        c.reset();
        assert_eq!(c.coordinator(), 1);
        assert!(c.live().len() == 3);
    }

    #[test]
    fn an_assigned_replica_set_is_kept_and_its_first_replica_leads() {
        let c = cluster(3);
        assert_eq!(c.replicas("a", 0), None);
        c.place("a", 0, &[3, 1]);
        assert_eq!(c.leader("a", 0), Leader { id: 3, epoch: 0 });
        assert_eq!(c.replicas("a", 0), Some(vec![3, 1]));
        assert_eq!(c.epoch_end("a", 0, 0, 5), (0, 5));
        // Placed once; unknown brokers place nothing.
        c.place("a", 0, &[2]);
        c.place("a", 1, &[9, 1]);
        assert_eq!(c.replicas("a", 0), Some(vec![3, 1]));
        assert_eq!(c.replicas("a", 1), None);
        // A broker going down hands its assigned partitions to a live
        // replica of theirs.
        let parts = [("a".to_string(), 0, 0)];
        c.down(3, &parts).unwrap();
        assert_eq!(c.leader("a", 0), Leader { id: 1, epoch: 1 });
        c.up(3, &parts).unwrap();
        // Leadership moved off the set: the leader is listed too.
        c.move_partition("a", 0, 2, 0).unwrap();
        assert_eq!(c.replicas("a", 0), Some(vec![3, 1, 2]));
        // A first replica that is down: the next one leads.
        c.down(3, &parts).unwrap();
        c.place("b", 0, &[3, 1]);
        assert_eq!(c.leader("b", 0), Leader { id: 1, epoch: 0 });
        // ... and the sets survive a restart.
        let again = Cluster::new(c.nodes.clone(), c.store.clone());
        assert_eq!(again.replicas("b", 0), Some(vec![3, 1]));
    }

    #[test]
    fn leadership_survives_a_restart_of_the_store() {
        let store = Store::open_memory(Default::default());
        let bound = [
            SocketAddr::from(([127, 0, 0, 1], 1)),
            SocketAddr::from(([127, 0, 0, 1], 2)),
        ];
        let c = Cluster::new(nodes(1, &bound, None), store.clone());
        c.move_partition("t", 0, 2, 7).unwrap();
        c.move_partition("t", 0, 1, 9).unwrap();
        let again = Cluster::new(nodes(1, &bound, None), store);
        assert_eq!(again.leader("t", 0), Leader { id: 1, epoch: 2 });
        assert_eq!(again.epoch_end("t", 0, 1, 20), (1, 9));
    }

    #[test]
    fn advertised_ports_follow_the_first_or_a_list() {
        let bound = [
            SocketAddr::from(([0, 0, 0, 0], 19092)),
            SocketAddr::from(([0, 0, 0, 0], 19093)),
        ];
        let n = nodes(1, &bound, Some("kafka.local:29092"));
        assert_eq!(
            (n[1].id, n[1].host.as_str(), n[1].port),
            (2, "kafka.local", 29093)
        );
        let n = nodes(5, &bound, Some("a:1,b:2"));
        assert_eq!((n[1].id, n[1].host.as_str(), n[1].port), (6, "b", 2));
    }
}
