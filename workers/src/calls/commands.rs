//! `call_command.v1`: one Telnyx command of a call decision, sent with a `command_id` derived from
//! the effect's key (a retried or re-run job sends the same id, which Telnyx ignores).
//!
//! Telnyx's answer is classified per command (`fleet_telnyx::call_control::Outcome`): its goal
//! already reached (`90018` on a hangup: the call is gone) completes the job; "not answered yet",
//! 429, 5xx, timeouts and an open breaker retry within the job's seconds-long budget; a caller's
//! leg that is gone when we answer, speak, record or transfer it is news for the call (it ends, as
//! on the caller's hangup), not a failure; any other gone call or refused request fails the job
//! for good (the dead set), and a dial or a bridge that fails for good runs its
//! declared compensation (`Job::compensation`: `DialFailed` / `BridgeFailed`, so the call is
//! rerouted or ended cleanly instead of leaving the caller in silence). What a command learns
//! (a dialed leg's id, the status of a stalled call) comes back as an input of the call, through
//! the same atomic transition as any webhook.
//!
//! A dial whose call stopped ringing before the job ran is not sent (it would only ring a phone
//! for a call that is over); the call learns that the leg never existed.

use fleet_domain::call::{Call, CallInput, Command, Effect, HangupTarget, OUTBOUND_RING_SECS};
use fleet_domain::client_state::{ClientState, LegKind};
use fleet_domain::retry::Failure;
use fleet_telnyx::call_control::{
    Answer, Bridge, CallControl, CallControlError, CommandId, CustomHeader, Dial, DialTo, Hangup, Outcome,
    RecordChannels, RecordFormat, RecordStart, Reject, RejectCause, Speak, Transfer,
};

use super::apply;
use crate::{JobError, Runtime};

/// The custom SIP header that tells a device why its leg was hung up ("answered elsewhere" is
/// not a missed call).
pub const REASON_HEADER: &str = "X-Callfleet-Reason";

/// Voice of the voicemail greeting when the organization chose none.
const DEFAULT_VOICE: &str = "female";

pub async fn run(runtime: &Runtime, session: &str, effect: &Effect) -> Result<(), JobError> {
    let Some(call) = runtime.store.call(session).await? else {
        return Err(JobError::permanent(format!("call {session} does not exist")));
    };
    let telnyx = runtime.call_control()?;
    let id = CommandId::derive(&effect.key);
    let parent = call.parent_call_control_id.as_str();
    if needs_answered_parent(&effect.command) {
        match answer_parent_first(telnyx, &call).await {
            Err(e) if e.outcome() == Outcome::Gone => return parent_gone(runtime, &call, &e).await,
            answered => answered.or_else(settle)?,
        }
    }
    let sent = match &effect.command {
        Command::Dial { leg, to, timeout_secs } => {
            return dial(runtime, telnyx, &call, effect, leg, to, *timeout_secs).await;
        }
        Command::QueryStatus => return reconcile(runtime, telnyx, &call).await,
        Command::AnswerParent => telnyx.answer(parent, &Answer::new(id)).await,
        Command::Bridge { call_control_id, .. } => {
            let mut bridge = Bridge::new(call_control_id.clone(), id);
            bridge.prevent_double_bridge = Some(true);
            telnyx.bridge(parent, &bridge).await
        }
        Command::Hangup { target, reason } => {
            let target = match target {
                HangupTarget::Parent => parent,
                HangupTarget::Leg { call_control_id, .. } | HangupTarget::Stray { call_control_id } => {
                    call_control_id
                }
            };
            let mut hangup = Hangup::new(id);
            hangup.custom_headers.push(CustomHeader::new(REASON_HEADER, reason.as_str()));
            telnyx.hangup(target, &hangup).await
        }
        Command::Reject { .. } => telnyx.reject(parent, &Reject::new(RejectCause::CallRejected, id)).await,
        Command::SpeakGreeting { text, voice, language } => {
            let mut speak =
                Speak::new(text.clone(), voice.clone().unwrap_or_else(|| DEFAULT_VOICE.into()), id);
            speak.language = language.clone();
            telnyx.speak(parent, &speak).await
        }
        Command::RecordVoicemail { max_length_secs } => {
            let mut record = RecordStart::new(RecordFormat::Mp3, RecordChannels::Single, id);
            record.max_length = Some(*max_length_secs);
            record.play_beep = Some(true);
            telnyx.record_start(parent, &record).await
        }
        Command::RecordCall if call.state == fleet_domain::call::CallState::Ended => {
            tracing::info!("The call ended before its recording started; not recording.");
            return Ok(());
        }
        Command::RecordCall => {
            telnyx.record_start(parent, &RecordStart::new(RecordFormat::Mp3, RecordChannels::Dual, id)).await
        }
        Command::Transfer { sip_uri, custom_headers } => {
            let mut transfer = Transfer::new(sip_uri.clone(), id);
            transfer.custom_headers = custom_headers.iter().map(|(k, v)| CustomHeader::new(k, v)).collect();
            telnyx.transfer(parent, &transfer).await
        }
        Command::ConnectOutbound { to, from } => {
            let far_end =
                ClientState::new(LegKind::Outbound, call.id.clone(), None).with_org(call.org_id.clone());
            let mut transfer = Transfer::new(to.clone(), id);
            transfer.from = Some(from.clone());
            transfer.timeout_secs = Some(OUTBOUND_RING_SECS);
            transfer.target_leg_client_state = Some(far_end.seal(&runtime.client_state_key));
            telnyx.transfer(parent, &transfer).await
        }
        Command::Push { .. }
        | Command::Emit(_)
        | Command::ActiveCall { .. }
        | Command::Schedule { .. }
        | Command::LogCall => {
            return Err(JobError::permanent("not a Telnyx command"));
        }
    };
    match sent {
        Ok(_) => Ok(()),
        Err(e) if e.outcome() == Outcome::Gone && is_parent_command(&effect.command) => {
            parent_gone(runtime, &call, &e).await
        }
        Err(e) => settle(e),
    }
}

