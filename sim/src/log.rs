//! What the simulator observed and did, in order, for assertions: every API request it received, every
//! webhook delivery attempt it made, and anomalies (client behaviour that real Telnyx would tolerate but that
//! breaks a guarantee of the fleet, such as bridging a leg twice or dialing an expired credential).
//!
//! Entries are appended under the world lock, so `seq` order is the order of effects. Bodies are kept as
//! bytes/JSON values and cloned on read; the logs grow for the simulator's lifetime unless cleared.

use axum::body::Bytes;
use serde::Serialize;

/// One API request and the simulator's answer.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    pub seq: u64,
    /// Sim time (ms since start) at which it was handled.
    pub at_ms: u64,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Operation name (`dial`, `answer`, `credential_create`, …; see `scenario::ops`).
    pub operation: String,
    /// The `call_control_id` or credential id from the path, if any.
    pub target: Option<String>,
    /// Request body: parsed JSON, or a JSON string holding the raw text if it was not JSON; null if empty.
    pub body: serde_json::Value,
    pub status: u16,
    /// Response body (JSON, or a JSON string for text/plain answers).
    pub response: serde_json::Value,
    /// The response's content type.
    pub content_type: String,
    /// The command was a repeat of an earlier `command_id` inside the 60 s window and was not applied.
    pub deduplicated: bool,
    /// Name of the injected fault that shaped this answer, if any (`api_error`, `api_timeout`,
    /// `transcription_error`).
    pub fault: Option<String>,
    /// The file of a multipart upload (`POST /v2/ai/audio/transcriptions`, field `file`); its text fields
    /// are in `body`. `None` for JSON requests.
    pub upload: Option<UploadedFile>,
}

/// A file received in a multipart/form-data request: what it was called and what it held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UploadedFile {
    /// The form field's name.
    pub field: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
}

/// Outcome of one webhook delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// Handed to the HTTP client; no answer yet.
    Pending,
    /// The receiver answered 2xx.
    Delivered { status: u16 },
    /// The receiver answered non-2xx.
    Rejected { status: u16 },
    /// Transport error or timeout.
    Error { message: String },
    /// Lost on purpose (drop knob or fault); never sent.
    Dropped,
}

/// One webhook delivery attempt.
#[derive(Clone, Debug, Serialize)]
pub struct SentWebhook {
    pub seq: u64,
    /// Sim time of the attempt.
    pub at_ms: u64,
    /// `data.id`; the same for retries, duplicates and failover deliveries of one event.
    pub event_id: String,
    pub event_type: String,
    pub attempt: u32,
    pub url: String,
    /// True if `url` is the failover URL.
    pub failover: bool,
    pub call_control_id: Option<String>,
    pub call_session_id: Option<String>,
    /// The exact body bytes sent (signed).
    #[serde(serialize_with = "bytes_as_json")]
    pub body: Bytes,
    pub outcome: DeliveryOutcome,
}

impl SentWebhook {
    /// The body parsed as JSON (the simulator only sends JSON, so this is `Null` only if bytes were lost).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// `data.payload` of the body.
    pub fn payload(&self) -> serde_json::Value {
        let mut v = self.json();
        v["data"]["payload"].take()
    }
}

fn bytes_as_json<S: serde::Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    let v: serde_json::Value = serde_json::from_slice(b).unwrap_or(serde_json::Value::Null);
    v.serialize(s)
}

/// Something the fleet did that real Telnyx would allow but that the product's guarantees forbid.
///
/// Race kinds (see `world/rings.rs`): `leg_still_ringing` (an outgoing leg still ringing the grace
/// period after its call was answered or its first leg ended) and `device_not_dismissed` (a device that
/// got an `incoming_call` push or a ringing SIP leg of a call, and neither a hangup it heeded of such a
/// leg nor a `call_ended` push, by the grace period after the call ended).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    /// Position among all logged effects (requests, webhooks, pushes, app events, anomalies).
    pub seq: u64,
    pub at_ms: u64,
    /// `double_bridge`, `expired_credential_dialed`, `deleted_credential_dialed`, `unknown_number_called`,
    /// `recording_fetched_with_authorization`, …
    pub kind: String,
    pub call_control_id: Option<String>,
    /// The call the anomaly belongs to (the leg's session), when known.
    pub call_session_id: Option<String>,
    pub detail: String,
}

/// A push the push simulator (or [`crate::SimHandle::push_delivered`]) reported as delivered, as the
/// call model understood it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PushRecord {
    pub seq: u64,
    pub at_ms: u64,
    pub platform: crate::observer::PushPlatform,
    pub token: String,
    /// The scripted device owning the token, if any.
    pub device_id: Option<String>,
    /// The push's `type` (`incoming_call`, `call_ended`, …), if it has one.
    pub push_type: Option<String>,
    /// The push's `call_session_id`, if it has one.
    pub call_session_id: Option<String>,
    pub data: serde_json::Value,
}

/// An app event the fleet sent to `POST /sim/events` with a valid Standard Webhooks signature, once per
/// `webhook-id` (later deliveries of the same id only count as `duplicates`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReceivedEvent {
    pub seq: u64,
    /// Sim time of the first delivery.
    pub at_ms: u64,
    /// The `webhook-id` header.
    pub webhook_id: String,
    /// The `webhook-timestamp` header (Unix seconds).
    pub webhook_timestamp: i64,
    /// The body's `type`.
    pub event_type: Option<String>,
    /// The body's `data.call_session_id`.
    pub call_session_id: Option<String>,
    /// The body as received (JSON).
    pub body: serde_json::Value,
    /// Further deliveries with the same `webhook-id`.
    pub duplicates: u32,
}

/// One request for a recording's file (`GET /sim-s3/recordings/…`, the pre-signed download).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordingDownload {
    /// Sim time (ms since start) at which it was answered.
    pub at_ms: u64,
    /// `<recording id>.<ext>`.
    pub file: String,
    pub status: u16,
}

/// The logs.
#[derive(Default)]
pub struct Logs {
    pub requests: Vec<RecordedRequest>,
    /// Recording downloads (not Telnyx API requests: kept apart from `requests`).
    pub downloads: Vec<RecordingDownload>,
    pub webhooks: Vec<SentWebhook>,
    pub anomalies: Vec<Anomaly>,
    pub pushes: Vec<PushRecord>,
    pub app_events: Vec<ReceivedEvent>,
    /// `webhook-id` → index in `app_events`.
    pub app_event_index: std::collections::HashMap<String, usize>,
    pub next_seq: u64,
}

impl Logs {
    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
}
