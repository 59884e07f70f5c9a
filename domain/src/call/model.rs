//! The call as the store keeps it: one serialisable value per call session, with its legs.
//!
//! Everything a live call needs is in this value (no cache key, no TTL): a 3-hour call is read
//! and stepped like a 3-second one. Progress is monotonic: [`CallState`] and [`LegState`] only
//! move forward (their `rank`), end reasons are set once, and `emitted` remembers every effect
//! key ever produced, so a replayed or reordered input can never produce an effect twice. The
//! store compares-and-sets on `version`, which [`super::step`] bumps on every change.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The call's state as the API shows it (fixed names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CallState {
    Routing,
    Ringing,
    Answered,
    Voicemail,
    AiAgent,
    Ended,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Routing => "routing",
            Self::Ringing => "ringing",
            Self::Answered => "answered",
            Self::Voicemail => "voicemail",
            Self::AiAgent => "ai_agent",
            Self::Ended => "ended",
        }
    }

    /// Position in the only allowed order: routing → ringing → (answered | voicemail | ai_agent) → ended.
    pub fn rank(self) -> u8 {
        match self {
            Self::Routing => 0,
            Self::Ringing => 1,
            Self::Answered | Self::Voicemail | Self::AiAgent => 2,
            Self::Ended => 3,
        }
    }
}

/// Which way the call goes (fixed names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CallDirection {
    /// A PSTN caller dialed one of our numbers; the devices are rung.
    #[default]
    Inbound,
    /// A device placed the call (credential connection); it is connected to the destination.
    Outbound,
    /// A browser called out over WebRTC on its own (its leg goes straight to the PSTN, not
    /// through callfleet): callfleet only follows it, logs it, and records it when asked.
    Direct,
}

impl CallDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
            Self::Direct => "direct",
        }
    }
}

/// Why a call (or a leg) ended, or why the ring stopped (fixed names, snake_case on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EndReason {
    /// Another device won the ring (a leg reason; the call itself goes on).
    AnsweredElsewhere,
    /// The caller hung up while the call was routing or ringing.
    CallerCancelled,
    /// The ring timed out, or every device failed without a decline.
    NoAnswer,
    /// Every rung device declined.
    AllDeclined,
    /// The user has no reachable device at all.
    NoDevices,
    /// A bridged (or voicemail, or AI agent) call ended normally.
    Completed,
    /// The caller is on the organisation's block list.
    Blocked,
    /// The dialled number is not one of ours.
    UnknownNumber,
    /// The bridge failed for good; both sides were ended.
    BridgeFailed,
    /// Routed straight to voicemail by the number's mode.
    Voicemail,
    /// Handed to the AI agent.
    AiAgent,
    /// Outside the number's schedule.
    OutsideHours,
    /// The receiving user has do-not-disturb on.
    Dnd,
    /// The number has no receiving user.
    NoUser,
    /// A device called out from an organization that has no number to show as the caller id.
    NoCallerId,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AnsweredElsewhere => "answered_elsewhere",
            Self::CallerCancelled => "caller_cancelled",
            Self::NoAnswer => "no_answer",
            Self::AllDeclined => "all_declined",
            Self::NoDevices => "no_devices",
            Self::Completed => "completed",
            Self::Blocked => "blocked",
            Self::UnknownNumber => "unknown_number",
            Self::BridgeFailed => "bridge_failed",
            Self::Voicemail => "voicemail",
            Self::AiAgent => "ai_agent",
            Self::OutsideHours => "outside_hours",
            Self::Dnd => "dnd",
            Self::NoUser => "no_user",
            Self::NoCallerId => "no_caller_id",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A leg's progress; only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LegState {
    Dialing,
    Ringing,
    Answered,
    Bridged,
    Ended,
}

impl LegState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dialing => "dialing",
            Self::Ringing => "ringing",
            Self::Answered => "answered",
            Self::Bridged => "bridged",
            Self::Ended => "ended",
        }
    }
}

