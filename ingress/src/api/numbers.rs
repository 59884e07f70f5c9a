//! `PUT|GET|DELETE /v1/numbers/{e164}` and `PUT|DELETE /v1/organizations/{id}/blocked-numbers/{e164}`.
//!
//! Numbers appear in paths as E.164 with a literal `+` (`%2B` works too: path segments are
//! percent-decoded). A number's routing is validated whole — E.164, IANA time zone, `HH:MM`
//! windows, ring timeout range — before the store is touched; its organization and user are
//! checked by the store in the write's transaction. The request body is parsed into wire types
//! of our own (strings for the enums), so an unknown `mode` or day gets its own reason rather
//! than a generic parse error. Deletes are idempotent: `204` whether or not the row existed.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use fleet_domain::routing::{
    DEFAULT_RING_TIMEOUT_SECS, Day, Mode, NumberConfig, OutsideHours, Schedule, ValidationError, Window,
    validate_e164, validate_number, validate_ring_timeout,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::openapi::{E164Path, OrgNumberPath};
use super::{ApiState, check_id, invalid, invalid_field, parse_body, secs, store_rejection};
use crate::error::{ErrorBody, Rejection};

/// Most opening windows one schedule may have.
const MAX_WINDOWS: usize = 64;

/// A number's routing. Enum words are read as strings first, so an unknown one gets its own
/// reason (`invalid_mode`, `invalid_day`, …) rather than `invalid_body`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NumberInput)]
pub(super) struct NumberBody {
    org_id: String,
    /// who receives the calls; null = nobody (voicemail). Must be a member of org_id
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Mode>, default = json!(Mode::default()))]
    mode: Option<String>,
    // Signed so that a negative or huge number gets the range error, not a parse error.
    #[serde(default)]
    #[schema(minimum = 5, maximum = 120, default = json!(DEFAULT_RING_TIMEOUT_SECS))]
    ring_timeout_secs: Option<i64>,
    #[serde(default)]
    schedule: Option<ScheduleBody>,
    /// where calls go outside the schedule
    #[serde(default)]
    #[schema(value_type = Option<OutsideHours>, default = json!(OutsideHours::default()))]
    outside_hours: Option<String>,
}

/// Opening hours; null = always open. A window whose end is before its start crosses
/// midnight; end may be 24:00.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Schedule)]
pub(super) struct ScheduleBody {
    /// IANA zone (invalid_timezone otherwise)
    #[schema(example = "America/Chicago")]
    timezone: String,
    #[schema(max_items = 64)]
    weekly: Vec<WindowBody>,
}

/// One weekly opening window.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Window)]
pub(super) struct WindowBody {
    #[schema(value_type = Vec<Day>, min_items = 1)]
    days: Vec<String>,
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$", example = "09:00")]
    start: String,
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$", example = "17:00")]
    end: String,
}

/// A number as the API shows it: its e164 and the stored routing.
#[derive(Serialize, ToSchema)]
#[schema(as = Number)]
pub(super) struct NumberView {
    e164: String,
    org_id: String,
    user_id: Option<String>,
    mode: Mode,
    ring_timeout_secs: u32,
    #[schema(value_type = Option<ScheduleBody>)]
    schedule: Option<Schedule>,
    outside_hours: OutsideHours,
}

impl NumberView {
    fn new(e164: String, c: NumberConfig) -> Self {
        let NumberConfig { org_id, user_id, mode, ring_timeout_secs, schedule, outside_hours } = c;
        Self { e164, org_id, user_id, mode, ring_timeout_secs, schedule, outside_hours }
    }
}

/// Our blocked-caller answer.
#[derive(Serialize, ToSchema)]
#[schema(as = BlockedNumber)]
pub(super) struct BlockedView {
    org_id: String,
    e164: String,
    /// always true
    blocked: bool,
}

fn not_found() -> Rejection {
    Rejection::new(StatusCode::NOT_FOUND, "number_not_found", "no number with this e164")
}

fn status(created: bool) -> StatusCode {
    if created { StatusCode::CREATED } else { StatusCode::OK }
}

/// A snake_case enum value, or 400 with `reason`.
fn word<T: DeserializeOwned>(raw: &str, reason: &'static str, allowed: &str) -> Result<T, Rejection> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned())).map_err(|_| {
        Rejection::new(StatusCode::BAD_REQUEST, reason, format!("{raw:?} is not one of {allowed}"))
    })
}

