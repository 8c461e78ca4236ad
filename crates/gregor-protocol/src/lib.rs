//! Gregor's Kafka wire codec, sans I/O: bytes in, typed messages out.
//!
//! - [`frame`]: the length prefix, checked before allocation.
//! - [`request`]: header and body decode by api key and version.
//! - [`response`]: response encode with the right header version.
//! - [`fetch`]: a Fetch response that carries stored batches without copying.
//! - [`records`]: record batch v2 headers, validated and patched in place;
//!   records walked without inflating a batch into memory ([`inflate`]).
//! - [`versions`]: the advertised ApiVersions table.
#![deny(missing_docs)]

pub mod error;
pub mod fetch;
pub mod frame;
pub mod inflate;
pub mod records;
pub mod request;
pub mod response;
pub mod versions;

pub use error::{BatchError, ProtocolError};
pub use kafka_protocol;
pub use request::{decode_request, Decoded, Request};
pub use response::encode_response;
