//! OffsetDelete (47): drop committed offsets of partitions a group no
//! longer consumes.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::context::Broker;
use crate::coordinator::{code, State};
use crate::error::storage_error;
use kafka_protocol::ResponseError;

pub fn handle(b: &Broker, req: OffsetDeleteRequest, _version: i16) -> OffsetDeleteResponse {
    let group = req.group_id.0.to_string();
    if group.is_empty() {
        return OffsetDeleteResponse::default().with_error_code(code::INVALID_GROUP_ID);
    }
    let live = b.coordinator().describe(&group);
    let has_offsets = b
        .store()
        .committed_offsets(&group)
        .is_ok_and(|o| !o.is_empty());
    if live.is_none() && !has_offsets {
        return OffsetDeleteResponse::default().with_error_code(code::GROUP_ID_NOT_FOUND);
    }
    let active = live.is_some_and(|s| s.state != State::Empty);
    let subscribed = if active {
        b.coordinator().subscribed_topics(&group)
    } else {
        Vec::new()
    };
    let mut delete = Vec::new();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let error = if subscribed.contains(&name) {
                ResponseError::GroupSubscribedToTopic.code()
            } else if b.store().topic(&name).is_none() {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                0
            };
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            if error == 0 {
                                delete.push((name.clone(), p.partition_index));
                            }
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(error)
                        })
                        .collect(),
                )
        })
        .collect();
    if let Err(e) = b.store().delete_committed_offsets(&group, Some(&delete)) {
        return OffsetDeleteResponse::default().with_error_code(storage_error(&e).code());
    }
    OffsetDeleteResponse::default()
        .with_error_code(0)
        .with_topics(topics)
}
