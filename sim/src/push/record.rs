//! The request log and delivery records, as handed to tests and the control API.
//!
//! Records are plain data (cloned out of the simulator), so assertions never hold a lock.
//! Times are given three ways: `at` (tokio `Instant`, for "no retry before 3 s" arithmetic under
//! a paused clock; not serialized), `at_ms` (milliseconds since the simulator started, on the
//! same tokio clock) and `unix_ms` (the simulator's wall clock, see `mod.rs`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use super::Provider;

/// Which endpoint a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// `POST /token` (Google OAuth2). `provider` is `Fcm`, `token` is `None`.
    OauthToken,
    /// `POST /v1/projects/{p}/messages:send`.
    FcmSend,
    /// `POST /3/device/{token}` (and APNs near-miss paths).
    ApnsSend,
}

/// What the simulator answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// HTTP status; `None` when the request was left hanging.
    pub status: Option<u16>,
    /// APNs `reason`, FCM `errorCode` (or Google `status` when there is none), OAuth `error`.
    pub reason: Option<String>,
    /// The `retry-after` header sent, in seconds.
    pub retry_after_secs: Option<u64>,
    /// True when this request's push was accepted for delivery (200 on a push endpoint).
    pub delivered: bool,
    /// True when the answer came from the token's script (not from auth/validation).
    pub scripted: bool,
}

/// One request as received.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    /// 0-based arrival index across both providers.
    pub seq: u64,
    pub provider: Provider,
    pub kind: RequestKind,
    /// FCM `message.token` or the APNs path token; `None` if absent (or for OAuth).
    pub token: Option<String>,
    pub path: String,
    /// `"HTTP/1.1"` or `"HTTP/2.0"`.
    pub http_version: String,
    /// Headers that matter: `authorization`, `content-type`, every `apns-*`.
    pub headers: BTreeMap<String, String>,
    /// The parsed JSON body (`Null` if it was not JSON). For `POST /token`: the form fields, plus
    /// `assertion_header`/`assertion_claims` decoded from the JWT when it parses.
    pub body: Value,
    pub reply: Reply,
    #[serde(skip)]
    pub at: Instant,
    pub at_ms: u64,
    pub unix_ms: i64,
}

/// A push the simulated provider delivered to a device.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveredPush {
    pub provider: Provider,
    pub token: String,
    /// FCM: `message.data` (what the app's data handler receives, `{}` if none).
    /// APNs: the whole JSON payload (what `PKPushRegistry` receives).
    pub data: Value,
    /// FCM message name `projects/{p}/messages/{id}` or the `apns-id`.
    pub message_id: String,
    #[serde(skip)]
    pub at: Instant,
    pub at_ms: u64,
    pub unix_ms: i64,
}

/// Keep the headers worth recording.
pub(crate) fn interesting_headers(headers: &axum::http::HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            n == "authorization" || n == "content-type" || n.starts_with("apns-")
        })
        .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect()
}
