//! JSON inspection (issue 11): what a test wants to see of the broker
//! after the fact: topics with leaders, offsets and sizes; groups with
//! members, assignments and lag; transactions.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::context::Broker;

/// One partition.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionView {
    /// Index.
    pub partition: i32,
    /// Leading broker id.
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Log start offset.
    pub log_start_offset: i64,
    /// High watermark (log end).
    pub high_watermark: i64,
    /// Last stable offset.
    pub last_stable_offset: i64,
    /// Bytes of its segment files.
    pub size_bytes: u64,
}

/// One topic.
#[derive(Debug, Clone, Serialize)]
pub struct TopicView {
    /// Name.
    pub name: String,
    /// Topic id.
    pub topic_id: String,
    /// Internal topic.
    pub internal: bool,
    /// Topic configs set on it.
    pub configs: BTreeMap<String, String>,
    /// Partitions.
    pub partitions: Vec<PartitionView>,
}

/// Every topic.
pub fn topics(b: &Broker) -> Vec<TopicView> {
    let store = b.store();
    store
        .topics()
        .into_iter()
        .map(|t| {
            let partitions = (0..t.partitions)
                .filter_map(|p| {
                    let log = store.partition(&t.name, p)?;
                    let l = b.cluster().leader(&t.name, p);
                    Some(PartitionView {
                        partition: p,
                        leader: l.id,
                        leader_epoch: l.epoch,
                        log_start_offset: log.log_start_offset(),
                        high_watermark: log.high_watermark(),
                        last_stable_offset: log.last_stable_offset(),
                        size_bytes: log.size_bytes(),
                    })
                })
                .collect();
            TopicView {
                internal: crate::topics::is_internal(&t.name),
                topic_id: t.id.to_string(),
                name: t.name,
                configs: t.configs,
                partitions,
            }
        })
        .collect()
}

/// A topic's partitions in an assignment.
#[derive(Debug, Clone, Serialize)]
pub struct Assigned {
    /// Topic.
    pub topic: String,
    /// Partitions.
    pub partitions: Vec<i32>,
}

/// One member of a group.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Its assignment, for the consumer protocol (empty otherwise).
    pub assignment: Vec<Assigned>,
}

/// One committed offset and the lag behind it.
#[derive(Debug, Clone, Serialize)]
pub struct OffsetView {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset.
    pub committed: i64,
    /// The partition's high watermark, if it still exists.
    pub high_watermark: Option<i64>,
    /// High watermark minus committed.
    pub lag: Option<i64>,
}

/// One group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    /// Group id.
    pub group_id: String,
    /// State, as DescribeGroups names it.
    pub state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// Selected protocol (assignor).
    pub protocol: String,
    /// Generation (-1 for a group known only by its offsets).
    pub generation: i32,
    /// The leader's member id.
    pub leader: Option<String>,
    /// Members.
    pub members: Vec<MemberView>,
    /// Committed offsets.
    pub offsets: Vec<OffsetView>,
}

/// Every group the coordinator knows or that has committed offsets.
pub fn groups(b: &Broker) -> Vec<GroupView> {
    let mut ids: Vec<String> = b.coordinator().list().into_iter().map(|g| g.0).collect();
    if let Ok(more) = b.store().groups_with_offsets() {
        ids.extend(more);
    }
    ids.sort();
    ids.dedup();
    let store = b.store();
    ids.into_iter()
        .map(|id| {
            let summary = b.coordinator().describe(&id);
            let offsets = store
                .committed_offsets(&id)
                .unwrap_or_default()
                .into_iter()
                .map(|o| {
                    let hw = store
                        .partition(&o.topic, o.partition)
                        .map(|l| l.high_watermark());
                    OffsetView {
                        lag: hw.map(|h| (h - o.offset).max(0)),
                        high_watermark: hw,
                        topic: o.topic,
                        partition: o.partition,
                        committed: o.offset,
                    }
                })
                .collect();
            match summary {
                Some(s) => GroupView {
                    group_id: id,
                    state: s.state.name().to_string(),
                    members: s
                        .members
                        .iter()
                        .map(|m| MemberView {
                            member_id: m.member_id.clone(),
                            group_instance_id: m.instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            assignment: if s.protocol_type == "consumer" {
                                consumer_assignment(&m.assignment)
                            } else {
                                Vec::new()
                            },
                        })
                        .collect(),
                    protocol_type: s.protocol_type,
                    protocol: s.protocol,
                    generation: s.generation,
                    leader: s.leader,
                    offsets,
                },
                None => GroupView {
                    group_id: id,
                    state: "Empty".into(),
                    protocol_type: String::new(),
                    protocol: String::new(),
                    generation: -1,
                    leader: None,
                    members: Vec::new(),
                    offsets,
                },
            }
        })
        .collect()
}

