//! A hand-encoded Metadata response, v0–13, for a broker that leads every
//! partition alone (one replica, in sync, leader epoch fixed).
//!
//! Every partition entry of such a broker is the same bytes but for its
//! index, so they are written straight into one buffer sized up front.
//! Through the codec each partition cost a struct with three vectors, its
//! size computation and its encoding, about 0.2 us a partition: a full
//! answer at 100,000 partitions took over 20 ms, and librdkafka asks for
//! hundreds of topics at a time, again and again, while it produces to
//! many partitions (issue 8). The bytes are the codec's, which the tests
//! check version by version.

use bytes::{BufMut, BytesMut};

use crate::wire::{put_array_len, put_uvarint};

/// One broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataBroker {
    /// Node id.
    pub node_id: i32,
    /// Host clients connect to.
    pub host: String,
    /// Port clients connect to.
    pub port: i32,
    /// Rack (v1+).
    pub rack: Option<String>,
}

/// One topic of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataTopic {
    /// Topic error code (0, or why the topic is not listed).
    pub error_code: i16,
    /// Name; null for a topic asked for by an id that is unknown (v12+).
    pub name: Option<String>,
    /// Topic id (v10+); all zeros when unknown.
    pub topic_id: [u8; 16],
    /// Internal topic (v1+).
    pub is_internal: bool,
    /// Partitions 0..partitions, each led by [`MetadataParts::leader_id`]
    /// at [`MetadataParts::leader_epoch`] with that node as its only
    /// replica, in sync. 0 for a topic with an error.
    pub partitions: i32,
    /// Per partition (leader, leader epoch), when partitions have leaders
    /// of their own (a virtual cluster): then every partition lists
    /// [`MetadataParts::replicas`], [`MetadataParts::isr`] and
    /// [`MetadataParts::offline`]. Empty: the single-leader form above.
    pub leaders: Vec<(i32, i32)>,
    /// Per partition with [`MetadataTopic::leaders`], a replica set of its
    /// own (an explicit assignment), in order; empty (or missing) for
    /// [`MetadataParts::replicas`]. Its in-sync and offline replicas are
    /// those of it that [`MetadataParts::isr`] and
    /// [`MetadataParts::offline`] list.
    pub replicas: Vec<Vec<i32>>,
}

/// The whole answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataParts {
    /// Throttle time (v3+).
    pub throttle_time_ms: i32,
    /// Brokers.
    pub brokers: Vec<MetadataBroker>,
    /// Cluster id (v2+).
    pub cluster_id: Option<String>,
    /// Controller id (v1+).
    pub controller_id: i32,
    /// Leader, only replica and only in-sync replica of every partition.
    pub leader_id: i32,
    /// Leader epoch of every partition (v7+).
    pub leader_epoch: i32,
    /// Topics, in answer order.
    pub topics: Vec<MetadataTopic>,
    /// Replicas of partitions with [`MetadataTopic::leaders`].
    pub replicas: Vec<i32>,
    /// In-sync replicas of those.
    pub isr: Vec<i32>,
    /// Offline replicas of those (v5+).
    pub offline: Vec<i32>,
    /// Every topic's `topic_authorized_operations` (v8+): a bit per ACL
    /// operation, or `i32::MIN` when the client did not ask.
    pub topic_operations: i32,
    /// `cluster_authorized_operations` (v8-v10), the same way.
    pub cluster_operations: i32,
}

type Ids<'a> = std::borrow::Cow<'a, [i32]>;

impl MetadataParts {
    /// Replicas, in-sync and offline replicas of a partition of `t` that
    /// has a leader of its own.
    fn sets<'a>(&'a self, t: &'a MetadataTopic, index: i32) -> (Ids<'a>, Ids<'a>, Ids<'a>) {
        let own = usize::try_from(index)
            .ok()
            .and_then(|i| t.replicas.get(i))
            .filter(|v| !v.is_empty());
        match own {
            None => (
                Ids::Borrowed(&self.replicas),
                Ids::Borrowed(&self.isr),
                Ids::Borrowed(&self.offline),
            ),
            Some(own) => {
                let of = |set: &[i32]| -> Ids<'a> {
                    Ids::Owned(own.iter().copied().filter(|id| set.contains(id)).collect())
                };
                (Ids::Borrowed(own), of(&self.isr), of(&self.offline))
            }
        }
    }
}

/// First flexible (compact, tagged) Metadata version.
const FLEXIBLE: i16 = 9;

/// "Not requested" for the authorized-operations fields (v8+), as Kafka
/// answers when the client did not ask for them.
pub const NO_OPERATIONS: i32 = i32::MIN;

