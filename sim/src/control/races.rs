//! Control routes for the call races (issue 10, item 5): API latency, per-call device behaviours,
//! the merged per-call timeline (JSON and HTML) and the app-event receiver. Same error shape as the
//! rest of the control API (`{"error": …}`).

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{S, body};
use crate::SimHandle;

pub(super) fn routes() -> Router<SimHandle> {
    Router::new().route("/sim/api-latency", get(api_latency).put(set_api_latency))
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