fn schedule(b: ScheduleBody) -> Result<Schedule, Rejection> {
    if b.weekly.len() > MAX_WINDOWS {
        return Err(invalid_field(format!("a schedule has at most {MAX_WINDOWS} windows")));
    }
    let weekly = b
        .weekly
        .into_iter()
        .map(|w| {
            let days = w
                .days
                .iter()
                .map(|d| word::<Day>(d, "invalid_day", "mon, tue, wed, thu, fri, sat, sun"))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Window { days, start: w.start, end: w.end })
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    Ok(Schedule { timezone: b.timezone, weekly })
}

fn config(b: NumberBody) -> Result<NumberConfig, Rejection> {
    check_id("org_id", &b.org_id)?;
    if let Some(u) = &b.user_id {
        check_id("user_id", u)?;
    }
    let mode = b
        .mode
        .as_deref()
        .map(|m| word::<Mode>(m, "invalid_mode", "ring, ai_agent, voicemail"))
        .transpose()?;
    let outside_hours = b
        .outside_hours
        .as_deref()
        .map(|o| word::<OutsideHours>(o, "invalid_outside_hours", "voicemail, ai_agent"))
        .transpose()?;
    let ring_timeout_secs = b
        .ring_timeout_secs
        .map(|s| secs(s, validate_ring_timeout, ValidationError::RingTimeoutOutOfRange))
        .transpose()?
        .unwrap_or(DEFAULT_RING_TIMEOUT_SECS);
    Ok(NumberConfig {
        org_id: b.org_id,
        user_id: b.user_id,
        mode: mode.unwrap_or_default(),
        ring_timeout_secs,
        schedule: b.schedule.map(schedule).transpose()?,
        outside_hours: outside_hours.unwrap_or_default(),
    })
}

/// Create or replace a number's routing (idempotent)
#[utoipa::path(put, path = "/v1/numbers/{e164}", operation_id = "put_number", params(E164Path), request_body = NumberBody, responses(
    (status = 200, description = "Updated", body = NumberView),
    (status = 201, description = "Created", body = NumberView),
    (status = 422, description = "invalid_reference: the organization does not exist, or the user is not a member of it", body = ErrorBody),
))]
pub(super) async fn put(
    State(state): State<ApiState>,
    Path(E164Path { e164 }): Path<E164Path>,
    body: Bytes,
) -> Result<(StatusCode, Json<NumberView>), Rejection> {
    validate_e164(&e164).map_err(invalid)?;
    let config = config(parse_body(&body)?)?;
    validate_number(&e164, &config).map_err(invalid)?;
    let created = state.store.put_number(&e164, &config).await.map_err(store_rejection)?;
    Ok((status(created), Json(NumberView::new(e164, config))))
}

/// A number's stored routing
#[utoipa::path(get, path = "/v1/numbers/{e164}", operation_id = "get_number", params(E164Path), responses(
    (status = 200, description = "The number", body = NumberView),
    (status = 404, description = "number_not_found", body = ErrorBody),
))]
pub(super) async fn get(
    State(state): State<ApiState>,
    Path(E164Path { e164 }): Path<E164Path>,
) -> Result<Json<NumberView>, Rejection> {
    validate_e164(&e164).map_err(invalid)?;
    let config = state.store.number(&e164).await.map_err(store_rejection)?.ok_or_else(not_found)?;
    Ok(Json(NumberView::new(e164, config)))
}

/// Remove a number: its calls are rejected as unknown from then on. Idempotent.
#[utoipa::path(delete, path = "/v1/numbers/{e164}", operation_id = "delete_number", params(E164Path), responses(
    (status = 204, description = "Gone (or never existed)"),
))]
pub(super) async fn delete(
    State(state): State<ApiState>,
    Path(E164Path { e164 }): Path<E164Path>,
) -> Result<StatusCode, Rejection> {
    validate_e164(&e164).map_err(invalid)?;
    state.store.delete_number(&e164).await.map_err(store_rejection)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The blocked-number PUT takes no fields: an empty body or `{}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

/// Block a caller for this organization: its calls are rejected (idempotent). Body: none or {}.
#[utoipa::path(put, path = "/v1/organizations/{id}/blocked-numbers/{e164}", operation_id = "block_number", params(OrgNumberPath), responses(
    (status = 200, description = "Already blocked", body = BlockedView),
    (status = 201, description = "Blocked", body = BlockedView),
    (status = 422, description = "invalid_reference: the organization does not exist", body = ErrorBody),
))]
pub(super) async fn block(
    State(state): State<ApiState>,
    Path(OrgNumberPath { id: org_id, e164 }): Path<OrgNumberPath>,
    body: Bytes,
) -> Result<(StatusCode, Json<BlockedView>), Rejection> {
    check_id("organization id", &org_id)?;
    validate_e164(&e164).map_err(invalid)?;
    if !body.trim_ascii().is_empty() {
        parse_body::<NoFields>(&body)?;
    }
    let created = state.store.block_number(&org_id, &e164).await.map_err(store_rejection)?;
    Ok((status(created), Json(BlockedView { org_id, e164, blocked: true })))
}

/// Unblock a caller. Idempotent.
#[utoipa::path(delete, path = "/v1/organizations/{id}/blocked-numbers/{e164}", operation_id = "unblock_number", params(OrgNumberPath), responses(
    (status = 204, description = "Not blocked (any more, or never was)"),
))]
pub(super) async fn unblock(
    State(state): State<ApiState>,
    Path(OrgNumberPath { id: org_id, e164 }): Path<OrgNumberPath>,
) -> Result<StatusCode, Rejection> {
    check_id("organization id", &org_id)?;
    validate_e164(&e164).map_err(invalid)?;
    state.store.unblock_number(&org_id, &e164).await.map_err(store_rejection)?;
    Ok(StatusCode::NO_CONTENT)
}
