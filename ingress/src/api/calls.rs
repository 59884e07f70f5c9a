//! `GET /v1/calls/{call_session_id}` and `GET /v1/users/{id}/active-call`: the call-status
//! polling channel (a phone whose push and SIP cancel were lost learns here that the call was
//! answered elsewhere) and the active-call registry.
//!
//! Both read the call row as the last committed transition left it; they never step the call.
//! Times are RFC 3339 in UTC, `null` until they happen. A call shows its recordings once their
//! copies are in the fleet's object store, with the transcript as it stands.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use fleet_domain::call::{Call, CallLog, LedgerEntry, Leg};
use fleet_store::{Recording, RecordingFailure, TranscriptStatus};
use serde::Serialize;

use super::{ApiState, check_id, store_rejection};
use crate::error::Rejection;

/// One leg to a device.
#[derive(Serialize)]
pub(super) struct LegView {
    device_id: String,
    call_control_id: Option<String>,
    state: &'static str,
    hangup_cause: Option<String>,
}

/// A call as the API shows it (field names fixed by the routing contract).
#[derive(Serialize)]
pub(super) struct CallView {
    call_session_id: String,
    org_id: String,
    user_id: Option<String>,
    direction: &'static str,
    from: String,
    to: String,
    state: &'static str,
    end_reason: Option<&'static str>,
    answered_by_device_id: Option<String>,
    started_at: DateTime<Utc>,
    answered_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    legs: Vec<LegView>,
    /// Copies of the call's recordings in the fleet's object store, with their transcripts.
    recordings: Vec<RecordingView>,
    /// Recordings Telnyx reported as failed (`call.recording.error`).
    recording_errors: Vec<RecordingErrorView>,
    /// The call log line and billing of an ended call (`null` until it is logged).
    log: Option<LogView>,
}

#[derive(Serialize)]
pub(super) struct LogView {
    status: &'static str,
    duration_secs: u64,
    device_id: Option<String>,
    billing: BillingView,
}

#[derive(Serialize)]
pub(super) struct BillingView {
    kind: &'static str,
    billable_secs: u64,
    billed_minutes: u64,
}

fn log_view((log, entry): (CallLog, LedgerEntry)) -> LogView {
    LogView {
        status: log.status.as_str(),
        duration_secs: log.duration_secs,
        device_id: log.device_id,
        billing: BillingView {
            kind: entry.kind.as_str(),
            billable_secs: entry.billable_secs,
            billed_minutes: entry.billed_minutes,
        },
    }
}

/// A stored recording (the copy's place in the object store is not shown: it is the fleet's).
#[derive(Serialize)]
pub(super) struct RecordingView {
    recording_id: String,
    format: String,
    channels: String,
    duration_ms: Option<i64>,
    size_bytes: i64,
    sha256: String,
    saved_at: DateTime<Utc>,
    stored_at: DateTime<Utc>,
    transcript_status: TranscriptStatus,
    transcript: Option<String>,
    transcript_error: Option<String>,
}

#[derive(Serialize)]
pub(super) struct RecordingErrorView {
    reason: String,
    failed_at: DateTime<Utc>,
}

fn recording_view(r: Recording) -> RecordingView {
    RecordingView {
        recording_id: r.id,
        format: r.format,
        channels: r.channels,
        duration_ms: r.duration_ms,
        size_bytes: r.size_bytes,
        sha256: r.sha256,
        saved_at: r.saved_at,
        stored_at: r.stored_at,
        transcript_status: r.transcript_status,
        transcript: r.transcript,
        transcript_error: r.transcript_error,
    }
}

fn leg_view(leg: &Leg) -> LegView {
    LegView {
        device_id: leg.id.device_id.clone(),
        call_control_id: leg.call_control_id.clone(),
        state: leg.state.as_str(),
        hangup_cause: leg.hangup_cause.clone(),
    }
}

impl CallView {
    fn new(
        call: Call,
        recordings: Vec<Recording>,
        failures: Vec<RecordingFailure>,
        log: Option<(CallLog, LedgerEntry)>,
    ) -> Self {
        Self {
            log: log.map(log_view),
            recordings: recordings.into_iter().map(recording_view).collect(),
            recording_errors: failures
                .into_iter()
                .map(|f| RecordingErrorView { reason: f.reason, failed_at: f.failed_at })
                .collect(),
            answered_by_device_id: call.answered_by_device_id().map(str::to_owned),
            legs: call.legs.iter().map(leg_view).collect(),
            call_session_id: call.id,
            org_id: call.org_id,
            user_id: call.user_id,
            direction: call.direction.as_str(),
            from: call.from,
            to: call.to,
            state: call.state.as_str(),
            end_reason: call.end_reason.map(|r| r.as_str()),
            started_at: call.started_at,
            answered_at: call.answered_at,
            ended_at: call.ended_at,
        }
    }
}

pub(super) async fn call_status(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<CallView>, Rejection> {
    check_id("call_session_id", &id)?;
    let call = state.store.call(&id).await.map_err(store_rejection)?.ok_or_else(|| {
        Rejection::new(StatusCode::NOT_FOUND, "call_not_found", "no call with this call_session_id")
    })?;
    view(&state, call).await
}

/// The call with its recordings.
async fn view(state: &ApiState, call: Call) -> Result<Json<CallView>, Rejection> {
    let recordings = state.store.call_recordings(&call.id).await.map_err(store_rejection)?;
    let failures = state.store.recording_failures(&call.id).await.map_err(store_rejection)?;
    let log = state.store.call_log(&call.id).await.map_err(store_rejection)?;
    Ok(Json(CallView::new(call, recordings, failures, log)))
}

/// The user's newest call that has not ended. An unknown user has none either (404 `no_active_call`).
pub(super) async fn active_call(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<CallView>, Rejection> {
    check_id("user id", &id)?;
    let call = state.store.live_call_of_user(&id).await.map_err(store_rejection)?.ok_or_else(|| {
        Rejection::new(StatusCode::NOT_FOUND, "no_active_call", "the user has no call in progress")
    })?;
    view(&state, call).await
}
