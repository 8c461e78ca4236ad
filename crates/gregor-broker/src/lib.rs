//! Gregor's broker: a tokio server speaking the Kafka protocol.
//!
//! - [`server`]: accept loop, connection limit, graceful shutdown.
//! - [`connection`]: one connection: frames in, replies out, in order.
//! - [`handler`]: dispatch, one file per Kafka API.
//! - [`context`]: the shared state (config and store) handlers receive.
//! - [`config`]: the one configuration struct, by Kafka property names.

pub mod config;
pub mod connection;
pub mod context;
pub mod coordinator;
pub mod error;
pub mod handler;
pub mod retention;
pub mod server;
pub mod topics;

pub use config::BrokerConfig;
pub use context::Broker;
