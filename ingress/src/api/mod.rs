//! The app API under `/v1`: organizations, users, devices, device login tokens, numbers, blocked
//! callers, call status and each user's active call, and its OpenAPI document — served by the
//! ingress role's router (so `callfleet ingress` and `callfleet run` expose it).
//!
//! Every route but `GET /v1/openapi.json` requires `Authorization: Bearer <CALLFLEET_API_TOKEN>`
//! (compared in constant time); with no token configured the API refuses everything (401
//! `api_disabled`). The document is public: it describes the API, never its data. Upserts are
//! idempotent with ids chosen by the app (`201` when created, `200` when updated); deletes answer
//! `204` whether or not the thing existed.
//!
//! Bad input is refused before the store is touched, so nothing changes: `400` with a
//! machine-readable `{"error": <reason>, "detail": …}` for a malformed body (`invalid_body`), a bad
//! id (`invalid_id`) or a value a validator refuses (`invalid_field`, or the validator's own reason
//! such as `invalid_e164`, `invalid_timezone`, `ring_timeout_out_of_range`). `422
//! invalid_reference` is kept for references the store checks (an unknown organization, a user
//! not in it); the store checks them inside the write's transaction and rolls the write back.
//!
//! Credentials: registering a device enqueues provisioning on the `credentials` pool (the response
//! shows `credential.status = provisioning`); no response ever carries a SIP password — devices log
//! in with `POST /v1/devices/{id}/token`, a short-lived Telnyx JWT. This is the one place the
//! ingress calls Telnyx (with the client's timeouts), besides asking whether a call exists for a
//! recording request (`recording`); webhooks never do.

pub(crate) mod auth;
mod calls;
mod devices;
mod numbers;
mod openapi;
mod orgs;
mod recording;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use fleet_domain::routing::ValidationError;
use fleet_platform::Secret;
use fleet_store::{Store, StoreError};
use fleet_telnyx::TelnyxClient;
use fleet_telnyx::call_control::CallControl;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::Rejection;

/// State of the API handlers.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) token: Option<Secret>,
    pub(crate) telnyx: Option<TelnyxClient>,
    /// Asks Telnyx whether a call exists (a recording request for a call callfleet has not
    /// seen yet).
    pub(crate) call_control: Option<CallControl>,
}

impl ApiState {
    pub fn new(
        store: Arc<dyn Store>,
        token: Option<Secret>,
        telnyx: Option<TelnyxClient>,
        call_control: Option<CallControl>,
    ) -> Self {
        Self { store, token, telnyx, call_control }
    }
}

/// The routes anyone may call: the document.
fn public_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(openapi::document))
}

/// The routes behind the token. Each `routes!` group is one path: the router serves its
/// handlers' methods there, and the document describes them from their `#[utoipa::path]`.
fn token_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(orgs::put_org))
        .routes(routes!(numbers::block, numbers::unblock))
        .routes(routes!(orgs::put_user))
        .routes(routes!(calls::active_call))
        .routes(routes!(devices::put, devices::get, devices::delete))
        .routes(routes!(devices::token))
        .routes(routes!(numbers::put, numbers::get, numbers::delete))
        .routes(routes!(calls::call_status))
        .routes(routes!(recording::request))
}

/// The app API's OpenAPI document (`GET /v1/openapi.json`), from the routes the router serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut guarded = token_routes();
    openapi::guarded(guarded.get_openapi_mut());
    OpenApiRouter::with_openapi(openapi::base()).merge(public_routes()).merge(guarded).into_openapi()
}

/// Every `(method, path)` the API serves, methods in lower case as OpenAPI spells them.
pub fn routes() -> Vec<(String, String)> {
    let doc = serde_json::to_value(openapi()).unwrap_or_default();
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    paths
        .into_iter()
        .flat_map(|(path, ops)| {
            let methods =
                ["get", "put", "post", "delete", "patch"].into_iter().filter(move |m| ops.get(m).is_some());
            methods.map(move |m| (m.to_owned(), path.clone()))
        })
        .collect()
}

/// The `/v1` routes. The token check is a route layer: it runs only on matched routes, so an
/// unknown path is a 404 and a wrong method a 405, as for the rest of the ingress.
pub fn router(state: ApiState) -> Router {
    let guarded =
        token_routes().route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token));
    let (router, _) = public_routes().merge(guarded).split_for_parts();
    router.with_state(state)
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

/// A value a domain validator refused: 400 with the validator's reason (`invalid_e164`, …).
pub(crate) fn invalid(e: ValidationError) -> Rejection {
    Rejection::new(StatusCode::BAD_REQUEST, e.reason(), e.to_string())
}

/// A range-checked count of seconds from a signed JSON number.
pub(crate) fn secs(
    raw: i64,
    check: fn(u32) -> Result<(), ValidationError>,
    out: ValidationError,
) -> Result<u32, Rejection> {
    let secs = u32::try_from(raw).map_err(|_| invalid(out))?;
    check(secs).map_err(invalid)?;
    Ok(secs)
}

/// A field the API itself refuses: 400 `invalid_field`.
pub(crate) fn invalid_field(detail: impl Into<String>) -> Rejection {
    Rejection::new(StatusCode::BAD_REQUEST, "invalid_field", detail)
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

/// An optional string field of at most `max` characters.
pub(crate) fn bounded(what: &'static str, v: &Option<String>, max: usize) -> Result<(), Rejection> {
    match v {
        Some(s) if s.chars().count() > max => Err(invalid_field(format!("{what} is longer than {max}"))),
        _ => Ok(()),
    }
}
