//! Our `client_state`: the typed, authenticated note callfleet attaches to every command it sends Telnyx.
//!
//! On the wire it is base64 of compact JSON (`{"v":2,"kind":"ring","org":"…","call":"…","leg":"…",
//! "device":"…","mac":"…"}`) and it comes back on every later webhook of that leg. `mac` is
//! HMAC-SHA256, under a key derived from the fleet secret ([`ClientStateKey::derive`]), of the
//! same JSON without `mac`; it binds the org, the call, the leg kind and the device together.
//!
//! A WebRTC client can set `client_state` on its own calls, so a value counts as ours only when
//! its MAC verifies (constant-time, via the `hmac` crate). Anything else — another system's
//! value, corrupted bytes, our old unsigned v1 form, or valid JSON with a wrong or missing MAC — is
//! kept raw as [`ClientStateField::Foreign`] and never trusted for routing. Telnyx sends `null`,
//! or no key at all, when none was set ([`ClientStateField::Absent`]). Key rotation is not
//! supported yet: a value sealed under a previous secret opens as `Foreign`.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The label that derives the client_state key from the fleet secret (domain separation).
pub const KEY_LABEL: &[u8] = b"callfleet client_state v2";

/// Version written by [`ClientState::seal`]; the only one [`ClientStateField::open`] accepts.
pub const SEALED_VERSION: u8 = 2;

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

/// Our client state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientState {
    pub v: u8,
    pub kind: LegKind,
    /// The organisation the call belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Our call id (the parent's call session id).
    pub call: String,
    /// The leg within the call (for ring legs `<device>/<attempt>`, see `call::LegId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leg: Option<String>,
    /// The device the leg rings, when it is for one device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// The client_state MAC key, derived from the fleet secret. `Debug` never shows it.
#[derive(Clone)]
pub struct ClientStateKey([u8; 32]);

impl std::fmt::Debug for ClientStateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientStateKey(..)")
    }
}

impl ClientStateKey {
    /// HMAC-SHA256(key = the raw bytes of the fleet secret, message = [`KEY_LABEL`]).
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = new_mac(secret);
        mac.update(KEY_LABEL);
        Self(mac.finalize().into_bytes().into())
    }

    fn mac_of(&self, body: &[u8]) -> HmacSha256 {
        let mut mac = new_mac(&self.0);
        mac.update(body);
        mac
    }
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of every length; `new_from_slice` cannot fail for it.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// The sealed wire form: the state's fields and its MAC side by side.
#[derive(Serialize, Deserialize)]
struct Sealed {
    #[serde(flatten)]
    state: ClientState,
    #[serde(default)]
    mac: Option<String>,
}

impl ClientState {
    pub fn new(kind: LegKind, call: impl Into<String>, leg: Option<String>) -> Self {
        Self { v: SEALED_VERSION, kind, org: None, call: call.into(), leg, device: None }
    }

    pub fn with_org(mut self, org: impl Into<String>) -> Self {
        self.org = Some(org.into());
        self
    }

    pub fn with_device(mut self, device: impl Into<String>) -> Self {
        self.device = Some(device.into());
        self
    }

    /// The unsigned base64 form (no MAC). Such a value opens as `Foreign`: use [`Self::seal`]
    /// for everything sent to Telnyx; this remains for logs and old callers.
    pub fn encode(&self) -> String {
        // Serialising a struct of strings and enums cannot fail.
        STANDARD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The authenticated base64 form sent to Telnyx (version [`SEALED_VERSION`]).
    pub fn seal(&self, key: &ClientStateKey) -> String {
        let state = Self { v: SEALED_VERSION, ..self.clone() };
        let body = serde_json::to_vec(&state).unwrap_or_default();
        let mac = URL_SAFE_NO_PAD.encode(key.mac_of(&body).finalize().into_bytes());
        STANDARD.encode(serde_json::to_vec(&Sealed { state, mac: Some(mac) }).unwrap_or_default())
    }
}

/// `client_state` as received on a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClientStateField {
    /// `null` or no key: nothing was set on this leg.
    #[default]
    Absent,
    /// Sealed by us: the MAC verified.
    Ours(ClientState),
    /// Present but not ours (or corrupted, or unsigned); kept for logs, never used for decisions.
    Foreign(String),
}

