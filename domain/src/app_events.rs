//! App events to the application backend, the pure half: the Standard Webhooks secret, the
//! payload, the signature, and what the receiver's answer means.
//!
//! Why here and not in `workers`: these are the parts a mistake in would break every receiver's
//! verification, so they are pinned by unit tests (including the spec's own test vector) with no
//! runtime, socket or queue; and the secret is parsed once at start ([`EventSecret::parse`]) by
//! whichever process builds the events client. The HTTP call itself lives in `fleet-workers`.
//!
//! Wire format (<https://www.standardwebhooks.com/>): body `{"type", "timestamp", "data"}` where
//! `timestamp` is the RFC 3339 time of the *decision* (it never changes across retries); headers
//! `webhook-id` (stable across retries, so the receiver dedupes), `webhook-timestamp` (Unix
//! seconds of the *send attempt*, which receivers check against their clock to refuse replays)
//! and `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, where the key
//! is the base64-decoded part of the secret after `whsec_`.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Shortest key accepted (the spec recommends 24 to 64 bytes; 16 is the floor we enforce).
pub const MIN_KEY_BYTES: usize = 16;

/// Longest `Retry-After` honoured; a receiver asking for more is retried after this anyway (an
/// event must not sit in the queue for days on one header).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The signing key of `CALLFLEET_EVENTS_SECRET`. Never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct EventSecret {
    key: Vec<u8>,
}

/// A `CALLFLEET_EVENTS_SECRET` that cannot sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("must start with whsec_")]
    MissingPrefix,
    #[error("the part after whsec_ is not base64")]
    NotBase64,
    #[error("the key is {0} bytes; at least {MIN_KEY_BYTES} are needed")]
    TooShort(usize),
}

impl EventSecret {
    /// Parses `whsec_<base64 key>`.
    pub fn parse(secret: &str) -> Result<Self, SecretError> {
        let b64 = secret.trim().strip_prefix("whsec_").ok_or(SecretError::MissingPrefix)?;
        let key = STANDARD.decode(b64).map_err(|_| SecretError::NotBase64)?;
        if key.len() < MIN_KEY_BYTES {
            return Err(SecretError::TooShort(key.len()));
        }
        Ok(Self { key })
    }

    /// The `webhook-signature` value for one delivery: `v1,<base64 signature>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for EventSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventSecret(***)")
    }
}

#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    data: &'a serde_json::Value,
}

/// The body of one event: `{"type", "timestamp", "data"}`, the timestamp being the RFC 3339
/// (UTC, milliseconds) form of `occurred_at_ms`. The same input always gives the same bytes.
pub fn payload(event_type: &str, occurred_at_ms: i64, data: &serde_json::Value) -> Vec<u8> {
    let timestamp = DateTime::<Utc>::from_timestamp_millis(occurred_at_ms)
        .unwrap_or(DateTime::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    serde_json::to_vec(&Payload { event_type, timestamp, data }).expect("a JSON value serializes")
}

/// What the receiver's HTTP answer means for the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: accepted.
    Accepted,
    /// 409: the receiver says it already has this `webhook-id`; nothing left to do.
    Duplicate,
    /// 410: the receiver says it will never take this; dropped (counted and logged, not retried).
    Gone,
    /// 408, 425, 429, 5xx: try again, not before `after` if the receiver said so.
    Retry { after: Option<Duration> },
    /// Any other status (other 4xx, redirects, which are not followed): the same request would be
    /// refused again; into the dead set, where an operator can retry it after fixing the cause.
    Refused,
}

impl Answer {
    /// Classifies a status code with its parsed `Retry-After`.
    pub fn of(status: u16, retry_after: Option<Duration>) -> Self {
        match status {
            200..=299 => Self::Accepted,
            409 => Self::Duplicate,
            410 => Self::Gone,
            408 | 425 | 429 | 500..=599 => Self::Retry { after: retry_after.map(|d| d.min(MAX_RETRY_AFTER)) },
            _ => Self::Refused,
        }
    }

    /// Outcome label of `callfleet_events_total`.
    pub fn outcome(self) -> &'static str {
        match self {
            Self::Accepted => "delivered",
            Self::Duplicate => "duplicate",
            Self::Gone => "gone",
            Self::Retry { .. } => "retry",
            Self::Refused => "failed",
        }
    }
}

/// A `Retry-After` value: delay seconds, or an HTTP date (`now` is the current time).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).to_std().unwrap_or(Duration::ZERO))
}

/// The event types callfleet emits; anything else is `other` in metric labels.
pub const EVENT_TYPES: [&str; 8] = [
    "call.incoming",
    "call.answered",
    "call.ended",
    "call.missed",
    "voicemail.started",
    "voicemail.received",
    "call.log",
    "call.log.updated",
];

/// `type` label of the app-event metrics (bounded).
pub fn metric_type(event_type: &str) -> &'static str {
    EVENT_TYPES.iter().copied().find(|t| *t == event_type).unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The test vector of the Standard Webhooks specification.
    #[test]
    fn signs_the_spec_test_vector() {
        let secret = EventSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn everything_signed_changes_the_signature() {
        let secret = EventSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let base = secret.sign("evt_1", 1_000, b"{}");
        assert_ne!(base, secret.sign("evt_2", 1_000, b"{}"));
        assert_ne!(base, secret.sign("evt_1", 1_001, b"{}"));
        assert_ne!(base, secret.sign("evt_1", 1_000, b"{ }"));
        let other = EventSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_ne!(base, other.sign("evt_1", 1_000, b"{}"));
    }

    #[test]
    fn bad_secrets_are_refused_and_none_prints() {
        assert_eq!(EventSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Err(SecretError::MissingPrefix));
        assert_eq!(EventSecret::parse("whsec_not base64!"), Err(SecretError::NotBase64));
        assert_eq!(EventSecret::parse("whsec_c2hvcnQ="), Err(SecretError::TooShort(5)));
        let secret = EventSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(format!("{secret:?}"), "EventSecret(***)");
    }

    #[test]
    fn payload_is_the_standard_shape_with_the_decision_time() {
        let data = json!({"call_session_id": "s-1", "org_id": "org-1"});
        let body = payload("call.answered", 1_700_000_000_123, &data);
        let text = std::str::from_utf8(&body).unwrap();
        assert_eq!(
            text,
            r#"{"type":"call.answered","timestamp":"2023-11-14T22:13:20.123Z","data":{"call_session_id":"s-1","org_id":"org-1"}}"#
        );
        assert_eq!(body, payload("call.answered", 1_700_000_000_123, &data), "deterministic");
    }

    #[test]
    fn answers_are_classified() {
        let after = Some(Duration::from_secs(7));
        assert_eq!(Answer::of(200, None), Answer::Accepted);
        assert_eq!(Answer::of(204, None), Answer::Accepted);
        assert_eq!(Answer::of(409, None), Answer::Duplicate);
        assert_eq!(Answer::of(410, None), Answer::Gone);
        for status in [408, 425, 429, 500, 502, 503, 504] {
            assert_eq!(Answer::of(status, after), Answer::Retry { after }, "{status}");
        }
        for status in [301, 302, 400, 401, 403, 404, 413, 422] {
            assert_eq!(Answer::of(status, after), Answer::Refused, "{status}");
        }
        let huge = Some(Duration::from_secs(86_400));
        assert_eq!(Answer::of(503, huge), Answer::Retry { after: Some(MAX_RETRY_AFTER) });
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn metric_types_are_bounded() {
        assert_eq!(metric_type("call.answered"), "call.answered");
        assert_eq!(metric_type("anything.else"), "other");
    }
}