fn put_string(out: &mut BytesMut, flexible: bool, s: Option<&str>) {
    match (s, flexible) {
        (None, true) => put_uvarint(out, 0),
        (None, false) => out.put_i16(-1),
        (Some(s), true) => {
            put_uvarint(out, s.len() as u64 + 1);
            out.put_slice(s.as_bytes());
        }
        (Some(s), false) => {
            // Names and hosts are far below 32 KiB (topic names: 249).
            out.put_i16(i16::try_from(s.len()).unwrap_or(i16::MAX));
            out.put_slice(s.as_bytes());
        }
    }
}

/// Bytes of one partition entry at `version` (one replica, one in sync,
/// none offline): sizes the buffer before the loop that writes them.
fn partition_len(version: i16) -> usize {
    let flexible = version >= FLEXIBLE;
    // error, index, leader
    let mut n = 2 + 4 + 4;
    if version >= 7 {
        n += 4; // leader epoch
    }
    // replicas and isr: [leader] each; offline (v5+): empty
    let one = if flexible { 1 + 4 } else { 4 + 4 };
    n += 2 * one;
    if version >= 5 {
        n += if flexible { 1 } else { 4 };
    }
    if flexible {
        n += 1; // tagged fields
    }
    n
}

/// Encodes the response frame: length prefix, response header (v1 from
/// version 9 on), body.
pub fn encode_metadata_response(correlation_id: i32, version: i16, r: &MetadataParts) -> BytesMut {
    let flexible = version >= FLEXIBLE;
    let per_partition = partition_len(version);
    let partitions: usize = r
        .topics
        .iter()
        .map(|t| usize::try_from(t.partitions).unwrap_or(0))
        .sum();
    let names: usize = r
        .topics
        .iter()
        .map(|t| t.name.as_ref().map_or(0, String::len) + 64)
        .sum();
    let mut out = BytesMut::with_capacity(256 + names + partitions * per_partition);
    out.put_i32(0); // length, patched below
    out.put_i32(correlation_id);
    if flexible {
        put_uvarint(&mut out, 0); // response header v1 tagged fields
    }
    if version >= 3 {
        out.put_i32(r.throttle_time_ms);
    }
    put_array_len(&mut out, flexible, r.brokers.len());
    for b in &r.brokers {
        out.put_i32(b.node_id);
        put_string(&mut out, flexible, Some(&b.host));
        out.put_i32(b.port);
        if version >= 1 {
            put_string(&mut out, flexible, b.rack.as_deref());
        }
        if flexible {
            put_uvarint(&mut out, 0);
        }
    }
    if version >= 2 {
        put_string(&mut out, flexible, r.cluster_id.as_deref());
    }
    if version >= 1 {
        out.put_i32(r.controller_id);
    }
    put_array_len(&mut out, flexible, r.topics.len());
    for t in &r.topics {
        out.put_i16(t.error_code);
        put_string(&mut out, flexible, t.name.as_deref());
        if version >= 10 {
            out.put_slice(&t.topic_id);
        }
        if version >= 1 {
            out.put_u8(u8::from(t.is_internal));
        }
        let count = usize::try_from(t.partitions).unwrap_or(0);
        put_array_len(&mut out, flexible, count);
        if !t.leaders.is_empty() {
            for (index, (leader, epoch)) in (0..t.partitions.max(0)).zip(&t.leaders) {
                out.put_i16(0);
                out.put_i32(index);
                out.put_i32(*leader);
                if version >= 7 {
                    out.put_i32(*epoch);
                }
                let (replicas, isr, offline) = r.sets(t, index);
                for list in [&replicas, &isr] {
                    put_array_len(&mut out, flexible, list.len());
                    for id in list.iter() {
                        out.put_i32(*id);
                    }
                }
                if version >= 5 {
                    put_array_len(&mut out, flexible, offline.len());
                    for id in offline.iter() {
                        out.put_i32(*id);
                    }
                }
                if flexible {
                    put_uvarint(&mut out, 0);
                }
            }
        }
        for index in (0..t.partitions.max(0)).filter(|_| t.leaders.is_empty()) {
            out.put_i16(0); // error code
            out.put_i32(index);
            out.put_i32(r.leader_id);
            if version >= 7 {
                out.put_i32(r.leader_epoch);
            }
            // replica_nodes, then isr_nodes: the leader alone.
            for _ in 0..2 {
                put_array_len(&mut out, flexible, 1);
                out.put_i32(r.leader_id);
            }
            if version >= 5 {
                put_array_len(&mut out, flexible, 0); // offline_replicas
            }
            if flexible {
                put_uvarint(&mut out, 0);
            }
        }
        if version >= 8 {
            out.put_i32(r.topic_operations);
        }
        if flexible {
            put_uvarint(&mut out, 0);
        }
    }
    if (8..=10).contains(&version) {
        out.put_i32(r.cluster_operations);
    }
    if version >= 13 {
        out.put_i16(0); // top-level error code
    }
    if flexible {
        put_uvarint(&mut out, 0);
    }
    crate::response::patch_length(&mut out);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::encode_response;
    use bytes::Bytes;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{ApiKey, BrokerId, MetadataResponse, ResponseKind, TopicName};
    use kafka_protocol::protocol::{Decodable, Message, StrBytes};

    /// `t` with this topic id, read off the wire (the codec does not
    /// re-export its Uuid type): a v10 request topic is the id, a null
    /// name and no tagged fields.
    fn with_id(t: MetadataResponseTopic, id: [u8; 16]) -> MetadataResponseTopic {
        let mut wire = id.to_vec();
        wire.extend_from_slice(&[0, 0]);
        let req = MetadataRequestTopic::decode(&mut Bytes::from(wire), 10).unwrap();
        t.with_topic_id(req.topic_id)
    }

    fn s(v: &str) -> StrBytes {
        StrBytes::from_string(v.to_string())
    }

    /// The same answer built as the codec's structs, one partition at a
    /// time, as the handler used to.
    fn through_codec(r: &MetadataParts) -> MetadataResponse {
        let brokers = r
            .brokers
            .iter()
            .map(|b| {
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.node_id))
                    .with_host(s(&b.host))
                    .with_port(b.port)
                    .with_rack(b.rack.as_deref().map(s))
            })
            .collect();
        let topics = r
            .topics
            .iter()
            .map(|t| {
                let ids = |v: &[i32]| v.iter().map(|x| BrokerId(*x)).collect::<Vec<_>>();
                let partitions = (0..t.partitions)
                    .map(|p| match t.leaders.get(usize::try_from(p).unwrap()) {
                        None => MetadataResponsePartition::default()
                            .with_partition_index(p)
                            .with_leader_id(BrokerId(r.leader_id))
                            .with_leader_epoch(r.leader_epoch)
                            .with_replica_nodes(vec![BrokerId(r.leader_id)])
                            .with_isr_nodes(vec![BrokerId(r.leader_id)]),
                        Some((leader, epoch)) => {
                            let (replicas, isr, offline) = r.sets(t, p);
                            MetadataResponsePartition::default()
                                .with_partition_index(p)
                                .with_leader_id(BrokerId(*leader))
                                .with_leader_epoch(*epoch)
                                .with_replica_nodes(ids(&replicas))
                                .with_isr_nodes(ids(&isr))
                                .with_offline_replicas(ids(&offline))
                        }
                    })
                    .collect();
                let topic = MetadataResponseTopic::default()
                    .with_error_code(t.error_code)
                    .with_name(t.name.as_deref().map(|n| TopicName(s(n))))
                    .with_is_internal(t.is_internal)
                    .with_topic_authorized_operations(r.topic_operations)
                    .with_partitions(partitions);
                with_id(topic, t.topic_id)
            })
            .collect();
        MetadataResponse::default()
            .with_throttle_time_ms(r.throttle_time_ms)
            .with_brokers(brokers)
            .with_cluster_id(r.cluster_id.as_deref().map(s))
            .with_cluster_authorized_operations(r.cluster_operations)
            .with_controller_id(BrokerId(r.controller_id))
            .with_topics(topics)
    }

    fn topic(name: Option<&str>, error_code: i16, partitions: i32, id: u8) -> MetadataTopic {
        MetadataTopic {
            error_code,
            name: name.map(str::to_string),
            topic_id: [id; 16],
            is_internal: false,
            partitions,
            leaders: Vec::new(),
            replicas: Vec::new(),
        }
    }

    fn answers() -> Vec<MetadataParts> {
        let broker = |rack: Option<&str>| MetadataBroker {
            node_id: 1,
            host: "127.0.0.1".into(),
            port: 9092,
            rack: rack.map(str::to_string),
        };
        vec![
            // No topics (a client asking for none), null cluster id.
            MetadataParts {
                throttle_time_ms: 0,
                brokers: vec![broker(None)],
                cluster_id: None,
                controller_id: 1,
                leader_id: 1,
                leader_epoch: 0,
                topics: vec![],
                replicas: vec![],
                isr: vec![],
                offline: vec![],
                topic_operations: NO_OPERATIONS,
                cluster_operations: NO_OPERATIONS,
            },
            // A virtual cluster: leaders of their own, one broker down.
            MetadataParts {
                throttle_time_ms: 0,
                brokers: vec![broker(None)],
                cluster_id: Some("c".into()),
                controller_id: 1,
                leader_id: 1,
                leader_epoch: 0,
                topics: vec![MetadataTopic {
                    leaders: vec![(1, 0), (3, 4), (1, 2)],
                    replicas: vec![vec![], vec![3, 2]],
                    ..topic(Some("moved"), 0, 3, 7)
                }],
                replicas: vec![1, 2, 3],
                isr: vec![1, 3],
                offline: vec![2],
                topic_operations: NO_OPERATIONS,
                cluster_operations: NO_OPERATIONS,
            },
            // Topics that exist, one with 200 partitions (a count past one
            // varint byte), an error entry, a null name (unknown id), an
            // internal topic; a rack; values no default would produce.
            MetadataParts {
                throttle_time_ms: 7,
                brokers: vec![broker(Some("rack-a")), broker(None)],
                cluster_id: Some("gregor-local-cluster-0".into()),
                controller_id: 3,
                leader_id: 3,
                leader_epoch: 5,
                topics: vec![
                    topic(Some("orders"), 0, 3, 1),
                    topic(Some("wide"), 0, 200, 2),
                    topic(Some("missing"), 3, 0, 0),
                    topic(None, 100, 0, 9),
                    MetadataTopic {
                        is_internal: true,
                        ..topic(Some("__consumer_offsets"), 0, 1, 4)
                    },
                ],
                replicas: vec![],
                isr: vec![],
                offline: vec![],
                topic_operations: 3576,
                cluster_operations: 8096,
            },
        ]
    }

    #[test]
    fn bytes_are_the_codecs_at_every_version() {
        let versions = MetadataResponse::VERSIONS;
        assert!(versions.min == 0 && versions.max >= 12);
        for r in answers() {
            for v in versions.min..=versions.max {
                // The codec refuses a field its version lacks; the encoder
                // leaves it out.
                let mut at_v = r.clone();
                if v < 8 {
                    at_v.topic_operations = NO_OPERATIONS;
                }
                if !(8..=10).contains(&v) {
                    at_v.cluster_operations = NO_OPERATIONS;
                }
                let want = encode_response(
                    41,
                    ApiKey::Metadata,
                    v,
                    &ResponseKind::Metadata(through_codec(&at_v)),
                )
                .unwrap();
                let got = encode_metadata_response(41, v, &r);
                assert_eq!(got.len(), want.len(), "v{v} length");
                assert!(got[..] == want[..], "v{v} bytes differ");
            }
        }
    }
}

