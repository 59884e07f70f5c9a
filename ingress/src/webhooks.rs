//! The two webhook endpoints. Primary and failover run the same pipeline; only `source` differs,
//! so a failover delivery of an event already stored from the primary is a duplicate, and the
//! other way round.

use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use chrono::Utc;
use fleet_domain::webhook::parse_head;
use fleet_store::{Accepted, NewWebhook, Source};
use serde::Serialize;
use tracing::Instrument as _;

use crate::IngressState;
use crate::error::Rejection;

const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
const TIMESTAMP_HEADER: &str = "telnyx-timestamp";

pub(crate) fn routes() -> Router<IngressState> {
    Router::new().route("/webhooks/telnyx", post(primary)).route("/webhooks/telnyx/failover", post(failover))
}

#[derive(Serialize)]
struct Ack {
    status: &'static str,
    event_id: String,
}

async fn primary(state: State<IngressState>, headers: HeaderMap, body: Body) -> Result<Json<Ack>, Rejection> {
    receive(state, headers, body, Source::Primary).await
}

async fn failover(
    state: State<IngressState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Ack>, Rejection> {
    receive(state, headers, body, Source::Failover).await
}

async fn receive(
    State(state): State<IngressState>,
    headers: HeaderMap,
    body: Body,
    source: Source,
) -> Result<Json<Ack>, Rejection> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "webhook",
        source = source.as_str(),
        event_id = tracing::field::Empty,
        event_type = tracing::field::Empty,
        call_session_id = tracing::field::Empty,
    );
    let result = accept(&state, &headers, body, source).instrument(span.clone()).await;
    let outcome = match &result {
        Ok(ack) => ack.status,
        Err(rejection) => rejection.reason,
    };
    metrics::counter!("callfleet_webhook_acks_total", "outcome" => outcome).increment(1);
    metrics::histogram!("callfleet_webhook_ack_seconds").record(started.elapsed().as_secs_f64());
    span.in_scope(|| match &result {
        Ok(ack) => tracing::debug!(outcome = ack.status, "Webhook acknowledged."),
        Err(r) if r.status == StatusCode::SERVICE_UNAVAILABLE => {
            tracing::warn!(reason = r.reason, detail = %r.detail, "Webhook refused: store unavailable.")
        }
        Err(r) => tracing::info!(reason = r.reason, status = r.status.as_u16(), "Webhook rejected."),
    });
    result.map(Json)
}

async fn accept(
    state: &IngressState,
    headers: &HeaderMap,
    body: Body,
    source: Source,
) -> Result<Ack, Rejection> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > state.max_body) {
        return Err(too_large(state.max_body));
    }
    let bytes = to_bytes(body, state.max_body).await.map_err(|_| too_large(state.max_body))?;

    let header = |name| headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"));
    state
        .verifier
        .verify(header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), &bytes, Utc::now().timestamp())
        .map_err(|e| Rejection::new(StatusCode::UNAUTHORIZED, e.reason(), e.to_string()))?;

    // What is stored is exactly what was signed: a body that is not UTF-8 is refused, never
    // stored with replacement characters (the column is text; JSON is UTF-8 by RFC 8259).
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        Rejection::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not UTF-8: {e}"))
    })?;
    let head = parse_head(text.as_bytes())
        .map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, e.reason(), e.to_string()))?;
    let span = tracing::Span::current();
    span.record("event_id", &*head.event_id);
    span.record("event_type", &*head.event_type);
    if let Some(session) = &head.call_session_id {
        span.record("call_session_id", &**session);
    }
    // The event's own span, in the call's trace when traces are exported (every webhook of a call
    // joins one trace, whichever ingress takes it); its job continues from here.
    let event = tracing::info_span!(
        "webhook_event",
        event_id = &*head.event_id,
        event_type = &*head.event_type,
        call_session_id = head.call_session_id.as_deref().unwrap_or(""),
    );
    if let Some(session) = &head.call_session_id {
        fleet_platform::trace::join_call(&event, session);
    }
    let trace_parent = event.in_scope(fleet_platform::trace::current_trace_parent);
    let webhook = NewWebhook {
        event_id: head.event_id.into_owned(),
        event_type: head.event_type.into_owned(),
        call_session_id: head.call_session_id.map(|s| s.into_owned()),
        source,
        attempt: head.attempt,
        body: text.to_owned(),
        received_at: Utc::now(),
        trace_parent,
    };
    let event_id = webhook.event_id.clone();
    match state.batcher.submit(webhook).instrument(event).await {
        Ok(Accepted::Stored) => Ok(Ack { status: "accepted", event_id }),
        Ok(Accepted::Duplicate) => Ok(Ack { status: "duplicate", event_id }),
        Err(e) => Err(Rejection::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e.to_string())),
    }
}

fn too_large(limit: usize) -> Rejection {
    Rejection::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the body exceeds {limit} bytes"))
        .closing()
}
