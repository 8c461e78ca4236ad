//! InitProducerId (22). Without a transactional id: a fresh producer id at
//! epoch 0 for an idempotent producer (like Kafka, whatever id and epoch
//! the request carries). With one: the transaction coordinator allocates
//! or recovers the id's producer id and bumps its epoch, fencing the
//! previous incarnation; an ongoing transaction is aborted first, and the
//! answer waits for its markers.

use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, ResponseKind,
};
use tracing::{info, warn};

use super::{Handled, Response};
use crate::context::{now_ms, Broker};
use crate::coordinator::txn::InitOutcome;
use crate::txn;
use kafka_protocol::ResponseError;

pub fn handle(b: &Broker, req: InitProducerIdRequest, version: i16) -> Handled {
    let base = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let now = |r: InitProducerIdResponse| {
        Handled::Now(Response::Kind(Box::new(ResponseKind::InitProducerId(r))))
    };
    if let Some(id) = req.transactional_id.as_ref().map(|t| t.0.to_string()) {
        // KIP-360: a producer id and an epoch come together or not at all.
        let half = version >= 3 && ((req.producer_id.0 >= 0) != (req.producer_epoch >= 0));
        if id.is_empty() || half {
            return now(base.with_error_code(ResponseError::InvalidRequest.code()));
        }
        let b = b.clone();
        return Handled::Later(Box::pin(async move {
            let r = match transactional(&b, &id, &req, version).await {
                Ok((pid, epoch)) => base
                    .with_error_code(0)
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch),
                Err(code) => base.with_error_code(fenced_for(code, version, 4).code()),
            };
            Response::Kind(Box::new(ResponseKind::InitProducerId(r)))
        }));
    }
    match b.store().next_producer_id() {
        Ok(id) => now(base
            .with_error_code(0)
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0)),
        Err(e) => {
            warn!(cause = %e, "cannot allocate a producer id");
            now(base.with_error_code(ResponseError::KafkaStorageError.code()))
        }
    }
}

/// PRODUCER_FENCED is new in the API's version `since`; older clients get
/// INVALID_PRODUCER_EPOCH, which they handle the same way (Kafka's
/// `KafkaApis` does this for every transactional API).
pub(crate) fn fenced_for(code: ResponseError, version: i16, since: i16) -> ResponseError {
    if code == ResponseError::ProducerFenced && version < since {
        ResponseError::InvalidProducerEpoch
    } else {
        code
    }
}

async fn transactional(
    b: &Broker,
    id: &str,
    req: &InitProducerIdRequest,
    version: i16,
) -> Result<(i64, i16), ResponseError> {
    let mut expected =
        (version >= 3 && req.producer_id.0 >= 0).then_some((req.producer_id.0, req.producer_epoch));
    // At most one abort: the retry after it finds no open transaction.
    for _ in 0..2 {
        let outcome = {
            let mut c = b.txns().lock();
            let store = b.store();
            let out = c.init(
                id,
                req.transaction_timeout_ms,
                expected,
                now_ms(),
                &mut || store.next_producer_id().ok(),
            )?;
            txn::persist(b, &c, id)?;
            out
        };
        match outcome {
            InitOutcome::Ready(pid, epoch) => {
                txn::durable(b).await?;
                return Ok((pid, epoch));
            }
            InitOutcome::AbortFirst(plan) => {
                info!(transactional_id = %id, producer_id = plan.producer_id, epoch = plan.epoch, "aborting the ongoing transaction of a fenced producer");
                let (pid, epoch) = txn::finish(b, &plan).await?;
                // The caller's own epoch was the fenced one: go on from the
                // fencing epoch.
                expected = expected.map(|_| (pid, epoch));
            }
        }
    }
    Err(ResponseError::ConcurrentTransactions)
}
