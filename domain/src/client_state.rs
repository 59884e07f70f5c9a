//! Our `client_state`: the typed note callfleet attaches to every command it sends Telnyx.
//!
//! On the wire it is base64 of compact JSON (`{"v":1,"kind":"ring","call":"…","leg":"…"}`) and it
//! comes back on every later webhook of that leg. Telnyx sends `null`, or no key at all, when none
//! was set. It is decoded once, at the edge, into [`ClientStateField`]; a value we cannot read
//! (another system's, or corrupted) is kept raw as `Foreign` and never trusted for routing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// What a leg is for, from callfleet's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegKind {
    /// The inbound PSTN call (the parent).
    Inbound,
    /// A simultaneous-ring leg to one device.
    Ring,
    /// The voicemail leg of a call.
    Voicemail,
    /// An outbound call placed by a device.
    Outbound,
}

/// Version 1 of our client state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientState {
    pub v: u8,
    pub kind: LegKind,
    /// Our call id (the parent's call session id).
    pub call: String,
    /// The leg's target (e.g. `device:<id>`), when the leg is for one device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leg: Option<String>,
}

impl ClientState {
    pub fn new(kind: LegKind, call: impl Into<String>, leg: Option<String>) -> Self {
        Self { v: 1, kind, call: call.into(), leg }
    }

    /// The base64 form sent to Telnyx.
    pub fn encode(&self) -> String {
        // Serialising a struct of strings and enums cannot fail.
        STANDARD.encode(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// `client_state` as received on a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClientStateField {
    /// `null` or no key: nothing was set on this leg.
    #[default]
    Absent,
    Ours(ClientState),
    /// Present but not ours (or corrupted); kept for logs, never used for decisions.
    Foreign(String),
}

impl ClientStateField {
    pub fn decode(raw: Option<&str>) -> Self {
        let Some(raw) = raw.filter(|s| !s.is_empty()) else { return Self::Absent };
        let parsed = STANDARD
            .decode(raw)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<ClientState>(&bytes).ok())
            .filter(|state| state.v == 1);
        match parsed {
            Some(state) => Self::Ours(state),
            None => Self::Foreign(raw.to_owned()),
        }
    }

    pub fn ours(&self) -> Option<&ClientState> {
        match self {
            Self::Ours(state) => Some(state),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let state = ClientState::new(LegKind::Ring, "c_1", Some("device:ios:5f2c".into()));
        assert_eq!(ClientStateField::decode(Some(&state.encode())), ClientStateField::Ours(state));
    }

    #[test]
    fn decodes_the_reference_example() {
        let raw =
            "eyJ2IjoxLCJraW5kIjoicmluZyIsImNhbGwiOiJjXzAxSlo4UTRNMlYzSyIsImxlZyI6ImRldmljZTppb3M6NWYyYyJ9";
        let field = ClientStateField::decode(Some(raw));
        let ours = field.ours().unwrap();
        assert_eq!(
            (ours.kind, ours.call.as_str(), ours.leg.as_deref()),
            (LegKind::Ring, "c_01JZ8Q4M2V3K", Some("device:ios:5f2c"))
        );
    }

    #[test]
    fn null_absent_and_foreign() {
        assert_eq!(ClientStateField::decode(None), ClientStateField::Absent);
        assert_eq!(ClientStateField::decode(Some("")), ClientStateField::Absent);
        // "have a nice day =]" — valid base64, not our JSON.
        let foreign = ClientStateField::decode(Some("aGF2ZSBhIG5pY2UgZGF5ID1d"));
        assert!(matches!(foreign, ClientStateField::Foreign(_)));
        assert!(matches!(ClientStateField::decode(Some("%%%")), ClientStateField::Foreign(_)));
    }
}
