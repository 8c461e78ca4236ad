//! EndTxn (26): commit or abort. The coordinator makes PrepareCommit or
//! PrepareAbort durable, writes a COMMIT or ABORT marker to every
//! partition of the transaction, makes the transaction's offsets visible
//! (commit), and only then answers. With transaction version 2 (v5+) every
//! end bumps the producer's epoch, returned in the answer.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId, ResponseKind};

use super::init_producer_id::fenced_for;
use super::{Handled, Response};
use crate::context::{now_ms, Broker};
use crate::coordinator::txn::EndOutcome;
use crate::txn;
use kafka_protocol::ResponseError;

pub fn handle(b: &Broker, req: EndTxnRequest, version: i16) -> Handled {
    let b = b.clone();
    Handled::Later(Box::pin(async move {
        let r = end(&b, &req, version).await;
        let resp = match r {
            Ok((pid, epoch)) => EndTxnResponse::default()
                .with_error_code(0)
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch),
            Err(e) => EndTxnResponse::default()
                .with_error_code(fenced_for(e, version, 2).code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        };
        Response::Kind(Box::new(ResponseKind::EndTxn(resp)))
    }))
}

async fn end(b: &Broker, req: &EndTxnRequest, version: i16) -> Result<(i64, i16), ResponseError> {
    let id = req.transactional_id.0.to_string();
    let v2 = version >= 5;
    let outcome = {
        let mut c = b.txns().lock();
        let out = c.end(
            &id,
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
            v2,
            now_ms(),
        )?;
        txn::persist(b, &c, &id)?;
        out
    };
    match outcome {
        EndOutcome::Markers(plan) => txn::finish(b, &plan).await,
        EndOutcome::Done(pid, epoch) => {
            txn::durable(b).await?;
            Ok((pid, epoch))
        }
    }
}
