//! `GET /v1/calls/{call_session_id}` and `GET /v1/users/{id}/active-call`: the call-status
//! polling channel (a phone whose push and SIP cancel were lost learns here that the call was
//! answered elsewhere) and the active-call registry.
//!
//! Both read the call row as the last committed transition left it; they never step the call.
//! Times are RFC 3339 in UTC, `null` until they happen.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use fleet_domain::call::{Call, Leg};
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
}

fn leg_view(leg: &Leg) -> LegView {
    LegView {
        device_id: leg.id.device_id.clone(),
        call_control_id: leg.call_control_id.clone(),
        state: leg.state.as_str(),
        hangup_cause: leg.hangup_cause.clone(),
    }
}

impl From<Call> for CallView {
    fn from(call: Call) -> Self {
        Self {
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
    Ok(Json(call.into()))
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
    Ok(Json(call.into()))
}
