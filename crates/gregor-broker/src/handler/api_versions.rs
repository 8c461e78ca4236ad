//! ApiVersions (18): the honest table from `gregor_protocol::versions`.

use gregor_protocol::versions;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

pub fn handle(_req: ApiVersionsRequest, _version: i16) -> ApiVersionsResponse {
    let keys = versions::supported()
        .iter()
        .map(|r| {
            ApiVersion::default()
                .with_api_key(r.key as i16)
                .with_min_version(r.min)
                .with_max_version(r.max)
        })
        .collect();
    // No feature lists: Gregor has no KRaft feature levels to finalize.
    ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(keys)
}
