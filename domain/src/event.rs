//! Typed Call Control events, decoded from a stored webhook body by the workers.
//!
//! The decoding is lenient on purpose (see the reference notes on real deliveries): every payload
//! field is optional, unknown fields are ignored, and unknown event types decode to
//! [`EventKind::Other`] so a worker can acknowledge and ignore them.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::client_state::{ClientStateField, ClientStateKey};
use crate::webhook::WebhookError;

/// The event types callfleet acts on; everything else is `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    CallInitiated,
    CallAnswered,
    CallBridged,
    CallHangup,
    CallRecordingSaved,
    CallRecordingError,
    CallSpeakStarted,
    CallSpeakEnded,
    Other(String),
}

impl EventKind {
    pub fn parse(event_type: &str) -> Self {
        match event_type {
            "call.initiated" => Self::CallInitiated,
            "call.answered" => Self::CallAnswered,
            "call.bridged" => Self::CallBridged,
            "call.hangup" => Self::CallHangup,
            "call.recording.saved" => Self::CallRecordingSaved,
            "call.recording.error" => Self::CallRecordingError,
            "call.speak.started" => Self::CallSpeakStarted,
            "call.speak.ended" => Self::CallSpeakEnded,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Call direction as Telnyx reports it on `call.initiated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// Recording URLs by format; each may be null.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RecordingUrls {
    pub mp3: Option<String>,
    pub wav: Option<String>,
}

/// The payload fields callfleet reads, all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CallPayload {
    pub call_control_id: Option<String>,
    pub call_leg_id: Option<String>,
    pub call_session_id: Option<String>,
    pub connection_id: Option<String>,
    pub direction: Option<Direction>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub caller_id_name: Option<String>,
    pub state: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub hangup_cause: Option<String>,
    pub hangup_source: Option<String>,
    pub sip_hangup_cause: Option<String>,
    pub recording_id: Option<String>,
    pub recording_urls: Option<RecordingUrls>,
    pub channels: Option<String>,
    pub format: Option<String>,
    pub recording_started_at: Option<DateTime<Utc>>,
    pub recording_ended_at: Option<DateTime<Utc>>,
    /// Why a recording failed (`call.recording.error`).
    pub reason: Option<String>,
    client_state: Option<String>,
}

/// One decoded Call Control event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEvent {
    pub id: String,
    pub kind: EventKind,
    pub occurred_at: Option<DateTime<Utc>>,
    pub payload: CallPayload,
    /// `Ours` only after [`CallEvent::open_client_state`] (or [`CallEvent::decode_with`])
    /// verified its MAC; [`CallEvent::decode`] alone gives `Absent` or `Foreign`.
    pub client_state: ClientStateField,
}

#[derive(Deserialize)]
struct Wire {
    data: WireData,
}

#[derive(Deserialize)]
struct WireData {
    id: String,
    event_type: String,
    occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    payload: Option<CallPayload>,
}

impl CallEvent {
    /// Decodes a stored webhook body. Fails only on what the ingress already rejects.
    pub fn decode(body: &[u8]) -> Result<Self, WebhookError> {
        let wire: Wire =
            serde_json::from_slice(body).map_err(|e| WebhookError::MalformedJson(e.to_string()))?;
        let payload = wire.data.payload.unwrap_or_default();
        let client_state = ClientStateField::decode(payload.client_state.as_deref());
        Ok(Self {
            id: wire.data.id,
            kind: EventKind::parse(&wire.data.event_type),
            occurred_at: wire.data.occurred_at,
            payload,
            client_state,
        })
    }

    /// Decodes and authenticates `client_state` under `key` in one go.
    pub fn decode_with(body: &[u8], key: &ClientStateKey) -> Result<Self, WebhookError> {
        let mut event = Self::decode(body)?;
        event.open_client_state(key);
        Ok(event)
    }

    /// Replaces `client_state` by its authenticated reading: `Ours` only if the MAC verifies.
    pub fn open_client_state(&mut self, key: &ClientStateKey) {
        self.client_state = ClientStateField::open(self.payload.client_state.as_deref(), key);
    }

    /// The call session id, the key every span of a call carries.
    pub fn call_session_id(&self) -> Option<&str> {
        self.payload.call_session_id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_state::{ClientState, LegKind};

    #[test]
    fn decodes_a_real_initiated() {
        let ev =
            CallEvent::decode(include_bytes!("../tests/fixtures/call.initiated.inbound.pstn.json")).unwrap();
        assert_eq!(ev.kind, EventKind::CallInitiated);
        assert_eq!(ev.payload.direction, Some(Direction::Incoming));
        assert_eq!(ev.payload.state.as_deref(), Some("parked"));
        assert_eq!(ev.client_state, ClientStateField::Absent);
        assert!(ev.occurred_at.is_some());
    }

    #[test]
    fn decodes_recording_saved_and_opens_our_state() {
        let key = ClientStateKey::derive(b"fleet secret");
        let sealed = ClientState::new(LegKind::Ring, "c_1", Some("d1/1".into())).seal(&key);
        let body = format!(
            r#"{{"data":{{"id":"e","event_type":"call.recording.saved","payload":{{"recording_id":"r1","channels":"dual","format":"mp3","recording_urls":{{"mp3":"https://x/y.mp3"}},"client_state":"{sealed}"}}}}}}"#
        );
        let ev = CallEvent::decode(body.as_bytes()).unwrap();
        assert!(matches!(ev.client_state, ClientStateField::Foreign(_)), "not ours before the MAC check");
        let ev = CallEvent::decode_with(body.as_bytes(), &key).unwrap();
        assert_eq!(ev.kind, EventKind::CallRecordingSaved);
        assert_eq!(ev.payload.recording_urls.unwrap().mp3.as_deref(), Some("https://x/y.mp3"));
        assert_eq!(ev.client_state.ours().unwrap().kind, LegKind::Ring);
        let forged = CallEvent::decode_with(body.as_bytes(), &ClientStateKey::derive(b"other")).unwrap();
        assert!(forged.client_state.ours().is_none());
    }

    #[test]
    fn a_hangup_without_client_state_key_and_unknown_types() {
        let ev = CallEvent::decode(br#"{"data":{"id":"e","event_type":"call.hangup","payload":{"hangup_cause":"originator_cancel"}}}"#).unwrap();
        assert_eq!(ev.payload.hangup_cause.as_deref(), Some("originator_cancel"));
        let ev = CallEvent::decode(br#"{"data":{"id":"e","event_type":"fax.received"}}"#).unwrap();
        assert_eq!(ev.kind, EventKind::Other("fax.received".into()));
    }
}
