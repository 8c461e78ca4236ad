//! The HTTP admin API (issue 11, `--admin-listen`): faults, the shape of
//! the virtual cluster, inspection and Prometheus metrics, JSON in and out,
//! so that a test in any language can drive the broker. Routes are listed
//! in docs/TESTING-WITH-GREGOR.md.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::context::Broker;
use crate::fault::Filter;

/// An answer that went wrong: a status and one line.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(msg: impl std::fmt::Display) -> Failure {
    Failure(StatusCode::BAD_REQUEST, msg.to_string())
}

fn conflict(msg: impl std::fmt::Display) -> Failure {
    Failure(StatusCode::CONFLICT, msg.to_string())
}

type Answer = Result<Json<Value>, Failure>;

/// The body as JSON of type `T`; an empty body is `{}`.
fn body<T: DeserializeOwned>(b: &Bytes) -> Result<T, Failure> {
    let text: &[u8] = if b.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        b
    };
    serde_json::from_slice(text).map_err(|e| bad(format!("invalid JSON body: {e}")))
}

/// An API or error given as a name or a number.
fn name(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs blocking work (store reads and writes) off the reactor.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// The router over `broker`.
pub fn router(broker: Broker) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/metrics", get(metrics))
        .route("/cluster", get(cluster))
        .route("/topics", get(topics))
        .route("/groups", get(groups))
        .route("/transactions", get(transactions))
        .route("/faults", get(faults).delete(clear))
        .route("/faults/errors", post(push_errors))
        .route("/faults/latency", post(latency))
        .route("/faults/close", post(close))
        .route("/faults/storage", post(storage))
        .route("/faults/throttle", post(throttle))
        .route("/brokers/{id}/down", post(broker_down))
        .route("/brokers/{id}/up", post(broker_up))
        .route("/leaders", post(leaders))
        .route("/coordinator", post(coordinator))
        .route("/reset", post(reset))
        .fallback(|| async {
            Failure(
                StatusCode::NOT_FOUND,
                "no such route (see docs/TESTING-WITH-GREGOR.md)".into(),
            )
        })
        .with_state(broker)
}

/// Serves the admin API on `listener` until `stop` reads true.
pub async fn serve(
    listener: TcpListener,
    broker: Broker,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = router(broker);
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::warn!(cause = %e, "admin API stopped");
    }
}

