//! The read-only admin pages, on the metrics listener of any role, behind
//! `CALLFLEET_OPERATOR_TOKEN` (an operator sees the queues, the dead set and one call's story
//! without database credentials on a laptop).
//!
//! - `GET /admin`: an HTML page — queue depth and age per pool, the newest dead jobs (each
//!   linking to its JSON), a call lookup form.
//! - `GET /admin/queues`, `GET /admin/dead-jobs?pool=P&limit=N` (at most 500),
//!   `GET /admin/dead-jobs/{id}` (404 `not_dead`), `GET /admin/calls/{session}` (404
//!   `unknown_call`): JSON, the same documents as `callfleet queues --json`, `dead-jobs --json`,
//!   `dead-job --json` and `call --json`.
//!
//! Nothing here changes anything: retrying and discarding stay CLI commands (`retry-dead`,
//! `discard-dead`), which an operator runs on purpose. Authentication: `Authorization: Bearer
//! <token>`, or Basic with the token as the password (so a browser asks for it); compared in
//! constant time; 401 with `WWW-Authenticate` otherwise. Without a configured token every page
//! answers 403 `admin_disabled`. The page is built with `format!` and one escaping function
//! rather than a template crate: four tables do not justify one, and every value from the store
//! passes through `escape`.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use fleet_jobs::Pool;
use fleet_platform::secret::Secret;
use fleet_store::Store;
use serde::Deserialize;

use crate::api::auth::constant_time_eq;
use crate::error::Rejection;

#[derive(Clone)]
struct Admin {
    store: Arc<dyn Store>,
    token: Option<Secret>,
}

/// The `/admin` routes (mounted beside `/healthz`, `/readyz` and `/metrics`).
pub fn router(store: Arc<dyn Store>, token: Option<Secret>) -> Router {
    let state = Admin { store, token };
    Router::new()
        .route("/admin", get(page))
        .route("/admin/queues", get(queues))
        .route("/admin/dead-jobs", get(dead_jobs))
        .route("/admin/dead-jobs/{id}", get(dead_job))
        .route("/admin/calls/{session}", get(call))
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_operator))
        .with_state(state)
}

async fn require_operator(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    let Some(expected) = &admin.token else {
        return Rejection::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "CALLFLEET_OPERATOR_TOKEN is not configured",
        )
        .into_response();
    };
    let given =
        request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(presented);
    if given.is_some_and(|t| constant_time_eq(t.as_bytes(), expected.expose().as_bytes())) {
        return next.run(request).await;
    }
    let mut refused = Rejection::new(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "send the operator token (Bearer, or Basic as the password)",
    )
    .into_response();
    refused
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"callfleet admin\""));
    refused
}

/// The token in an `Authorization` value: `Bearer <token>`, or `Basic base64(<any user>:<token>)`.
fn presented(value: &str) -> Option<String> {
    let (scheme, rest) = value.split_once(' ')?;
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Some(rest.trim().to_owned()),
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
            let text = String::from_utf8(decoded).ok()?;
            Some(text.split_once(':')?.1.to_owned())
        }
        _ => None,
    }
}

fn store_failed(e: fleet_store::StoreError) -> Rejection {
    tracing::warn!(error = %e, "Admin page: the store failed.");
    Rejection::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "the database did not answer")
}

async fn queues(State(admin): State<Admin>) -> Result<Response, Rejection> {
    Ok(Json(admin.store.queue_stats().await.map_err(store_failed)?).into_response())
}

#[derive(Deserialize)]
struct DeadQuery {
    pool: Option<String>,
    limit: Option<u32>,
}

async fn dead_jobs(State(admin): State<Admin>, Query(q): Query<DeadQuery>) -> Result<Response, Rejection> {
    let pool = match q.pool.as_deref().map(str::parse::<Pool>) {
        Some(Err(e)) => return Err(Rejection::new(StatusCode::BAD_REQUEST, "unknown_pool", e.to_string())),
        Some(Ok(p)) => Some(p),
        None => None,
    };
    let dead = admin.store.dead_jobs(pool, q.limit.unwrap_or(50).min(500)).await.map_err(store_failed)?;
    Ok(Json(dead).into_response())
}

async fn dead_job(State(admin): State<Admin>, Path(id): Path<String>) -> Result<Response, Rejection> {
    match admin.store.dead_job(&id).await.map_err(store_failed)? {
        Some(job) => Ok(Json(job).into_response()),
        None => Err(Rejection::new(StatusCode::NOT_FOUND, "not_dead", "no dead job has this id")),
    }
}

async fn call(State(admin): State<Admin>, Path(session): Path<String>) -> Result<Response, Rejection> {
    match fleet_store::story::call_story(admin.store.as_ref(), &session).await.map_err(store_failed)? {
        Some(story) => Ok(Json(story).into_response()),
        None => Err(Rejection::new(
            StatusCode::NOT_FOUND,
            "unknown_call",
            "nothing is known about this call session",
        )),
    }
}

async fn page(State(admin): State<Admin>) -> Result<Html<String>, Rejection> {
    let stats = admin.store.queue_stats().await.map_err(store_failed)?;
    let dead = admin.store.dead_jobs(None, 50).await.map_err(store_failed)?;
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>callfleet admin</title><style>\
         body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}td.n{text-align:right}</style></head><body>\
         <h1>callfleet</h1><h2>Queues</h2><table><tr><th>pool</th><th>ready</th><th>scheduled</th>\
         <th>running</th><th>dead</th><th>oldest ready (s)</th></tr>",
    );
    for s in &stats {
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{:.1}</td></tr>",
            escape(&s.pool),
            s.ready,
            s.scheduled,
            s.running,
            s.dead,
            s.oldest_ready_age_secs
        );
    }
    html.push_str("</table><h2>Dead jobs (newest 50)</h2>");
    if dead.is_empty() {
        html.push_str("<p>none</p>");
    } else {
        html.push_str("<table><tr><th>id</th><th>pool</th><th>kind</th><th>attempts</th><th>died</th><th>last error</th></tr>");
        for j in &dead {
            let id = escape(&j.id);
            let _ = write!(
                html,
                "<tr><td><a href=\"/admin/dead-jobs/{id}\">{id}</a></td><td>{}</td><td>{}</td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&j.pool),
                escape(&j.kind),
                j.attempts,
                j.died_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                escape(j.last_error.as_deref().unwrap_or(""))
            );
        }
        html.push_str("</table><p>Retry or discard with <code>callfleet retry-dead ID</code> / <code>callfleet discard-dead ID</code>.</p>");
    }
    html.push_str(
        "<h2>One call</h2><form onsubmit=\"location.href='/admin/calls/'+encodeURIComponent(this.s.value);return false\">\
         <input name=s size=48 placeholder=\"call_session_id\"> <button>show</button></form></body></html>",
    );
    Ok(Html(html))
}

/// HTML-escapes text from the store (error messages, ids) for the page.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn reads_bearer_and_basic() {
        assert_eq!(presented("Bearer t0k").as_deref(), Some("t0k"));
        let basic = base64::engine::general_purpose::STANDARD.encode("ops:t0k");
        assert_eq!(presented(&format!("Basic {basic}")).as_deref(), Some("t0k"));
        assert_eq!(presented("Digest x"), None);
    }
}
