//! The app API under `/v1`: organizations, users, devices, device login tokens, and its OpenAPI
//! document — served by the ingress role's router (so `callfleet ingress` and `callfleet run`
//! expose it).
//!
//! Every route requires `Authorization: Bearer <CALLFLEET_API_TOKEN>` (compared in constant time);
//! with no token configured the API refuses everything (401 `api_disabled`). Upserts are idempotent
//! with ids chosen by the app (`201` when created, `200` when updated). Bad input is refused with
//! `{"error": <reason>, "detail": …}` before the store is touched, so nothing changes.
//!
//! Credentials: registering a device enqueues provisioning on the `credentials` pool (the response
//! shows `credential.status = provisioning`); no response ever carries a SIP password — devices log
//! in with `POST /v1/devices/{id}/token`, a short-lived Telnyx JWT. This is the one place the
//! ingress calls Telnyx (with the client's timeouts); webhooks never do.

mod auth;
mod devices;
mod openapi;
mod orgs;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use fleet_platform::Secret;
use fleet_store::{Store, StoreError};
use fleet_telnyx::TelnyxClient;

use crate::error::Rejection;

/// State of the API handlers.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) token: Option<Secret>,
    pub(crate) telnyx: Option<TelnyxClient>,
}

impl ApiState {
    pub fn new(store: Arc<dyn Store>, token: Option<Secret>, telnyx: Option<TelnyxClient>) -> Self {
        Self { store, token, telnyx }
    }
}

/// The `/v1` routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/openapi.json", get(openapi::document))
        .route("/v1/organizations/{id}", put(orgs::put_org))
        .route("/v1/users/{id}", put(orgs::put_user))
        .route("/v1/devices/{id}", put(devices::put).get(devices::get).delete(devices::delete))
        .route("/v1/devices/{id}/token", post(devices::token))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        .with_state(state)
}

/// The detail of every 503 `store_unavailable`: never the database's own text.
pub(crate) const STORE_UNAVAILABLE: &str = "the store cannot be reached right now; retry";

/// Store failures as answers: unavailable → 503, invalid reference → 422, else 500.
pub(crate) fn store_rejection(e: StoreError) -> Rejection {
    match e {
        StoreError::Unavailable(cause) => {
            tracing::warn!(error = %cause, "API store unavailable.");
            Rejection::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", STORE_UNAVAILABLE)
        }
        StoreError::Invalid(d) => Rejection::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_reference", d),
        other => {
            tracing::error!(error = %other, "API store error.");
            Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "the store failed")
        }
    }
}

/// App-chosen ids: 1 to 128 of `A-Z a-z 0-9 . _ : -`.
pub(crate) fn check_id(what: &'static str, id: &str) -> Result<(), Rejection> {
    let ok = (1..=128).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("{what} must be 1-128 of A-Z a-z 0-9 . _ : -"),
        ))
    }
}

/// Parses a JSON body strictly (unknown fields refused).
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Rejection> {
    serde_json::from_slice(body)
        .map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()))
}
