//! Direct WebRTC calls: a browser's own leg straight to the PSTN (not placed through callfleet),
//! which callfleet follows, logs, and records when the browser asks.
//!
//! **Following.** Its `call.initiated` is an `outgoing` leg without our `client_state` on a
//! session we have no call for (our ring legs and our outbound far ends carry our sealed state,
//! so they never look like this). Its org comes from the browser's request to record it, if
//! that came first, else from its `from`: a SIP user of our credentials (org, user and device),
//! or one of our numbers. A leg we cannot place in an org is none of ours and is ignored. The
//! call is stored like any other (direction `direct`, [`Route::Direct`]): its answer and hangup
//! are inputs of the machine, which issues no Telnyx command for it and ends it with a call log
//! and ledger entry. Events of the leg that were processed before its `call.initiated` (Telnyx
//! does not promise order) are caught up from the leg record (`call_legs`) when it is stored; one
//! processed at the same moment, which the call's catch-up could not see yet, catches it up
//! itself once its leg fact is committed ([`after_leg_fact`]): of two such jobs, the one that
//! commits last sees the other's write.
//!
//! **Recording** (`record_direct_call.v1`, from the `recording_requests` row the API wrote): the
//! job checks that the call still lives (its leg record shows no hangup), then sends
//! `record_start` with a `command_id` derived from the call, so every attempt and the nudge sent
//! on the call's answer are one command to Telnyx. Telnyx's "not answered yet" is retried with
//! the job's persisted backoff; an ended or unknown call settles the request `ended` (never a
//! recording past the call's end); a refusal settles it `failed` and dead-letters the job for
//! an operator.

use fleet_domain::call::{Call, CallDirection, CallInput, CallSetup, Route, VoicemailSettings};
use fleet_domain::event::CallEvent;
use fleet_domain::recording::{AudioFormat, Channels};
use fleet_domain::retry::Failure;
use fleet_store::parties::{Party, party};
use fleet_store::{NewJob, RecordingRequest, RequestStatus};
use fleet_telnyx::call_control::{CommandId, Outcome, RecordChannels, RecordFormat, RecordStart};

use super::{apply, routing::store_routed};
use crate::{JobError, Runtime};

/// Stores a direct call on its `call.initiated`; `false` when the leg is none of ours.
pub(super) async fn follow(
    runtime: &Runtime,
    event: &CallEvent,
    session: &str,
    ccid: &str,
) -> Result<bool, JobError> {
    let store = &runtime.store;
    let p = &event.payload;
    let (from, to) = (p.from.clone().unwrap_or_default(), p.to.clone().unwrap_or_default());
    let party = match store.recording_request(ccid).await? {
        Some(r) => Some(Party { org_id: r.org_id, user_id: r.user_id, device_id: r.device_id }),
        None => party(store.as_ref(), &from).await?,
    };
    let Some(party) = party else {
        tracing::debug!("Outgoing leg of no call and no party of ours; ignored.");
        return Ok(false);
    };
    let org = store.organization(&party.org_id).await?.unwrap_or_default();
    let now = store.now();
    let call = Call::new(
        CallSetup {
            id: session.to_owned(),
            direction: CallDirection::Direct,
            placed_by: party.device_id,
            org_id: party.org_id,
            user_id: party.user_id,
            parent_call_control_id: ccid.to_owned(),
            from,
            to,
            caller_name: None,
            org_name: org.name,
            voicemail: VoicemailSettings::default(),
        },
        event.occurred_at.unwrap_or(now),
    );
    store_routed(runtime, call, Route::Direct, now).await?;
    catch_up(runtime, session, ccid).await?;
    Ok(true)
}

/// Feeds the call what its leg record learned from events processed before its
/// `call.initiated` (idempotent: a repeat changes nothing, so a re-run of that event, after a
/// crash between storing the call and this, runs it again).
pub(super) async fn catch_up(runtime: &Runtime, session: &str, ccid: &str) -> Result<(), JobError> {
    if let Some(leg) = runtime.store.call_leg(ccid).await? {
        if leg.answered_at.is_some() {
            apply(runtime, session, &CallInput::FarEndAnswered).await?;
        }
        if leg.ended_at.is_some() {
            let cause = leg.hangup_cause.unwrap_or_else(|| "unspecified".into());
            apply(runtime, session, &CallInput::ParentHangup { cause }).await?;
        }
    }
    Ok(())
}

