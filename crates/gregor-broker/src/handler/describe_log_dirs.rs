//! DescribeLogDirs (35): Gregor's one log dir (the data dir) with every
//! partition's size and an offset lag of 0 (`kafka-log-dirs.sh`). Total
//! and usable bytes are -1 (unknown), as Kafka reports for a dir it cannot
//! measure.

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

use super::{str_bytes, topic_name};
use crate::context::Broker;

pub fn handle(b: &Broker, req: DescribeLogDirsRequest, _version: i16) -> DescribeLogDirsResponse {
    let cfg = b.config();
    let dir = if cfg.ephemeral {
        "(memory)".to_string()
    } else {
        std::fs::canonicalize(&cfg.data_dir)
            .unwrap_or_else(|_| cfg.data_dir.clone())
            .display()
            .to_string()
    };
    let wanted: Vec<(String, Option<Vec<i32>>)> = match &req.topics {
        // Null: every partition.
        None => b
            .store()
            .topics()
            .into_iter()
            .map(|m| (m.name, None))
            .collect(),
        Some(ts) => ts
            .iter()
            .map(|t| (t.topic.0.to_string(), Some(t.partitions.clone())))
            .collect(),
    };
    let topics = wanted
        .into_iter()
        .filter_map(|(name, parts)| {
            let meta = b.store().topic(&name)?;
            let parts = parts.unwrap_or_else(|| (0..meta.partitions).collect());
            let partitions: Vec<_> = parts
                .into_iter()
                .filter_map(|p| {
                    let log = b.store().partition(&name, p)?;
                    Some(
                        DescribeLogDirsPartition::default()
                            .with_partition_index(p)
                            .with_partition_size(
                                i64::try_from(log.size_bytes()).unwrap_or(i64::MAX),
                            )
                            .with_offset_lag(0)
                            .with_is_future_key(false),
                    )
                })
                .collect();
            (!partitions.is_empty()).then(|| {
                DescribeLogDirsTopic::default()
                    .with_name(topic_name(&name))
                    .with_partitions(partitions)
            })
        })
        .collect();
    // The filesystem's size and what is left for the broker (v4+).
    let (total, usable) = if cfg.ephemeral {
        (-1, -1)
    } else {
        rustix::fs::statvfs(&cfg.data_dir).map_or((-1, -1), |s| {
            let bytes =
                |blocks: u64| i64::try_from(blocks.saturating_mul(s.f_frsize)).unwrap_or(i64::MAX);
            (bytes(s.f_blocks), bytes(s.f_bavail))
        })
    };
    DescribeLogDirsResponse::default()
        .with_error_code(0)
        .with_results(vec![DescribeLogDirsResult::default()
            .with_error_code(0)
            .with_log_dir(str_bytes(&dir))
            .with_topics(topics)
            .with_total_bytes(total)
            .with_usable_bytes(usable)])
}
