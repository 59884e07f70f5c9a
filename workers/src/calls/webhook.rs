//! A Telnyx event as an input of its call.
//!
//! Which leg an event is about is decided from facts Telnyx cannot be tricked into: our own
//! `client_state`, authenticated with a MAC under the fleet's key and naming the call, its org
//! and the leg (a ring leg's webhooks carry it from its very first event, even before the dial
//! response told us its `call_control_id`; the far end of a device's outbound call carries it
//! as the `outbound` kind), or the parent's `call_control_id` stored with the call. A
//! `client_state` that fails the MAC (forged by a WebRTC client, another system's, or
//! corrupted) is foreign: such an event changes nothing, and says so in the log. So does ours
//! when it names another call or another org than the call of the event's session.

use fleet_domain::call::{CallDirection, CallInput, LegId};
use fleet_domain::client_state::{ClientStateField, LegKind};
use fleet_domain::event::{CallEvent, Direction, EventKind};

use super::{apply, direct, outbound, routing};
use crate::{JobError, Runtime};

/// Applies one decoded event (its `client_state` already opened with the fleet's key). Returns
/// whether it concerned a call of ours.
pub async fn handle(runtime: &Runtime, event: &CallEvent) -> Result<bool, JobError> {
    let p = &event.payload;
    let (Some(session), Some(ccid)) = (p.call_session_id.as_deref(), p.call_control_id.as_deref()) else {
        return Ok(false);
    };
    match &event.client_state {
        ClientStateField::Ours(state) if matches!(state.kind, LegKind::Ring | LegKind::Outbound) => {
            let Some(call) = runtime.store.call(session).await? else { return Ok(false) };
            if state.call != call.id || state.org.as_deref() != Some(call.org_id.as_str()) {
                tracing::warn!(ccid, "Leg state names another call or org than its session; ignored.");
                return Ok(false);
            }
            let input = match (state.kind, state.leg.as_deref().and_then(LegId::parse)) {
                (LegKind::Outbound, _) => far_end_input(event),
                (_, Some(leg)) => leg_input(event, leg, ccid),
                (_, None) => Some(CallInput::StrayLeg { call_control_id: ccid.to_owned() }),
            };
            if let Some(input) = input {
                apply(runtime, session, &input).await?;
            }
            Ok(true)
        }
        ClientStateField::Ours(_) => Ok(false),
        ClientStateField::Foreign(_)
            if runtime.store.call(session).await?.is_some_and(|c| c.parent_call_control_id != ccid) =>
        {
            tracing::warn!(ccid, event_type = ?event.kind, "Event with a client_state that is not ours; ignored.");
            metrics::counter!("callfleet_foreign_client_state_total").increment(1);
            Ok(false)
        }
        ClientStateField::Absent | ClientStateField::Foreign(_) => {
            parent_event(runtime, event, session, ccid).await
        }
    }
}

/// An event on a leg we dialed.
fn leg_input(event: &CallEvent, leg: LegId, ccid: &str) -> Option<CallInput> {
    let call_control_id = ccid.to_owned();
    Some(match event.kind {
        EventKind::CallInitiated => CallInput::LegInitiated { leg, call_control_id },
        EventKind::CallAnswered => CallInput::LegAnswered { leg, call_control_id },
        EventKind::CallHangup => CallInput::LegHangup {
            leg,
            call_control_id: Some(call_control_id),
            cause: event.payload.hangup_cause.clone().unwrap_or_else(|| "unspecified".into()),
        },
        EventKind::CallBridged => CallInput::Bridged,
        _ => return None,
    })
}

/// An event on the far end of an outbound call (the leg our `transfer` created).
fn far_end_input(event: &CallEvent) -> Option<CallInput> {
    Some(match event.kind {
        EventKind::CallAnswered => CallInput::FarEndAnswered,
        EventKind::CallBridged => CallInput::Bridged,
        EventKind::CallHangup => CallInput::FarEndHangup {
            cause: event.payload.hangup_cause.clone().unwrap_or_else(|| "unspecified".into()),
        },
        _ => return None,
    })
}

/// An event without our state: the parent leg of a call (the PSTN caller's, a device's, a
/// browser's direct call), or a new call.
async fn parent_event(
    runtime: &Runtime,
    event: &CallEvent,
    session: &str,
    ccid: &str,
) -> Result<bool, JobError> {
    let call = runtime.store.call(session).await?;
    let is_parent = call.as_ref().is_some_and(|c| c.parent_call_control_id == ccid);
    let direct_call = call.as_ref().is_some_and(|c| c.direction == CallDirection::Direct);
    let input = match event.kind {
        EventKind::CallInitiated
            if call.is_none() && event.payload.direction == Some(Direction::Incoming) =>
        {
            let connection = event.payload.connection_id.as_deref();
            if connection.is_some() && connection == runtime.credential_connection_id.as_deref() {
                outbound::place(runtime, event, session, ccid).await?;
            } else {
                routing::route_inbound(runtime, event, session, ccid).await?;
            }
            return Ok(true);
        }
        EventKind::CallInitiated
            if call.is_none() && event.payload.direction == Some(Direction::Outgoing) =>
        {
            return direct::follow(runtime, event, session, ccid).await;
        }
        _ if !is_parent => return Ok(false),
        EventKind::CallAnswered if direct_call => {
            direct::answered(runtime, session, ccid).await?;
            CallInput::FarEndAnswered
        }
        EventKind::CallInitiated if direct_call => {
            direct::catch_up(runtime, session, ccid).await?;
            return Ok(true);
        }
        EventKind::CallHangup => CallInput::ParentHangup {
            cause: event.payload.hangup_cause.clone().unwrap_or_else(|| "unspecified".into()),
        },
        EventKind::CallBridged => CallInput::Bridged,
        EventKind::CallSpeakEnded => CallInput::GreetingEnded,
        _ => return Ok(true),
    };
    apply(runtime, session, &input).await?;
    Ok(true)
}
