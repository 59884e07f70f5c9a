//! Bearer-token check of every `/v1` request.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use crate::error::Rejection;

pub(super) async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let Some(expected) = &state.token else {
        return Rejection::new(
            StatusCode::UNAUTHORIZED,
            "api_disabled",
            "CALLFLEET_API_TOKEN is not configured",
        )
        .into_response();
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    match given {
        None => {
            Rejection::new(StatusCode::UNAUTHORIZED, "missing_token", "send Authorization: Bearer <token>")
                .into_response()
        }
        Some(token) if !constant_time_eq(token.trim().as_bytes(), expected.expose().as_bytes()) => {
            Rejection::new(StatusCode::UNAUTHORIZED, "invalid_token", "the bearer token is not valid")
                .into_response()
        }
        Some(_) => next.run(request).await,
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_whole_tokens() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
    }
}
