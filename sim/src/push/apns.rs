//! `POST /3/device/{token}`: APNs (HTTP/2 or HTTP/1.1 on the same listener; the log records
//! which one the client used).
//!
//! Decided at arrival, first failure wins (reasons as in Apple's table, push.md):
//! 1. a repeated `authorization`/`apns-*` header → `400 DuplicateHeaders`;
//! 2. provider token (`apns_auth.rs`) → `403 Missing/Invalid/ExpiredProviderToken`, `429
//!    TooManyProviderTokenUpdates`;
//! 3. headers: `apns-push-type` known (`400 InvalidPushType`); `apns-topic` present (`400
//!    MissingTopic`) and ending in `.voip` when the push type is `voip` (`400 BadTopic`, the
//!    simulator's choice of reason); `apns-priority` 1, 5 or 10 (`400 BadPriority`);
//!    `apns-expiration` an integer ≥ 0 (`400 BadExpirationDate`); `apns-collapse-id` ≤ 64 bytes
//!    (`400 BadCollapseId`); `apns-id` a hyphenated UUID (`400 BadMessageId`);
//! 4. the device token is non-empty hex of even length (`400 BadDeviceToken`);
//! 5. payload: empty → `400 PayloadEmpty`; over 5120 bytes (voip) / 4096 (others) → `413
//!    PayloadTooLarge`; not a JSON object → `400 BadPayload` (simulator-specific reason);
//! 6. the token's script.
//!
//! Every answer carries `apns-id` (the request's, or a fresh deterministic UUID). Success: `200`
//! with an empty body. Errors: `{"reason":…}` plus `"timestamp"` (ms) for 410. Near misses:
//! `POST /3/device/` → `400 MissingDeviceToken`, another method → `405 MethodNotAllowed`, any
//! other `/3/…` path → `404 BadPath`.

use std::net::SocketAddr;

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::{Value, json};

use super::apns_auth::authenticate;
use super::record::{RecordedRequest, Reply, RequestKind, interesting_headers};
use super::script::Outcome;
use super::state::{Stamp, latency};
use super::{Provider, PushSim};

/// VoIP payload limit.
pub(crate) const MAX_VOIP_PAYLOAD: usize = 5120;
/// Limit for every other push type.
pub(crate) const MAX_PAYLOAD: usize = 4096;
const PUSH_TYPES: &[&str] = &[
    "alert",
    "background",
    "location",
    "voip",
    "complication",
    "fileprovider",
    "mdm",
    "liveactivity",
    "pushtotalk",
    "widgets",
    "controls",
];
const CHECKED_HEADERS: &[&str] = &[
    "authorization",
    "apns-push-type",
    "apns-topic",
    "apns-priority",
    "apns-expiration",
    "apns-collapse-id",
    "apns-id",
];

pub(super) fn routes() -> Router<PushSim> {
    Router::new()
        .route("/3/device/{token}", post(send).fallback(near_miss))
        .route("/3/device/", any(near_miss))
        .route("/3/device", any(near_miss))
        .route("/3/{*rest}", any(near_miss))
}

/// An APNs error answer (`status`, `reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rejection {
    status: u16,
    reason: String,
}

fn reject(status: u16, reason: &str) -> Rejection {
    Rejection { status, reason: reason.to_owned() }
}

/// Apple's reason for a scripted status.
fn canonical_reason(status: u16) -> &'static str {
    match status {
        400 => "BadDeviceToken",
        403 => "Forbidden",
        404 => "BadPath",
        405 => "MethodNotAllowed",
        410 => "Unregistered",
        413 => "PayloadTooLarge",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => "InternalServerError",
    }
}

/// The error a scripted outcome answers with (`None` for `Ok` and `Hang`).
fn scripted_rejection(outcome: &Outcome) -> Option<Rejection> {
    match outcome {
        Outcome::Ok | Outcome::Hang => None,
        Outcome::Unregistered => Some(reject(410, "Unregistered")),
        Outcome::BadDeviceToken => Some(reject(400, "BadDeviceToken")),
        Outcome::Status(s) | Outcome::RetryAfter(s, _) => Some(reject(*s, canonical_reason(*s))),
        Outcome::Reason(s, r) if r.is_empty() => Some(reject(*s, canonical_reason(*s))),
        Outcome::Reason(s, r) => Some(reject(*s, r)),
    }
}

fn error_response(r: &Rejection, apns_id: &str, retry_after: Option<u64>, now_ms: i64) -> Response {
    let body = if r.status == 410 {
        json!({"reason": r.reason, "timestamp": now_ms})
    } else {
        json!({"reason": r.reason})
    };
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(apns_id) {
        response.headers_mut().insert("apns-id", v);
    }
    if let Some(secs) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// Steps 3–5 of the module header.
fn validate_request(headers: &HeaderMap, token: &str, body: &[u8]) -> Result<Value, Rejection> {
    let push_type = header_str(headers, "apns-push-type");
    if push_type.is_some_and(|t| !PUSH_TYPES.contains(&t)) {
        return Err(reject(400, "InvalidPushType"));
    }
    let voip = push_type == Some("voip");
    match header_str(headers, "apns-topic") {
        None | Some("") => return Err(reject(400, "MissingTopic")),
        Some(t) if voip && !t.ends_with(".voip") => return Err(reject(400, "BadTopic")),
        Some(_) => {}
    }
    if header_str(headers, "apns-priority").is_some_and(|p| !["1", "5", "10"].contains(&p)) {
        return Err(reject(400, "BadPriority"));
    }
    if header_str(headers, "apns-expiration")
        .is_some_and(|e| e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(reject(400, "BadExpirationDate"));
    }
    if headers.get("apns-collapse-id").is_some_and(|c| c.len() > 64) {
        return Err(reject(400, "BadCollapseId"));
    }
    if header_str(headers, "apns-id").is_some_and(|id| id.len() != 36 || uuid::Uuid::parse_str(id).is_err()) {
        return Err(reject(400, "BadMessageId"));
    }
    if token.is_empty() || token.len() % 2 != 0 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(reject(400, "BadDeviceToken"));
    }
    if body.is_empty() {
        return Err(reject(400, "PayloadEmpty"));
    }
    if body.len() > if voip { MAX_VOIP_PAYLOAD } else { MAX_PAYLOAD } {
        return Err(reject(413, "PayloadTooLarge"));
    }
    match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(reject(400, "BadPayload")),
    }
}

