//! FCM HTTP v1 error bodies (Google API error shape) and how scripted outcomes render.
//!
//! Shape: `{"error":{"code":404,"message":"…","status":"NOT_FOUND","details":[…]}}` where a
//! detail is either `google.firebase.fcm.v1.FcmError {errorCode}` or `google.rpc.BadRequest
//! {fieldViolations:[{field,description}]}`. Scripted `Status(code)` outcomes use FCM's
//! documented errorCode for that status:
//!
//! | status | errorCode | Google status |
//! | --- | --- | --- |
//! | 400 | INVALID_ARGUMENT | INVALID_ARGUMENT |
//! | 401 | THIRD_PARTY_AUTH_ERROR | UNAUTHENTICATED |
//! | 403 | SENDER_ID_MISMATCH | PERMISSION_DENIED |
//! | 404 | UNREGISTERED | NOT_FOUND |
//! | 429 | QUOTA_EXCEEDED | RESOURCE_EXHAUSTED |
//! | 500 | INTERNAL | INTERNAL |
//! | 503 | UNAVAILABLE | UNAVAILABLE |
//! | other | UNSPECIFIED_ERROR | by HTTP status |
//!
//! `Reason(code, "")` (empty reason) renders Google's generic error without an `FcmError`
//! detail; for 429 that is the project-quota `RESOURCE_EXHAUSTED` body with a
//! `google.rpc.ErrorInfo` `RATE_LIMIT_EXCEEDED` detail (push.md), which a client must handle by
//! HTTP status. The UNREGISTERED body is byte-for-byte the reported one; other `message` texts are close to
//! Google's but not verified.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::script::Outcome;

/// The `details[0]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Detail {
    None,
    /// `google.firebase.fcm.v1.FcmError` with this `errorCode`.
    Fcm(String),
    /// `google.rpc.BadRequest` with one field violation (field path).
    BadRequest(String),
    /// `google.rpc.ErrorInfo` for project-level send quota (`RATE_LIMIT_EXCEEDED`).
    ProjectQuota,
}

/// One FCM error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FcmError {
    pub(crate) code: u16,
    pub(crate) message: String,
    pub(crate) detail: Detail,
    pub(crate) retry_after_secs: Option<u64>,
}

/// Google's canonical status name for an HTTP status.
pub(crate) fn google_status(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "NOT_IMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

impl FcmError {
    /// A request-validation error: 400 INVALID_ARGUMENT with a `BadRequest` field violation.
    pub(crate) fn bad_request(field: &str, message: impl Into<String>) -> Self {
        Self {
            code: 400,
            message: message.into(),
            detail: Detail::BadRequest(field.into()),
            retry_after_secs: None,
        }
    }

    /// An error carrying an `FcmError` detail.
    pub(crate) fn fcm(code: u16, error_code: &str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), detail: Detail::Fcm(error_code.into()), retry_after_secs: None }
    }

    /// A generic Google error without details (auth failures).
    pub(crate) fn plain(code: u16, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), detail: Detail::None, retry_after_secs: None }
    }

    /// The not-a-valid-token error (`Outcome::BadDeviceToken` and malformed tokens).
    pub(crate) fn invalid_token() -> Self {
        Self::fcm(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token")
    }

    /// How a scripted non-success outcome renders. `Ok` and `Hang` have no error body.
    pub(crate) fn for_outcome(outcome: &Outcome) -> Option<Self> {
        let mut e = match outcome {
            Outcome::Ok | Outcome::Hang => return None,
            Outcome::Unregistered => canonical(404),
            Outcome::BadDeviceToken => Self::invalid_token(),
            Outcome::Status(code) | Outcome::RetryAfter(code, _) => canonical(*code),
            Outcome::Reason(429, reason) if reason.is_empty() => Self {
                code: 429,
                message: PROJECT_QUOTA_MESSAGE.into(),
                detail: Detail::ProjectQuota,
                retry_after_secs: None,
            },
            Outcome::Reason(code, reason) if reason.is_empty() => {
                Self::plain(*code, canonical(*code).message)
            }
            Outcome::Reason(code, reason) => Self::fcm(*code, reason, canonical(*code).message),
        };
        e.retry_after_secs = outcome.retry_after_secs();
        Some(e)
    }

    /// The FCM `errorCode` if any, else the Google status (what the log records as `reason`).
    pub(crate) fn reason(&self) -> String {
        match &self.detail {
            Detail::Fcm(c) => c.clone(),
            _ => google_status(self.code).to_owned(),
        }
    }

    pub(crate) fn body(&self) -> Value {
        let details = match &self.detail {
            Detail::None => None,
            Detail::Fcm(code) => Some(json!([{
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": code,
            }])),
            Detail::ProjectQuota => Some(json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {
                    "service": "fcm.googleapis.com",
                    "quota_metric": "fcm.googleapis.com/send_requests",
                    "quota_limit": "SendsPerMinutePerProject",
                    "quota_unit": "1/min/{project}",
                    "consumer": "projects/callfleet-sim",
                },
            }])),
            Detail::BadRequest(field) => Some(json!([{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": self.message}],
            }])),
        };
        let mut error =
            json!({"code": self.code, "message": self.message, "status": google_status(self.code)});
        if let (Some(d), Some(obj)) = (details, error.as_object_mut()) {
            obj.insert("details".into(), d);
        }
        json!({ "error": error })
    }
}