async fn metrics(State(b): State<Broker>) -> Result<Response, Failure> {
    let text = blocking(move || Ok(b.metrics().render(&b))).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn cluster(State(b): State<Broker>) -> Answer {
    let c = b.cluster();
    let brokers: Vec<Value> = c
        .nodes()
        .iter()
        .map(|n| json!({ "id": n.id, "host": n.host, "port": n.port, "up": c.is_up(n.id) }))
        .collect();
    Ok(Json(json!({
        "cluster_id": b.config().cluster_id,
        "controller": c.live().first().map_or(b.node_id(), |n| n.id),
        "coordinator": c.coordinator(),
        "brokers": brokers,
    })))
}

async fn topics(State(b): State<Broker>) -> Answer {
    blocking(move || Ok(Json(json!(crate::inspect::topics(&b))))).await
}

async fn groups(State(b): State<Broker>) -> Answer {
    blocking(move || Ok(Json(json!(crate::inspect::groups(&b))))).await
}

async fn transactions(State(b): State<Broker>) -> Answer {
    Ok(Json(json!(crate::inspect::transactions(&b))))
}

async fn faults(State(b): State<Broker>) -> Answer {
    Ok(Json(json!(b.faults().snapshot())))
}

async fn clear(State(b): State<Broker>) -> Answer {
    b.faults().clear();
    Ok(Json(json!({ "cleared": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Targeted {
    api: Option<Value>,
    errors: Option<Vec<Value>>,
    error: Option<Value>,
    count: Option<u32>,
    broker: Option<i32>,
    topic: Option<String>,
    partition: Option<i32>,
    group: Option<String>,
    client_id: Option<String>,
}

impl Targeted {
    fn filter(&self) -> Filter {
        Filter {
            broker: self.broker,
            topic: self.topic.clone(),
            partition: self.partition,
            group: self.group.clone(),
            client_id: self.client_id.clone(),
        }
    }
}

async fn push_errors(State(b): State<Broker>, raw: Bytes) -> Answer {
    let t: Targeted = body(&raw)?;
    let api = t
        .api
        .as_ref()
        .map(name)
        .ok_or_else(|| bad("\"api\" is required"))?;
    let errors: Vec<String> = match (&t.errors, &t.error) {
        (Some(list), None) if t.count.is_none() => list.iter().map(name).collect(),
        (None, Some(e)) => {
            let n = t.count.unwrap_or(1).min(100_000);
            std::iter::repeat_n(name(e), usize::try_from(n).unwrap_or(1)).collect()
        }
        _ => {
            return Err(bad(
                "give \"errors\": [..], or \"error\" with an optional \"count\"",
            ))
        }
    };
    let id = b
        .faults()
        .push_errors(&api, &errors, t.filter())
        .map_err(bad)?;
    Ok(Json(json!({ "id": id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Delay {
    ms: i64,
    api: Option<Value>,
    broker: Option<i32>,
    count: Option<u32>,
}

async fn latency(State(b): State<Broker>, raw: Bytes) -> Answer {
    let d: Delay = body(&raw)?;
    let ms = u64::try_from(d.ms).map_err(|_| bad("\"ms\" must not be negative"))?;
    let api = d.api.as_ref().map(name);
    let id = b
        .faults()
        .set_latency(ms, api.as_deref(), d.broker)
        .map_err(bad)?;
    Ok(Json(json!({ "id": id })))
}

async fn throttle(State(b): State<Broker>, raw: Bytes) -> Answer {
    let d: Delay = body(&raw)?;
    let ms = i32::try_from(d.ms).map_err(|_| bad("\"ms\" out of range"))?;
    let api = d.api.as_ref().map(name);
    let id = b
        .faults()
        .set_throttle(ms, api.as_deref(), d.broker, d.count)
        .map_err(bad)?;
    Ok(Json(json!({ "id": id })))
}

async fn close(State(b): State<Broker>, raw: Bytes) -> Answer {
    let t: Targeted = body(&raw)?;
    if t.errors.is_some() || t.error.is_some() {
        return Err(bad("a close fault takes no errors"));
    }
    let api = t.api.as_ref().map(name);
    let id = b
        .faults()
        .close_before_response(api.as_deref(), t.count.unwrap_or(1), t.filter())
        .map_err(bad)?;
    Ok(Json(json!({ "id": id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Storage {
    failed: bool,
}

async fn storage(State(b): State<Broker>, raw: Bytes) -> Answer {
    let s: Storage = body(&raw)?;
    b.faults().set_storage_failed(s.failed);
    Ok(Json(json!({ "storage_failed": s.failed })))
}

fn broker_id(id: &str) -> Result<i32, Failure> {
    id.parse()
        .map_err(|_| bad(format!("{id:?} is not a broker id")))
}

async fn broker_down(State(b): State<Broker>, Path(id): Path<String>) -> Answer {
    let id = broker_id(&id)?;
    blocking(move || {
        let ends = b.partition_ends();
        let moved = b.cluster().down(id, &ends).map_err(|e| match e {
            crate::cluster::ClusterError::NoSuchBroker(_) => {
                Failure(StatusCode::NOT_FOUND, e.to_string())
            }
            e => conflict(e),
        })?;
        Ok(Json(
            json!({ "broker": id, "up": false, "partitions_moved": moved }),
        ))
    })
    .await
}

async fn broker_up(State(b): State<Broker>, Path(id): Path<String>) -> Answer {
    let id = broker_id(&id)?;
    blocking(move || {
        let ends = b.partition_ends();
        b.cluster()
            .up(id, &ends)
            .map_err(|e| Failure(StatusCode::NOT_FOUND, e.to_string()))?;
        Ok(Json(json!({ "broker": id, "up": true })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Move {
    topic: Option<String>,
    partition: Option<i32>,
    leader: Option<i32>,
    from: Option<i32>,
    to: Option<i32>,
}

async fn leaders(State(b): State<Broker>, raw: Bytes) -> Answer {
    let m: Move = body(&raw)?;
    blocking(move || match m {
        Move {
            topic: Some(topic),
            partition: Some(partition),
            leader: Some(to),
            from: None,
            to: None,
        } => {
            let log = b
                .store()
                .partition(&topic, partition)
                .ok_or_else(|| Failure(StatusCode::NOT_FOUND, format!("no partition {topic}-{partition}")))?;
            let l = b
                .cluster()
                .move_partition(&topic, partition, to, log.high_watermark())
                .map_err(conflict)?;
            Ok(Json(json!({ "topic": topic, "partition": partition, "leader": l.id, "leader_epoch": l.epoch })))
        }
        Move {
            topic: None,
            partition: None,
            leader: None,
            from: Some(from),
            to,
        } => {
            let ends = b.partition_ends();
            let moved = b.cluster().move_all(from, to, &ends).map_err(conflict)?;
            Ok(Json(json!({ "from": from, "partitions_moved": moved })))
        }
        _ => Err(bad(
            "give {\"topic\", \"partition\", \"leader\"} or {\"from\"[, \"to\"]}",
        )),
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Coord {
    broker: i32,
}

async fn coordinator(State(b): State<Broker>, raw: Bytes) -> Answer {
    let c: Coord = body(&raw)?;
    b.cluster().set_coordinator(c.broker).map_err(conflict)?;
    Ok(Json(json!({ "coordinator": c.broker })))
}

async fn reset(State(b): State<Broker>) -> Answer {
    blocking(move || {
        let stats = b.reset().map_err(conflict)?;
        Ok(Json(json!(stats)))
    })
    .await
}
