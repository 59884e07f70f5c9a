//! What an ended call leaves behind: its call log and its billing ledger entry, pure functions of
//! the final [`Call`].
//!
//! Both are written once per call session (the store's primary key is the session id, and the
//! job that writes them has the key of the call's `log` effect), so a duplicated hangup, a
//! replay or a worker killed mid-write cannot make a second entry.
//!
//! **Billing rule.** A call bills its connected time: from the answer (by a phone, by voicemail,
//! or the far end of an outbound call) to the end, rounded **up** to the next whole second; an
//! AI-agent call bills from the start of the call to the end (routing hands it to the agent on
//! its first webhook, and the agent answers at once). A call
//! that never connected (missed, rejected, cancelled while ringing) bills 0 s. `billed_minutes`
//! is the billable time rounded up to whole minutes (60-second increments, 0 s → 0 min).

use serde::{Deserialize, Serialize};

use super::model::{Call, CallDirection, EndReason};

/// How a call ended, as the call log says (fixed names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CallStatus {
    /// A phone (inbound) or the far end (outbound) answered.
    Answered,
    /// Nobody answered and the caller did not reach voicemail (cancelled, all declined).
    Missed,
    /// The caller reached voicemail.
    Voicemail,
    /// Handed to the AI agent.
    AiAgent,
    /// Refused by routing (blocked caller, no caller id to show).
    Rejected,
    /// The bridge failed; both sides were ended.
    Failed,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Missed => "missed",
            Self::Voicemail => "voicemail",
            Self::AiAgent => "ai_agent",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }
}

/// Whether a person or the AI agent took the call (the ledger's split).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BillingKind {
    Human,
    AiAgent,
}

impl BillingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::AiAgent => "ai_agent",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "human" => Some(Self::Human),
            "ai_agent" => Some(Self::AiAgent),
            _ => None,
        }
    }
}

/// The call log line of an ended call (recordings are joined in by the reader).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLog {
    pub call_session_id: String,
    pub org_id: String,
    pub user_id: Option<String>,
    pub direction: CallDirection,
    pub from: String,
    pub to: String,
    /// The phone that answered (inbound) or placed the call (outbound).
    pub device_id: Option<String>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub answered_at: Option<chrono::DateTime<chrono::Utc>>,
    pub ended_at: chrono::DateTime<chrono::Utc>,
    /// Connected seconds (the billable time).
    pub duration_secs: u64,
    pub status: CallStatus,
    pub end_reason: EndReason,
}

/// The ledger entry of an ended call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub call_session_id: String,
    pub org_id: String,
    pub user_id: Option<String>,
    pub kind: BillingKind,
    pub billable_secs: u64,
    pub billed_minutes: u64,
}

