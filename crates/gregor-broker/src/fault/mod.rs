//! Fault injection (issue 11): errors pushed onto the next requests of an
//! API, added latency, connections cut after a request is processed and
//! before its answer, failed storage, throttling. Driven by the HTTP admin
//! API or the embedded broker; every fault that hits is logged at info.
//!
//! With no fault set, a request pays one atomic load here.

pub mod response;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

/// Which requests a fault applies to; every field set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Only requests sent to this broker id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<i32>,
    /// Only requests naming this topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Only requests naming this partition (of `topic`, if given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    /// Only requests naming this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Only requests from this client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// Errors answered to the next matching requests, one each, in order.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorRule {
    /// Id, for the listing.
    pub id: u64,
    /// The API, by Kafka's name.
    pub api: String,
    /// Error codes still to answer.
    pub errors: VecDeque<i16>,
    /// Which requests.
    #[serde(flatten)]
    pub filter: Filter,
    #[serde(skip)]
    key: i16,
}

/// Delay added to responses.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyRule {
    /// Id.
    pub id: u64,
    /// Milliseconds.
    pub ms: u64,
    /// Only this API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// Only this broker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<i32>,
    #[serde(skip)]
    key: Option<i16>,
}

/// Connections closed after the next matching requests are processed,
/// before their answers.
#[derive(Debug, Clone, Serialize)]
pub struct CloseRule {
    /// Id.
    pub id: u64,
    /// Only this API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// Requests still to cut.
    pub remaining: u32,
    /// Which requests.
    #[serde(flatten)]
    pub filter: Filter,
    #[serde(skip)]
    key: Option<i16>,
}

/// `throttle_time_ms` set in responses.
#[derive(Debug, Clone, Serialize)]
pub struct ThrottleRule {
    /// Id.
    pub id: u64,
    /// Milliseconds.
    pub ms: i32,
    /// Only this API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// Only this broker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<i32>,
    /// Responses still to throttle; none means until cleared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u32>,
    #[serde(skip)]
    key: Option<i16>,
}

/// Every fault in force.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// Pushed errors.
    pub errors: Vec<ErrorRule>,
    /// Latency.
    pub latency: Vec<LatencyRule>,
    /// Connection cuts.
    pub close: Vec<CloseRule>,
    /// Throttling.
    pub throttle: Vec<ThrottleRule>,
    /// Writes fail with KAFKA_STORAGE_ERROR.
    pub storage_failed: bool,
}

/// What the faults make of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision {
    /// Answer this error instead of processing the request.
    pub error: Option<i16>,
    /// Delay the answer.
    pub latency_ms: u64,
    /// Process, then close the connection instead of answering.
    pub close: bool,
    /// Set this throttle time in the answer.
    pub throttle_ms: i32,
}

/// Why a fault was refused.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// Unknown API name or key.
    #[error("unknown API {0:?} (use Kafka's name, e.g. Produce, or its key)")]
    UnknownApi(String),
    /// Errors cannot be injected into this API.
    #[error("errors cannot be injected into {0}")]
    Unsupported(String),
    /// Unknown error name or code.
    #[error("unknown error {0:?} (use Kafka's name, e.g. NOT_LEADER_OR_FOLLOWER, or its code)")]
    UnknownError(String),
    /// Nothing to inject.
    #[error("{0}")]
    Invalid(String),
}

/// The faults in force.
#[derive(Debug, Default)]
pub struct Faults {
    /// Any rule set: the only thing a request reads when none is.
    armed: AtomicBool,
    storage_failed: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    errors: Vec<ErrorRule>,
    latency: Vec<LatencyRule>,
    close: Vec<CloseRule>,
    throttle: Vec<ThrottleRule>,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
    fn empty(&self) -> bool {
        self.errors.is_empty()
            && self.latency.is_empty()
            && self.close.is_empty()
            && self.throttle.is_empty()
    }
}

/// An API by Kafka's name ("Produce") or key ("0").
pub fn parse_api(s: &str) -> Result<ApiKey, FaultError> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i16>() {
        return ApiKey::try_from(n).map_err(|_| FaultError::UnknownApi(s.into()));
    }
    ApiKey::iter()
        .find(|k| format!("{k:?}").eq_ignore_ascii_case(t))
        .ok_or_else(|| FaultError::UnknownApi(s.into()))
}

