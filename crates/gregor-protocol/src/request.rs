//! Request decoding: header by api key and version, body to a typed request.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use crate::error::ProtocolError;
use crate::versions;

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    /// The API.
    pub api_key: ApiKey,
    /// The request version.
    pub version: i16,
    /// The decoded header (correlation id, client id).
    pub header: RequestHeader,
    /// The decoded body.
    pub body: RequestKind,
}

/// What a frame turned out to be.
#[derive(Debug)]
pub enum Decoded {
    /// A request Gregor serves.
    Request(Box<Request>),
    /// ApiVersions at a version above the advertised maximum: answered with
    /// the KIP-511 v0 reply instead of closing the connection.
    UnsupportedApiVersions {
        /// Correlation id to echo.
        correlation_id: i32,
        /// The version the client asked for.
        version: i16,
    },
}

/// Size of the fixed part of every request header: api key, version, correlation id.
const FIXED_HEADER: usize = 8;

/// Decodes one frame body (without its length prefix).
pub fn decode_request(mut frame: Bytes) -> Result<Decoded, ProtocolError> {
    if frame.len() < FIXED_HEADER {
        return Err(ProtocolError::ShortFrame(frame.len()));
    }
    let raw_key = (&frame[0..2]).get_i16();
    let version = (&frame[2..4]).get_i16();
    let correlation_id = (&frame[4..8]).get_i32();
    let api_key = ApiKey::try_from(raw_key).map_err(|_| ProtocolError::UnknownApiKey(raw_key))?;
    let api = api_name(api_key);
    let Some(range) = versions::range(api_key) else {
        return Err(ProtocolError::UnsupportedVersion { api, version });
    };
    if api_key == ApiKey::ApiVersions && version > range.max {
        return Ok(Decoded::UnsupportedApiVersions {
            correlation_id,
            version,
        });
    }
    if version < range.served_min || version > range.max {
        return Err(ProtocolError::UnsupportedVersion { api, version });
    }
    let malformed = |reason: String| ProtocolError::Malformed {
        api,
        version,
        reason,
    };
    // The codec is third-party code fed with bytes from the network: a panic
    // in it must cost this request's connection, never the process.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version))?;
        let body = RequestKind::decode(api_key, &mut frame, version)?;
        anyhow::Ok((header, body))
    }));
    let (header, body) = match decoded {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return Err(malformed(e.to_string())),
        Err(_) => return Err(malformed("decoder panicked".into())),
    };
    Ok(Decoded::Request(Box::new(Request {
        api_key,
        version,
        header,
        body,
    })))
}

/// Kafka's name for an api key, for logs and errors.
pub fn api_name(key: ApiKey) -> &'static str {
    // A static name for spans and errors; APIs Gregor never serves share one.
    match key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::SaslAuthenticate => "SaslAuthenticate",
        _ => "Other",
    }
}