/// An event of a leg that found no call of ours, after its leg fact was committed: if a direct
/// call was stored for its leg meanwhile (its `call.initiated` ran at the same moment and read the
/// leg record before this fact was in it), the call catches up now.
pub async fn after_leg_fact(runtime: &Runtime, event: &CallEvent) -> Result<(), JobError> {
    let p = &event.payload;
    let (Some(session), Some(ccid)) = (p.call_session_id.as_deref(), p.call_control_id.as_deref()) else {
        return Ok(());
    };
    let Some(call) = runtime.store.call(session).await? else { return Ok(()) };
    if call.direction == CallDirection::Direct && call.parent_call_control_id == ccid {
        tracing::info!("A direct call's event raced its call.initiated; catching the call up.");
        catch_up(runtime, session, ccid).await?;
    }
    Ok(())
}

/// The direct call's answer: start its requested recording now rather than at the next retry.
pub(super) async fn answered(runtime: &Runtime, session: &str, ccid: &str) -> Result<(), JobError> {
    let pending =
        runtime.store.recording_request(ccid).await?.is_some_and(|r| r.status == RequestStatus::Pending);
    if pending {
        let nudge = fleet_jobs::direct_recording_envelope(ccid, Some(session), Some("answered"));
        runtime.store.enqueue(&[NewJob::once(nudge)]).await?;
    }
    Ok(())
}

/// `record_direct_call.v1`: see the module header.
pub async fn record(runtime: &Runtime, ccid: &str) -> Result<(), JobError> {
    let store = &runtime.store;
    let Some(request) = store.recording_request(ccid).await? else {
        return Err(JobError::permanent(format!("no recording request for {ccid}")));
    };
    if request.status != RequestStatus::Pending {
        return Ok(());
    }
    if store.call_leg(ccid).await?.is_some_and(|leg| leg.ended_at.is_some()) {
        return settle(runtime, &request, RequestStatus::Ended, "the call ended before it was answered")
            .await;
    }
    let telnyx = runtime.call_control()?;
    let record = RecordStart::new(
        record_format(&request)?,
        record_channels(&request)?,
        CommandId::derive(&format!("direct:{ccid}:record")),
    );
    let e = match telnyx.record_start(ccid, &record).await {
        Ok(_) => {
            tracing::info!(format = %request.format, channels = %request.channels, "Direct call's recording started.");
            return settle(runtime, &request, RequestStatus::Started, "record_start accepted").await;
        }
        Err(e) => e,
    };
    match e.outcome() {
        Outcome::NotYetAnswered => Err(JobError::retryable("the call is not answered yet")),
        Outcome::Wait { retry_after } => {
            Err(JobError { failure: Failure::Retryable { retry_after }, message: e.to_string() })
        }
        Outcome::Gone | Outcome::Done => {
            settle(runtime, &request, RequestStatus::Ended, "the call ended before it was answered").await
        }
        Outcome::AlreadyBridged | Outcome::Permanent => {
            let why = format!("Telnyx refused record_start: {e}");
            settle(runtime, &request, RequestStatus::Failed, &why).await?;
            Err(JobError::permanent(why))
        }
    }
}

async fn settle(
    runtime: &Runtime,
    request: &RecordingRequest,
    status: RequestStatus,
    detail: &str,
) -> Result<(), JobError> {
    if runtime.store.settle_recording_request(&request.call_control_id, status, Some(detail)).await? {
        tracing::info!(status = status.as_str(), detail, "Recording request settled.");
        metrics::counter!("callfleet_direct_recordings_total", "status" => status.as_str()).increment(1);
    }
    Ok(())
}

/// The request's format as Telnyx names it (the API stored a value `AudioFormat` parses).
fn record_format(request: &RecordingRequest) -> Result<RecordFormat, JobError> {
    match AudioFormat::parse(&request.format) {
        Some(AudioFormat::Mp3) => Ok(RecordFormat::Mp3),
        Some(AudioFormat::Wav) => Ok(RecordFormat::Wav),
        None => {
            Err(JobError::permanent(format!("stored request has an unknown format {:?}", request.format)))
        }
    }
}

fn record_channels(request: &RecordingRequest) -> Result<RecordChannels, JobError> {
    match Channels::parse(&request.channels) {
        Some(Channels::Single) => Ok(RecordChannels::Single),
        Some(Channels::Dual) => Ok(RecordChannels::Dual),
        None => {
            Err(JobError::permanent(format!("stored request has unknown channels {:?}", request.channels)))
        }
    }
}