impl ClientStateField {
    /// Without a key nothing can be authenticated: `Absent` or `Foreign`, never `Ours`.
    pub fn decode(raw: Option<&str>) -> Self {
        match raw.filter(|s| !s.is_empty()) {
            None => Self::Absent,
            Some(raw) => Self::Foreign(raw.to_owned()),
        }
    }

    /// Opens a value from a webhook: `Ours` only if it is our sealed form and its MAC verifies.
    pub fn open(raw: Option<&str>, key: &ClientStateKey) -> Self {
        let Some(raw) = raw.filter(|s| !s.is_empty()) else { return Self::Absent };
        match Self::verify(raw, key) {
            Some(state) => Self::Ours(state),
            None => Self::Foreign(raw.to_owned()),
        }
    }

    fn verify(raw: &str, key: &ClientStateKey) -> Option<ClientState> {
        let bytes = STANDARD.decode(raw).ok()?;
        let sealed: Sealed = serde_json::from_slice(&bytes).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(sealed.mac?).ok()?;
        if sealed.state.v != SEALED_VERSION {
            return None;
        }
        let body = serde_json::to_vec(&sealed.state).ok()?;
        key.mac_of(&body).verify_slice(&tag).ok()?;
        Some(sealed.state)
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

    fn key() -> ClientStateKey {
        ClientStateKey::derive(b"k1:c2VjcmV0IGtleSBmb3IgdGVzdHMgb25seSAzMiBieXRlcyE=")
    }

    fn state() -> ClientState {
        ClientState::new(LegKind::Ring, "c_1", Some("device:ios:5f2c/1".into()))
            .with_org("org_1")
            .with_device("device:ios:5f2c")
    }

    fn rewrap(raw: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut json: serde_json::Value = serde_json::from_slice(&STANDARD.decode(raw).unwrap()).unwrap();
        edit(&mut json);
        STANDARD.encode(serde_json::to_vec(&json).unwrap())
    }

    #[test]
    fn round_trips() {
        let sealed = state().seal(&key());
        assert_eq!(ClientStateField::open(Some(&sealed), &key()), ClientStateField::Ours(state()));
        let ours = ClientStateField::open(Some(&sealed), &key());
        let ours = ours.ours().unwrap();
        assert_eq!((ours.org.as_deref(), ours.device.as_deref()), (Some("org_1"), Some("device:ios:5f2c")));
    }

    #[test]
    fn a_forged_state_is_foreign() {
        let sealed = state().seal(&key());
        let other_org = rewrap(&sealed, |j| j["org"] = "org_2".into());
        let no_mac = rewrap(&sealed, |j| {
            j.as_object_mut().unwrap().remove("mac");
        });
        let wrong_mac = rewrap(&sealed, |j| j["mac"] = URL_SAFE_NO_PAD.encode([7u8; 32]).into());
        let other_key = state().seal(&ClientStateKey::derive(b"another secret"));
        for forged in [other_org, no_mac, wrong_mac, other_key, state().encode()] {
            assert!(matches!(ClientStateField::open(Some(&forged), &key()), ClientStateField::Foreign(_)));
        }
    }

    #[test]
    fn the_old_unsigned_reference_example_is_foreign() {
        let raw =
            "eyJ2IjoxLCJraW5kIjoicmluZyIsImNhbGwiOiJjXzAxSlo4UTRNMlYzSyIsImxlZyI6ImRldmljZTppb3M6NWYyYyJ9";
        assert!(matches!(ClientStateField::open(Some(raw), &key()), ClientStateField::Foreign(_)));
        assert!(matches!(ClientStateField::decode(Some(raw)), ClientStateField::Foreign(_)));
    }

    #[test]
    fn null_absent_and_foreign() {
        assert_eq!(ClientStateField::open(None, &key()), ClientStateField::Absent);
        assert_eq!(ClientStateField::open(Some(""), &key()), ClientStateField::Absent);
        assert_eq!(ClientStateField::decode(None), ClientStateField::Absent);
        // "have a nice day =]" — valid base64, not our JSON.
        let foreign = ClientStateField::open(Some("aGF2ZSBhIG5pY2UgZGF5ID1d"), &key());
        assert!(matches!(foreign, ClientStateField::Foreign(_)));
        assert!(matches!(ClientStateField::open(Some("%%%"), &key()), ClientStateField::Foreign(_)));
    }

    #[test]
    fn the_key_never_shows() {
        assert_eq!(format!("{:?}", key()), "ClientStateKey(..)");
    }
}
