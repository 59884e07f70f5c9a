//! The typed failure of one Call Control request: what went wrong on the wire, the HTTP status,
//! every Telnyx error object, the `Retry-After` hint and the underlying transport error.
//!
//! Telnyx error bodies are `{"errors":[{"code":"90018","title":…,"detail":…,"source":{"pointer"}}]}`
//! with `code` a JSON *string* (`call-control_Errors`). A body that is not that shape (a proxy's
//! HTML page, an empty 502) keeps the status and no codes — classification then goes by status.
//! Nothing of the request (bodies carry `client_state`) is kept in the error. What a caller may do
//! is [`CallControlError::outcome`] (see `outcome.rs`).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::{CommandKind, Outcome};

/// How the request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Telnyx answered with a non-2xx status.
    Http { status: u16 },
    /// No complete answer within the request timeout (the command may have taken effect).
    Timeout,
    /// Connect or transport failure.
    Transport,
    /// This API's circuit breaker is open: nothing was sent.
    CircuitOpen,
    /// The rate budget had no slot within the bounded wait: nothing was sent.
    RateBudget,
    /// 2xx with a body that does not parse (the command was accepted).
    Decode,
}

impl Failure {
    /// Metric label for failures without a Telnyx code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http { .. } => "http",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
            Self::CircuitOpen => "circuit_open",
            Self::RateBudget => "rate_budget",
            Self::Decode => "decode",
        }
    }
}

/// `source` of an error object: which request field it is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorSource {
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default)]
    pub parameter: Option<String>,
}

/// One entry of Telnyx's `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiErrorObject {
    #[serde(deserialize_with = "code_string")]
    pub code: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub source: Option<ErrorSource>,
}

/// The spec says string; accept a number too rather than lose the code.
fn code_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("error code {other}"))),
    }
}

/// The `errors` of a body, or none if it is not Telnyx-shaped.
pub(crate) fn parse_errors(body: &[u8]) -> Vec<ApiErrorObject> {
    #[derive(Deserialize)]
    struct Body {
        errors: Vec<ApiErrorObject>,
    }
    serde_json::from_slice::<Body>(body).map(|b| b.errors).unwrap_or_default()
}

/// A Call Control request failed; see [`CallControlError::outcome`] for what to do.
#[derive(Debug)]
pub struct CallControlError {
    pub command: CommandKind,
    pub failure: Failure,
    /// Telnyx's error objects, in order (empty without a Telnyx-shaped body).
    pub errors: Vec<ApiErrorObject>,
    /// From `Retry-After`/`retry-after-ms`/`x-ratelimit-reset`, the breaker's cooldown, or the
    /// rate budget.
    pub retry_after: Option<Duration>,
    pub(crate) source: Option<reqwest::Error>,
}

impl CallControlError {
    pub(crate) fn local(command: CommandKind, failure: Failure, retry_after: Option<Duration>) -> Self {
        Self { command, failure, errors: Vec::new(), retry_after, source: None }
    }

    /// The HTTP status, when Telnyx answered.
    pub fn status(&self) -> Option<u16> {
        match self.failure {
            Failure::Http { status } => Some(status),
            _ => None,
        }
    }

    /// The Telnyx error codes, in order.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.errors.iter().map(|e| e.code.as_str())
    }

    pub fn has_code(&self, code: &str) -> bool {
        self.codes().any(|c| c == code)
    }

    /// What the caller should do, for this command (see `outcome.rs` for the table).
    pub fn outcome(&self) -> Outcome {
        super::outcome::classify(self)
    }
}

impl fmt::Display for CallControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Telnyx {} failed: ", self.command)?;
        match self.failure {
            Failure::Http { status } => write!(f, "HTTP {status}")?,
            other => f.write_str(other.as_str())?,
        }
        for e in &self.errors {
            write!(f, "; {} {}", e.code, e.title)?;
            if let Some(d) = &e.detail {
                write!(f, " ({d})")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for CallControlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// The retry hint of a failed answer: `retry-after-ms`, then `retry-after` (seconds), then, on a
/// 429, `x-ratelimit-reset` (seconds until the window resets). HTTP-date forms are ignored.
pub(crate) fn retry_hint(status: u16, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let num = |name: &str| {
        headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok())
    };
    let secs = |s: f64| (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(3600.0)));
    num("retry-after-ms")
        .and_then(|ms| secs(ms / 1000.0))
        .or_else(|| num("retry-after").and_then(secs))
        .or_else(|| if status == 429 { num("x-ratelimit-reset").and_then(secs) } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_telnyx_error_bodies() {
        let body = br#"{"errors":[{"code":"90018","title":"Call has already ended",
            "detail":"This call is no longer active and can't receive commands.",
            "source":{"pointer":"/call_control_id"},"meta":{"url":"u"}},{"code":10015,"title":"x"}]}"#;
        let errors = parse_errors(body);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].code, "90018");
        assert_eq!(errors[0].source.as_ref().and_then(|s| s.pointer.as_deref()), Some("/call_control_id"));
        assert_eq!(errors[1].code, "10015", "a numeric code is kept as its digits");
        assert!(parse_errors(b"<html>bad gateway</html>").is_empty());
        assert!(parse_errors(b"").is_empty());
    }

    #[test]
    fn retry_hints() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_hint(429, &h), None);
        h.insert("x-ratelimit-reset", "3".parse().unwrap());
        assert_eq!(retry_hint(429, &h), Some(Duration::from_secs(3)));
        assert_eq!(retry_hint(500, &h), None, "reset is a rate-limit header");
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_hint(503, &h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_hint(429, &h), Some(Duration::from_millis(150)));
    }
}
