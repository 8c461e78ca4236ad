//! Gregor's broker: a tokio server speaking the Kafka protocol.
//!
//! - [`server`]: accept loop, connection limit, graceful shutdown.
//! - [`connection`]: one connection: frames in, replies out, in order.
//! - [`handler`]: dispatch, one file per Kafka API.
//! - [`context`]: the shared state (config and store) handlers receive.
//! - [`config`]: the one configuration struct, by Kafka property names.
// Lengths and counts come from the wire: a cast that can wrap or drop a
// sign is where a hostile value turns into a huge allocation or a negative
// index. Convert with try_from (or document why the value is in range).
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]

pub mod admin;
pub mod alter;
pub mod budget;
pub mod cleaner;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod context;
pub mod coordinator;
pub mod embedded;
pub mod error;
pub mod fault;
pub mod group_configs;
pub mod handler;
pub mod inspect;
pub mod metrics;
pub mod retention;
pub mod server;
pub mod topics;
pub mod txn;

pub use config::BrokerConfig;
pub use context::Broker;
