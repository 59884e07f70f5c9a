//! Control routes for the call races (issue 10, item 5): API latency, per-call device behaviours,
//! the merged per-call timeline (JSON and HTML) and the app-event receiver. Same error shape as the
//! rest of the control API (`{"error": …}`).

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{S, Since, body, done};
use crate::SimHandle;
use crate::call_timeline::html;
use crate::scenario::DeviceBehaviour;

pub(super) fn routes() -> Router<SimHandle> {
    Router::new()
        .route("/sim/api-latency", get(api_latency).put(set_api_latency))
        .route("/sim/devices/{id}/behaviour", put(device_behaviour))
        .route("/sim/calls/{id}/devices/{device}/behaviour", put(call_device_behaviour))
        .route("/sim/pushes", get(pushes))
        .route("/sim/events", get(app_events).post(receive_app_event))
        .route("/sim/sessions", get(sessions))
        .route("/sim/calls/{id}/timeline", get(timeline))
        .route("/sim/timeline", get(timeline_index_page))
        .route("/sim/timeline/{id}", get(timeline_page))
}

async fn app_events(State(h): S, Query(s): Query<Since>) -> Response {
    let v: Vec<_> = h.app_events().into_iter().filter(|e| e.seq > s.since).collect();
    Json(v).into_response()
}

async fn receive_app_event(State(h): S, headers: axum::http::HeaderMap, body: axum::body::Bytes) -> Response {
    match h.receive_app_event(&headers, &body) {
        (status, None) => status.into_response(),
        (status, Some(why)) => super::err(status, why),
    }
}

async fn sessions(State(h): S) -> Response {
    Json(h.call_summaries()).into_response()
}

async fn timeline(State(h): S, Path(id): Path<String>) -> Response {
    match h.call_timeline(&id) {
        Some(t) => Json(t).into_response(),
        None => super::err(StatusCode::NOT_FOUND, format!("no call session {id}")),
    }
}

async fn timeline_index_page(State(h): S) -> Response {
    Html(html::index(&h.call_summaries())).into_response()
}

async fn timeline_page(State(h): S, Path(id): Path<String>) -> Response {
    match h.call_timeline(&id) {
        Some(t) => Html(html::call(&t)).into_response(),
        None => {
            let body = format!(
                "<!doctype html><p>No call session <code>{}</code>. <a href=\"/sim/timeline\">All calls</a></p>",
                html::escape(&id)
            );
            (StatusCode::NOT_FOUND, Html(body)).into_response()
        }
    }
}

async fn device_behaviour(
    State(h): S,
    Path(id): Path<String>,
    b: Result<Json<DeviceBehaviour>, JsonRejection>,
) -> Response {
    match body(b) {
        Ok(b) => done(h.set_device_behaviour(&id, b)),
        Err(r) => *r,
    }
}

async fn call_device_behaviour(
    State(h): S,
    Path((session, device)): Path<(String, String)>,
    b: Result<Json<DeviceBehaviour>, JsonRejection>,
) -> Response {
    match body(b) {
        Ok(b) => done(h.set_call_device_behaviour(&session, &device, b)),
        Err(r) => *r,
    }
}

async fn pushes(State(h): S, Query(s): Query<Since>) -> Response {
    let v: Vec<_> = h.pushes().into_iter().filter(|p| p.seq > s.since).collect();
    Json(v).into_response()
}

#[derive(Deserialize)]
struct Latency {
    ms: u64,
}

async fn api_latency(State(h): S) -> Response {
    Json(json!({ "ms": h.api_latency().as_millis() as u64 })).into_response()
}

async fn set_api_latency(State(h): S, b: Result<Json<Latency>, JsonRejection>) -> Response {
    match body(b) {
        Ok(l) => h.set_api_latency(Duration::from_millis(l.ms)),
        Err(r) => return *r,
    }
    StatusCode::NO_CONTENT.into_response()
}
