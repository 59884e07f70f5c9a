//! The receiver of the fleet's app events (`POST /sim/events`): it stands in for the application
//! backend, verifying each delivery per the Standard Webhooks spec before recording it.
//!
//! Verification: the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers must be present;
//! the timestamp must be within the tolerance of the wall clock (default ±5 minutes, against replays);
//! and one of the space-separated `v1,<base64>` signatures must equal the HMAC-SHA256, under the secret
//! (`whsec_<base64 key>`), of `"{id}.{timestamp}.{body}"` (compared in constant time). Anything else is
//! answered 401 and recorded as an `app_event_rejected` anomaly; a verified body that is not JSON is 400.
//! A verified event is recorded once per `webhook-id`; a redelivery is answered 2xx too and counted in
//! [`crate::ReceivedEvent::duplicates`].

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::SimError;

type HmacSha256 = Hmac<Sha256>;

/// The secret a simulator started with `seed` uses when none is configured.
pub fn secret_for_seed(seed: u64) -> String {
    let key = crate::delivery::signing::derived_secret(seed, "callfleet-sim/app-events/v1");
    format!("whsec_{}", STANDARD.encode(key))
}

fn key_of(secret: &str) -> Result<Vec<u8>, SimError> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    match STANDARD.decode(b64) {
        Ok(k) if !k.is_empty() => Ok(k),
        _ => Err(SimError::InvalidConfig("the app-event secret must be whsec_<base64>".into())),
    }
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, the `webhook-signature` value a sender sets.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SimError> {
    let mut mac = HmacSha256::new_from_slice(&key_of(secret)?)
        .map_err(|e| SimError::InvalidConfig(format!("app-event secret: {e}")))?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// Checks Standard Webhooks signatures with one secret.
pub(crate) struct Verifier {
    key: Vec<u8>,
    /// Largest accepted distance between `webhook-timestamp` and the wall clock, in seconds.
    tolerance_secs: Option<i64>,
}

/// Why a delivery was refused (the 401's message).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Rejected(pub String);

impl Verifier {
    pub fn new(secret: &str, tolerance: Option<std::time::Duration>) -> Result<Self, SimError> {
        let tolerance_secs = tolerance.map(|t| i64::try_from(t.as_secs()).unwrap_or(i64::MAX));
        Ok(Self { key: key_of(secret)?, tolerance_secs })
    }

    /// Verifies one delivery; returns its `webhook-id` and timestamp.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now_unix: i64) -> Result<(String, i64), Rejected> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Rejected(format!("missing {name} header")))
        };
        let id = header("webhook-id")?;
        let ts_text = header("webhook-timestamp")?;
        let signatures = header("webhook-signature")?;
        let ts: i64 =
            ts_text.trim().parse().map_err(|_| Rejected("webhook-timestamp is not an integer".into()))?;
        if self.tolerance_secs.is_some_and(|tol| (now_unix - ts).abs() > tol) {
            return Err(Rejected(format!("webhook-timestamp {ts} is too far from now ({now_unix})")));
        }
        let mut mac = HmacSha256::new_from_slice(&self.key).map_err(|e| Rejected(e.to_string()))?;
        mac.update(format!("{id}.{ts_text}.").as_bytes());
        mac.update(body);
        let ok = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|sig| STANDARD.decode(sig).is_ok_and(|raw| mac.clone().verify_slice(&raw).is_ok()));
        if ok { Ok((id.to_owned(), ts)) } else { Err(Rejected("no valid v1 signature".into())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(id: &str, ts: i64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
        h.insert("webhook-signature", sig.parse().unwrap());
        h
    }

    #[test]
    fn verifies_what_it_signs_and_nothing_else() {
        let secret = secret_for_seed(7);
        let v = Verifier::new(&secret, Some(std::time::Duration::from_secs(300))).unwrap();
        let body = br#"{"type":"call.answered"}"#;
        let sig = signature(&secret, "msg_1", 1_000, body).unwrap();
        assert_eq!(v.verify(&headers("msg_1", 1_000, &sig), body, 1_100), Ok(("msg_1".into(), 1_000)));
        let several = format!("v1,bm9wZQ== v1a,xyz {sig}");
        assert!(v.verify(&headers("msg_1", 1_000, &several), body, 1_000).is_ok(), "any listed v1 signature");
        assert!(v.verify(&headers("msg_2", 1_000, &sig), body, 1_000).is_err(), "the id is signed");
        assert!(v.verify(&headers("msg_1", 1_000, &sig), b"{}", 1_000).is_err(), "the body is signed");
        assert!(v.verify(&headers("msg_1", 1_000, &sig), body, 1_301).is_err(), "stale");
        let other = signature(&secret_for_seed(8), "msg_1", 1_000, body).unwrap();
        assert!(v.verify(&headers("msg_1", 1_000, &other), body, 1_000).is_err(), "another secret");
        assert!(Verifier::new("whsec_***", None).is_err());
    }
}
