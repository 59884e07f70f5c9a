//! `POST /v2/ai/audio/transcriptions` over HTTP: multipart/form-data in, FastAPI-shaped answers out.
//!
//! Pipeline (the JSON operations' one, adapted): the form is read first (outside the world lock; axum's
//! multipart reader, limit 100 MB as Telnyx documents), then under the lock: bearer check (401 in Telnyx's
//! `errors` shape, as every `/v2` route), body errors (400 "There was an error parsing the body", 413 over
//! the limit), validation (422, see `crate::transcription`), injected faults, the transcript; the
//! exchange is logged as operation `transcription` with the text fields as `body` and the file as
//! `upload`, and the answer is held for an injected delay plus the constant API latency.
//!
//! Faults: an `ApiError` / `ApiTimeout` naming operation `transcription` (unnamed ones leave this
//! operation alone), then [`crate::Fault::TranscriptionError`]; a failure answers `{"detail": "Injected
//! failure."}` with the fault's status (503 for a late answer without `apply`). Requests refused before
//! faults are looked at (401/400/413/422) consume none.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{Answer, ApiRequest, authorized, finish, record};
use crate::engine::Core;
use crate::log::UploadedFile;
use crate::scenario::ops;
use crate::transcription::{self, sha256_hex};
use crate::world::ApiFault;

/// Largest accepted request body (Telnyx: "File uploads are limited to 100 MB").
pub(crate) const BODY_LIMIT: usize = 100 * 1024 * 1024;

/// The `file` part of the form.
struct File {
    filename: Option<String>,
    content_type: Option<String>,
    bytes: Bytes,
}

/// What was read of the body.
#[derive(Default)]
struct Form {
    /// The body was multipart/form-data (else it is treated as having no fields).
    multipart: bool,
    /// Text fields, first occurrence of each name, in order.
    fields: Vec<(String, String)>,
    file: Option<File>,
}

impl Form {
    /// The request log's `body`: the text fields as a JSON object (null for a non-multipart body).
    fn logged_body(&self) -> Value {
        if !self.multipart {
            return Value::Null;
        }
        let m: Map<String, Value> =
            self.fields.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        Value::Object(m)
    }

    fn upload(&self) -> Option<UploadedFile> {
        self.file.as_ref().map(|f| UploadedFile {
            field: "file".to_owned(),
            filename: f.filename.clone(),
            content_type: f.content_type.clone(),
            bytes: f.bytes.len() as u64,
            sha256: sha256_hex(&f.bytes),
        })
    }
}

/// The answer to a body that could not be read.
type BodyError = (StatusCode, Value);

fn body_error(e: &MultipartError) -> BodyError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        (StatusCode::PAYLOAD_TOO_LARGE, json!({ "detail": "File uploads are limited to 100 MB." }))
    } else {
        (StatusCode::BAD_REQUEST, json!({ "detail": "There was an error parsing the body" }))
    }
}

/// Reads the whole form. A body that is not multipart at all is an empty form (FastAPI then reports the
/// missing fields); a broken or oversized multipart body is the answer to give.
async fn read_form(m: Result<Multipart, MultipartRejection>) -> Result<Form, BodyError> {
    let Ok(mut m) = m else { return Ok(Form::default()) };
    let mut form = Form { multipart: true, ..Form::default() };
    while let Some(field) = m.next_field().await.map_err(|e| body_error(&e))? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let filename = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(str::to_owned);
            let bytes = field.bytes().await.map_err(|e| body_error(&e))?;
            if form.file.is_none() {
                form.file = Some(File { filename, content_type, bytes });
            }
        } else {
            let text = field.text().await.map_err(|e| body_error(&e))?;
            if !form.fields.iter().any(|(k, _)| *k == name) {
                form.fields.push((name, text));
            }
        }
    }
    Ok(form)
}

fn injected(status: u16, fault: &'static str) -> Answer {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Answer { fault: Some(fault), ..Answer::json(status, json!({ "detail": "Injected failure." })) }
}

/// The handler.
pub(crate) async fn transcribe(
    State(core): State<Arc<Core>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let read = read_form(multipart).await;
    let auth_ok = authorized(core.config.api_key.as_deref(), &headers);
    let req = ApiRequest { op: ops::TRANSCRIPTION, target: None, method, uri, headers, body: Bytes::new() };
    let mut delay = None;
    let answer = core.with(|w| {
        let (logged, upload) = match &read {
            Ok(form) => (form.logged_body(), form.upload()),
            Err(_) => (Value::Null, None),
        };
        let answer = match (&read, auth_ok) {
            (_, false) => Answer::error(&crate::telnyx_errors::ApiError::unauthorized()),
            (Err((status, body)), true) => Answer::json(*status, body.clone()),
            (Ok(form), true) => {
                match transcription::validate(&form.fields, form.file.as_ref().map(|f| &f.bytes[..])) {
                    Err(detail) => {
                        Answer::json(StatusCode::UNPROCESSABLE_ENTITY, json!({ "detail": detail }))
                    }
                    Ok(valid) => {
                        let ok = || Answer::json(StatusCode::OK, transcription::answer(&valid));
                        match w.faults.take_api_named(ops::TRANSCRIPTION) {
                            Some(ApiFault::Error { status, .. }) => injected(status, "api_error"),
                            Some(ApiFault::Timeout { delay: d, apply }) => {
                                delay = Some(d);
                                if apply {
                                    Answer { fault: Some("api_timeout"), ..ok() }
                                } else {
                                    injected(503, "api_timeout")
                                }
                            }
                            None => match w.faults.take_transcription_error() {
                                Some(status) => injected(status, "transcription_error"),
                                None => ok(),
                            },
                        }
                    }
                }
            }
        };
        record(w, &req, logged, upload, &answer);
        answer
    });
    finish(&core, delay, answer).await
}
