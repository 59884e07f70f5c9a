//! Public scenario vocabulary: scripted devices, PSTN callers and callees, faults.
//!
//! These are plain data (serde, so the control API accepts the same shapes as the library). Behaviour is
//! interpreted by the call model (`world`); a script that refers to something unknown (a device credential
//! that does not exist yet) is resolved lazily, when it is needed, and simply "not reachable" until then.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ms;

/// What the far end of a ringing leg does: a scripted device, or a PSTN callee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RingBehaviour {
    /// Answers `after` the leg starts ringing.
    Answer {
        #[serde(with = "ms", rename = "after_ms")]
        after: Duration,
    },
    /// Declines (SIP 603 → `call_rejected`, source `callee`) `after` the leg starts ringing.
    Decline {
        #[serde(with = "ms", rename = "after_ms")]
        after: Duration,
    },
    /// Is busy (SIP 486 → `user_busy`, source `callee`) `after` the leg starts ringing.
    Busy {
        #[serde(with = "ms", rename = "after_ms")]
        after: Duration,
    },
    /// Rings until the dial's `timeout_secs` (→ `timeout`, or `no_answer` with `retry_on_timeout: false`).
    Never,
    /// Answers `after`, then hangs up (`normal_clearing`, source `callee`) `drop_after` later.
    AnswerThenDrop {
        #[serde(with = "ms", rename = "after_ms")]
        after: Duration,
        #[serde(with = "ms", rename = "drop_after_ms")]
        drop_after: Duration,
    },
    /// Never answers, and ignores the hangup: when its leg is hung up or cancelled the leg ends at Telnyx,
    /// but the device keeps ringing (a lost SIP CANCEL), so only a `call_ended` push for the call
    /// dismisses it; otherwise the call ends with a `device_not_dismissed` anomaly.
    IgnoreHangup,
    /// Unregisters `after` the leg starts ringing it (the app was killed): the leg fails like an
    /// unregistered user (`unspecified`, SIP 480) and the device stays unregistered until it registers
    /// again (`register_after_push`, or `set_device_online`).
    UnregisterAfter {
        #[serde(with = "ms", rename = "after_ms")]
        after: Duration,
    },
}

/// A change of a scripted device's behaviour: for every later call ([`crate::SimHandle::set_device_behaviour`])
/// or for one call only ([`crate::SimHandle::set_call_device_behaviour`]). Absent fields change nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceBehaviour {
    /// What it does when a leg rings it.
    #[serde(default)]
    pub on_ring: Option<RingBehaviour>,
    /// Registers late: it is unregistered now and registers this long after a push for its token arrives
    /// (for a per-call behaviour: a push whose data carries that `call_session_id`). Until then every
    /// leg to it fails like an unregistered user.
    #[serde(default, with = "opt_ms", rename = "register_after_push_ms")]
    pub register_after_push: Option<Duration>,
}

/// Kind of client a device is; only informative (pushes are matched by token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DevicePlatform {
    Android,
    Ios,
    Web,
}

/// How a device finds its telephony credential. The fleet creates credentials through the API, so tests
/// usually know a name or a login token rather than the generated `sip_username`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialRef {
    /// The credential with this `sip_username`.
    SipUsername(String),
    /// The newest live credential with this `name`.
    Name(String),
    /// The credential a JWT from `POST /v2/telephony_credentials/{id}/token` was issued for.
    Token(String),
}

/// A scripted device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceScript {
    /// Test-chosen unique id.
    pub id: String,
    pub platform: DevicePlatform,
    /// FCM/APNs token; pushes for it can wake the device (see `register_after_push`).
    #[serde(default)]
    pub push_token: Option<String>,
    /// The SIP credential it registers with.
    pub credential: CredentialRef,
    /// Registered from the start. An expired or deleted credential is never registered.
    #[serde(default)]
    pub online: bool,
    /// Registers this long after a push for `push_token` was accepted (an offline app woken by a push).
    #[serde(default, with = "opt_ms", rename = "register_after_push_ms")]
    pub register_after_push: Option<Duration>,
    /// What it does when a leg rings it.
    pub on_ring: RingBehaviour,
}

