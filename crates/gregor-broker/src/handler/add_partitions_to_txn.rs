//! AddPartitionsToTxn (24). v0–3: a producer adds partitions to its
//! transaction before writing to them (transaction version 1). v4+: the
//! batched broker-to-coordinator form, several transactional ids per
//! request, including KIP-890's verify-only check. The answer follows the
//! durable write of the new state.

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ResponseKind, TransactionalId,
};

use super::init_producer_id::fenced_for;
use super::{Handled, Response};
use crate::context::{now_ms, Broker};
use crate::txn;
use kafka_protocol::ResponseError;

pub fn handle(b: &Broker, req: AddPartitionsToTxnRequest, version: i16) -> Handled {
    let b = b.clone();
    Handled::Later(Box::pin(async move {
        let mut resp = AddPartitionsToTxnResponse::default().with_error_code(0);
        let mut changed = false;
        if version <= 3 {
            let (results, c) = one(
                &b,
                &req.v3_and_below_transactional_id,
                req.v3_and_below_producer_id.0,
                req.v3_and_below_producer_epoch,
                &req.v3_and_below_topics,
                false,
                version,
            );
            changed |= c;
            resp.results_by_topic_v3_and_below = results;
        } else {
            for t in &req.transactions {
                let (results, c) = one(
                    &b,
                    &t.transactional_id,
                    t.producer_id.0,
                    t.producer_epoch,
                    &t.topics,
                    t.verify_only,
                    version,
                );
                changed |= c;
                resp.results_by_transaction.push(
                    AddPartitionsToTxnResult::default()
                        .with_transactional_id(t.transactional_id.clone())
                        .with_topic_results(results),
                );
            }
        }
        if changed {
            if let Err(code) = txn::durable(&b).await {
                every(&mut resp, code.code());
            }
        }
        Response::Kind(Box::new(ResponseKind::AddPartitionsToTxn(resp)))
    }))
}

/// One transactional id's partitions: the per-topic results and whether
/// the state changed.
fn one(
    b: &Broker,
    id: &TransactionalId,
    pid: i64,
    epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    version: i16,
) -> (Vec<AddPartitionsToTxnTopicResult>, bool) {
    let id = id.0.to_string();
    let parts: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect();
    // Unknown partitions fail alone; the others are not attempted (Kafka).
    let unknown: Vec<bool> = parts
        .iter()
        .map(|(t, p)| b.store().partition(t, *p).is_none())
        .collect();
    let codes: Vec<i16> = if unknown.iter().any(|u| *u) {
        unknown
            .iter()
            .map(|u| {
                if *u {
                    ResponseError::UnknownTopicOrPartition.code()
                } else {
                    ResponseError::OperationNotAttempted.code()
                }
            })
            .collect()
    } else if verify_only {
        match b.txns().lock().verify(&id, pid, epoch, &parts) {
            Ok(v) => v.into_iter().map(|e| e.map_or(0, |e| e.code())).collect(),
            Err(e) => vec![e.code(); parts.len()],
        }
    } else {
        let mut c = b.txns().lock();
        let r = c
            .add_partitions(&id, pid, epoch, &parts, now_ms())
            .and_then(|changed| {
                if changed {
                    txn::persist(b, &c, &id)?;
                }
                Ok(changed)
            });
        drop(c);
        match r {
            Ok(changed) => {
                return (results(topics, &vec![0; parts.len()]), changed);
            }
            Err(e) => vec![fenced_for(e, version, 2).code(); parts.len()],
        }
    };
    (results(topics, &codes), false)
}

fn results(
    topics: &[AddPartitionsToTxnTopic],
    codes: &[i16],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut i = 0;
    topics
        .iter()
        .map(|t| {
            let ps = t
                .partitions
                .iter()
                .map(|p| {
                    let code = codes.get(i).copied().unwrap_or(0);
                    i += 1;
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(ps)
        })
        .collect()
}

/// After a failed flush nothing may claim success.
fn every(resp: &mut AddPartitionsToTxnResponse, code: i16) {
    let all = resp.results_by_topic_v3_and_below.iter_mut().chain(
        resp.results_by_transaction
            .iter_mut()
            .flat_map(|t| t.topic_results.iter_mut()),
    );
    for t in all {
        for p in t
            .results_by_partition
            .iter_mut()
            .filter(|p| p.partition_error_code == 0)
        {
            p.partition_error_code = code;
        }
    }
}
