//! Typed Call Control events, decoded from a stored webhook body by the workers.
//!
//! The decoding is lenient on purpose (see the reference notes on real deliveries): every payload
//! field is optional, unknown fields are ignored, and unknown event types decode to
//! [`EventKind::Other`] so a worker can acknowledge and ignore them.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::client_state::ClientStateField;
use crate::envelope::EnvelopeError;

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
    client_state: Option<String>,
}

/// One decoded Call Control event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEvent {
    pub id: String,
    pub kind: EventKind,
    pub occurred_at: Option<DateTime<Utc>>,
    pub payload: CallPayload,
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
    pub fn decode(body: &[u8]) -> Result<Self, EnvelopeError> {
        let wire: Wire =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::MalformedJson(e.to_string()))?;
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

    /// The call session id, the key every span of a call carries.
    pub fn call_session_id(&self) -> Option<&str> {
        self.payload.call_session_id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_state::LegKind;

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
    fn decodes_recording_saved_with_our_state() {
        let body = br#"{"data":{"id":"e","event_type":"call.recording.saved","payload":{"recording_id":"r1","channels":"dual","format":"mp3","recording_urls":{"mp3":"https://x/y.mp3"},"client_state":"eyJ2IjoxLCJraW5kIjoicmluZyIsImNhbGwiOiJjXzAxSlo4UTRNMlYzSyIsImxlZyI6ImRldmljZTppb3M6NWYyYyJ9"}}}"#;
        let ev = CallEvent::decode(body).unwrap();
        assert_eq!(ev.kind, EventKind::CallRecordingSaved);
        assert_eq!(ev.payload.recording_urls.unwrap().mp3.as_deref(), Some("https://x/y.mp3"));
        assert_eq!(ev.client_state.ours().unwrap().kind, LegKind::Ring);
    }

    #[test]
    fn a_hangup_without_client_state_key_and_unknown_types() {
        let ev = CallEvent::decode(br#"{"data":{"id":"e","event_type":"call.hangup","payload":{"hangup_cause":"originator_cancel"}}}"#).unwrap();
        assert_eq!(ev.payload.hangup_cause.as_deref(), Some("originator_cancel"));
        let ev = CallEvent::decode(br#"{"data":{"id":"e","event_type":"fax.received"}}"#).unwrap();
        assert_eq!(ev.kind, EventKind::Other("fax.received".into()));
    }
}
