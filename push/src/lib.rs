//! Push providers at the edge: FCM HTTP v1 and APNs (HTTP/2, VoIP) clients.
//!
//! Each client owns its auth token: FCM's OAuth2 access token (JWT-bearer grant signed RS256 with
//! the service account key, cached and refreshed 3 min 45 s before it expires) and APNs's
//! provider token (ES256, re-signed every 40 minutes, inside Apple's 20–60 minute window). A
//! send returns a [`ProviderOutcome`] from the pure tables in `fleet_domain::push`; when the
//! provider says our auth token expired, the client mints a new one and tries once more.
//! Transport failures and timeouts (every request has one) are `Retry`. Endpoints are
//! overridable (`FCM_API_BASE`, the service account's `token_uri`, `APNS_API_BASE`) so the
//! carrier simulator stands in for Google and Apple.

mod apns;
mod fcm;
mod gateway;
mod jwt;

use std::time::Duration;

pub use apns::{ApnsClient, ApnsConfig};
pub use fcm::{FcmClient, ServiceAccount};
pub use fleet_domain::push::{ProviderOutcome, PushMessage};
pub use gateway::PushGateway;

/// Timeout of one provider request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A client could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum PushConfigError {
    #[error("FCM_SERVICE_ACCOUNT is not a usable service-account JSON: {0}")]
    ServiceAccount(String),
    #[error("the APNs key is not a usable PKCS#8 P-256 key: {0}")]
    ApnsKey(String),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Config(String),
}

/// `Retry-After` in seconds (the only form FCM and APNs use).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A transport failure (no answer): always worth a retry. The reason is a fixed word (it becomes
/// a metric label); the detail goes to the log.
pub(crate) fn transport_failure(e: reqwest::Error) -> ProviderOutcome {
    let reason = if e.is_timeout() { "timeout" } else { "transport" };
    // The URL of an APNs request ends in the device token: never log it.
    let e = e.without_url();
    tracing::warn!(error = %e, reason, "Push provider unreachable.");
    ProviderOutcome::Retry { after: None, reason: reason.to_owned() }
}