#[cfg(test)]
mod replica_sets {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kafka_protocol::messages::MetadataResponse;
    use kafka_protocol::protocol::Decodable;

    /// A partition with a replica set of its own lists it in order, with
    /// in-sync and offline replicas taken from it; the others list the
    /// cluster's.
    #[test]
    fn own_replica_sets_are_decoded_as_given() {
        let r = MetadataParts {
            throttle_time_ms: 0,
            brokers: vec![],
            cluster_id: None,
            controller_id: 1,
            leader_id: 1,
            leader_epoch: 0,
            topics: vec![MetadataTopic {
                error_code: 0,
                name: Some("t".into()),
                topic_id: [1; 16],
                is_internal: false,
                partitions: 2,
                leaders: vec![(1, 0), (3, 0)],
                replicas: vec![vec![], vec![3, 2]],
            }],
            replicas: vec![1, 2, 3],
            isr: vec![1, 3],
            offline: vec![2],
            topic_operations: NO_OPERATIONS,
            cluster_operations: NO_OPERATIONS,
        };
        for v in [1i16, 5, 9, 12] {
            let mut frame = encode_metadata_response(1, v, &r).freeze();
            // length, correlation id, and from v9 the header's tagged fields
            let skip = 8 + usize::from(v >= 9);
            let mut body = frame.split_off(skip);
            let m = MetadataResponse::decode(&mut body, v).unwrap();
            let ids = |v: &[kafka_protocol::messages::BrokerId]| {
                v.iter().map(|b| b.0).collect::<Vec<_>>()
            };
            let p = &m.topics[0].partitions;
            assert_eq!(ids(&p[0].replica_nodes), [1, 2, 3], "v{v}");
            assert_eq!(ids(&p[0].isr_nodes), [1, 3], "v{v}");
            assert_eq!(ids(&p[1].replica_nodes), [3, 2], "v{v}");
            assert_eq!(ids(&p[1].isr_nodes), [3], "v{v}");
            if v >= 5 {
                assert_eq!(ids(&p[1].offline_replicas), [2], "v{v}");
            }
        }
    }
}