/// Commands addressed to the caller's leg alone. Telnyx's "call gone" on one of them is news
/// about the call (the caller hung up while we answered, spoke or recorded), not a failure for
/// an operator: the job completes and the call learns that its parent is gone, as it would from
/// the `call.hangup` webhook (which may still come, harmlessly, or may have been lost). The bridge
/// is not one of them: its own refusal keeps its compensation (`BridgeFailed`, both sides ended);
/// only the answer it sends first (`answer_parent_first`) counts as news about the caller.
fn is_parent_command(command: &Command) -> bool {
    matches!(
        command,
        Command::AnswerParent
            | Command::SpeakGreeting { .. }
            | Command::RecordVoicemail { .. }
            | Command::RecordCall
            | Command::Transfer { .. }
            | Command::ConnectOutbound { .. }
    )
}

async fn parent_gone(runtime: &Runtime, call: &Call, e: &CallControlError) -> Result<(), JobError> {
    tracing::info!(error = %e, "The caller's leg is gone; the call learns it.");
    apply(runtime, &call.id, &CallInput::ParentHangup { cause: "gone".into() }).await?;
    Ok(())
}

/// Commands Telnyx refuses on a caller's leg that is not answered yet (`90034`).
fn needs_answered_parent(command: &Command) -> bool {
    matches!(
        command,
        Command::Bridge { .. } | Command::SpeakGreeting { .. } | Command::RecordVoicemail { .. }
    )
}

/// The decision that asks for a bridge or a greeting also asks for the parent's answer, but as a
/// job of its own that may run after this one. So this one sends that answer first, under the
/// answer effect's own `command_id` (the machine's key `"{call}:parent:answer"`): Telnyx applies
/// it once whichever job gets there first, and the bridge or speak never meets an unanswered call.
async fn answer_parent_first(telnyx: &CallControl, call: &Call) -> Result<(), CallControlError> {
    if !call.has_emitted("parent:answer") {
        return Ok(());
    }
    let key = call.effect_key("parent:answer");
    telnyx.answer(&call.parent_call_control_id, &Answer::new(CommandId::derive(&key))).await.map(|_| ())
}

