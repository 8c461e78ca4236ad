//! DeleteTopics (20): by name (v0–5 `topic_names`, v6 `topics`) or by id (v6).

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use tracing::info;

use super::{str_bytes, topic_name};
use crate::context::Broker;
use crate::error::storage_error;
use kafka_protocol::ResponseError;

pub fn handle(b: &Broker, req: DeleteTopicsRequest, _version: i16) -> DeleteTopicsResponse {
    let mut targets: Vec<(Option<String>, uuid::Uuid)> = req
        .topic_names
        .iter()
        .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
        .collect();
    targets.extend(
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)),
    );
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let r = DeletableTopicResult::default().with_topic_id(id);
            let name = match name {
                Some(n) => n,
                None => match b.store().topic_by_id(id) {
                    Some(meta) => meta.name,
                    None => {
                        return r
                            .with_name(None)
                            .with_error_code(ResponseError::UnknownTopicId.code())
                            .with_error_message(Some(str_bytes(
                                "This server does not host this topic ID.",
                            )));
                    }
                },
            };
            let r = r.with_name(Some(topic_name(&name)));
            match b.store().delete_topic(&name) {
                Ok(meta) => {
                    info!(topic = %name, "deleted topic");
                    b.cluster().forget_topic(&name);
                    r.with_topic_id(meta.id).with_error_code(0)
                }
                Err(e) => r
                    .with_error_code(storage_error(&e).code())
                    .with_error_message(Some(str_bytes(
                        "This server does not host this topic-partition.",
                    ))),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
