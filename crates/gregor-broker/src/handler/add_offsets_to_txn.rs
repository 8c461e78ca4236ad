//! AddOffsetsToTxn (25): the producer's transaction will commit offsets of
//! this group (transaction version 1; version 2 adds the group implicitly
//! with TxnOffsetCommit v5+).

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ResponseKind};

use super::init_producer_id::fenced_for;
use super::{Handled, Response};
use crate::context::{now_ms, Broker};
use crate::txn;

pub fn handle(b: &Broker, req: AddOffsetsToTxnRequest, version: i16) -> Handled {
    let b = b.clone();
    Handled::Later(Box::pin(async move {
        let id = req.transactional_id.0.to_string();
        let r = {
            let mut c = b.txns().lock();
            c.add_offsets(
                &id,
                req.producer_id.0,
                req.producer_epoch,
                &req.group_id.0,
                now_ms(),
            )
            .and_then(|changed| {
                if changed {
                    txn::persist(&b, &c, &id)?;
                }
                Ok(changed)
            })
        };
        let code = match r {
            Ok(true) => txn::durable(&b).await.err().map_or(0, |e| e.code()),
            Ok(false) => 0,
            Err(e) => fenced_for(e, version, 2).code(),
        };
        Response::Kind(Box::new(ResponseKind::AddOffsetsToTxn(
            AddOffsetsToTxnResponse::default().with_error_code(code),
        )))
    }))
}