enum Decision {
    Reject(Rejection),
    Scripted(Value, Outcome),
}

async fn send(
    State(sim): State<PushSim>,
    Path(token): Path<String>,
    version: Version,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = sim.inner.clock.now();
    let connection = connection.map(|Extension(ConnectInfo(addr))| addr);
    let (decision, delay, apns_id) = {
        let mut state = sim.inner.state();
        let apns_id = match header_str(&headers, "apns-id") {
            Some(id) if uuid::Uuid::parse_str(id).is_ok() => id.to_owned(),
            _ => uuid::Builder::from_random_bytes(fresh16(&state.fresh_bytes(sim.inner.seed)))
                .into_uuid()
                .hyphenated()
                .to_string(),
        };
        let checked = if CHECKED_HEADERS.iter().any(|h| headers.get_all(*h).iter().count() > 1) {
            Err(reject(400, "DuplicateHeaders"))
        } else {
            let auth = headers.get(header::AUTHORIZATION);
            authenticate(&sim.inner.apns_key, &mut state.provider_tokens, connection, auth, now.unix_ms)
                .map_err(|e| reject(e.status(), &e.to_string()))
                .and_then(|()| validate_request(&headers, &token, &body))
        };
        let (decision, delay) = match checked {
            Err(r) => (Decision::Reject(r), state.latency_for(Provider::Apns, Some(&token))),
            Ok(payload) => {
                let (outcome, delay) = state.next_outcome(Provider::Apns, &token);
                (Decision::Scripted(payload, outcome), delay)
            }
        };
        let reply = match &decision {
            Decision::Reject(r) => Reply {
                status: Some(r.status),
                reason: Some(r.reason.clone()),
                retry_after_secs: None,
                delivered: false,
                scripted: false,
            },
            Decision::Scripted(_, o) => Reply {
                status: o.status(Provider::Apns),
                reason: scripted_rejection(o).map(|r| r.reason),
                retry_after_secs: o.retry_after_secs(),
                delivered: *o == Outcome::Ok,
                scripted: true,
            },
        };
        let body_json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        state.record(record(
            now,
            Some(token.clone()),
            format!("/3/device/{token}"),
            version,
            &headers,
            body_json,
            reply,
        ));
        (decision, delay, apns_id)
    };

    match decision {
        Decision::Reject(r) => {
            latency(delay).await;
            error_response(&r, &apns_id, None, sim.inner.clock.unix_ms())
        }
        Decision::Scripted(_, Outcome::Hang) => std::future::pending().await,
        Decision::Scripted(payload, Outcome::Ok) => {
            let _ = sim.inner.deliver_after(delay, Provider::Apns, token, payload, apns_id.clone()).await;
            let mut response = Response::new(Body::empty());
            if let Ok(v) = HeaderValue::from_str(&apns_id) {
                response.headers_mut().insert("apns-id", v);
            }
            response
        }
        Decision::Scripted(_, outcome) => {
            latency(delay).await;
            let r = scripted_rejection(&outcome).unwrap_or_else(|| reject(500, "InternalServerError"));
            error_response(&r, &apns_id, outcome.retry_after_secs(), sim.inner.clock.unix_ms())
        }
    }
}

/// Wrong method, missing token or unknown path: recorded and answered like APNs.
async fn near_miss(
    State(sim): State<PushSim>,
    version: Version,
    uri: Uri,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = sim.inner.clock.now();
    let path = uri.path().to_owned();
    let r = if path.starts_with("/3/device") && method != axum::http::Method::POST {
        reject(405, "MethodNotAllowed")
    } else if path == "/3/device/" || path == "/3/device" {
        reject(400, "MissingDeviceToken")
    } else {
        reject(404, "BadPath")
    };
    let reply = Reply {
        status: Some(r.status),
        reason: Some(r.reason.clone()),
        retry_after_secs: None,
        delivered: false,
        scripted: false,
    };
    let body_json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let apns_id = {
        let mut state = sim.inner.state();
        state.record(record(now, None, path, version, &headers, body_json, reply));
        uuid::Builder::from_random_bytes(fresh16(&state.fresh_bytes(sim.inner.seed)))
            .into_uuid()
            .hyphenated()
            .to_string()
    };
    error_response(&r, &apns_id, None, now.unix_ms)
}

fn fresh16(b: &[u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&b[..16]);
    out
}

fn record(
    now: Stamp,
    token: Option<String>,
    path: String,
    version: Version,
    headers: &HeaderMap,
    body: Value,
    reply: Reply,
) -> RecordedRequest {
    RecordedRequest {
        seq: 0,
        provider: Provider::Apns,
        kind: RequestKind::ApnsSend,
        token,
        path,
        http_version: format!("{version:?}"),
        headers: interesting_headers(headers),
        body,
        reply,
        at: now.at,
        at_ms: now.at_ms,
        unix_ms: now.unix_ms,
    }
}