/// The call log and ledger entry of `call`, or `None` while it has not ended.
pub fn settle(call: &Call) -> Option<(CallLog, LedgerEntry)> {
    let ended_at = call.ended_at?;
    let ai = call.has_emitted("parent:transfer");
    let voicemail = call.has_emitted("voicemail:greeting");
    let end_reason = call.end_reason.unwrap_or(EndReason::Completed);
    let connected_from = if ai { Some(call.started_at) } else { call.answered_at };
    let billable_secs = connected_from.map_or(0, |from| {
        let ms = (ended_at - from).num_milliseconds().max(0) as u64;
        ms.div_ceil(1000)
    });
    let status = if ai {
        CallStatus::AiAgent
    } else if matches!(end_reason, EndReason::Blocked | EndReason::NoCallerId | EndReason::UnknownNumber) {
        CallStatus::Rejected
    } else if end_reason == EndReason::BridgeFailed {
        CallStatus::Failed
    } else if voicemail {
        CallStatus::Voicemail
    } else if call.answered_at.is_some() {
        CallStatus::Answered
    } else {
        CallStatus::Missed
    };
    let device_id = match call.direction {
        CallDirection::Inbound => call.winner.as_ref().map(|leg| leg.device_id.clone()),
        CallDirection::Outbound | CallDirection::Direct => call.placed_by.clone(),
    };
    let log = CallLog {
        call_session_id: call.id.clone(),
        org_id: call.org_id.clone(),
        user_id: call.user_id.clone(),
        direction: call.direction,
        from: call.from.clone(),
        to: call.to.clone(),
        device_id,
        started_at: call.started_at,
        answered_at: call.answered_at,
        ended_at,
        duration_secs: billable_secs,
        status,
        end_reason,
    };
    let entry = LedgerEntry {
        call_session_id: call.id.clone(),
        org_id: call.org_id.clone(),
        user_id: call.user_id.clone(),
        kind: if ai { BillingKind::AiAgent } else { BillingKind::Human },
        billable_secs,
        billed_minutes: billable_secs.div_ceil(60),
    };
    Some((log, entry))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::super::tests::{Run, answered, device, ring, t0};
    use super::super::*;
    use super::*;

    fn ended(run: &mut Run, after: Duration) {
        run.at(after).feed(CallInput::ParentHangup { cause: "normal_clearing".into() });
    }

    #[test]
    fn an_answered_call_bills_its_connected_time_rounded_up() {
        let mut run = Run::new();
        run.feed(ring(vec![device("a", Platform::Android, true, true)]));
        run.at(Duration::milliseconds(2_500)).feed(answered("a"));
        ended(&mut run, Duration::milliseconds(2_500 + 61_001));
        let (log, entry) = settle(&run.call).unwrap();
        assert_eq!((log.status, log.device_id.as_deref()), (CallStatus::Answered, Some("a")));
        assert_eq!((entry.kind, entry.billable_secs, entry.billed_minutes), (BillingKind::Human, 62, 2));
        assert_eq!(log.duration_secs, 62);
        assert_eq!(run.count(|c| matches!(c, Command::LogCall)), 1, "logged once");
    }

    #[test]
    fn unconnected_calls_bill_nothing_and_say_why() {
        let mut missed = Run::new();
        missed.feed(ring(vec![device("a", Platform::Android, true, true)]));
        assert!(settle(&missed.call).is_none(), "not while it rings");
        ended(&mut missed, Duration::seconds(3));
        let (log, entry) = settle(&missed.call).unwrap();
        assert_eq!(
            (log.status, log.end_reason, entry.billable_secs),
            (CallStatus::Missed, EndReason::CallerCancelled, 0)
        );

        let mut blocked = Run::new();
        blocked.feed(CallInput::Routed(Route::Reject { reason: EndReason::Blocked }));
        let (log, entry) = settle(&blocked.call).unwrap();
        assert_eq!((log.status, entry.billed_minutes), (CallStatus::Rejected, 0));
        assert_eq!(blocked.count(|c| matches!(c, Command::LogCall)), 1, "a rejected call is logged too");
    }

    #[test]
    fn voicemail_and_ai_agent_calls() {
        let mut vm = Run::new();
        vm.feed(CallInput::Routed(Route::Voicemail { reason: EndReason::Dnd }));
        ended(&mut vm, Duration::seconds(30));
        let (log, entry) = settle(&vm.call).unwrap();
        assert_eq!(
            (log.status, entry.kind, entry.billable_secs),
            (CallStatus::Voicemail, BillingKind::Human, 30)
        );

        let mut ai = Run::new();
        let route = Route::AiAgent { sip_uri: "sip:agent@example.com".into(), reason: EndReason::AiAgent };
        ai.at(Duration::seconds(1)).feed(CallInput::Routed(route));
        ended(&mut ai, Duration::seconds(91));
        let (log, entry) = settle(&ai.call).unwrap();
        assert_eq!((log.status, entry.kind), (CallStatus::AiAgent, BillingKind::AiAgent));
        assert_eq!(entry.billable_secs, 91, "from the start of the call, the transfer being decided at once");
        assert_eq!(log.started_at, t0());
    }
}
