//! A small Telnyx API client for telephony credentials.
//!
//! Design: one `reqwest` client with a connect timeout and a per-request timeout (every outbound
//! call ends), a [`RateLimiter`] consulted before every request, and one error type,
//! [`TelnyxError`], whose variants say what a caller may do: `Retryable` (429, 5xx, timeouts,
//! connection failures — retry with backoff, honouring `retry_after`), `NotFound` (404; a delete
//! treats it as success) and `Permanent` (other 4xx: the request itself is wrong).
//!
//! Telnyx's error bodies are `{"errors":[{"code","title","detail"}]}`; only code and title are kept
//! (never the request body). Passwords returned by Telnyx are held in [`SipPassword`], whose
//! `Debug` prints `***`, so they cannot reach a log line by accident.

mod client;

pub use client::{CreateCredential, Credential, CredentialPage, SipPassword, TelnyxClient};
pub use fleet_platform::RateLimiter;

use std::time::Duration;

/// A Telnyx API call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelnyxError {
    /// Worth retrying later (429, 5xx, timeout, connection failure).
    #[error("Telnyx temporarily failed: {message}")]
    Retryable { message: String, retry_after: Option<Duration> },
    /// The resource does not exist (404).
    #[error("Telnyx resource not found")]
    NotFound,
    /// The request is wrong; retrying will not help (4xx).
    #[error("Telnyx refused the request ({status}): {message}")]
    Permanent { status: u16, message: String },
}

impl TelnyxError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }
}

/// The Telnyx client the configuration asks for: `None` without `TELNYX_API_KEY`. The rate limit
/// is `CALLFLEET_TELNYX_RATE_LIMIT` per second (bursts of the same size).
pub fn client_from_config(config: &fleet_platform::Config) -> Result<Option<TelnyxClient>, TelnyxError> {
    let Some(key) = &config.telnyx_api_key else { return Ok(None) };
    let limiter = RateLimiter::from_config(config, "telnyx", config.telnyx_rate_limit)
        .map_err(|e| TelnyxError::Permanent { status: 0, message: e.to_string() })?;
    TelnyxClient::new(&config.telnyx_api_base, key.expose(), limiter).map(Some)
}
