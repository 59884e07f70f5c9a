//! `POST /v1/calls/{call_control_id}/recording`: a browser asks callfleet to record its own
//! direct WebRTC call (one that did not go through callfleet's routing).
//!
//! Body `{"format": "mp3"|"wav", "channels": "dual"|"single", "from": …, "to": …}` (format and
//! channels default to `mp3` and `dual`). The request may come before callfleet has seen any
//! event of the call, or before the call is answered: it is kept (`recording_requests`, status
//! `pending`) together with the job that starts the recording (`record_direct_call.v1`, which
//! retries while Telnyx answers "not answered yet" and never past the call's end), in one
//! transaction, and answered `202`. A repeat for the same call answers `200` with the request as
//! it stands and changes nothing.
//!
//! Refusals change nothing: `400` for a malformed body or a bad value; `404 unknown_call` when
//! neither callfleet nor Telnyx knows the call; `409 call_ended` when it is over; `409
//! recorded_by_callfleet` for a call callfleet routed itself (those are recorded from their
//! answer anyway); `422 unknown_party` when `from` is none of our credentials or numbers (no
//! org to keep the recording in); `503 telnyx_unavailable` when Telnyx cannot say whether an
//! unknown call exists.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use fleet_domain::call::CallDirection;
use fleet_domain::recording::{AudioFormat, Channels};
use fleet_jobs::direct_recording_envelope;
use fleet_store::parties::{Party, party};
use fleet_store::{NewJob, RecordingRequest, RequestStatus};
use fleet_telnyx::call_control::Outcome;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::openapi::ControlPath;
use super::{ApiState, check_id, invalid_field, parse_body, store_rejection};
use crate::error::{ErrorBody, Rejection};

/// What to record, and who the call is between.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RecordingRequestBody)]
pub(super) struct RecordBody {
    #[serde(default)]
    #[schema(value_type = Option<AudioFormat>, default = json!(AudioFormat::Mp3))]
    format: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Channels>, default = json!(Channels::Dual))]
    channels: Option<String>,
    /// the caller: the browser's SIP user (sip:<user>@… or bare) or one of the org's numbers;
    /// names the org the recording is kept in
    #[schema(min_length = 1, max_length = 256)]
    from: String,
    #[schema(min_length = 1, max_length = 256)]
    to: String,
}

/// A recording request as the API shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = RecordingRequest)]
pub(super) struct RecordingRequestView {
    call_control_id: String,
    org_id: String,
    /// pending: waiting for the answer; started: Telnyx records (the copy shows on
    /// GET /v1/calls/{call_session_id}); ended: the call ended before it could be recorded;
    /// failed: Telnyx refused (detail)
    status: RequestStatus,
    #[schema(value_type = AudioFormat)]
    format: String,
    #[schema(value_type = Channels)]
    channels: String,
    detail: Option<String>,
    requested_at: DateTime<Utc>,
}

impl From<RecordingRequest> for RecordingRequestView {
    fn from(r: RecordingRequest) -> Self {
        Self {
            call_control_id: r.call_control_id,
            org_id: r.org_id,
            status: r.status,
            format: r.format,
            channels: r.channels,
            detail: r.detail,
            requested_at: r.requested_at,
        }
    }
}

/// An optional word the domain parses (`AudioFormat::parse`, `Channels::parse`), else `default`.
fn choice<T>(
    what: &str,
    raw: Option<&str>,
    parse: fn(&str) -> Option<T>,
    default: T,
    allowed: &str,
) -> Result<T, Rejection> {
    match raw {
        None => Ok(default),
        Some(raw) => {
            parse(raw).ok_or_else(|| invalid_field(format!("{what} must be {allowed}, not {raw:?}")))
        }
    }
}

fn party_field(what: &str, value: &str) -> Result<(), Rejection> {
    if value.is_empty() || value.chars().count() > 256 {
        return Err(invalid_field(format!("{what} must be 1 to 256 characters")));
    }
    Ok(())
}

fn refuse(status: StatusCode, reason: &'static str, detail: &str) -> Rejection {
    Rejection::new(status, reason, detail)
}

