//! Push messages to phones (FCM data messages, APNs VoIP) and what a provider's answer means.
//!
//! Pure: building the wire bodies from a [`PushMessage`] and classifying an HTTP answer into a
//! [`ProviderOutcome`] (delivered, retry, prune the token, permanent failure, refresh the auth
//! token) follow the reference tables in `shared/reference/telnyx/push.md`. The push pool does
//! the I/O and turns outcomes into retries (persisted backoff), token pruning and dead jobs.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

/// Whether `token` can be an APNs device token: hex digits only (it becomes a path segment of
/// the request URL, so nothing else may pass), whole bytes, 8 to 200 of them (today's tokens are
/// 32 bytes; Apple says the length may change).
pub fn is_apns_device_token(token: &str) -> bool {
    (16..=400).contains(&token.len()) && token.len() % 2 == 0 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why a call stopped ringing on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEndedReason {
    AnsweredElsewhere,
    CallerCancelled,
    Completed,
    Missed,
}

impl CallEndedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AnsweredElsewhere => "answered_elsewhere",
            Self::CallerCancelled => "caller_cancelled",
            Self::Completed => "completed",
            Self::Missed => "missed",
        }
    }
}

/// What a device is told.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PushMessage {
    IncomingCall {
        call_session_id: String,
        call_control_id: String,
        caller_number: String,
        caller_name: Option<String>,
        org_id: String,
        org_name: String,
        channel_number: String,
        /// Unix seconds after which the ring is over and the push is worthless.
        ring_ends_at: i64,
    },
    CallEnded {
        call_session_id: String,
        org_id: String,
        reason: CallEndedReason,
    },
}

/// Largest APNs VoIP payload, bytes.
pub const APNS_VOIP_MAX: usize = 5120;
/// Largest FCM data payload (keys + values), bytes.
pub const FCM_DATA_MAX: usize = 4096;

impl PushMessage {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::IncomingCall { .. } => "incoming_call",
            Self::CallEnded { .. } => "call_ended",
        }
    }

    pub fn org_id(&self) -> &str {
        match self {
            Self::IncomingCall { org_id, .. } | Self::CallEnded { org_id, .. } => org_id,
        }
    }

    pub fn call_session_id(&self) -> &str {
        match self {
            Self::IncomingCall { call_session_id, .. } | Self::CallEnded { call_session_id, .. } => {
                call_session_id
            }
        }
    }

    /// The moment after which delivering is wrong (an `incoming_call` for a ring that is over).
    pub fn deadline(&self) -> Option<i64> {
        match self {
            Self::IncomingCall { ring_ends_at, .. } => Some(*ring_ends_at),
            Self::CallEnded { .. } => None,
        }
    }

    /// Whether the message may still be delivered at `now` (Unix seconds).
    pub fn is_deliverable_at(&self, now: i64) -> bool {
        self.deadline().is_none_or(|deadline| now < deadline)
    }

    /// Flat string map (FCM `data` requires every value to be a string).
    pub fn data(&self) -> BTreeMap<&'static str, String> {
        let mut data = BTreeMap::new();
        data.insert("type", self.kind().to_owned());
        match self {
            Self::IncomingCall {
                call_session_id,
                call_control_id,
                caller_number,
                caller_name,
                org_id,
                org_name,
                channel_number,
                ring_ends_at,
            } => {
                data.insert("call_session_id", call_session_id.clone());
                data.insert("call_control_id", call_control_id.clone());
                data.insert("caller_number", caller_number.clone());
                data.insert("caller_name", caller_name.clone().unwrap_or_default());
                data.insert("org_id", org_id.clone());
                data.insert("org_name", org_name.clone());
                data.insert("channel_number", channel_number.clone());
                data.insert("ring_ends_at", ring_ends_at.to_string());
            }
            Self::CallEnded { call_session_id, org_id, reason } => {
                data.insert("call_session_id", call_session_id.clone());
                data.insert("org_id", org_id.clone());
                data.insert("reason", reason.as_str().to_owned());
            }
        }
        data
    }

    /// Collapses repeats of the same message for one call (≤ 64 bytes for APNs).
    pub fn collapse_id(&self) -> String {
        let id = format!("{}:{}", self.kind(), self.call_session_id());
        id.chars().take(64).collect()
    }

    /// The FCM HTTP v1 request body: data-only, high priority, TTL until the ring ends.
    pub fn fcm_body(&self, token: &str, now: i64) -> Value {
        let ttl = self.deadline().map_or(60, |deadline| (deadline - now).clamp(0, 60));
        json!({
            "message": {
                "token": token,
                "data": self.data(),
                "android": { "priority": "high", "ttl": format!("{ttl}s"), "collapse_key": self.collapse_id() }
            }
        })
    }

    /// The APNs VoIP payload: our keys at top level, an empty `aps` (VoIP needs no alert).
    pub fn apns_payload(&self) -> Value {
        let mut payload: serde_json::Map<String, Value> =
            self.data().into_iter().map(|(k, v)| (k.to_owned(), Value::String(v))).collect();
        payload.insert("aps".into(), json!({}));
        Value::Object(payload)
    }
}

