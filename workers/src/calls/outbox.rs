//! The outbox of a call decision: the effects of one `step` as the jobs that perform them.
//!
//! Pure: the jobs are committed in the same transaction as the call's new state, so a worker that
//! dies after the commit leaves them for another, and one that dies before leaves nothing. Every
//! job is keyed by its effect's key (unique per call and effect), so committing the same decision
//! twice, or a replay that re-derives it, enqueues each job once.
//!
//! - Telnyx commands (dial, answer, bridge, hangup, reject, speak, record, transfer, status)
//!   → `call_command.v1` on the `legs` pool; the effect key becomes the Telnyx `command_id`.
//! - Pushes → `send_push.v1` on the `push` pool, with the caller's number and name and the
//!   call's organization (a cross-org call rings without an org switch on the phone).
//! - App events → `emit_event.v1` on the `events` pool, with a `webhook-id` derived from the key
//!   (retries and duplicates carry the same id) and the decision's time as `timestamp`.
//! - Timers → `call_timer.v1` on the `simring-retries` pool, due at the timer's time.
//! - The call log and ledger entry of an ended call → `log_call.v1` on the `webhooks` pool (a
//!   quick write promised within seconds of the hangup, so not behind the recordings' downloads).
//! - The active call needs no job: it is the user's call row that has not ended.

use chrono::{DateTime, Utc};
use fleet_domain::call::{AppEvent, Call, Command, Effect, Push};
use fleet_domain::push::PushMessage;
use fleet_jobs::{AppEventMessage, Envelope, Job, event_envelope, push_envelope};
use fleet_store::NewJob;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The jobs that perform `effects`, decided at `now` for `call` (the state after the step).
pub fn jobs_for(call: &Call, effects: &[Effect], now: DateTime<Utc>) -> Vec<NewJob> {
    effects.iter().filter_map(|effect| job_for(call, effect, now)).collect()
}

fn job_for(call: &Call, effect: &Effect, now: DateTime<Utc>) -> Option<NewJob> {
    let session = Some(call.id.clone());
    let envelope = match &effect.command {
        Command::Push { device_id, push } => {
            return Some(NewJob::once(push_envelope(
                device_id,
                push_message(call, push),
                now.timestamp_millis(),
            )));
        }
        Command::Emit(event) => event_envelope(app_event(call, &effect.key, event, now)),
        Command::Schedule { timer, at } => {
            let job = Job::CallTimerV1 {
                call_session_id: call.id.clone(),
                timer: timer.clone(),
                due_at_ms: at.timestamp_millis(),
            };
            let delay = (*at - now).to_std().unwrap_or_default();
            let envelope = Envelope::new(job, format!("timer:{}", effect.key)).with_call_session(session);
            return Some(NewJob::once_after(envelope, delay));
        }
        Command::ActiveCall { .. } => return None,
        Command::LogCall => {
            Envelope::new(Job::LogCallV1 { call_session_id: call.id.clone() }, format!("log:{}", effect.key))
        }
        Command::Dial { .. }
        | Command::AnswerParent
        | Command::Bridge { .. }
        | Command::Hangup { .. }
        | Command::Reject { .. }
        | Command::SpeakGreeting { .. }
        | Command::RecordVoicemail { .. }
        | Command::RecordCall
        | Command::Transfer { .. }
        | Command::ConnectOutbound { .. }
        | Command::QueryStatus => Envelope::new(
            Job::CallCommandV1 { call_session_id: call.id.clone(), effect: effect.clone() },
            format!("cmd:{}", effect.key),
        ),
    };
    Some(NewJob::once(envelope.with_call_session(session)))
}

/// The push message for one device of `call`.
pub fn push_message(call: &Call, push: &Push) -> PushMessage {
    match push {
        Push::IncomingCall { ring_ends_at } => PushMessage::IncomingCall {
            call_session_id: call.id.clone(),
            call_control_id: call.parent_call_control_id.clone(),
            caller_number: call.from.clone(),
            caller_name: call.caller_name.clone(),
            org_id: call.org_id.clone(),
            org_name: call.org_name.clone().unwrap_or_else(|| call.org_id.clone()),
            channel_number: call.to.clone(),
            ring_ends_at: ring_ends_at.timestamp(),
        },
        Push::CallEnded { reason } => PushMessage::CallEnded {
            call_session_id: call.id.clone(),
            org_id: call.org_id.clone(),
            reason: *reason,
        },
    }
}

/// A Standard Webhooks id (`msg_…`) that is the same for every delivery of one effect.
pub(crate) fn event_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

fn app_event(call: &Call, key: &str, event: &AppEvent, now: DateTime<Utc>) -> AppEventMessage {
    let mut data = json!({
        "call_session_id": call.id,
        "org_id": call.org_id,
        "user_id": call.user_id,
        "direction": call.direction.as_str(),
        "from": call.from,
        "to": call.to,
        "caller_name": call.caller_name,
        "state": call.state.as_str(),
    });
    let extra = match event {
        AppEvent::Incoming => json!({}),
        AppEvent::Answered { device_id } => {
            json!({ "device_id": device_id, "answered_by_device_id": device_id })
        }
        AppEvent::Ended { reason, duration_secs } => json!({
            "reason": reason.as_str(),
            "duration_secs": duration_secs,
            "answered_by_device_id": call.answered_by_device_id(),
        }),
        AppEvent::Missed { reason } | AppEvent::VoicemailStarted { reason } => {
            json!({ "reason": reason.as_str() })
        }
    };
    if let (Some(data), serde_json::Value::Object(extra)) = (data.as_object_mut(), extra) {
        data.extend(extra);
    }
    AppEventMessage {
        id: event_id(key),
        event_type: event.event_type().to_owned(),
        occurred_at_ms: now.timestamp_millis(),
        data,
    }
}

