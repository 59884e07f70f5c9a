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
use fleet_domain::call::{
    BillingKind, Call, CallDirection, CallLog, CallState, CallStatus, EndReason, LedgerEntry, Leg, LegState,
};
use fleet_domain::recording::{AudioFormat, Channels};
use fleet_store::{Recording, RecordingFailure, TranscriptStatus};
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::{IdPath, SessionPath};
use super::{ApiState, check_id, store_rejection};
use crate::error::{ErrorBody, Rejection};

/// One leg to a device.
#[derive(Serialize, ToSchema)]
#[schema(as = Leg)]
pub(super) struct LegView {
    device_id: String,
    /// from the dial response; null while dialing
    call_control_id: Option<String>,
    state: LegState,
    /// Telnyx hangup_cause
    hangup_cause: Option<String>,
}

/// A call as the API shows it (field names fixed by the routing contract).
#[derive(Serialize, ToSchema)]
#[schema(as = Call)]
pub(super) struct CallView {
    call_session_id: String,
    /// the organization of the number called (inbound) or of the placing device's credential
    /// (outbound, direct)
    org_id: String,
    user_id: Option<String>,
    /// outbound: placed by a device; `from` is the org number shown as caller id, `legs` is
    /// empty and `ringing` is the far end's. direct: a browser's own WebRTC call, followed (not
    /// routed) by callfleet; recorded when asked
    direction: CallDirection,
    from: String,
    to: String,
    state: CallState,
    /// null until the call ends (or stops ringing for good)
    end_reason: Option<EndReason>,
    /// outbound: the placing device, once the far end answered
    answered_by_device_id: Option<String>,
    started_at: DateTime<Utc>,
    /// null until it happens
    answered_at: Option<DateTime<Utc>>,
    /// null until it happens
    ended_at: Option<DateTime<Utc>>,
    legs: Vec<LegView>,
    /// Copies of the call's recordings in the fleet's object store, with their transcripts.
    recordings: Vec<RecordingView>,
    /// Recordings Telnyx reported as failed (`call.recording.error`).
    recording_errors: Vec<RecordingErrorView>,
    /// The call log line and billing of an ended call (`null` until it is logged).
    log: Option<LogView>,
}

/// The call log line of an ended call, with its billing.
#[derive(Serialize, ToSchema)]
#[schema(as = CallLog)]
pub(super) struct LogView {
    status: CallStatus,
    /// connected time, rounded up to whole seconds
    duration_secs: u64,
    /// the phone that answered (inbound) or placed the call (outbound)
    device_id: Option<String>,
    billing: BillingView,
}

/// What the call is billed.
#[derive(Serialize, ToSchema)]
#[schema(as = Billing)]
pub(super) struct BillingView {
    kind: BillingKind,
    /// answer (or, for the AI agent, the transfer) to end, rounded up to the next second; 0 if
    /// never connected
    billable_secs: u64,
    /// billable_secs rounded up to whole minutes
    billed_minutes: u64,
}

fn log_view((log, entry): (CallLog, LedgerEntry)) -> LogView {
    LogView {
        status: log.status,
        duration_secs: log.duration_secs,
        device_id: log.device_id,
        billing: BillingView {
            kind: entry.kind,
            billable_secs: entry.billable_secs,
            billed_minutes: entry.billed_minutes,
        },
    }
}

/// A recording copied into the fleet's object store (checksummed), with its transcript. The
/// copy's place in the object store is not shown: it is the fleet's.
#[derive(Serialize, ToSchema)]
#[schema(as = Recording)]
pub(super) struct RecordingView {
    /// Telnyx recording_id
    recording_id: String,
    #[schema(value_type = AudioFormat)]
    format: String,
    /// dual: the caller on channel A, the other side on B
    #[schema(value_type = Channels)]
    channels: String,
    duration_ms: Option<i64>,
    size_bytes: i64,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    sha256: String,
    /// when Telnyx announced it (call.recording.saved)
    saved_at: DateTime<Utc>,
    stored_at: DateTime<Utc>,
    transcript_status: TranscriptStatus,
    transcript: Option<String>,
    /// why the transcription was refused
    transcript_error: Option<String>,
}

/// A recording Telnyx reported as failed.
#[derive(Serialize, ToSchema)]
#[schema(as = RecordingError)]
pub(super) struct RecordingErrorView {
    /// Telnyx's reason (call.recording.error)
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
        state: leg.state,
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
            direction: call.direction,
            from: call.from,
            to: call.to,
            state: call.state,
            end_reason: call.end_reason,
            started_at: call.started_at,
            answered_at: call.answered_at,
            ended_at: call.ended_at,
        }
    }
}

/// Status of a call by its Telnyx call_session_id: the polling dismissal channel (was it
/// answered elsewhere?)
#[utoipa::path(get, path = "/v1/calls/{call_session_id}", operation_id = "get_call", params(SessionPath), responses(
    (status = 200, description = "The call", body = CallView),
    (status = 404, description = "call_not_found", body = ErrorBody),
))]
pub(super) async fn call_status(
    State(state): State<ApiState>,
    Path(SessionPath { call_session_id: id }): Path<SessionPath>,
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

/// The user's newest call that has not ended (ringing, answered, voicemail, AI agent)
///
/// An unknown user has none either (404 `no_active_call`).
#[utoipa::path(get, path = "/v1/users/{id}/active-call", operation_id = "get_active_call", params(IdPath), responses(
    (status = 200, description = "The live call", body = CallView),
    (status = 404, description = "no_active_call (also for an unknown user)", body = ErrorBody),
))]
pub(super) async fn active_call(
    State(state): State<ApiState>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<CallView>, Rejection> {
    check_id("user id", &id)?;
    let call = state.store.live_call_of_user(&id).await.map_err(store_rejection)?.ok_or_else(|| {
        Rejection::new(StatusCode::NOT_FOUND, "no_active_call", "the user has no call in progress")
    })?;
    view(&state, call).await
}