/// Who places a scripted inbound call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Caller {
    /// A PSTN caller with this +E.164 number (the call arrives on the number's Call Control app).
    Pstn(String),
    /// A scripted device placing an outbound call (arrives on its credential's connection, from its SIP URI).
    Device(String),
    /// A scripted device's browser dialing `to` (+E.164) straight out over WebRTC, not through the app:
    /// an `outgoing` leg on its credential's connection, from its SIP user, without client state; the
    /// callee behaves as PSTN callees do. `hangup_after` hangs it up from the browser's side.
    Webrtc(String),
}

/// A scripted call: `from` calls `to` at `at` (from now), and hangs up `hangup_after` after it started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerScript {
    pub from: Caller,
    /// The dialed number (+E.164; must be added with `add_number` for PSTN callers) or destination.
    pub to: String,
    #[serde(default, with = "ms", rename = "at_ms")]
    pub at: Duration,
    #[serde(default, with = "opt_ms", rename = "hangup_after_ms")]
    pub hangup_after: Option<Duration>,
}

/// The ids of a scripted call, known before it starts (ids are drawn when it is scheduled).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedCall {
    pub call_control_id: String,
    pub call_leg_id: String,
    pub call_session_id: String,
    /// Sim time (since start) at which `call.initiated` is emitted.
    #[serde(with = "ms", rename = "starts_at_ms")]
    pub starts_at: Duration,
}

/// An injected fault. Each applies to the next `count` matching occurrences, then disappears.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Matching API requests fail with `status` (500/503 → code 10007, 429 → 10011, else `code`),
    /// without any effect. `operation` `None` matches every Call Control and credential operation and
    /// `recording_get`; the transcription operation only matches when named (`"transcription"`), and then
    /// answers `{"detail": "Injected failure."}`.
    ApiError {
        #[serde(default)]
        operation: Option<String>,
        status: u16,
        #[serde(default)]
        code: Option<String>,
        count: u32,
    },
    /// Matching API requests are answered `delay` late (wall time). With `apply`, the command takes effect
    /// first (a lost response: the client's retry must carry the same `command_id`); without, nothing happens
    /// and the late answer is a 503.
    ApiTimeout {
        #[serde(default)]
        operation: Option<String>,
        #[serde(with = "ms", rename = "delay_ms")]
        delay: Duration,
        #[serde(default)]
        apply: bool,
        count: u32,
    },
    /// Matching webhook delivery attempts are lost (counted as failed attempts, so they are retried).
    WebhookDrop {
        #[serde(default)]
        event_type: Option<String>,
        count: u32,
    },
    /// The next recordings end in `call.recording.error` ("Internal server error") instead of `saved`.
    RecordingError { count: u32 },
    /// Recording downloads answer `status`.
    RecordingDownload { status: u16, count: u32 },
    /// The app-event receiver (`POST /sim/events`) answers `status` to correctly signed deliveries,
    /// without recording them (the fleet must retry).
    AppEventError { status: u16, count: u32 },
    /// Valid `POST /v2/ai/audio/transcriptions` requests answer `status` with `{"detail": "Injected
    /// failure."}` instead of a transcript (requests refused before, 401/400/413/422, do not consume it).
    /// JSON: `{"kind": "transcription_error", "status": 503, "count": 2}`.
    TranscriptionError { status: u16, count: u32 },
}

/// Operation names used by [`Fault`] matching and in the request log.
pub mod ops {
    pub const DIAL: &str = "dial";
    pub const RETRIEVE_CALL: &str = "retrieve_call";
    pub const CREDENTIAL_CREATE: &str = "credential_create";
    pub const CREDENTIAL_LIST: &str = "credential_list";
    pub const CREDENTIAL_GET: &str = "credential_get";
    pub const CREDENTIAL_UPDATE: &str = "credential_update";
    pub const CREDENTIAL_DELETE: &str = "credential_delete";
    pub const CREDENTIAL_TOKEN: &str = "credential_token";
    pub const RECORDING_DOWNLOAD: &str = "recording_download";
    /// `GET /v2/recordings/{recording_id}`.
    pub const RECORDING_GET: &str = "recording_get";
    /// `POST /v2/ai/audio/transcriptions`.
    pub const TRANSCRIPTION: &str = "transcription";
    // Call actions use their path name: answer, bridge, hangup, transfer, reject, speak, record_start,
    // record_stop, client_state_update.
}

/// Serde helper: `Option<Duration>` as integer milliseconds or null.
pub(crate) mod opt_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}
