//! Effects a call step asks for: Telnyx commands, pushes, app events and timers.
//!
//! Each [`Effect`] carries a deterministic key (`"{call}:leg:{device}/{attempt}:hangup"`, …)
//! that is unique per call and per effect: the worker derives the Telnyx `command_id` and the
//! job's dedupe key from it, so a job retried after a crash sends the same command again and
//! Telnyx ignores the repeat. The machine never emits a key twice (see `Call::emitted`). The
//! effects of one decision are in dependency order (answer the parent before bridging it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::input::Timer;
use super::model::{EndReason, LegId};
use crate::push::CallEndedReason;

/// Custom SIP header with the organisation id, sent to the AI agent.
pub const HEADER_ORG_ID: &str = "X-Callfleet-Org-Id";
/// Custom SIP header with the call session id, sent to the AI agent.
pub const HEADER_CALL_ID: &str = "X-Callfleet-Call-Id";

/// Which call a hangup is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "target", rename_all = "snake_case")]
pub enum HangupTarget {
    Parent,
    Leg {
        leg: LegId,
        call_control_id: String,
    },
    /// A leg we cannot place (see `CallInput::StrayLeg`).
    Stray {
        call_control_id: String,
    },
}

/// What a device is pushed (the push pool fills in caller and org details from the call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "push", rename_all = "snake_case")]
pub enum Push {
    /// Worthless after `ring_ends_at`; never sent for a call that is no longer ringing.
    IncomingCall {
        ring_ends_at: DateTime<Utc>,
    },
    CallEnded {
        reason: CallEndedReason,
    },
}

/// An event to the application backend (Standard Webhooks, `events` pool).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum AppEvent {
    #[serde(rename = "call.incoming")]
    Incoming,
    #[serde(rename = "call.answered")]
    Answered { device_id: String },
    #[serde(rename = "call.ended")]
    Ended { reason: EndReason, duration_secs: u64 },
    #[serde(rename = "call.missed")]
    Missed { reason: EndReason },
    #[serde(rename = "voicemail.started")]
    VoicemailStarted { reason: EndReason },
}

impl AppEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Incoming => "call.incoming",
            Self::Answered { .. } => "call.answered",
            Self::Ended { .. } => "call.ended",
            Self::Missed { .. } => "call.missed",
            Self::VoicemailStarted { .. } => "voicemail.started",
        }
    }
}

/// One thing the worker performs or enqueues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Dial a device leg linked to the parent; `client_state` names `leg` (sealed by the worker).
    Dial {
        leg: LegId,
        to: String,
        timeout_secs: u32,
    },
    AnswerParent,
    Bridge {
        leg: LegId,
        call_control_id: String,
    },
    Hangup {
        target: HangupTarget,
        reason: EndReason,
    },
    /// Refuse the parent (`reason` is why; the cause sent to Telnyx is `CALL_REJECTED`).
    Reject {
        reason: EndReason,
    },
    /// Speak the voicemail greeting on the parent.
    SpeakGreeting {
        text: String,
        voice: Option<String>,
        language: Option<String>,
    },
    /// `record_start` on the parent: one channel, a beep first, at most `max_length_secs`.
    RecordVoicemail {
        max_length_secs: u32,
    },
    /// `record_start` on the parent of a connected call: dual channel (the parent on channel A,
    /// the other side on B), mp3. Telnyx saves it when the call ends (`call.recording.saved`).
    RecordCall,
    /// Transfer the parent to the AI agent; headers carry the org and call ids, nothing personal.
    Transfer {
        sip_uri: String,
        custom_headers: Vec<(String, String)>,
    },
    /// Connect a device's outbound call (the parent) to `to` with `from` as the caller id; the
    /// new leg's `client_state` marks it as this call's far end (sealed by the worker).
    ConnectOutbound {
        to: String,
        from: String,
    },
    Push {
        device_id: String,
        push: Push,
    },
    Emit(AppEvent),
    /// Mark the call as the user's active call (answered) or clear it (ended).
    ActiveCall {
        user_id: String,
        active: bool,
    },
    /// The call ended: write its call log and billing ledger entry (once) and emit `call.log`.
    LogCall,
    /// Ask Telnyx about the parent and every leg not known to be ended, then feed `Reconciled`.
    QueryStatus,
    Schedule {
        timer: Timer,
        at: DateTime<Utc>,
    },
}

/// A command with its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    pub key: String,
    pub command: Command,
}
