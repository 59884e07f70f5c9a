//! Building and signing Telnyx deliveries the way Telnyx does.

use ed25519_dalek::SigningKey;
use fleet_store::{NewWebhook, Source};
use serde_json::json;

/// The test account's webhook key (fixed, so failures reproduce).
pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

pub fn public_key() -> String {
    fleet_domain::signature::public_key_base64(&signing_key())
}

/// A call-control event in the real wire envelope.
pub fn event(event_id: &str, event_type: &str, call_control_id: &str, session: &str) -> String {
    json!({
        "data": {
            "event_type": event_type,
            "id": event_id,
            "occurred_at": "2026-11-23T03:30:00.076316Z",
            "payload": {
                "call_control_id": call_control_id,
                "call_leg_id": format!("leg-{call_control_id}"),
                "call_session_id": session,
                "client_state": null,
                "connection_id": "2811212257810187875",
                "direction": "incoming",
                "from": "+13125550101",
                "to": "+13125550199",
                "hangup_cause": if event_type == "call.hangup" { Some("normal_clearing") } else { None },
                "state": "parked"
            },
            "record_type": "event"
        },
        "meta": { "attempt": 1, "delivered_to": "http://127.0.0.1/webhooks/telnyx" }
    })
    .to_string()
}

/// [`event`] as the ingress stores it: a first delivery to the primary URL, received now.
pub fn stored(event_id: &str, event_type: &str, call_control_id: &str, session: &str) -> NewWebhook {
    NewWebhook {
        event_id: event_id.to_owned(),
        event_type: event_type.to_owned(),
        call_session_id: Some(session.to_owned()),
        source: Source::Primary,
        attempt: Some(1),
        body: event(event_id, event_type, call_control_id, session),
        received_at: chrono::Utc::now(),
        trace_parent: None,
    }
}

/// `(telnyx-timestamp, telnyx-signature-ed25519)` for `body` signed now.
pub fn sign_now(body: &str) -> (String, String) {
    sign_bytes_now(body.as_bytes())
}

/// POSTs `body` signed now to `url`: a delivery to an ingress running in a process of its own
/// (a `Fleet` has `deliver`).
pub async fn deliver(http: &reqwest::Client, url: &str, body: &str) -> reqwest::Response {
    let (ts, sig) = sign_now(body);
    http.post(url)
        .header("content-type", "application/json")
        .header("telnyx-timestamp", ts)
        .header("telnyx-signature-ed25519", sig)
        .body(body.to_owned())
        .send()
        .await
        .expect("delivery")
}

/// [`sign_now`] for a body that need not be UTF-8.
pub fn sign_bytes_now(body: &[u8]) -> (String, String) {
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = fleet_domain::signature::sign(&signing_key(), &ts, body);
    (ts, sig)
}