/// Names one leg of a call: the device it rings and which dial attempt it is (1-based).
///
/// Travels in the leg's `client_state` (`leg` field, `"<device>/<attempt>"`), so a webhook is
/// matched to its leg even before the dial response told us the leg's `call_control_id`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LegId {
    pub device_id: String,
    pub attempt: u32,
}

impl LegId {
    pub fn new(device_id: impl Into<String>, attempt: u32) -> Self {
        Self { device_id: device_id.into(), attempt }
    }

    /// Parses the `"<device>/<attempt>"` form written by `Display`.
    pub fn parse(raw: &str) -> Option<Self> {
        let (device, attempt) = raw.rsplit_once('/')?;
        let attempt = attempt.parse().ok().filter(|n| *n > 0)?;
        (!device.is_empty()).then(|| Self::new(device, attempt))
    }
}

impl fmt::Display for LegId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.device_id, self.attempt)
    }
}

/// The kind of phone, which decides who may get a `call_ended` push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Ios,
    Android,
    Web,
}

/// A device chosen by routing for this ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingDevice {
    pub device_id: String,
    pub platform: Platform,
    /// The device has a push token: it gets `incoming_call` and may register late.
    pub push: bool,
    /// Where to dial it now (its active, unexpired SIP credential), if it is registered.
    pub sip_target: Option<String>,
}

/// A rung device and what happened to it during this call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rung {
    pub device: RingDevice,
    /// The push pool confirmed an `incoming_call` reached the provider (iOS may then get `call_ended`).
    pub incoming_delivered: bool,
    /// A leg of this device declined (busy, rejected): no redial.
    pub declined: bool,
    /// Redial timers scheduled so far (names the next one).
    pub redials: u32,
}

/// One SIP leg to a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub id: LegId,
    pub call_control_id: Option<String>,
    pub state: LegState,
    /// Telnyx's `hangup_cause`, from the first hangup webhook (or the reconciler).
    pub hangup_cause: Option<String>,
    /// Why we hung it up, when we did.
    pub hangup_reason: Option<EndReason>,
    /// The dial itself failed for good: the leg never existed at Telnyx.
    pub dial_failed: bool,
}

impl Leg {
    /// Could still ring or answer: not ended, not hung up by us, not a failed dial.
    pub fn is_live(&self) -> bool {
        self.state != LegState::Ended && self.hangup_reason.is_none() && !self.dial_failed
    }
}

/// What the voicemail of the call's organisation says and records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoicemailSettings {
    pub greeting: String,
    pub voice: Option<String>,
    pub language: Option<String>,
    pub max_secs: u32,
}

impl Default for VoicemailSettings {
    fn default() -> Self {
        Self {
            greeting: DEFAULT_GREETING.to_owned(),
            voice: None,
            language: None,
            max_secs: DEFAULT_VOICEMAIL_MAX_SECS,
        }
    }
}

/// Spoken when an organisation set no greeting of its own.
pub const DEFAULT_GREETING: &str =
    "The person you are calling is not available. Please leave a message after the tone.";
/// Longest voicemail recording when the organisation set none, seconds.
pub const DEFAULT_VOICEMAIL_MAX_SECS: u32 = 120;

/// What is known when a call is first stored (before routing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSetup {
    /// Telnyx `call_session_id`: our call id.
    pub id: String,
    pub direction: CallDirection,
    /// For an outbound or direct call, the device that placed it.
    pub placed_by: Option<String>,
    pub org_id: String,
    pub user_id: Option<String>,
    /// The parent leg's `call_control_id`: the PSTN caller's leg (inbound) or the device's
    /// (outbound, direct).
    pub parent_call_control_id: String,
    /// The caller: the PSTN number (inbound), or the org's number shown as caller id (outbound).
    pub from: String,
    pub to: String,
    /// The caller's name as Telnyx reported it, shown on the phones.
    pub caller_name: Option<String>,
    /// The call's organization's name, shown on the phones beside the caller.
    pub org_name: Option<String>,
    pub voicemail: VoicemailSettings,
}

