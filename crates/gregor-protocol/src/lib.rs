//! Gregor's Kafka wire codec, sans I/O: bytes in, typed messages out.
//!
//! - [`frame`]: the length prefix, checked before allocation.
//! - [`request`]: header and body decode by api key and version.
//! - [`response`]: response encode with the right header version.
//! - [`fetch`]: a Fetch response that carries stored batches without copying.
//! - [`metadata`]: a Metadata response written straight to bytes, however
//!   many partitions it lists.
//! - [`records`]: record batch v2 headers, validated and patched in place;
//!   records walked without inflating a batch into memory ([`inflate`]).
//! - [`versions`]: the advertised ApiVersions table.
#![deny(missing_docs)]
// Lengths and counts come from the wire: a cast that can wrap or drop a
// sign is where a hostile value turns into a huge allocation or a negative
// index. Convert with try_from (or document why the value is in range).
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]

pub mod error;
pub mod fetch;
pub mod frame;
pub mod inflate;
pub mod metadata;
pub mod records;
pub mod request;
pub mod response;
pub mod versions;
mod wire;

pub use error::{BatchError, ProtocolError};
pub use kafka_protocol;
pub use request::{decode_request, Decoded, Request};
pub use response::encode_response;
