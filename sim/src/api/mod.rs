//! The Telnyx API surface under `/v2` (Call Control, telephony credentials, `GET /v2/recordings/{id}`, and
//! `POST /v2/ai/audio/transcriptions`) and the recording downloads.
//!
//! Every JSON `/v2` request goes through [`execute`]: bearer check (401 `10009`), injected faults, JSON
//! parsing (400 `10015` for a body that is not JSON), the world operation, the request log ([`record`]),
//! then the Telnyx-shaped answer, held for the constant API latency ([`crate::SimConfig::api_latency`]) if
//! one is set ([`finish`]). Handlers read the body as raw bytes so malformed input gets Telnyx's error shape
//! rather than axum's. Unknown `/v2` paths answer 404 `10005`.
//!
//! The transcription operation (multipart/form-data, FastAPI-style errors) has its own pipeline in
//! `transcription.rs` over the same pieces: bearer check, body parsing, validation, faults, log, latency.

mod routes;
mod transcription;

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::engine::Core;
use crate::log::{RecordedRequest, UploadedFile};
use crate::telnyx_errors::ApiError;
use crate::world::{Faults, Outcome, ReplyBody, World};

pub(crate) use routes::router;

/// A request as the API layer sees it.
pub(crate) struct ApiRequest {
    pub op: &'static str,
    pub target: Option<String>,
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// `Authorization: Bearer <key>`: the configured key, or any non-empty key when none is configured.
pub(crate) fn authorized(expected: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|k| !k.is_empty())
    else {
        return false;
    };
    expected.is_none_or(|k| k == given)
}

/// Parses the body: empty → `{}`; not JSON or not an object → 400.
fn parse_body(body: &Bytes) -> (Value, Result<Value, ApiError>) {
    if body.iter().all(u8::is_ascii_whitespace) {
        return (Value::Null, Ok(Value::Object(Default::default())));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => (v.clone(), Ok(v)),
        Ok(v) => (v, Err(ApiError::bad_request("The request body must be a JSON object."))),
        Err(_) => (
            Value::String(String::from_utf8_lossy(body).into_owned()),
            Err(ApiError::bad_request("Invalid characters in the request.")),
        ),
    }
}

fn faulted(faults: &mut Faults, op: &str) -> Option<(Option<std::time::Duration>, bool, ApiError)> {
    use crate::world::ApiFault;
    match faults.take_api(op)? {
        ApiFault::Error { status, code } => Some((None, false, ApiError::injected(status, code.as_deref()))),
        ApiFault::Timeout { delay, apply } => Some((Some(delay), apply, ApiError::injected(503, None))),
    }
}

/// An answer, before it is logged and sent.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Value,
    pub deduplicated: bool,
    /// Name of the injected fault that shaped it.
    pub fault: Option<&'static str>,
}

impl Answer {
    pub fn json(status: StatusCode, body: Value) -> Self {
        Self { status, content_type: "application/json", body, deduplicated: false, fault: None }
    }

    pub fn error(e: &ApiError) -> Self {
        Self::json(e.status, e.body())
    }

    fn of(result: Result<Outcome, ApiError>) -> Self {
        match result {
            Ok(Outcome { status, body: ReplyBody::Json(v), deduplicated }) => {
                Self { deduplicated, ..Self::json(status, v) }
            }
            Ok(Outcome { status, body: ReplyBody::Text(t), deduplicated }) => {
                Self { status, content_type: "text/plain", body: Value::String(t), deduplicated, fault: None }
            }
            Err(e) => Self::error(&e),
        }
    }
}

/// Appends the exchange to the request log (under the world lock, at the current sim time).
pub(crate) fn record(
    w: &mut World,
    req: &ApiRequest,
    body: Value,
    upload: Option<UploadedFile>,
    answer: &Answer,
) {
    let seq = w.log.next_seq();
    let at_ms = w.now;
    w.log.requests.push(RecordedRequest {
        seq,
        at_ms,
        method: req.method.to_string(),
        path: req.uri.path().to_owned(),
        query: req.uri.query().map(str::to_owned),
        operation: req.op.to_owned(),
        target: req.target.clone(),
        body,
        status: answer.status.as_u16(),
        response: answer.body.clone(),
        content_type: answer.content_type.to_owned(),
        deduplicated: answer.deduplicated,
        fault: answer.fault.map(str::to_owned),
        upload,
    });
}

/// Sends a logged answer, held for `delay` (an injected late answer) plus the constant API latency; the
/// effect is already applied (and logged at its arrival time), only the answer is held.
pub(crate) async fn finish(core: &Core, delay: Option<std::time::Duration>, answer: Answer) -> Response {
    let wait = delay.unwrap_or_default() + core.api_latency();
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    respond(answer.status, answer.content_type, &answer.body)
}

/// Runs one API request end to end.
pub(crate) async fn execute(
    core: Arc<Core>,
    req: ApiRequest,
    f: impl FnOnce(&mut World, &Value) -> Result<Outcome, ApiError>,
) -> Response {
    let auth_ok = authorized(core.config.api_key.as_deref(), &req.headers);
    let (logged_body, parsed) = parse_body(&req.body);
    let mut delay = None;
    let answer = core.with(|w| {
        let mut fault = None;
        let result = if !auth_ok {
            Err(ApiError::unauthorized())
        } else {
            match faulted(&mut w.faults, req.op) {
                Some((d, apply, err)) => {
                    delay = d;
                    fault = Some(if d.is_some() { "api_timeout" } else { "api_error" });
                    if apply { parsed.and_then(|v| f(w, &v)) } else { Err(err) }
                }
                None => parsed.and_then(|v| f(w, &v)),
            }
        };
        let answer = Answer { fault, ..Answer::of(result) };
        record(w, &req, logged_body, None, &answer);
        answer
    });
    finish(&core, delay, answer).await
}

fn respond(status: StatusCode, content_type: &'static str, body: &Value) -> Response {
    let text = match body {
        Value::String(s) if content_type == "text/plain" => s.clone(),
        v => v.to_string(),
    };
    let mut res = (status, text).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// The 404 for unknown `/v2` paths (not logged as an operation).
pub(crate) fn not_found() -> Response {
    let e = ApiError::not_found();
    respond(e.status, "application/json", &e.body())
}
