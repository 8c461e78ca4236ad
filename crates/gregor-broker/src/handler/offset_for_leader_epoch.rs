//! OffsetForLeaderEpoch (23): where a leader epoch ends, from the epochs
//! the (virtual) cluster recorded (epoch 0 alone unless leadership moved).
//! Consumers use it to validate positions after a leader change (KIP-320).

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::context::Broker;

pub fn handle(
    b: &Broker,
    req: OffsetForLeaderEpochRequest,
    _version: i16,
    node: i32,
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
                    let log = match b.led_partition(
                        node,
                        &t.topic.0,
                        p.partition,
                        p.current_leader_epoch,
                    ) {
                        Ok((log, _)) => log,
                        Err(code) => return base.with_error_code(code.code()),
                    };
                    // Kafka's LeaderEpochFileCache.endOffsetFor; an epoch
                    // after the current one is UNDEFINED (-1, -1).
                    let (epoch, end) = b.cluster().epoch_end(
                        &t.topic.0,
                        p.partition,
                        p.leader_epoch,
                        log.high_watermark(),
                    );
                    base.with_error_code(0)
                        .with_leader_epoch(epoch)
                        .with_end_offset(end)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
