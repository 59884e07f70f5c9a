//! Route table of the Telnyx surface. Handlers are thin: they name the operation and call the world
//! (the transcription handler lives in `transcription.rs`: its body is multipart, not JSON).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{ApiRequest, execute, transcription};
use crate::engine::Core;
use crate::scenario::ops;

type S = State<Arc<Core>>;

/// Call actions served under `POST /v2/calls/{id}/actions/{action}`.
const ACTIONS: &[&str] =
    &["answer", "bridge", "hangup", "transfer", "reject", "speak", "record_start", "record_stop"];

pub(crate) fn router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/v2/calls", post(dial))
        .route("/v2/calls/{id}", get(retrieve))
        .route("/v2/calls/{id}/actions/{action}", post(action).put(action_put))
        .route("/v2/telephony_credentials", post(cred_create).get(cred_list))
        .route("/v2/telephony_credentials/{id}", get(cred_get).patch(cred_update).delete(cred_delete))
        .route("/v2/telephony_credentials/{id}/token", post(cred_token))
        .route("/v2/recordings/{id}", get(recording_get))
        .route(
            "/v2/ai/audio/transcriptions",
            post(transcription::transcribe).layer(DefaultBodyLimit::max(transcription::BODY_LIMIT)),
        )
        .route("/v2/{*rest}", axum::routing::any(|| async { super::not_found() }))
        .route("/sim-s3/recordings/{file}", get(recording))
        .with_state(core)
}

fn req(
    op: &'static str,
    target: Option<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiRequest {
    ApiRequest { op, target, method, uri, headers, body }
}

async fn dial(State(core): S, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    execute(core, req(ops::DIAL, None, method, uri, headers, body), |w, v| w.dial(v)).await
}

async fn retrieve(
    State(core): S,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let r = req(ops::RETRIEVE_CALL, Some(id.clone()), method, uri, headers, Bytes::new());
    execute(core, r, move |w, _| w.retrieve_call(&id)).await
}

async fn action(
    State(core): S,
    Path((id, action)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(op) = ACTIONS.iter().copied().find(|a| *a == action) else { return super::not_found() };
    let r = req(op, Some(id.clone()), method, uri, headers, body);
    execute(core, r, move |w, v| w.action(&id, op, v)).await
}

async fn action_put(
    State(core): S,
    Path((id, action)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if action != "client_state_update" {
        return super::not_found();
    }
    let r = req("client_state_update", Some(id.clone()), method, uri, headers, body);
    execute(core, r, move |w, v| w.action(&id, "client_state_update", v)).await
}

async fn cred_create(State(core): S, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    execute(core, req(ops::CREDENTIAL_CREATE, None, method, uri, headers, body), |w, v| {
        w.credential_create(v)
    })
    .await
}

async fn cred_list(State(core): S, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let query = Query::<Vec<(String, String)>>::try_from_uri(&uri).map(|q| q.0);
    let r = req(ops::CREDENTIAL_LIST, None, method, uri, headers, Bytes::new());
    execute(core, r, move |w, _| match query {
        Ok(q) => w.credential_list(&q),
        Err(e) => Err(crate::telnyx_errors::ApiError::bad_request(e.body_text())),
    })
    .await
}

async fn cred_get(
    State(core): S,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let r = req(ops::CREDENTIAL_GET, Some(id.clone()), method, uri, headers, Bytes::new());
    execute(core, r, move |w, _| w.credential_get(&id)).await
}

async fn cred_update(
    State(core): S,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = req(ops::CREDENTIAL_UPDATE, Some(id.clone()), method, uri, headers, body);
    execute(core, r, move |w, v| w.credential_update(&id, v)).await
}

async fn cred_delete(
    State(core): S,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let r = req(ops::CREDENTIAL_DELETE, Some(id.clone()), method, uri, headers, Bytes::new());
    execute(core, r, move |w, _| w.credential_delete(&id)).await
}

async fn cred_token(
    State(core): S,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let r = req(ops::CREDENTIAL_TOKEN, Some(id.clone()), method, uri, headers, Bytes::new());
    execute(core, r, move |w, _| w.credential_token(&id)).await
}

async fn recording_get(
    State(core): S,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let r = req(ops::RECORDING_GET, Some(id.clone()), method, uri, headers, Bytes::new());
    execute(core, r, move |w, _| w.recording_get(&id)).await
}

/// `GET /sim-s3/recordings/<id>.<ext>?X-Amz-…`: the pre-signed recording download.
async fn recording(
    State(core): S,
    Path(file): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let has_auth = headers.contains_key(header::AUTHORIZATION);
    let (status, ctype, bytes) = core.with(|w| w.download_recording(&file, &q, has_auth));
    let mut res = (status, bytes).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    res
}