/// One call session: the unit the store compares-and-sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub id: String,
    #[serde(default)]
    pub direction: CallDirection,
    /// For an outbound call, the device that placed it.
    #[serde(default)]
    pub placed_by: Option<String>,
    pub org_id: String,
    pub user_id: Option<String>,
    pub parent_call_control_id: String,
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub caller_name: Option<String>,
    #[serde(default)]
    pub org_name: Option<String>,
    pub state: CallState,
    /// Set once, when the outcome is known (ring ended, routing decided, call ended).
    pub end_reason: Option<EndReason>,
    /// Bumped by every change; the store's compare-and-set token.
    pub version: u64,
    pub started_at: DateTime<Utc>,
    pub ring_deadline: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The winning leg (first answer while ringing).
    pub winner: Option<LegId>,
    /// `call.bridged` arrived for the winner.
    pub bridged: bool,
    /// The parent leg is gone (its hangup arrived, or we hung it up or rejected it).
    pub parent_ended: bool,
    pub voicemail: VoicemailSettings,
    pub devices: Vec<Rung>,
    pub legs: Vec<Leg>,
    /// Why every non-winning leg is hung up (set when the ring stops).
    pub legs_end_reason: Option<EndReason>,
    /// Rounds of the stalled-call reconciler scheduled so far.
    pub reconciles: u32,
    /// Every effect key produced so far: the guard that makes effects exactly-once per call.
    pub emitted: BTreeSet<String>,
}

impl Call {
    /// A new call in `routing`, version 0.
    pub fn new(setup: CallSetup, now: DateTime<Utc>) -> Self {
        Self {
            id: setup.id,
            direction: setup.direction,
            placed_by: setup.placed_by,
            org_id: setup.org_id,
            user_id: setup.user_id,
            parent_call_control_id: setup.parent_call_control_id,
            from: setup.from,
            to: setup.to,
            caller_name: setup.caller_name,
            org_name: setup.org_name,
            state: CallState::Routing,
            end_reason: None,
            version: 0,
            started_at: now,
            ring_deadline: None,
            answered_at: None,
            ended_at: None,
            winner: None,
            bridged: false,
            parent_ended: false,
            voicemail: setup.voicemail,
            devices: Vec::new(),
            legs: Vec::new(),
            legs_end_reason: None,
            reconciles: 0,
            emitted: BTreeSet::new(),
        }
    }

    /// Still alerting devices: the push pool must not send `incoming_call` otherwise. (An
    /// outbound call's `ringing` is its far end's, and alerts none of our devices.)
    pub fn is_ringing(&self) -> bool {
        self.state == CallState::Ringing && self.direction == CallDirection::Inbound
    }

    /// The key of this call's effect `suffix` (`"{call}:{suffix}"`, e.g. `"s1:parent:answer"`).
    pub fn effect_key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.id)
    }

    /// Whether the effect `suffix` was ever produced for this call.
    pub fn has_emitted(&self, suffix: &str) -> bool {
        self.emitted.contains(&self.effect_key(suffix))
    }

    pub fn leg(&self, id: &LegId) -> Option<&Leg> {
        self.legs.iter().find(|leg| &leg.id == id)
    }

    pub fn rung(&self, device_id: &str) -> Option<&Rung> {
        self.devices.iter().find(|rung| rung.device.device_id == device_id)
    }

    /// The device that answered (inbound), or the one that placed an answered outbound call.
    pub fn answered_by_device_id(&self) -> Option<&str> {
        match self.direction {
            CallDirection::Inbound => self.winner.as_ref().map(|leg| leg.device_id.as_str()),
            CallDirection::Outbound | CallDirection::Direct => {
                self.placed_by.as_deref().filter(|_| self.answered_at.is_some())
            }
        }
    }

    /// Seconds from answer to end (0 when never answered or not ended yet).
    pub fn duration_secs(&self) -> u64 {
        match (self.answered_at, self.ended_at) {
            (Some(a), Some(e)) => u64::try_from((e - a).num_seconds()).unwrap_or(0),
            _ => 0,
        }
    }
}
