//! OffsetForLeaderEpoch (23): Gregor's only leader epoch is 0, which ends at
//! the log end. Java consumers use it to validate positions (KIP-320).

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::context::Broker;

pub fn handle(
    b: &Broker,
    req: OffsetForLeaderEpochRequest,
    _version: i16,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let log = match b.led_partition(&t.topic.0, p.partition, p.current_leader_epoch)
                    {
                        Ok(log) => log,
                        Err(code) => return base.with_error_code(code.code()),
                    };
                    if p.leader_epoch > 0 {
                        // An epoch after ours: Kafka answers UNDEFINED epoch and offset.
                        return base.with_error_code(0);
                    }
                    base.with_error_code(0)
                        .with_leader_epoch(0)
                        .with_end_offset(log.high_watermark())
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