/// The two push services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Firebase Cloud Messaging HTTP v1 (Android; the device's `push_token`).
    Fcm,
    /// APNs VoIP pushes (iOS; the device's PushKit `voip_token`).
    Apns,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fcm => "fcm",
            Self::Apns => "apns",
        }
    }
}

/// Where a device is rung: Android by FCM with its push token; iOS by APNs with its VoIP token
/// (a regular APNs or FCM token cannot wake CallKit, and FCM refuses high priority to iOS data
/// messages); web tabs by the app backend's events, never by push. `None`: nothing to send to.
pub fn route(
    platform: &str,
    push_token: Option<&str>,
    voip_token: Option<&str>,
) -> Option<(Provider, String)> {
    let usable = |t: Option<&str>| t.map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned);
    match platform {
        "android" => usable(push_token).map(|t| (Provider::Fcm, t)),
        "ios" => usable(voip_token).map(|t| (Provider::Apns, t)),
        _ => None,
    }
}

/// A provider's reason as a metric label: letters, digits and `_` only, at most 48 characters,
/// so an unexpected answer cannot blow up label cardinality or inject into the exposition format.
pub fn metric_reason(reason: &str) -> &str {
    let ok = !reason.is_empty()
        && reason.len() <= 48
        && reason.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok { reason } else { "other" }
}

/// What an answer from a push provider means for this message and token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderOutcome {
    Delivered,
    /// Transient (429, 5xx, timeouts): try again, not before `after` if the provider said so.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// The token is dead: remove it from the device, do not retry.
    PruneToken {
        reason: String,
    },
    /// Our auth token was refused as expired: mint a new one and retry once.
    RefreshAuth {
        reason: String,
    },
    /// Will fail the same way again: do not retry.
    Permanent {
        reason: String,
    },
}

impl ProviderOutcome {
    /// Whether this answer says the *provider* is failing (5xx, timeouts, transport errors), as
    /// opposed to a per-token or per-request answer. Only these feed the circuit breaker: a
    /// device's 429 or a dead token says nothing about the service's health.
    pub fn is_provider_failure(&self) -> bool {
        const RATE_LIMITED: [&str; 3] = ["TooManyRequests", "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"];
        matches!(self, Self::Retry { reason, .. } if !RATE_LIMITED.contains(&reason.as_str()))
    }

    /// The outcome's reason (`delivered` for a delivery).
    pub fn reason(&self) -> &str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry { reason, .. }
            | Self::PruneToken { reason }
            | Self::RefreshAuth { reason }
            | Self::Permanent { reason } => reason,
        }
    }
}

/// FCM's reason: `details[].errorCode` of the `FcmError` detail, else `error.status`.
fn fcm_reason(body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = &value["error"];
    let detail = error["details"].as_array().and_then(|details| {
        details.iter().find_map(|d| {
            let fcm = d["@type"].as_str().is_some_and(|t| t.ends_with("FcmError"));
            fcm.then(|| d["errorCode"].as_str().map(str::to_owned)).flatten()
        })
    });
    detail.or_else(|| error["status"].as_str().map(str::to_owned)).unwrap_or_else(|| "UNKNOWN".into())
}

/// Classifies an FCM HTTP v1 answer (see push.md §1 "Errors").
pub fn classify_fcm(status: u16, body: &[u8], retry_after: Option<Duration>) -> ProviderOutcome {
    if (200..300).contains(&status) {
        return ProviderOutcome::Delivered;
    }
    let reason = fcm_reason(body);
    let message = String::from_utf8_lossy(body);
    match (status, reason.as_str()) {
        // Only FCM's own verdict prunes: a bare 404 (a wrong project id or base URL) would
        // otherwise wipe every token of the fleet.
        (_, "UNREGISTERED") => ProviderOutcome::PruneToken { reason },
        (403, "SENDER_ID_MISMATCH") => ProviderOutcome::PruneToken { reason },
        (400, "INVALID_ARGUMENT") if message.contains("registration token") => {
            ProviderOutcome::PruneToken { reason }
        }
        (401, "UNAUTHENTICATED") => ProviderOutcome::RefreshAuth { reason },
        // Quota: an explicit Retry-After wins; without one Google asks for at least a minute.
        (429, _) => {
            ProviderOutcome::Retry { after: Some(retry_after.unwrap_or(Duration::from_secs(60))), reason }
        }
        (500..=599, _) => ProviderOutcome::Retry { after: retry_after, reason },
        _ => ProviderOutcome::Permanent { reason },
    }
}

/// Classifies an APNs answer (see push.md §2 "Responses").
pub fn classify_apns(status: u16, body: &[u8], retry_after: Option<Duration>) -> ProviderOutcome {
    if (200..300).contains(&status) {
        return ProviderOutcome::Delivered;
    }
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let reason = value["reason"].as_str().unwrap_or("Unknown").to_owned();
    match (status, reason.as_str()) {
        (410, _) | (400, "BadDeviceToken") | (400, "DeviceTokenNotForTopic") => {
            ProviderOutcome::PruneToken { reason }
        }
        (403, "ExpiredProviderToken") => ProviderOutcome::RefreshAuth { reason },
        (429, _) | (500..=599, _) => ProviderOutcome::Retry { after: retry_after, reason },
        _ => ProviderOutcome::Permanent { reason },
    }
}

#[cfg(test)]
mod tests;
