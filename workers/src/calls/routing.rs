//! A new inbound call: gather the routing facts, decide (pure, `fleet_domain::routing::route`),
//! and store the call with the jobs of its first decision in one transaction.
//!
//! Facts, always in the org of the dialed number (never an ambient one): the number's
//! configuration, whether the caller is on that org's block list, the receiving user's
//! do-not-disturb flag, and every device of the user in any organization the user belongs to,
//! each with its dialable credential (active, not expired; the org-level web credential is never
//! among them). The ring session is stored **before** any dial: the dials are jobs of the same
//! commit. A second `call.initiated` for the same session (a retry, the failover URL, a replay)
//! finds the call stored and does nothing.

use chrono::{DateTime, Utc};
use fleet_domain::call::{
    Call, CallDirection, CallInput, CallSetup, Platform, RingDevice, Route, VoicemailSettings, step,
};
use fleet_domain::event::CallEvent;
use fleet_domain::routing::{RoutingFacts, route};
use fleet_jobs::{Envelope, Job};
use fleet_store::{NewJob, OrgSettings, RingTarget};

use crate::calls::outbox;
use crate::{JobError, Runtime};

/// The SIP URI a device's credential is dialed at.
pub fn sip_target(sip_username: &str) -> String {
    format!("sip:{sip_username}@sip.telnyx.com")
}

/// A ring target as the state machine sees it.
pub fn ring_device(target: &RingTarget) -> RingDevice {
    let device = &target.device;
    let platform = match device.platform.as_str() {
        "ios" => Platform::Ios,
        "android" => Platform::Android,
        _ => Platform::Web,
    };
    let push = match platform {
        Platform::Ios => device.voip_token.is_some(),
        Platform::Android => device.push_token.is_some(),
        Platform::Web => false,
    };
    RingDevice {
        device_id: device.id.clone(),
        platform,
        push,
        sip_target: target.sip_username.as_deref().map(sip_target),
    }
}

fn voicemail(settings: &OrgSettings) -> VoicemailSettings {
    let defaults = VoicemailSettings::default();
    VoicemailSettings {
        greeting: settings.voicemail_greeting.clone().unwrap_or(defaults.greeting),
        voice: settings.voicemail_voice.clone(),
        language: settings.voicemail_language.clone(),
        max_secs: settings.voicemail_max_secs.unwrap_or(defaults.max_secs),
    }
}

/// Routes an inbound `call.initiated` on the parent leg `parent`.
pub(super) async fn route_inbound(
    runtime: &Runtime,
    event: &CallEvent,
    session: &str,
    parent: &str,
) -> Result<(), JobError> {
    let store = &runtime.store;
    let p = &event.payload;
    let (from, to) = (p.from.clone().unwrap_or_default(), p.to.clone().unwrap_or_default());
    // The facts are independent reads, so they are read at once: two rounds of queries instead
    // of six one after another (the dials wait for this).
    let (existing, number) = tokio::try_join!(store.call(session), store.number(&to))?;
    if existing.is_some() {
        tracing::debug!("Call already routed; duplicate call.initiated ignored.");
        return Ok(());
    }
    let Some(number) = number else {
        tracing::warn!(to = %to, "Inbound call to a number callfleet does not know; rejecting it.");
        return reject_unstored(runtime, session, parent, &format!("reject:{session}")).await;
    };
    let now = store.now();
    let user_id = number.user_id.as_deref();
    let (org, user, targets, caller_blocked) = tokio::try_join!(
        store.organization(&number.org_id),
        async {
            match user_id {
                Some(id) => store.user(id).await,
                None => Ok(None),
            }
        },
        async {
            match user_id {
                Some(id) => store.ring_targets(id, now).await,
                None => Ok(Vec::new()),
            }
        },
        store.is_blocked(&number.org_id, &from),
    )?;
    let org = org.unwrap_or_default();
    // A number's user that does not exist (any more) rings nobody.
    let devices = if user.is_some() { targets.iter().map(ring_device).collect() } else { Vec::new() };
    let facts = RoutingFacts {
        number: &number,
        ai_agent_sip_uri: org.settings.ai_agent_sip_uri.as_deref(),
        caller_blocked,
        user_dnd: user.as_ref().is_some_and(|u| u.dnd),
        devices,
    };
    let decided = route(&facts, now);
    let call = Call::new(
        CallSetup {
            id: session.to_owned(),
            direction: CallDirection::Inbound,
            placed_by: None,
            org_id: number.org_id.clone(),
            user_id: user.as_ref().map(|u| u.id.clone()),
            parent_call_control_id: parent.to_owned(),
            from,
            to,
            caller_name: p.caller_id_name.clone(),
            org_name: org.name.clone(),
            voicemail: voicemail(&org.settings),
        },
        event.occurred_at.unwrap_or(now),
    );
    store_routed(runtime, call, decided, now).await
}

/// Rejects a call that has no org to be stored in (`reject_call.v1`, keyed `work_id`): an
/// unknown number, or an outbound call from a SIP user that is not ours.
pub(super) async fn reject_unstored(
    runtime: &Runtime,
    session: &str,
    parent: &str,
    work_id: &str,
) -> Result<(), JobError> {
    let job = Job::RejectCallV1 { call_session_id: session.to_owned(), call_control_id: parent.to_owned() };
    let envelope = Envelope::new(job, work_id.to_owned()).with_call_session(Some(session.to_owned()));
    runtime.store.enqueue(&[NewJob::once(envelope)]).await?;
    Ok(())
}

/// Stores a new call with its first decision (`route`) and that decision's jobs, in one
/// transaction; a call already stored for the session (a duplicate `call.initiated`) wins.
pub(super) async fn store_routed(
    runtime: &Runtime,
    call: Call,
    route: Route,
    now: DateTime<Utc>,
) -> Result<(), JobError> {
    let decision = step(&call, &CallInput::Routed(route), now);
    let next = decision.next.unwrap_or(call);
    let jobs = outbox::jobs_for(&next, &decision.effects, now);
    if runtime.store.create_call(&next, &jobs).await? {
        let (direction, state) = (next.direction.as_str(), next.state.as_str());
        tracing::info!(org_id = %next.org_id, direction, state, "Call routed.");
        metrics::counter!("callfleet_calls_routed_total", "direction" => direction, "state" => state)
            .increment(1);
    }
    Ok(())
}
