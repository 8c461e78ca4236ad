//! OffsetFetch (9), v1–9: committed offsets by group; -1 when none. v8+
//! asks for several groups at once.

use std::collections::BTreeMap;

use gregor_storage::CommittedOffset;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};
use tracing::warn;

use super::{str_bytes, topic_name};
use crate::context::Broker;
use crate::coordinator::code;
use crate::error::storage_error;
use kafka_protocol::ResponseError;

/// (offset, leader epoch, metadata, error) per topic and partition.
type Fetched = Vec<(String, Vec<(i32, i64, i32, String, i16)>)>;

fn fetch(
    b: &Broker,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Fetched, i16> {
    let mut f = fetch_committed(b, group, topics)?;
    if require_stable {
        // An offset an open transaction staged is not yet decided (KIP-447):
        // the client asks again, as Kafka's `hasPendingOffsetCommitsForTopicPartition`.
        let pending = b.txns().lock().pending_partitions(group);
        if !pending.is_empty() {
            for (t, parts) in &mut f {
                for e in parts.iter_mut() {
                    if pending.contains(&(t.clone(), e.0)) {
                        *e = (
                            e.0,
                            -1,
                            -1,
                            String::new(),
                            ResponseError::UnstableOffsetCommit.code(),
                        );
                    }
                }
            }
        }
    }
    Ok(f)
}

fn fetch_committed(
    b: &Broker,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Fetched, i16> {
    if group.is_empty() {
        return Err(code::INVALID_GROUP_ID);
    }
    let stored = b.store().committed_offsets(group).map_err(|e| {
        warn!(group, cause = %e, "reading committed offsets failed");
        storage_error(&e).code()
    })?;
    let mut by_tp: BTreeMap<(String, i32), CommittedOffset> = BTreeMap::new();
    for c in stored {
        by_tp.insert((c.topic.clone(), c.partition), c);
    }
    let entry = |c: Option<&CommittedOffset>, p: i32| match c {
        Some(c) => (
            p,
            c.offset,
            c.leader_epoch,
            c.metadata.clone().unwrap_or_default(),
            0,
        ),
        None => (p, -1, -1, String::new(), 0),
    };
    Ok(match topics {
        // Null topics: every committed partition.
        None => {
            let mut out: Fetched = Vec::new();
            for ((t, p), c) in &by_tp {
                match out.last_mut() {
                    Some((name, parts)) if name == t => parts.push(entry(Some(c), *p)),
                    _ => out.push((t.clone(), vec![entry(Some(c), *p)])),
                }
            }
            out
        }
        Some(list) => list
            .into_iter()
            .map(|(t, parts)| {
                let ps = parts
                    .iter()
                    .map(|p| entry(by_tp.get(&(t.clone(), *p)), *p))
                    .collect();
                (t, ps)
            })
            .collect(),
    })
}

pub fn handle(b: &Broker, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                let topics = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                let r = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                match fetch(b, &g.group_id.0, topics, req.require_stable) {
                    Ok(f) => r.with_error_code(0).with_topics(
                        f.into_iter()
                            .map(|(t, ps)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(topic_name(&t))
                                    .with_partitions(
                                        ps.into_iter()
                                            .map(|(p, o, e, m, err)| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p)
                                                    .with_committed_offset(o)
                                                    .with_committed_leader_epoch(e)
                                                    .with_metadata(Some(str_bytes(&m)))
                                                    .with_error_code(err)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
                    Err(e) => r.with_error_code(e),
                }
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    match fetch(
        b,
        &req.group_id.0,
        topics,
        version >= 7 && req.require_stable,
    ) {
        Ok(f) => OffsetFetchResponse::default()
            .with_error_code(0)
            .with_topics(
                f.into_iter()
                    .map(|(t, ps)| {
                        OffsetFetchResponseTopic::default()
                            .with_name(topic_name(&t))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|(p, o, e, m, err)| {
                                        let mut r = OffsetFetchResponsePartition::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(o)
                                            .with_metadata(Some(str_bytes(&m)))
                                            .with_error_code(err);
                                        if version >= 5 {
                                            r = r.with_committed_leader_epoch(e);
                                        }
                                        r
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        // v1 has no top-level error: Kafka reports it per partition, and
        // with no partitions to report on, the client sees nothing.
        Err(e) if version >= 2 => OffsetFetchResponse::default().with_error_code(e),
        Err(_) => OffsetFetchResponse::default(),
    }
}
