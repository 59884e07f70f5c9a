//! The control API under `/sim`: scenarios, clock, faults, delivery knobs and the logs, over HTTP, for the
//! standalone `callfleet sim` (the library exposes the same operations on `SimHandle`). Documented by the
//! OpenAPI document served at `/sim/openapi.json` (see `openapi.rs`). The routes the call races need
//! (API latency, device behaviours, pushes, timeline, app events) are in `races.rs`.
//!
//! Errors are `{"error": "<message>"}` with 400 (bad body), 404 (unknown device/call/number), 409 (duplicate
//! device, wrong clock mode, invalid step). No authentication: the simulator is a local test tool.

mod openapi;
mod races;

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::SimHandle;
use crate::config::DeliveryKnobs;
use crate::error::SimError;
use crate::observer::DeliveredPush;
use crate::scenario::{CallerScript, DeviceScript, Fault, RingBehaviour};

type S = State<SimHandle>;

pub(crate) fn router(handle: SimHandle) -> Router {
    Router::new()
        .route("/sim/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/sim/info", get(info))
        .route("/sim/clock/advance", post(advance))
        .route("/sim/settle", post(settle))
        .route("/sim/numbers", post(add_number))
        .route("/sim/pstn", post(set_pstn))
        .route("/sim/devices", post(add_device))
        .route("/sim/devices/{id}/online", post(device_online))
        .route("/sim/devices/{id}/offline", post(device_offline))
        .route("/sim/calls", post(place_call).get(calls))
        .route("/sim/calls/{id}", get(call))
        .route("/sim/calls/{id}/hangup", post(remote_hangup))
        .route("/sim/calls/{id}/answer", post(remote_answer))
        .route("/sim/credentials", get(credentials))
        .route("/sim/push-delivered", post(push_delivered))
        .route("/sim/faults", post(add_fault).get(faults).delete(clear_faults))
        .route("/sim/delivery", put(set_delivery).get(delivery))
        .route("/sim/requests", get(requests))
        .route("/sim/webhooks", get(webhooks))
        .route("/sim/anomalies", get(anomalies))
        .route("/sim/logs", axum::routing::delete(clear_logs))
        .merge(races::routes())
        .with_state(handle)
}

fn err(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": msg.to_string() }))).into_response()
}

