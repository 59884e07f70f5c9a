//! Errors of the ingress role, and the one place where request failures become HTTP answers.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why the ingress could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("TELNYX_PUBLIC_KEY is not set; the ingress cannot verify webhooks without it")]
    MissingPublicKey,
    #[error("TELNYX_PUBLIC_KEY must be standard base64 of raw 32-byte Ed25519 keys, comma-separated")]
    InvalidPublicKey,
    #[error("the Telnyx client cannot be built: {0}")]
    Telnyx(String),
    #[error("serving HTTP failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// A rejected request: status plus a stable, machine-readable reason.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub status: StatusCode,
    pub reason: &'static str,
    pub detail: String,
    /// Answered before the request body was read to its end: the connection is closed after the
    /// answer (`connection: close`), so the client does not reuse one the server is about to
    /// drop (a reused one fails with an incomplete message instead of getting an answer).
    pub close: bool,
}

/// Every refusal's body (`Error` in the OpenAPI document).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    /// machine-readable reason
    error: &'a str,
    /// human-readable detail
    detail: &'a str,
}

impl Rejection {
    pub fn new(status: StatusCode, reason: &'static str, detail: impl Into<String>) -> Self {
        Self { status, reason, detail: detail.into(), close: false }
    }

    /// The same answer, closing the connection after it (see `close`).
    pub fn closing(self) -> Self {
        Self { close: true, ..self }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, Json(ErrorBody { error: self.reason, detail: &self.detail })).into_response();
        if self.close {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