#[cfg(test)]
mod tests {
    use fleet_domain::call::{
        CallDirection, CallSetup, EndReason, HangupTarget, LegId, Timer, VoicemailSettings,
    };
    use fleet_domain::push::CallEndedReason;
    use fleet_jobs::Pool;

    use super::*;

    fn call() -> Call {
        Call::new(
            CallSetup {
                id: "s1".into(),
                direction: CallDirection::Inbound,
                placed_by: None,
                org_id: "o1".into(),
                user_id: Some("u1".into()),
                parent_call_control_id: "v3:parent".into(),
                from: "+13125550101".into(),
                to: "+13125550199".into(),
                caller_name: Some("Ada".into()),
                org_name: Some("Acme".into()),
                voicemail: VoicemailSettings::default(),
            },
            Utc::now(),
        )
    }

    fn effect(key: &str, command: Command) -> Effect {
        Effect { key: key.into(), command }
    }

    #[test]
    fn each_effect_becomes_one_keyed_job_on_its_pool() {
        let now = Utc::now();
        let leg = LegId::new("d1", 1);
        let effects = [
            effect(
                "s1:leg:d1/1:dial",
                Command::Dial { leg: leg.clone(), to: "sip:u@sip.telnyx.com".into(), timeout_secs: 30 },
            ),
            effect(
                "s1:leg:d1/1:hangup",
                Command::Hangup {
                    target: HangupTarget::Leg { leg, call_control_id: "v3:leg".into() },
                    reason: EndReason::AnsweredElsewhere,
                },
            ),
            effect(
                "s1:push:d2:call_ended",
                Command::Push {
                    device_id: "d2".into(),
                    push: Push::CallEnded { reason: CallEndedReason::AnsweredElsewhere },
                },
            ),
            effect("s1:event:answered", Command::Emit(AppEvent::Answered { device_id: "d1".into() })),
            effect(
                "s1:timer:ring",
                Command::Schedule { timer: Timer::RingTimeout, at: now + chrono::Duration::seconds(30) },
            ),
            effect("s1:active", Command::ActiveCall { user_id: "u1".into(), active: true }),
        ];
        let jobs = jobs_for(&call(), &effects, now);
        let pools: Vec<Pool> = jobs.iter().map(|j| j.envelope.pool()).collect();
        assert_eq!(pools, vec![Pool::Legs, Pool::Legs, Pool::Push, Pool::Events, Pool::SimringRetries]);
        let keys: Vec<&str> = jobs.iter().map(|j| j.unique_key.as_deref().unwrap()).collect();
        assert_eq!(keys[0], "cmd:s1:leg:d1/1:dial#1");
        assert_eq!(keys[3], format!("event:{}#1", event_id("s1:event:answered")));
        assert_eq!(jobs[4].delay, std::time::Duration::from_secs(30), "the timer is due at its time");
        assert!(jobs.iter().all(|j| j.envelope.call_session_id.as_deref() == Some("s1")));
        // The same decision again gives the same keys (enqueued once).
        let again = jobs_for(&call(), &effects, now);
        assert_eq!(
            again.iter().map(|j| j.unique_key.clone()).collect::<Vec<_>>(),
            jobs.iter().map(|j| j.unique_key.clone()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn events_carry_the_call_and_a_stable_id() {
        let now = Utc::now();
        let effects = [effect(
            "s1:event:ended",
            Command::Emit(AppEvent::Ended { reason: EndReason::Completed, duration_secs: 10800 }),
        )];
        let jobs = jobs_for(&call(), &effects, now);
        let Job::EmitEventV1 { event } = &jobs[0].envelope.job else { panic!("an event job") };
        assert_eq!(event.event_type, "call.ended");
        assert_eq!(event.data["call_session_id"], "s1");
        assert_eq!(event.data["org_id"], "o1");
        assert_eq!(event.data["reason"], "completed");
        assert_eq!(event.data["duration_secs"], 10800);
        assert_eq!(event.id, event_id("s1:event:ended"));
        assert!(event.id.starts_with("msg_") && event.id.len() == 36);
    }

    #[test]
    fn incoming_pushes_carry_caller_and_org() {
        let at = Utc::now();
        let PushMessage::IncomingCall { caller_name, org_name, channel_number, ring_ends_at, .. } =
            push_message(&call(), &Push::IncomingCall { ring_ends_at: at })
        else {
            panic!("incoming call")
        };
        assert_eq!((caller_name.as_deref(), org_name.as_str()), (Some("Ada"), "Acme"));
        assert_eq!((channel_number.as_str(), ring_ends_at), ("+13125550199", at.timestamp()));
    }
}
