//! Telnyx API clients: Call Control ([`call_control`], live calls) and telephony credentials
//! ([`TelnyxClient`], housekeeping), each with its own rate budget and circuit breaker.
//!
//! Budgets: live-call commands use the `calls` limiter, credentials the `housekeeping` limiter,
//! keyed apart in Redis, so the cleanup cron cannot starve a hangup (knobs: [`TelnyxSettings`]).
//! Breakers: one per API (`call_control`, `credentials`), so a failing credentials endpoint does
//! not stop calls being ended, and the other way round.
//!
//! Credentials client design: one `reqwest` client with a connect timeout and a per-request
//! timeout (every outbound call ends), a [`RateLimiter`] consulted before every request, and one error type,
//! [`TelnyxError`], whose variants say what a caller may do: `Retryable` (429, 5xx, timeouts,
//! connection failures — retry with backoff, honouring `retry_after`), `NotFound` (404; a delete
//! treats it as success) and `Permanent` (other 4xx: the request itself is wrong).
//!
//! Telnyx's error bodies are `{"errors":[{"code","title","detail"}]}`; only code and title are kept
//! (never the request body). Passwords returned by Telnyx are held in [`SipPassword`], whose
//! `Debug` prints `***`, so they cannot reach a log line by accident.

mod breaker;
pub mod call_control;
mod client;
mod settings;

pub use call_control::CallControl;
pub use client::{
    CreateCredential, Credential, CredentialPage, RecordingDownloadUrls, RecordingInfo, SipPassword,
    TelnyxClient,
};
pub use fleet_platform::RateLimiter;
pub use settings::TelnyxSettings;

use std::time::Duration;

/// A Telnyx API call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelnyxError {
    /// Worth retrying later (429, 5xx, timeout, connection failure).
    #[error("Telnyx temporarily failed: {message}")]
    Retryable { message: String, retry_after: Option<Duration> },
    /// The shared rate budget had no room within an interactive caller's deadline; nothing was
    /// sent (a device login answers 503 `telnyx_busy` instead of hanging behind a cleanup run).
    #[error("the Telnyx rate budget had no room within {waited:?}")]
    Busy { waited: Duration },
    /// The resource does not exist (404).
    #[error("Telnyx resource not found")]
    NotFound,
    /// The request is wrong; retrying will not help (4xx).
    #[error("Telnyx refused the request ({status}): {message}")]
    Permanent { status: u16, message: String },
}

impl TelnyxError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. } | Self::Busy { .. })
    }
}

/// The credentials client the configuration asks for: `None` without `TELNYX_API_KEY`. Its rate
/// budget is `housekeeping` ([`TelnyxSettings::housekeeping_rate`], per second, bursts of the same
/// size); the extra knobs are read from the process environment.
pub fn client_from_config(config: &fleet_platform::Config) -> Result<Option<TelnyxClient>, TelnyxError> {
    let settings = TelnyxSettings::from_env(config).map_err(config_error)?;
    client_with_settings(config, &settings)
}

/// [`client_from_config`] with explicit settings.
pub fn client_with_settings(
    config: &fleet_platform::Config,
    settings: &TelnyxSettings,
) -> Result<Option<TelnyxClient>, TelnyxError> {
    let Some(key) = &config.telnyx_api_key else { return Ok(None) };
    let limiter = RateLimiter::from_config(config, "telnyx:housekeeping", settings.housekeeping_rate)
        .map_err(|e| TelnyxError::Permanent { status: 0, message: e.to_string() })?;
    let client = TelnyxClient::new(&config.telnyx_api_base, key.expose(), limiter)?
        .with_breaker(settings.breaker_threshold, settings.breaker_cooldown);
    Ok(Some(client))
}

/// The Call Control client the configuration asks for: `None` without `TELNYX_API_KEY`. Its rate
/// budget is `calls` ([`TelnyxSettings::calls_rate`], bursts of [`TelnyxSettings::calls_burst`]), shared across replicas through Redis when
/// `CALLFLEET_REDIS_URL` is set.
pub fn call_control_from_config(
    config: &fleet_platform::Config,
    settings: &TelnyxSettings,
) -> Result<Option<CallControl>, TelnyxError> {
    let Some(key) = &config.telnyx_api_key else { return Ok(None) };
    let limiter = RateLimiter::from_config_with_burst(
        config,
        "telnyx:calls",
        settings.calls_rate,
        settings.calls_burst,
    )
    .map_err(|e| TelnyxError::Permanent { status: 0, message: e.to_string() })?;
    CallControl::new(&config.telnyx_api_base, key.expose(), limiter, settings).map(Some)
}

fn config_error(e: fleet_platform::ConfigError) -> TelnyxError {
    TelnyxError::Permanent { status: 0, message: e.to_string() }
}
