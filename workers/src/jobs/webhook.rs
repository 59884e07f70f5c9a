//! `webhooks` pool: turn one stored Telnyx event into its effects.
//!
//! The event is read back from the store by id (the queue carries only the id), decoded once
//! into a typed [`CallEvent`] with our `client_state` authenticated, and applied: first to its
//! call (routing a new inbound call, or an input of an existing one: `crate::calls::webhook`),
//! or to the recording pipeline (`super::recordings`: a saved recording's copy job),
//! then to the leg lifecycle record (`call_legs`, whose updates converge whatever the order or
//! repetition of events), committed together with the event's `processed` mark. A crash between
//! the two re-runs the job, and the call's transition is idempotent. Unknown event types and
//! events of no call of ours are marked `ignored`.

use fleet_domain::event::{CallEvent, EventKind};
use fleet_store::LegUpdate;

use crate::{JobError, Runtime};

pub(super) async fn process(runtime: &Runtime, event_id: &str) -> Result<(), JobError> {
    let Some(stored) = runtime.store.webhook(event_id).await? else {
        // Purged after retention, or never stored: nothing left to do.
        tracing::warn!(event_id, "Webhook event not found; skipping.");
        return Ok(());
    };
    let event = CallEvent::decode_with(stored.body.as_bytes(), &runtime.client_state_key)
        .map_err(|e| JobError::permanent(format!("stored event {event_id} does not decode: {e}")))?;
    if let Some(session) = event.call_session_id() {
        tracing::Span::current().record("call_session_id", session);
    }
    let ours = if super::recordings::is_recording_event(&event) {
        super::recordings::on_event(runtime, &event, stored.received_at).await?
    } else {
        crate::calls::webhook::handle(runtime, &event).await?
    };
    let update = leg_update(&event);
    let outcome = if ours || update.is_some() { "processed" } else { "ignored" };
    // The leg fact and the "processed" mark commit together: one commit per event.
    runtime.store.finish_webhook(event_id, outcome, update.as_ref()).await?;
    if !ours && update.is_some() {
        // A direct call's answer or hangup that found no call yet: its leg fact is committed now,
        // so whichever of this and the call's `call.initiated` commits last feeds it to the call.
        crate::calls::direct::after_leg_fact(runtime, &event).await?;
    }
    if stored.processed_at.is_none() {
        // Acknowledged → processed, first time only (a replay is not lag).
        let lag = (runtime.store.now() - stored.received_at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("callfleet_webhook_processing_lag_seconds", "outcome" => outcome).record(lag);
    }
    tracing::debug!(event_type = ?event.kind, outcome, "Webhook processed.");
    Ok(())
}

/// The leg-record fact an event carries, if any.
fn leg_update(event: &CallEvent) -> Option<LegUpdate> {
    let p = &event.payload;
    let call_control_id = p.call_control_id.clone()?;
    let at = event.occurred_at;
    let mut update = LegUpdate {
        call_control_id,
        call_session_id: p.call_session_id.clone(),
        call_leg_id: p.call_leg_id.clone(),
        from_number: p.from.clone(),
        to_number: p.to.clone(),
        ..LegUpdate::default()
    };
    match event.kind {
        EventKind::CallInitiated => {
            update.direction = p.direction.map(|d| format!("{d:?}").to_lowercase());
            update.initiated_at = p.start_time.or(at);
        }
        EventKind::CallAnswered => update.answered_at = at,
        EventKind::CallBridged => update.bridged_at = at,
        EventKind::CallHangup => {
            update.ended_at = p.end_time.or(at);
            update.hangup_cause = p.hangup_cause.clone();
            update.hangup_source = p.hangup_source.clone();
        }
        _ => return None,
    }
    Some(update)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_events_map_to_leg_facts() {
        let hangup = CallEvent::decode(
            br#"{"data":{"id":"e","event_type":"call.hangup","occurred_at":"2025-11-23T03:30:30Z","payload":{"call_control_id":"v3:x","call_session_id":"s","hangup_cause":"normal_clearing","hangup_source":"caller"}}}"#,
        )
        .unwrap();
        let update = leg_update(&hangup).unwrap();
        assert_eq!(update.hangup_cause.as_deref(), Some("normal_clearing"));
        assert!(update.ended_at.is_some() && update.answered_at.is_none());

        let speak = CallEvent::decode(
            br#"{"data":{"id":"e","event_type":"call.speak.ended","payload":{"call_control_id":"v3:x"}}}"#,
        )
        .unwrap();
        assert!(leg_update(&speak).is_none());
        let no_leg =
            CallEvent::decode(br#"{"data":{"id":"e","event_type":"call.answered","payload":{}}}"#).unwrap();
        assert!(leg_update(&no_leg).is_none());
    }
}
