//! The shared error model of the simulated Telnyx API, used by the call model (`world`), which
//! returns these errors, and by the HTTP layer (`api`), which renders them; neither depends on
//! the other for it.
//!
//! Telnyx-shaped API errors: `{"errors":[{"code":"<digits>","title","detail","source":{"pointer"},
//! "meta":{"url"}}]}` with the HTTP status and code Telnyx uses for each case (see
//! `call_control_api.md`, "Errors"). `code` is a JSON string, as in the spec.
//!
//! Codes the reference leaves open are chosen here and marked "sim-chosen" in the constructor docs.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// One error object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorObject {
    pub code: String,
    pub title: String,
    pub detail: String,
    pub pointer: Option<String>,
    pub parameter: Option<String>,
}

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<ErrorObject>,
}

impl ApiError {
    fn one(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![ErrorObject {
                code: code.to_owned(),
                title: title.to_owned(),
                detail: detail.into(),
                pointer: None,
                parameter: None,
            }],
        }
    }

    fn at(mut self, pointer: &str) -> Self {
        if let Some(e) = self.errors.first_mut() {
            e.pointer = Some(pointer.to_owned());
        }
        self
    }

    /// 422 90018.
    pub fn call_ended() -> Self {
        Self::one(
            StatusCode::UNPROCESSABLE_ENTITY,
            "90018",
            "Call has already ended",
            "This call is no longer active and can't receive commands.",
        )
    }

    /// 422 90034.
    pub fn not_answered() -> Self {
        Self::one(
            StatusCode::UNPROCESSABLE_ENTITY,
            "90034",
            "Call not answered yet",
            "This call can't receive this command because it has not been answered yet.",
        )
    }

    /// 422 90015 (unknown call_control_id, in the path or in a body field at `pointer`).
    pub fn invalid_call_control_id(pointer: &str) -> Self {
        Self::one(
            StatusCode::UNPROCESSABLE_ENTITY,
            "90015",
            "Invalid Call Control ID",
            "The call_control_id provided was not valid.",
        )
        .at(pointer)
    }

    /// 422 10004.
    pub fn missing(param: &str) -> Self {
        Self::one(
            StatusCode::UNPROCESSABLE_ENTITY,
            "10004",
            "Missing required parameter",
            format!("The '{param}' parameter is required and cannot be blank."),
        )
        .at(&format!("/{param}"))
    }

    /// 422 10015 with a custom detail (invalid value of a field).
    pub fn invalid_value(param: &str, detail: impl Into<String>) -> Self {
        Self::one(StatusCode::UNPROCESSABLE_ENTITY, "10015", "Invalid value", detail).at(&format!("/{param}"))
    }

    /// 422 10016.
    pub fn not_e164(param: &str) -> Self {
        Self::one(
            StatusCode::UNPROCESSABLE_ENTITY,
            "10016",
            "Phone number must be in +E164 format",
            format!("The '{param}' parameter must be in E164 format."),
        )
        .at(&format!("/{param}"))
    }

    /// 422 10032.
    pub fn enum_value(param: &str, allowed: &[&str]) -> Self {
        Self::one(
            StatusCode::UNPROCESSABLE_ENTITY,
            "10032",
            "Invalid enumerated value",
            format!("The value must be one of: {}.", allowed.join(", ")),
        )
        .at(&format!("/{param}"))
    }

    /// 422 10033.
    pub fn out_of_range(param: &str, lo: i64, hi: i64) -> Self {
        Self::one(
            StatusCode::UNPROCESSABLE_ENTITY,
            "10033",
            "Value outside of range",
            format!("The value is outside of allowed range {lo} to {hi}"),
        )
        .at(&format!("/{param}"))
    }

    /// 422 for a command the call's state does not allow (sim-chosen code 90015-family: 90041).
    pub fn invalid_state(detail: impl Into<String>) -> Self {
        Self::one(StatusCode::UNPROCESSABLE_ENTITY, "90041", "Invalid call state", detail)
    }

    /// 422 when `prevent_double_bridge` stops a bridge (sim-chosen code 90042).
    pub fn already_bridged() -> Self {
        Self::one(
            StatusCode::UNPROCESSABLE_ENTITY,
            "90042",
            "Call already bridged",
            "The target call is already bridged to another call.",
        )
    }

    /// 401 10009.
    pub fn unauthorized() -> Self {
        Self::one(
            StatusCode::UNAUTHORIZED,
            "10009",
            "Authentication failed",
            "The API key looks malformed. Check that you copied it correctly.",
        )
    }

    /// 404 10005.
    pub fn not_found() -> Self {
        Self::one(
            StatusCode::NOT_FOUND,
            "10005",
            "Resource not found",
            "The requested resource or URL could not be found.",
        )
    }

    /// 400 10015 (body is not JSON, or a query parameter is malformed).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::one(StatusCode::BAD_REQUEST, "10015", "Bad Request", detail)
    }

    /// 429 90103 (dials-per-second limit).
    pub fn dial_rate_limited() -> Self {
        Self::one(
            StatusCode::TOO_MANY_REQUESTS,
            "90103",
            "Too many dials",
            "The number of dials per second allowed for your account has been exceeded.",
        )
    }

    /// An injected failure with `status` (429 → 10011, 5xx → 10007, else `code` or 10007).
    pub fn injected(status: u16, code: Option<&str>) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match status.as_u16() {
            429 => Self::one(
                status,
                "10011",
                "Too many requests",
                "You have exceeded the maximum number of allowed requests.",
            ),
            503 => Self::one(status, "10007", "Service unavailable", "Service unavailable"),
            500 => Self::one(status, "10007", "Internal server error", "Internal server error"),
            _ => Self::one(
                status,
                code.unwrap_or("10007"),
                "Injected failure",
                "Failure injected by the simulator.",
            ),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let errors: Vec<Value> = self
            .errors
            .iter()
            .map(|e| {
                let mut o = json!({
                    "code": e.code,
                    "title": e.title,
                    "detail": e.detail,
                    "meta": {"url": format!("https://developers.telnyx.com/docs/overview/errors/{}", e.code)},
                });
                let mut source = serde_json::Map::new();
                if let Some(p) = &e.pointer {
                    source.insert("pointer".into(), Value::String(p.clone()));
                }
                if let Some(p) = &e.parameter {
                    source.insert("parameter".into(), Value::String(p.clone()));
                }
                if !source.is_empty() {
                    o["source"] = Value::Object(source);
                }
                o
            })
            .collect();
        json!({ "errors": errors })
    }
}
