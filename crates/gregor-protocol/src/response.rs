//! Response encoding: length prefix, header of the right version, body.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

use crate::error::ProtocolError;
use crate::request::api_name;
use crate::versions;

/// Encodes a whole response frame, length prefix included.
pub fn encode_response(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    body: &ResponseKind,
) -> Result<BytesMut, ProtocolError> {
    let fail = |e: anyhow::Error| ProtocolError::Encode {
        api: api_name(api_key),
        version,
        reason: format!("{e:#}"),
    };
    let mut out = BytesMut::with_capacity(256);
    out.put_i32(0);
    // ApiVersions always answers with header v0, whatever its version, so
    // that a client can parse it before it knows the broker's versions.
    let header_version = body.header_version(version);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, header_version)
        .map_err(fail)?;
    body.encode(&mut out, version).map_err(fail)?;
    patch_length(&mut out);
    Ok(out)
}

/// Writes the frame length into the 4-byte placeholder at the start.
pub fn patch_length(out: &mut [u8]) {
    // Only Fetch responses grow large, and they are bounded by fetch.max.bytes.
    let len = i32::try_from(out.len() - 4).unwrap_or(i32::MAX);
    out[..4].copy_from_slice(&len.to_be_bytes());
}

/// The KIP-511 reply to an ApiVersions request of a version we do not know:
/// header v0, body v0, UNSUPPORTED_VERSION and our ApiVersions range, so
/// the client can retry with a version we speak.
pub fn unsupported_api_versions(correlation_id: i32) -> Result<BytesMut, ProtocolError> {
    let r = versions::range(ApiKey::ApiVersions).unwrap_or(versions::ApiRange {
        key: ApiKey::ApiVersions,
        min: 0,
        max: 0,
        served_min: 0,
    });
    let body = ApiVersionsResponse::default()
        .with_error_code(35)
        .with_api_keys(vec![ApiVersion::default()
            .with_api_key(ApiKey::ApiVersions as i16)
            .with_min_version(r.min)
            .with_max_version(r.max)]);
    encode_response(
        correlation_id,
        ApiKey::ApiVersions,
        0,
        &ResponseKind::ApiVersions(body),
    )
}