fn sim_err(e: SimError) -> Response {
    let status = match e {
        SimError::UnknownDevice(_) | SimError::UnknownCall(_) | SimError::UnknownNumber(_) => {
            StatusCode::NOT_FOUND
        }
        _ => StatusCode::CONFLICT,
    };
    err(status, e)
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, Box<Response>> {
    b.map(|Json(v)| v).map_err(|e| Box::new(err(StatusCode::BAD_REQUEST, e.body_text())))
}

fn done(r: Result<(), SimError>) -> Response {
    match r {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => sim_err(e),
    }
}

async fn info(State(h): S) -> Response {
    Json(json!({
        "base_url": h.base_url(),
        "telnyx_api_base": h.telnyx_api_base(),
        "public_key": h.public_key_base64(),
        "now_ms": h.now().as_millis() as u64,
        "now_utc": crate::ids::micros(h.now_utc()),
        "clock": h.config().clock,
        "seed": h.config().seed,
        "webhook_url": h.config().webhook_url,
        "failover_url": h.config().failover_url,
        "events_url": h.events_url(),
        "events_secret": h.events_secret(),
        "api_latency_ms": h.api_latency().as_millis() as u64,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct Advance {
    ms: u64,
}

async fn advance(State(h): S, b: Result<Json<Advance>, JsonRejection>) -> Response {
    let a = match body(b) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    match h.advance(Duration::from_millis(a.ms)).await {
        Ok(()) => Json(json!({ "now_ms": h.now().as_millis() as u64 })).into_response(),
        Err(e) => sim_err(e),
    }
}

async fn settle(State(h): S) -> Response {
    h.settle().await;
    Json(json!({ "now_ms": h.now().as_millis() as u64 })).into_response()
}

#[derive(Deserialize)]
struct Number {
    number: String,
    connection_id: Option<String>,
}

async fn add_number(State(h): S, b: Result<Json<Number>, JsonRejection>) -> Response {
    match body(b) {
        Ok(Number { number, connection_id: Some(c) }) => h.add_number_on(&number, &c),
        Ok(Number { number, connection_id: None }) => h.add_number(&number),
        Err(r) => return *r,
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct Pstn {
    number: String,
    behaviour: RingBehaviour,
}

async fn set_pstn(State(h): S, b: Result<Json<Pstn>, JsonRejection>) -> Response {
    match body(b) {
        Ok(p) => h.set_pstn_behaviour(&p.number, p.behaviour),
        Err(r) => return *r,
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn add_device(State(h): S, b: Result<Json<DeviceScript>, JsonRejection>) -> Response {
    match body(b) {
        Ok(d) => match h.add_device(d) {
            Ok(()) => StatusCode::CREATED.into_response(),
            Err(e) => sim_err(e),
        },
        Err(r) => *r,
    }
}

async fn device_online(State(h): S, Path(id): Path<String>) -> Response {
    done(h.set_device_online(&id, true))
}

async fn device_offline(State(h): S, Path(id): Path<String>) -> Response {
    done(h.set_device_online(&id, false))
}

async fn place_call(State(h): S, b: Result<Json<CallerScript>, JsonRejection>) -> Response {
    match body(b) {
        Ok(c) => match h.place_call(c) {
            Ok(p) => (StatusCode::CREATED, Json(p)).into_response(),
            Err(e) => sim_err(e),
        },
        Err(r) => *r,
    }
}

async fn calls(State(h): S) -> Response {
    Json(h.calls()).into_response()
}

async fn call(State(h): S, Path(id): Path<String>) -> Response {
    match h.call(&id) {
        Some(c) => Json(c).into_response(),
        None => sim_err(SimError::UnknownCall(id)),
    }
}

async fn remote_hangup(State(h): S, Path(id): Path<String>) -> Response {
    done(h.remote_hangup(&id))
}

async fn remote_answer(State(h): S, Path(id): Path<String>) -> Response {
    done(h.remote_answer(&id))
}

async fn credentials(State(h): S) -> Response {
    Json(h.credentials()).into_response()
}

async fn push_delivered(State(h): S, b: Result<Json<DeliveredPush>, JsonRejection>) -> Response {
    match body(b) {
        Ok(p) => h.push_delivered(p),
        Err(r) => return *r,
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn add_fault(State(h): S, b: Result<Json<Fault>, JsonRejection>) -> Response {
    match body(b) {
        Ok(f) => (StatusCode::CREATED, Json(json!({ "id": h.inject(f) }))).into_response(),
        Err(r) => *r,
    }
}

async fn faults(State(h): S) -> Response {
    let list: Vec<_> = h
        .faults()
        .into_iter()
        .map(|(id, f, left)| json!({"id": id, "fault": f, "remaining": left}))
        .collect();
    Json(list).into_response()
}

async fn clear_faults(State(h): S) -> Response {
    h.clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

async fn set_delivery(State(h): S, b: Result<Json<DeliveryKnobs>, JsonRejection>) -> Response {
    match body(b) {
        Ok(k) => h.set_delivery(k),
        Err(r) => return *r,
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn delivery(State(h): S) -> Response {
    Json(h.delivery()).into_response()
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

async fn requests(State(h): S, Query(s): Query<Since>) -> Response {
    let v: Vec<_> = h.requests().into_iter().filter(|r| r.seq > s.since).collect();
    Json(v).into_response()
}

async fn webhooks(State(h): S, Query(s): Query<Since>) -> Response {
    let v: Vec<_> = h.webhooks().into_iter().filter(|r| r.seq > s.since).collect();
    Json(v).into_response()
}

async fn anomalies(State(h): S) -> Response {
    Json(h.anomalies()).into_response()
}

async fn clear_logs(State(h): S) -> Response {
    h.clear_logs();
    StatusCode::NO_CONTENT.into_response()
}
