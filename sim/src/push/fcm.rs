//! `POST /v1/projects/{project_id}/messages:send`: the FCM HTTP v1 send endpoint.
//!
//! Decided at arrival, first failure wins: bearer access token from `POST /token`
//! (`401 UNAUTHENTICATED`, Google's generic body, no FCM detail, `www-authenticate` header);
//! `project_id` is [`super::PROJECT_ID`] (`403 PERMISSION_DENIED`); message validation
//! (`fcm_validate.rs`, `400 INVALID_ARGUMENT`); then the token's script. `validate_only: true`
//! answers like FCM (`projects/{p}/messages/fake_message_id`) without delivering or consuming a
//! script step. Success is `200 {"name":"projects/{p}/messages/0:{n}%{hex}"}`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::fcm_body::FcmError;
use super::fcm_validate::{ValidMessage, validate};
use super::oauth::check_bearer;
use super::record::{RecordedRequest, Reply, RequestKind, interesting_headers};
use super::script::Outcome;
use super::state::latency;
use super::{PROJECT_ID, Provider, PushSim};

pub(super) fn routes() -> Router<PushSim> {
    Router::new().route("/v1/projects/{project_id}/messages:send", post(send))
}

/// What was decided for one request.
enum Decision {
    Reject(FcmError),
    ValidateOnly,
    Scripted(ValidMessage, Outcome),
}

async fn send(
    State(sim): State<PushSim>,
    Path(project_id): Path<String>,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = sim.inner.clock.now();
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let token =
        parsed.as_ref().and_then(|v| v.pointer("/message/token")).and_then(Value::as_str).map(str::to_owned);

    let (decision, delay, message_name) = {
        let mut state = sim.inner.state();
        let checked = check_bearer(&state, &headers, now.unix_ms)
            .map_err(|e| FcmError::plain(401, e.to_string()))
            .and_then(|()| {
                if project_id == PROJECT_ID {
                    Ok(())
                } else {
                    Err(FcmError::plain(
                        403,
                        format!("Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/{project_id}' (or it may not exist)."),
                    ))
                }
            })
            .and_then(|()| validate(parsed.as_ref()));
        let (decision, delay) = match checked {
            Err(e) => (Decision::Reject(e), state.latency_for(Provider::Fcm, token.as_deref())),
            Ok(m) if m.validate_only => {
                (Decision::ValidateOnly, state.latency_for(Provider::Fcm, Some(&m.token)))
            }
            Ok(m) => {
                let (outcome, delay) = state.next_outcome(Provider::Fcm, &m.token);
                (Decision::Scripted(m, outcome), delay)
            }
        };
        let message_name = match &decision {
            Decision::Scripted(_, Outcome::Ok) => {
                let b = state.fresh_bytes(sim.inner.seed);
                let micros = now.unix_ms * 1000 + i64::from(u16::from_le_bytes([b[0], b[1]]) % 1000);
                let tag: String = b[2..10].iter().map(|x| format!("{x:02x}")).collect();
                format!("projects/{PROJECT_ID}/messages/0:{micros}%{tag}")
            }
            _ => format!("projects/{PROJECT_ID}/messages/fake_message_id"),
        };
        let reply = match &decision {
            Decision::Reject(e) => reply(Some(e.code), Some(e.reason()), None, false),
            Decision::ValidateOnly => reply(Some(200), None, None, false),
            Decision::Scripted(_, outcome) => {
                let err = FcmError::for_outcome(outcome);
                let mut r = reply(
                    outcome.status(Provider::Fcm),
                    err.as_ref().map(FcmError::reason),
                    outcome.retry_after_secs(),
                    *outcome == Outcome::Ok,
                );
                r.scripted = true;
                r
            }
        };
        state.record(RecordedRequest {
            seq: 0,
            provider: Provider::Fcm,
            kind: RequestKind::FcmSend,
            token: token.clone(),
            path: format!("/v1/projects/{project_id}/messages:send"),
            http_version: format!("{version:?}"),
            headers: interesting_headers(&headers),
            body: parsed.clone().unwrap_or(Value::Null),
            reply,
            at: now.at,
            at_ms: now.at_ms,
            unix_ms: now.unix_ms,
        });
        (decision, delay, message_name)
    };

    match decision {
        Decision::Reject(e) => {
            latency(delay).await;
            e.into_response()
        }
        Decision::ValidateOnly => {
            latency(delay).await;
            axum::Json(json!({ "name": message_name })).into_response()
        }
        Decision::Scripted(_, Outcome::Hang) => std::future::pending().await,
        Decision::Scripted(m, Outcome::Ok) => {
            let delivery =
                sim.inner.deliver_after(delay, Provider::Fcm, m.token, m.data, message_name.clone());
            // A JoinError means the runtime is shutting down; answer anyway.
            let _ = delivery.await;
            axum::Json(json!({ "name": message_name })).into_response()
        }
        Decision::Scripted(_, outcome) => {
            latency(delay).await;
            match FcmError::for_outcome(&outcome) {
                Some(e) => e.into_response(),
                None => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
    }
}

fn reply(
    status: Option<u16>,
    reason: Option<String>,
    retry_after_secs: Option<u64>,
    delivered: bool,
) -> Reply {
    Reply { status, reason, retry_after_secs, delivered, scripted: false }
}
