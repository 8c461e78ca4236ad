//! ApiVersions (18): the honest table from `gregor_protocol::versions`,
//! and (v3+) the features Gregor implements: `transaction.version` 2
//! (KIP-890), which tells clients such as the Java producer to use
//! transaction version 2 (implicit partition adds, an epoch bump per end).

use gregor_protocol::versions;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::str_bytes;

/// (name, supported min, supported max, finalized level), as Kafka 4.3.1
/// reports them for the features `kafka-features.sh describe` shows.
/// `transaction.version` 2 is implemented. `metadata.version` is Kafka
/// 4.3's level (Gregor has no metadata log whose format it would select).
/// `group.version` 1 is Kafka 4's default; clients still only use KIP-848
/// groups if ConsumerGroupHeartbeat is advertised, which it is not, so
/// they keep the classic protocol. Share groups, streams groups and ELR
/// stay unlisted: nothing of theirs is served.
const FEATURES: [(&str, i16, i16, i16); 3] = [
    ("group.version", 0, 1, 1),
    ("metadata.version", 7, 30, 30),
    ("transaction.version", 0, 2, 2),
];

/// Gregor's features never change while it runs; a fixed epoch says so.
const FEATURES_EPOCH: i64 = 1;

pub fn handle(_req: ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    let keys = versions::supported()
        .iter()
        .map(|r| {
            ApiVersion::default()
                .with_api_key(r.key as i16)
                .with_min_version(r.min)
                .with_max_version(r.max)
        })
        .collect();
    let resp = ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(keys);
    if version < 3 {
        return resp;
    }
    // KIP-1022: a supported range starting at 0 is hidden from clients
    // before v4, which could not read it (Kafka 4 does the same).
    resp.with_supported_features(
        FEATURES
            .iter()
            .filter(|(_, min, _, _)| *min > 0 || version >= 4)
            .map(|(name, min, max, _)| {
                SupportedFeatureKey::default()
                    .with_name(str_bytes(name))
                    .with_min_version(*min)
                    .with_max_version(*max)
            })
            .collect(),
    )
    .with_finalized_features_epoch(FEATURES_EPOCH)
    .with_finalized_features(
        FEATURES
            .iter()
            .map(|(name, _, _, level)| {
                FinalizedFeatureKey::default()
                    .with_name(str_bytes(name))
                    .with_min_version_level(*level)
                    .with_max_version_level(*level)
            })
            .collect(),
    )
}