/// A failed command as the job's result.
fn settle(e: CallControlError) -> Result<(), JobError> {
    match e.outcome() {
        Outcome::Done | Outcome::AlreadyBridged => {
            tracing::info!(error = %e, "Command's goal already reached.");
            Ok(())
        }
        Outcome::Wait { retry_after } => {
            Err(JobError { failure: Failure::Retryable { retry_after }, message: e.to_string() })
        }
        Outcome::NotYetAnswered => Err(JobError::retryable(e.to_string())),
        Outcome::Gone | Outcome::Permanent => Err(JobError::permanent(e.to_string())),
    }
}

async fn dial(
    runtime: &Runtime,
    telnyx: &CallControl,
    call: &Call,
    effect: &Effect,
    leg: &fleet_domain::call::LegId,
    to: &str,
    timeout_secs: u32,
) -> Result<(), JobError> {
    if !call.is_ringing() {
        tracing::info!(%leg, "The call stopped ringing before this dial ran; not dialing.");
        apply(runtime, &call.id, &CallInput::DialFailed { leg: leg.clone() }).await?;
        return Ok(());
    }
    let connection = runtime
        .call_connection_id
        .as_deref()
        .ok_or_else(|| JobError::permanent("TELNYX_CONNECTION_ID is not configured"))?;
    let state = ClientState::new(LegKind::Ring, call.id.clone(), Some(leg.to_string()))
        .with_org(call.org_id.clone())
        .with_device(leg.device_id.clone());
    let mut dial =
        Dial::new(DialTo::One(to.to_owned()), call.from.clone(), connection, CommandId::derive(&effect.key));
    dial.link_to = Some(call.parent_call_control_id.clone());
    dial.client_state = Some(state.seal(&runtime.client_state_key));
    dial.timeout_secs = Some(timeout_secs);
    dial.prevent_double_bridge = Some(true);
    dial.from_display_name = call.caller_name.clone();
    let started = std::time::Instant::now();
    let dialed = match telnyx.dial(&dial).await {
        Ok(dialed) => dialed,
        // A dial has no "goal already reached": without a leg id there is nothing to report, so
        // a dial Telnyx refuses that way fails for good (its compensation tells the call).
        Err(e) if matches!(e.outcome(), Outcome::Done | Outcome::AlreadyBridged) => {
            return Err(JobError::permanent(e.to_string()));
        }
        Err(e) => return settle(e),
    };
    metrics::histogram!("callfleet_leg_dial_seconds").record(started.elapsed().as_secs_f64());
    // The leg's id comes from the dial response, never from waiting for its webhooks.
    let input =
        CallInput::DialAccepted { leg: leg.clone(), call_control_id: dialed.leg().call_control_id.clone() };
    apply(runtime, &call.id, &input).await?;
    Ok(())
}

/// Asks Telnyx about the parent and every leg that may still be alive, and tells the call.
async fn reconcile(runtime: &Runtime, telnyx: &CallControl, call: &Call) -> Result<(), JobError> {
    let parent_alive = alive(telnyx, &call.parent_call_control_id).await?;
    let mut legs = Vec::new();
    for leg in call.legs.iter().filter(|l| l.state != fleet_domain::call::LegState::Ended) {
        if let Some(ccid) = &leg.call_control_id {
            legs.push((leg.id.clone(), alive(telnyx, ccid).await?));
        }
    }
    tracing::info!(parent_alive, legs = legs.len(), "Stalled-call check answered.");
    apply(runtime, &call.id, &CallInput::Reconciled { parent_alive, legs }).await?;
    Ok(())
}

async fn alive(telnyx: &CallControl, ccid: &str) -> Result<bool, JobError> {
    match telnyx.call_status(ccid).await {
        Ok(status) => Ok(status.is_alive),
        Err(e) => match e.outcome() {
            // Telnyx forgets a call ten minutes after it ended.
            Outcome::Gone | Outcome::Done => Ok(false),
            _ => settle(e).map(|()| false),
        },
    }
}

/// Rejects a call to a number callfleet does not know (there is no call row to keep).
pub async fn reject_unknown(runtime: &Runtime, session: &str, parent: &str) -> Result<(), JobError> {
    let telnyx = runtime.call_control()?;
    let id = CommandId::derive(&format!("{session}:reject:unknown_number"));
    match telnyx.reject(parent, &Reject::new(RejectCause::CallRejected, id)).await {
        Ok(_) => Ok(()),
        Err(e) => settle(e),
    }
}
