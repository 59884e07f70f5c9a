//! Process plumbing shared by every role: configuration, telemetry, metrics, shutdown, and the
//! outbound rate limiter (Redis-shared, local fallback).
//!
//! Nothing here knows about webhooks, calls or queues; the role crates build on it.

pub mod config;
pub mod metrics;
pub mod rate_limiter;
pub mod secret;
pub mod shutdown;
pub mod telemetry;
pub mod trace;

pub use config::{Backend, Config, ConfigError};
pub use rate_limiter::RateLimiter;
pub use secret::Secret;
