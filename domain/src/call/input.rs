//! What can happen to a call: webhooks (already matched to a leg through our authenticated
//! `client_state`), results of our own commands, fired timers and reconciler answers.
//!
//! Inputs are facts, not requests: any of them may arrive twice, late, or before the one that
//! caused it (a leg's `call.answered` before its dial response). [`super::step`] accepts every
//! input in every state; one that no longer matters changes nothing.

use serde::{Deserialize, Serialize};

use super::model::{LegId, RingDevice};

/// Why a Telnyx hangup cause counts as a decline rather than a failure (no redial after it).
pub fn is_decline(cause: &str) -> bool {
    matches!(cause, "call_rejected" | "user_busy" | "busy")
}

/// What routing decided for the call (from [`crate::routing::route`], plus the org's AI URI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "route", rename_all = "snake_case")]
pub enum Route {
    /// Refuse the call (blocked caller).
    Reject { reason: super::EndReason },
    /// Straight to voicemail, and why (`voicemail`, `outside_hours`, `dnd`, `no_user`, `no_devices`).
    Voicemail { reason: super::EndReason },
    /// Transfer to the AI agent, and why (`ai_agent`, `outside_hours`).
    AiAgent { sip_uri: String, reason: super::EndReason },
    /// Ring these devices at once for `ring_timeout_secs`.
    Ring { devices: Vec<RingDevice>, ring_timeout_secs: u32 },
    /// A device's outbound call passed its checks: connect it to the call's `to`, showing `from`.
    Outbound,
    /// A browser's direct WebRTC call: nothing to connect (Telnyx already rings its `to`); follow it.
    Direct,
}

/// Timers a call schedules for itself (delayed jobs that come back as [`CallInput`]s).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "timer", rename_all = "snake_case")]
pub enum Timer {
    /// The ring is over: voicemail if nobody answered.
    RingTimeout,
    /// Try again to dial a device that was not registered (round `round` of its redials).
    Redial { device_id: String, round: u32 },
    /// A webhook we expect may have been lost: ask Telnyx (`GET /calls/{id}`) and reconcile.
    Reconcile { round: u32 },
}

/// One input to the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum CallInput {
    Routed(Route),
    /// The dial request for a leg succeeded; Telnyx named the leg.
    DialAccepted {
        leg: LegId,
        call_control_id: String,
    },
    /// The dial request failed for good (after its retries): the leg never existed.
    DialFailed {
        leg: LegId,
    },
    LegInitiated {
        leg: LegId,
        call_control_id: String,
    },
    LegAnswered {
        leg: LegId,
        call_control_id: String,
    },
    LegHangup {
        leg: LegId,
        call_control_id: Option<String>,
        cause: String,
    },
    /// A leg webhook whose `client_state` was ours for this call but names no leg we dialed.
    StrayLeg {
        call_control_id: String,
    },
    /// `call.hangup` on the parent (caller cancel while ringing, far end after the bridge).
    ParentHangup {
        cause: String,
    },
    /// `call.bridged` for the parent and the winner (or an outbound call's far end).
    Bridged,
    /// The far end of an outbound call answered (its leg carries our `outbound` client state).
    FarEndAnswered,
    /// The far end of an outbound call hung up, or never answered.
    FarEndHangup {
        cause: String,
    },
    /// The bridge command failed for good (its job died): compensate.
    BridgeFailed,
    /// `call.speak.ended` on the parent: the voicemail greeting finished.
    GreetingEnded,
    /// The push pool delivered `incoming_call` to this device.
    IncomingPushDelivered {
        device_id: String,
    },
    /// A device rung by this call registered (now dialable at `sip_target`).
    DeviceRegistered {
        device_id: String,
        sip_target: String,
    },
    /// A redial timer fired; the worker looked up the device's current registration.
    RedialDue {
        device_id: String,
        round: u32,
        sip_target: Option<String>,
    },
    RingTimeout,
    /// A reconcile timer fired.
    ReconcileDue {
        round: u32,
    },
    /// The answer of `GET /calls/{id}` for the parent and for each leg asked about.
    Reconciled {
        parent_alive: bool,
        legs: Vec<(LegId, bool)>,
    },
}
