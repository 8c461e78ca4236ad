//! ListTransactions (66): every transactional id with its producer and
//! state, filtered by state, producer id and (v1+) how long the
//! transaction has run, and (v2) by a regular expression the whole id must
//! match, as Java's `Pattern.matches` (`kafka-transactions.sh list`).

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId};

use super::str_bytes;
use crate::context::{now_ms, Broker};
use crate::coordinator::txn::TxnState as S;
use kafka_protocol::ResponseError;

const STATES: [S; 6] = [
    S::Empty,
    S::Ongoing,
    S::PrepareCommit,
    S::PrepareAbort,
    S::CompleteCommit,
    S::CompleteAbort,
];

/// Kafka's other state names: valid filters that match nothing here.
const OTHER_STATES: [&str; 3] = ["PrepareEpochFence", "Dead", "PrepareTransaction"];

pub fn handle(b: &Broker, req: ListTransactionsRequest, version: i16) -> ListTransactionsResponse {
    let pattern = match req
        .transactional_id_pattern
        .as_deref()
        .filter(|_| version >= 2)
    {
        None | Some("") => None,
        Some(p) => match regex_automata::meta::Regex::new(&format!("^(?:{p})$")) {
            Ok(r) => Some(r),
            // Kafka answers a pattern it cannot compile with INVALID_REQUEST.
            Err(_) => {
                return ListTransactionsResponse::default()
                    .with_error_code(ResponseError::InvalidRequest.code());
            }
        },
    };
    let unknown: Vec<_> = req
        .state_filters
        .iter()
        .filter(|f| !STATES.iter().any(|s| s.name() == &***f) && !OTHER_STATES.contains(&&***f))
        .cloned()
        .collect();
    let now = now_ms();
    let c = b.txns().lock();
    let states = c
        .all()
        .filter(|(_, m)| {
            req.state_filters.is_empty() || req.state_filters.iter().any(|f| &**f == m.state.name())
        })
        .filter(|(_, m)| {
            req.producer_id_filters.is_empty()
                || req.producer_id_filters.iter().any(|p| p.0 == m.producer_id)
        })
        // KIP-994: only transactions running longer than the duration.
        .filter(|(_, m)| {
            // Kafka counts from the start time even when it is -1 (no
            // transaction), so idle ids are listed too.
            version < 1 || req.duration_filter < 0 || now - m.start_ms >= req.duration_filter
        })
        .filter(|(id, _)| pattern.as_ref().is_none_or(|r| r.is_match(id.as_str())))
        .map(|(id, m)| {
            TransactionState::default()
                .with_transactional_id(kafka_protocol::messages::TransactionalId(str_bytes(id)))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(str_bytes(m.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_error_code(0)
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states)
}