/// Google's generic project-quota 429 message (push.md, firebase-admin-go #719).
const PROJECT_QUOTA_MESSAGE: &str = "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' of service 'fcm.googleapis.com' for consumer 'project_number:000000000000'.";

fn canonical(code: u16) -> FcmError {
    let (error_code, message) = match code {
        400 => ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        401 => ("THIRD_PARTY_AUTH_ERROR", "Auth error from APNS or Web Push Service"),
        403 => ("SENDER_ID_MISMATCH", "SenderId mismatch"),
        404 => ("UNREGISTERED", "Requested entity was not found."),
        429 => ("QUOTA_EXCEEDED", "Quota exceeded for the message target."),
        500 => ("INTERNAL", "Internal error encountered."),
        503 => ("UNAVAILABLE", "The service is currently unavailable."),
        _ => ("UNSPECIFIED_ERROR", "Unknown error."),
    };
    FcmError::fcm(code, error_code, message)
}

impl IntoResponse for FcmError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.code == 401 && self.detail == Detail::None {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unregistered_body_is_the_reported_one() {
        let body = FcmError::for_outcome(&Outcome::Unregistered).unwrap().body();
        let want: Value = serde_json::from_str(
            r#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND",
            "details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#,
        )
        .unwrap();
        assert_eq!(body, want);
    }

    #[test]
    fn data_type_violation_shape() {
        let e = FcmError::bad_request(
            "message.data[0].value",
            "Invalid value at 'message.data[0].value' (TYPE_STRING), 12",
        );
        let b = e.body();
        assert_eq!(b["error"]["status"], "INVALID_ARGUMENT");
        assert_eq!(b["error"]["details"][0]["fieldViolations"][0]["field"], "message.data[0].value");
        assert_eq!(e.reason(), "INVALID_ARGUMENT");
        let q = FcmError::for_outcome(&Outcome::Reason(429, String::new())).unwrap().body();
        assert_eq!(q["error"]["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(q["error"]["details"][0]["reason"], "RATE_LIMIT_EXCEEDED");
        let plain = FcmError::for_outcome(&Outcome::Reason(503, String::new())).unwrap();
        assert!(plain.body()["error"].get("details").is_none());
        assert_eq!(plain.reason(), "UNAVAILABLE");
        let r = FcmError::for_outcome(&Outcome::Reason(403, "SENDER_ID_MISMATCH".into())).unwrap();
        assert_eq!(r.body()["error"]["status"], "PERMISSION_DENIED");
        assert_eq!(r.reason(), "SENDER_ID_MISMATCH");
    }
}