/// The consumer protocol's assignment: version, [topic, [partition]],
/// user data. Lengths are checked against what is there.
fn consumer_assignment(b: &[u8]) -> Vec<Assigned> {
    fn i16_at(b: &[u8], at: &mut usize) -> Option<i16> {
        let v = b.get(*at..*at + 2)?;
        *at += 2;
        Some(i16::from_be_bytes([v[0], v[1]]))
    }
    fn i32_at(b: &[u8], at: &mut usize) -> Option<i32> {
        let v = b.get(*at..*at + 4)?;
        *at += 4;
        Some(i32::from_be_bytes([v[0], v[1], v[2], v[3]]))
    }
    let mut out = Vec::new();
    let mut at = 0;
    let parse = |out: &mut Vec<Assigned>, at: &mut usize| -> Option<()> {
        i16_at(b, at)?;
        let topics = i32_at(b, at)?;
        for _ in 0..topics.max(0) {
            let len = usize::try_from(i16_at(b, at)?).ok()?;
            let name = String::from_utf8_lossy(b.get(*at..*at + len)?).into_owned();
            *at += len;
            let n = usize::try_from(i32_at(b, at)?).ok()?;
            if n > b.len() {
                return None;
            }
            let mut partitions = Vec::with_capacity(n);
            for _ in 0..n {
                partitions.push(i32_at(b, at)?);
            }
            out.push(Assigned {
                topic: name,
                partitions,
            });
        }
        Some(())
    };
    let _ = parse(&mut out, &mut at);
    out
}

/// One transactional id.
#[derive(Debug, Clone, Serialize)]
pub struct TxnView {
    /// Transactional id.
    pub transactional_id: String,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// State, as DescribeTransactions names it.
    pub state: String,
    /// Timeout.
    pub timeout_ms: i32,
    /// Start of the open transaction (-1 if none).
    pub start_ms: i64,
    /// Partitions in the transaction.
    pub partitions: Vec<TxnPartition>,
}

/// A partition of a transaction.
#[derive(Debug, Clone, Serialize)]
pub struct TxnPartition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
}

/// Every transactional id.
pub fn transactions(b: &Broker) -> Vec<TxnView> {
    let c = b.txns().lock();
    c.all()
        .map(|(id, m)| TxnView {
            transactional_id: id.clone(),
            producer_id: m.producer_id,
            producer_epoch: m.epoch,
            state: m.state.name().to_string(),
            timeout_ms: m.timeout_ms,
            start_ms: m.start_ms,
            partitions: m
                .partitions
                .iter()
                .map(|(topic, partition)| TxnPartition {
                    topic: topic.clone(),
                    partition: *partition,
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_decode_and_garbage_yields_what_parsed() {
        let mut b = vec![
            0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 5,
        ];
        let a = consumer_assignment(&b);
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].topic.as_str(), a[0].partitions.clone()),
            ("t", vec![3, 5])
        );
        // A partition count larger than the bytes: nothing allocated for it.
        b[12] = 0x7f;
        assert!(consumer_assignment(&b).is_empty());
        assert!(consumer_assignment(&[1]).is_empty());
    }
}