/// Record a direct WebRTC call (placed by a browser, not routed by callfleet) by its Telnyx
/// call_control_id.
///
/// May come before callfleet has seen the call or before it is answered: the recording starts
/// once Telnyx accepts it (retried while the call lives, never past its end), and goes through
/// the recordings pipeline like any other. A repeat answers 200 with the request as it stands.
#[utoipa::path(post, path = "/v1/calls/{call_control_id}/recording", operation_id = "request_recording", params(ControlPath),
    request_body = RecordBody, responses(
    (status = 200, description = "Already requested: the request as it stands", body = RecordingRequestView),
    (status = 202, description = "Requested: the recording starts once the call is answered", body = RecordingRequestView),
    (status = 404, description = "unknown_call: neither callfleet nor Telnyx knows the call", body = ErrorBody),
    (status = 409, description = "call_ended, or recorded_by_callfleet (a call callfleet routed is recorded from its answer)", body = ErrorBody),
    (status = 422, description = "unknown_party: from names none of callfleet's credentials or numbers", body = ErrorBody),
    (status = 503, description = "store_unavailable or telnyx_unavailable; retry", body = ErrorBody),
))]
pub(super) async fn request(
    State(state): State<ApiState>,
    Path(ControlPath { call_control_id: ccid }): Path<ControlPath>,
    body: Bytes,
) -> Result<(StatusCode, Json<RecordingRequestView>), Rejection> {
    check_id("call_control_id", &ccid)?;
    let body: RecordBody = parse_body(&body)?;
    let format =
        choice("format", body.format.as_deref(), AudioFormat::parse, AudioFormat::Mp3, "mp3 or wav")?;
    let channels =
        choice("channels", body.channels.as_deref(), Channels::parse, Channels::Dual, "dual or single")?;
    party_field("from", &body.from)?;
    party_field("to", &body.to)?;
    let store = &state.store;
    if let Some(existing) = store.recording_request(&ccid).await.map_err(store_rejection)? {
        return Ok((StatusCode::OK, Json(existing.into())));
    }
    let (session, known) = match store.call_leg(&ccid).await.map_err(store_rejection)? {
        Some(leg) if leg.ended_at.is_some() => {
            return Err(refuse(StatusCode::CONFLICT, "call_ended", "the call has ended"));
        }
        Some(leg) => match leg.call_session_id {
            Some(session) => {
                let call = store.call(&session).await.map_err(store_rejection)?;
                (Some(session), call)
            }
            None => (None, None),
        },
        None => (ask_telnyx(&state, &ccid).await?, None),
    };
    let party = match known {
        Some(call) if call.direction != CallDirection::Direct => {
            let detail = "callfleet routed this call and records it from its answer";
            return Err(refuse(StatusCode::CONFLICT, "recorded_by_callfleet", detail));
        }
        Some(call) => Some(Party { org_id: call.org_id, user_id: call.user_id, device_id: call.placed_by }),
        None => party(store.as_ref(), &body.from).await.map_err(store_rejection)?,
    };
    let Some(party) = party else {
        let detail = "from names none of callfleet's credentials or numbers";
        return Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, "unknown_party", detail));
    };
    let request = RecordingRequest {
        call_control_id: ccid.clone(),
        org_id: party.org_id,
        user_id: party.user_id,
        device_id: party.device_id,
        from: body.from,
        to: body.to,
        format: format.as_str().to_owned(),
        channels: channels.as_str().to_owned(),
        status: RequestStatus::Pending,
        detail: None,
        requested_at: store.now(),
        settled_at: None,
    };
    let job = NewJob::once(direct_recording_envelope(&ccid, session.as_deref(), None));
    let created = store.request_recording(&request, &[job]).await.map_err(store_rejection)?;
    let stored = match created {
        true => request,
        // Another request for the call committed in between: answer with it.
        false => store.recording_request(&ccid).await.map_err(store_rejection)?.unwrap_or(request),
    };
    let call_session_id = session.as_deref().unwrap_or_default();
    tracing::info!(org_id = %stored.org_id, call_session_id, created, "Direct call recording requested.");
    Ok((if created { StatusCode::ACCEPTED } else { StatusCode::OK }, Json(stored.into())))
}

/// A call callfleet has no event of yet: Telnyx says whether it exists and lives (and names
/// its session).
async fn ask_telnyx(state: &ApiState, ccid: &str) -> Result<Option<String>, Rejection> {
    let unavailable = |detail: &str| refuse(StatusCode::SERVICE_UNAVAILABLE, "telnyx_unavailable", detail);
    let telnyx =
        state.call_control.as_ref().ok_or_else(|| unavailable("TELNYX_API_KEY is not configured"))?;
    match telnyx.call_status(ccid).await {
        Ok(status) if status.is_alive => Ok(Some(status.call_session_id).filter(|s| !s.is_empty())),
        Ok(_) => Err(refuse(StatusCode::CONFLICT, "call_ended", "the call has ended")),
        Err(e) if matches!(e.outcome(), Outcome::Gone | Outcome::Done) => {
            Err(refuse(StatusCode::NOT_FOUND, "unknown_call", "no such call at Telnyx"))
        }
        Err(e) => {
            tracing::warn!(error = %e, "Telnyx could not say whether a call exists.");
            Err(unavailable("Telnyx could not say whether the call exists; retry"))
        }
    }
}