/// Kafka's name of an API.
pub fn api_label(k: ApiKey) -> String {
    format!("{k:?}")
}

/// Kafka's name of an error code: NOT_LEADER_OR_FOLLOWER.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(e) => {
            let camel = format!("{e:?}");
            let mut out = String::with_capacity(camel.len() + 8);
            for (i, c) in camel.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
        None if code == 0 => "NONE".into(),
        None => format!("UNKNOWN({code})"),
    }
}

/// An error by Kafka's name or code.
pub fn parse_error(s: &str) -> Result<i16, FaultError> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i16>() {
        return if n != 0 && ResponseError::try_from_code(n).is_some() {
            Ok(n)
        } else {
            Err(FaultError::UnknownError(s.into()))
        };
    }
    (-1..=200)
        .filter(|c| *c != 0)
        .find(|c| {
            ResponseError::try_from_code(*c).is_some() && error_name(*c).eq_ignore_ascii_case(t)
        })
        .ok_or_else(|| FaultError::UnknownError(s.into()))
}

fn matches(f: &Filter, node: i32, client_id: &str, t: Option<&response::Targets>) -> bool {
    if f.broker.is_some_and(|b| b != node) {
        return false;
    }
    if f.client_id.as_deref().is_some_and(|c| c != client_id) {
        return false;
    }
    let Some(t) = t else {
        return f.topic.is_none() && f.partition.is_none() && f.group.is_none();
    };
    if let Some(g) = &f.group {
        if !t.groups.iter().any(|x| x == g) && t.transactional_id.as_deref() != Some(g.as_str()) {
            return false;
        }
    }
    if f.topic.is_some() || f.partition.is_some() {
        let hit = t.topics.iter().any(|(name, parts)| {
            f.topic.as_deref().is_none_or(|x| x == name)
                && f.partition.is_none_or(|p| parts.contains(&p))
        });
        if !hit {
            return false;
        }
    }
    true
}

