//! Process plumbing shared by every role: configuration, telemetry, metrics and shutdown.
//!
//! Nothing here knows about webhooks, calls or queues; the role crates build on it.

pub mod config;
pub mod metrics;
pub mod secret;
pub mod shutdown;
pub mod telemetry;

pub use config::{Backend, Config, ConfigError};
pub use secret::Secret;
