//! Control API of the push simulator, under `/sim/push/` (JSON in and out, never recorded in the
//! request log). For the standalone simulator's control surface and its OpenAPI document.
//!
//! | method and path | body / query | answer |
//! | --- | --- | --- |
//! | `PUT /sim/push/scripts/{provider}/{token}` | a `Script` (`{"steps":[…],"then":…,"latency_ms":…}`) | 204 |
//! | `DELETE /sim/push/scripts/{provider}/{token}` | | 204 |
//! | `GET /sim/push/requests` | `?provider=fcm\|apns&token=…` (both optional) | `[RecordedRequest]` |
//! | `GET /sim/push/delivered/{token}` | | `[DeliveredPush]` |
//! | `PUT /sim/push/latency` | `{"latency_ms":50}` | 204 |
//! | `POST /sim/push/reset` | | 204 |
//! | `POST /sim/push/revoke-access-tokens` | | 204 |
//! | `GET /sim/push/service-account` | `?token_uri_base=http://…` (default `http://{Host}`) | service-account JSON |
//! | `GET /sim/push/apns-key` | | `{"key_id","team_id","private_key_pem"}` |
//!
//! `{provider}` is `fcm` or `apns`; an unknown one, or a body that is not a valid script, gets
//! axum's 400/422 rejection and changes nothing.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use super::record::RecordedRequest;
use super::script::Script;
use super::{Provider, PushSim};

/// The control routes, ready to merge into the simulator's router.
pub fn control_router(sim: PushSim) -> Router {
    Router::new()
        .route("/sim/push/scripts/{provider}/{token}", put(set_script).delete(clear_script))
        .route("/sim/push/requests", get(requests))
        .route("/sim/push/delivered/{token}", get(delivered))
        .route("/sim/push/latency", put(set_latency))
        .route("/sim/push/reset", post(reset))
        .route("/sim/push/revoke-access-tokens", post(revoke))
        .route("/sim/push/service-account", get(service_account))
        .route("/sim/push/apns-key", get(apns_key))
        .with_state(sim)
}

async fn set_script(
    State(sim): State<PushSim>,
    Path((provider, token)): Path<(Provider, String)>,
    Json(script): Json<Script>,
) -> StatusCode {
    sim.script(provider, &token, script);
    StatusCode::NO_CONTENT
}

async fn clear_script(
    State(sim): State<PushSim>,
    Path((provider, token)): Path<(Provider, String)>,
) -> StatusCode {
    sim.clear_script(provider, &token);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct RequestFilter {
    provider: Option<Provider>,
    token: Option<String>,
}

async fn requests(State(sim): State<PushSim>, Query(f): Query<RequestFilter>) -> Json<Vec<RecordedRequest>> {
    let mut log = sim.requests();
    log.retain(|r| {
        f.provider.is_none_or(|p| p == r.provider)
            && f.token.as_ref().is_none_or(|t| r.token.as_ref() == Some(t))
    });
    Json(log)
}

async fn delivered(State(sim): State<PushSim>, Path(token): Path<String>) -> Response {
    Json(sim.delivered(&token)).into_response()
}

#[derive(Deserialize)]
struct Latency {
    latency_ms: u64,
}

async fn set_latency(State(sim): State<PushSim>, Json(l): Json<Latency>) -> StatusCode {
    sim.set_default_latency(Duration::from_millis(l.latency_ms));
    StatusCode::NO_CONTENT
}

async fn reset(State(sim): State<PushSim>) -> StatusCode {
    sim.reset();
    StatusCode::NO_CONTENT
}

async fn revoke(State(sim): State<PushSim>) -> StatusCode {
    sim.revoke_access_tokens();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct TokenUriBase {
    token_uri_base: Option<String>,
}

async fn service_account(
    State(sim): State<PushSim>,
    headers: HeaderMap,
    Query(q): Query<TokenUriBase>,
) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let base = q.token_uri_base.unwrap_or_else(|| format!("http://{host}"));
    // Make the RSA key off the async threads the first time.
    sim.inner.rsa_async().await;
    ([(header::CONTENT_TYPE, "application/json")], sim.service_account_json(&base)).into_response()
}

async fn apns_key(State(sim): State<PushSim>) -> Response {
    Json(sim.apns_key()).into_response()
}