fn needs_targets(f: &Filter) -> bool {
    f.topic.is_some() || f.partition.is_some() || f.group.is_some()
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn rearm(&self, s: &State) {
        self.armed.store(!s.empty(), Ordering::Release);
    }

    /// Pushes errors onto the next requests of `api` that match `filter`.
    pub fn push_errors(
        &self,
        api: &str,
        errors: &[String],
        filter: Filter,
    ) -> Result<u64, FaultError> {
        let key = parse_api(api)?;
        if !response::supports(key) {
            return Err(FaultError::Unsupported(api_label(key)));
        }
        if errors.is_empty() {
            return Err(FaultError::Invalid("no errors given".into()));
        }
        let codes = errors
            .iter()
            .map(|e| parse_error(e))
            .collect::<Result<VecDeque<_>, _>>()?;
        let mut s = self.lock();
        let id = s.id();
        tracing::info!(id, api = %api_label(key), errors = ?codes, ?filter, "fault set: errors");
        s.errors.push(ErrorRule {
            id,
            api: api_label(key),
            errors: codes,
            filter,
            key: key as i16,
        });
        self.rearm(&s);
        Ok(id)
    }

    /// Delays responses by `ms` (0 removes the matching latency).
    pub fn set_latency(
        &self,
        ms: u64,
        api: Option<&str>,
        broker: Option<i32>,
    ) -> Result<u64, FaultError> {
        let key = api.map(parse_api).transpose()?;
        let mut s = self.lock();
        s.latency
            .retain(|l| !(l.key == key.map(|k| k as i16) && l.broker == broker));
        let id = if ms > 0 {
            let id = s.id();
            s.latency.push(LatencyRule {
                id,
                ms,
                api: key.map(api_label),
                broker,
                key: key.map(|k| k as i16),
            });
            id
        } else {
            0
        };
        tracing::info!(ms, api = ?key.map(api_label), broker, "fault set: latency");
        self.rearm(&s);
        Ok(id)
    }

    /// Closes connections after the next `count` matching requests are
    /// processed, before their answers.
    pub fn close_before_response(
        &self,
        api: Option<&str>,
        count: u32,
        filter: Filter,
    ) -> Result<u64, FaultError> {
        let key = api.map(parse_api).transpose()?;
        if count == 0 {
            return Err(FaultError::Invalid("count must be at least 1".into()));
        }
        let mut s = self.lock();
        let id = s.id();
        tracing::info!(id, api = ?key.map(api_label), count, ?filter, "fault set: close before response");
        s.close.push(CloseRule {
            id,
            api: key.map(api_label),
            remaining: count,
            filter,
            key: key.map(|k| k as i16),
        });
        self.rearm(&s);
        Ok(id)
    }

    /// Sets `throttle_time_ms` in matching responses (0 removes).
    pub fn set_throttle(
        &self,
        ms: i32,
        api: Option<&str>,
        broker: Option<i32>,
        count: Option<u32>,
    ) -> Result<u64, FaultError> {
        let key = api.map(parse_api).transpose()?;
        if ms < 0 {
            return Err(FaultError::Invalid("ms must not be negative".into()));
        }
        let mut s = self.lock();
        s.throttle
            .retain(|l| !(l.key == key.map(|k| k as i16) && l.broker == broker));
        let id = if ms > 0 {
            let id = s.id();
            s.throttle.push(ThrottleRule {
                id,
                ms,
                api: key.map(api_label),
                broker,
                remaining: count,
                key: key.map(|k| k as i16),
            });
            id
        } else {
            0
        };
        tracing::info!(ms, api = ?key.map(api_label), broker, count, "fault set: throttle");
        self.rearm(&s);
        Ok(id)
    }

    /// Makes writes fail with KAFKA_STORAGE_ERROR, or stops that.
    pub fn set_storage_failed(&self, failed: bool) {
        tracing::info!(failed, "fault set: storage");
        self.storage_failed.store(failed, Ordering::Release);
    }

    /// Whether writes fail.
    pub fn storage_failed(&self) -> bool {
        self.storage_failed.load(Ordering::Acquire)
    }

    /// Removes every fault.
    pub fn clear(&self) {
        let mut s = self.lock();
        let next_id = s.next_id;
        *s = State {
            next_id,
            ..State::default()
        };
        self.storage_failed.store(false, Ordering::Release);
        self.rearm(&s);
        tracing::info!("faults cleared");
    }

    /// The faults in force.
    pub fn snapshot(&self) -> Snapshot {
        let s = self.lock();
        Snapshot {
            errors: s.errors.clone(),
            latency: s.latency.clone(),
            close: s.close.clone(),
            throttle: s.throttle.clone(),
            storage_failed: self.storage_failed(),
        }
    }

    /// What the faults do to one request (and uses up what it takes).
    pub fn decide(&self, node: i32, api: ApiKey, client_id: &str, req: &RequestKind) -> Decision {
        if !self.armed.load(Ordering::Acquire) {
            return Decision::default();
        }
        let key = api as i16;
        let mut s = self.lock();
        let need = s
            .errors
            .iter()
            .any(|r| r.key == key && needs_targets(&r.filter))
            || s.close
                .iter()
                .any(|r| r.key.is_none_or(|k| k == key) && needs_targets(&r.filter));
        let targets = need.then(|| response::targets(req));
        let mut d = Decision::default();
        let t = targets.as_ref();
        if let Some(r) = s
            .errors
            .iter_mut()
            .find(|r| r.key == key && matches(&r.filter, node, client_id, t))
        {
            d.error = r.errors.pop_front();
            tracing::info!(
                rule = r.id, api = %api_label(api), broker = node, client_id,
                error = %d.error.map(error_name).unwrap_or_default(),
                "fault hit: error answered"
            );
        }
        s.errors.retain(|r| !r.errors.is_empty());
        if d.error.is_none() {
            if let Some(r) = s
                .close
                .iter_mut()
                .find(|r| r.key.is_none_or(|k| k == key) && matches(&r.filter, node, client_id, t))
            {
                r.remaining -= 1;
                d.close = true;
                tracing::info!(rule = r.id, api = %api_label(api), broker = node, client_id, "fault hit: connection closed before the response");
            }
            s.close.retain(|r| r.remaining > 0);
        }
        d.latency_ms = s
            .latency
            .iter()
            .filter(|l| l.key.is_none_or(|k| k == key) && l.broker.is_none_or(|b| b == node))
            .map(|l| l.ms)
            .sum();
        if let Some(r) = s
            .throttle
            .iter_mut()
            .find(|l| l.key.is_none_or(|k| k == key) && l.broker.is_none_or(|b| b == node))
        {
            d.throttle_ms = r.ms;
            if let Some(n) = r.remaining.as_mut() {
                *n = n.saturating_sub(1);
            }
        }
        s.throttle.retain(|r| r.remaining != Some(0));
        if d.latency_ms > 0 || d.throttle_ms > 0 {
            tracing::info!(api = %api_label(api), broker = node, client_id, latency_ms = d.latency_ms, throttle_ms = d.throttle_ms, "fault hit: delay or throttle");
        }
        self.rearm(&s);
        d
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use kafka_protocol::messages::HeartbeatRequest;

    fn hb() -> RequestKind {
        RequestKind::Heartbeat(HeartbeatRequest::default())
    }

    #[test]
    fn names_of_apis_and_errors_are_kafkas() {
        assert_eq!(parse_api("Produce").unwrap(), ApiKey::Produce);
        assert_eq!(parse_api("initproducerid").unwrap(), ApiKey::InitProducerId);
        assert_eq!(parse_api("11").unwrap(), ApiKey::JoinGroup);
        assert!(parse_api("Nope").is_err());
        assert_eq!(parse_error("NOT_LEADER_OR_FOLLOWER").unwrap(), 6);
        assert_eq!(parse_error("6").unwrap(), 6);
        assert_eq!(error_name(15), "COORDINATOR_NOT_AVAILABLE");
        assert_eq!(parse_error("UNKNOWN_SERVER_ERROR").unwrap(), -1);
        assert!(parse_error("0").is_err());
        assert!(parse_error("NO_SUCH_THING").is_err());
    }

    #[test]
    fn pushed_errors_are_used_once_each_in_order() {
        let f = Faults::default();
        assert_eq!(
            f.decide(1, ApiKey::Heartbeat, "c", &hb()),
            Decision::default()
        );
        f.push_errors(
            "Heartbeat",
            &["REBALANCE_IN_PROGRESS".into(), "16".into()],
            Filter::default(),
        )
        .unwrap();
        let other = f.decide(1, ApiKey::Produce, "c", &hb());
        assert_eq!(other.error, None);
        assert_eq!(f.decide(1, ApiKey::Heartbeat, "c", &hb()).error, Some(27));
        assert_eq!(f.decide(1, ApiKey::Heartbeat, "c", &hb()).error, Some(16));
        assert_eq!(f.decide(1, ApiKey::Heartbeat, "c", &hb()).error, None);
        assert!(f.snapshot().errors.is_empty());
    }

    #[test]
    fn filters_by_broker_and_client() {
        let f = Faults::default();
        let only = Filter {
            broker: Some(2),
            client_id: Some("app".into()),
            ..Filter::default()
        };
        f.push_errors("Heartbeat", &["NOT_COORDINATOR".into()], only)
            .unwrap();
        assert_eq!(f.decide(1, ApiKey::Heartbeat, "app", &hb()).error, None);
        assert_eq!(f.decide(2, ApiKey::Heartbeat, "other", &hb()).error, None);
        assert_eq!(f.decide(2, ApiKey::Heartbeat, "app", &hb()).error, Some(16));
    }

    #[test]
    fn close_latency_throttle_and_clear() {
        let f = Faults::default();
        f.close_before_response(Some("Heartbeat"), 1, Filter::default())
            .unwrap();
        f.set_latency(50, None, Some(1)).unwrap();
        f.set_throttle(20, Some("Heartbeat"), None, Some(2))
            .unwrap();
        let d = f.decide(1, ApiKey::Heartbeat, "c", &hb());
        assert!(d.close);
        assert_eq!((d.latency_ms, d.throttle_ms), (50, 20));
        let d = f.decide(2, ApiKey::Heartbeat, "c", &hb());
        assert!(!d.close);
        assert_eq!((d.latency_ms, d.throttle_ms), (0, 20));
        assert_eq!(f.decide(2, ApiKey::Heartbeat, "c", &hb()).throttle_ms, 0);
        f.set_storage_failed(true);
        f.clear();
        assert!(!f.storage_failed());
        assert_eq!(
            f.decide(1, ApiKey::Heartbeat, "c", &hb()),
            Decision::default()
        );
    }
}
