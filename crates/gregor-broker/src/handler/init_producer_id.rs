//! InitProducerId (22): a fresh producer id for idempotent producers.
//! Like Kafka, a request without a transactional id always gets a new id
//! at epoch 0, whatever id and epoch it carries.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tracing::warn;

use crate::context::Broker;
use kafka_protocol::ResponseError;

pub fn handle(b: &Broker, req: InitProducerIdRequest, _version: i16) -> InitProducerIdResponse {
    let base = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        // Transactions need a transaction coordinator Gregor does not have yet.
        return base.with_error_code(ResponseError::UnsupportedVersion.code());
    }
    match b.store().next_producer_id() {
        Ok(id) => base
            .with_error_code(0)
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            warn!(cause = %e, "cannot allocate a producer id");
            base.with_error_code(ResponseError::KafkaStorageError.code())
        }
    }
}
