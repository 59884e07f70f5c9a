//! The Call Control HTTP client: one request = breaker check, bounded wait for the `calls` rate
//! budget, breaker admission, the request under connect + total timeouts, then the verdict.
//!
//! Failure behaviour: a 5xx, timeout or transport error is re-sent at once (same body, same
//! `command_id`, so a command that did take effect is ignored by Telnyx) up to
//! `calls_immediate_retries` times — Telnyx's advice is to retry 500s immediately — and then
//! returned for the job to retry with backoff. Nothing else is retried here. A request dropped
//! mid-flight (the job timed out) counts as an API failure for the breaker, so a half-open probe
//! can never be leaked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tracing::Instrument as _;

use super::error::{parse_errors, retry_hint};
use super::media::{Gather, PlaybackStart, PlaybackStop, RecordStart, RecordStop, Speak};
use super::requests::{Action, Answer, Bridge, CommandKind, Dial, Hangup, Reject, Transfer};
use super::responses::{CallStatus, CommandAck, Dialed};
use super::{CallControlError, Failure};
use crate::breaker::{ApiBreaker, is_api_failure};
use crate::{RateLimiter, TelnyxError, TelnyxSettings};

const API: &str = "call_control";

/// Telnyx Call Control client; cheap to clone (clones share limiter and breaker).
#[derive(Clone)]
pub struct CallControl {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    api_key: String,
    limiter: RateLimiter,
    max_wait: Duration,
    retries: u32,
    breaker: ApiBreaker,
}

impl std::fmt::Debug for CallControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallControl").field("base", &self.inner.base).finish_non_exhaustive()
    }
}

impl CallControl {
    /// A client for `base` (e.g. `https://api.telnyx.com/v2`) whose live-call commands use
    /// `limiter` (the `calls` budget) and the timeouts, retries and breaker of `settings`.
    pub fn new(
        base: &str,
        api_key: &str,
        limiter: RateLimiter,
        settings: &TelnyxSettings,
    ) -> Result<Self, TelnyxError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(settings.calls_connect_timeout)
            .timeout(settings.calls_timeout)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| TelnyxError::Permanent { status: 0, message: format!("HTTP client: {e}") })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base: base.trim_end_matches('/').to_owned(),
                api_key: api_key.to_owned(),
                limiter,
                max_wait: settings.calls_max_wait,
                retries: settings.calls_immediate_retries,
                breaker: ApiBreaker::new(API, settings.breaker_threshold, settings.breaker_cooldown),
            }),
        })
    }

    /// The `calls` rate budget.
    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// The Call Control breaker's state now.
    pub fn breaker_state(&self) -> fleet_domain::breaker::BreakerState {
        self.inner.breaker.state()
    }

    /// `POST /calls`.
    pub async fn dial(&self, dial: &Dial) -> Result<Dialed, CallControlError> {
        let body = serde_json::to_value(dial).unwrap_or_default();
        self.request(CommandKind::Dial, Method::POST, format!("{}/calls", self.inner.base), Some(body)).await
    }

    /// `POST /calls/{call_control_id}/actions/<A::KIND>`.
    pub async fn action<A: Action>(
        &self,
        call_control_id: &str,
        body: &A,
    ) -> Result<CommandAck, CallControlError> {
        let url = format!("{}/calls/{}/actions/{}", self.inner.base, path_segment(call_control_id), A::KIND);
        let body = serde_json::to_value(body).unwrap_or_default();
        self.request(A::KIND, Method::POST, url, Some(body)).await
    }

    pub async fn answer(&self, call_control_id: &str, c: &Answer) -> Result<CommandAck, CallControlError> {
        self.action(call_control_id, c).await
    }

    pub async fn bridge(&self, call_control_id: &str, c: &Bridge) -> Result<CommandAck, CallControlError> {
        self.action(call_control_id, c).await
    }

    pub async fn transfer(
        &self,
        call_control_id: &str,
        c: &Transfer,
    ) -> Result<CommandAck, CallControlError> {
        self.action(call_control_id, c).await
    }

    pub async fn hangup(&self, call_control_id: &str, c: &Hangup) -> Result<CommandAck, CallControlError> {
        self.action(call_control_id, c).await
    }

    pub async fn reject(&self, call_control_id: &str, c: &Reject) -> Result<CommandAck, CallControlError> {
        self.action(call_control_id, c).await
    }

    pub async fn speak(&self, call_control_id: &str, c: &Speak) -> Result<CommandAck, CallControlError> {
        self.action(call_control_id, c).await
    }

    pub async fn playback_start(
        &self,
        call_control_id: &str,
        c: &PlaybackStart,
    ) -> Result<CommandAck, CallControlError> {
        self.action(call_control_id, c).await
    }

    pub async fn playback_stop(
        &self,
        call_control_id: &str,
        c: &PlaybackStop,
    ) -> Result<CommandAck, CallControlError> {
        self.action(call_control_id, c).await
    }

    pub async fn record_start(
        &self,
        call_control_id: &str,
        c: &RecordStart,
    ) -> Result<CommandAck, CallControlError> {
        self.action(call_control_id, c).await
    }

    pub async fn record_stop(
        &self,
        call_control_id: &str,
        c: &RecordStop,
    ) -> Result<CommandAck, CallControlError> {
        self.action(call_control_id, c).await
    }

    pub async fn gather(&self, call_control_id: &str, c: &Gather) -> Result<CommandAck, CallControlError> {
        self.action(call_control_id, c).await
    }

    /// `GET /calls/{call_control_id}`: `is_alive` and friends (kept 10 minutes after the end).
    pub async fn call_status(&self, call_control_id: &str) -> Result<CallStatus, CallControlError> {
        let url = format!("{}/calls/{}", self.inner.base, path_segment(call_control_id));
        self.request(CommandKind::CallStatus, Method::GET, url, None).await
    }

    async fn request<T: DeserializeOwned>(
        &self,
        kind: CommandKind,
        method: Method,
        url: String,
        body: Option<serde_json::Value>,
    ) -> Result<T, CallControlError> {
        // One span per command (its resends inside): a child of the job's span, so a call's
        // commands are in its trace when traces are exported.
        let span = tracing::info_span!("telnyx_command", command = kind.as_str(), method = %method);
        async move {
            let mut attempt = 0;
            loop {
                let result = self.once(kind, method.clone(), &url, body.as_ref()).await;
                match result {
                    Err(e) if attempt < self.inner.retries && resend_at_once(&e) => {
                        attempt += 1;
                        metrics::counter!("callfleet_telnyx_immediate_retries_total", "command" => kind.as_str())
                            .increment(1);
                    }
                    other => {
                        if let Err(e) = &other {
                            record_error(e);
                        }
                        return other;
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn once<T: DeserializeOwned>(
        &self,
        kind: CommandKind,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, CallControlError> {
        let inner = &*self.inner;
        if let Some(wait) = inner.breaker.refuses() {
            return Err(CallControlError::local(kind, Failure::CircuitOpen, Some(wait)));
        }
        let waited = Instant::now();
        let slot = tokio::time::timeout(inner.max_wait, inner.limiter.acquire()).await;
        metrics::histogram!("callfleet_telnyx_limiter_wait_seconds", "budget" => "calls")
            .record(waited.elapsed().as_secs_f64());
        if slot.is_err() {
            metrics::counter!("callfleet_telnyx_limiter_refused_total", "budget" => "calls").increment(1);
            let retry =
                Duration::from_secs_f64(1.0 / inner.limiter.per_sec()).max(Duration::from_millis(100));
            return Err(CallControlError::local(kind, Failure::RateBudget, Some(retry)));
        }
        if let Err(wait) = inner.breaker.allow() {
            return Err(CallControlError::local(kind, Failure::CircuitOpen, Some(wait)));
        }
        let pending = inner.breaker.pending();
        let mut req = inner.http.request(method, url).bearer_auth(&inner.api_key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let started = Instant::now();
        let result = exchange(req).await;
        let elapsed = started.elapsed().as_secs_f64();
        let (status, headers, bytes) = match result {
            Ok(r) => r,
            Err(e) => {
                pending.settle(true);
                observe(kind, "error", elapsed);
                let failure = if e.is_timeout() { Failure::Timeout } else { Failure::Transport };
                return Err(CallControlError {
                    source: Some(e),
                    ..CallControlError::local(kind, failure, None)
                });
            }
        };
        pending.settle(is_api_failure(status));
        if (200..300).contains(&status) {
            observe(kind, "ok", elapsed);
            #[derive(Deserialize)]
            struct Data<T> {
                data: T,
            }
            return serde_json::from_slice::<Data<T>>(&bytes)
                .map(|d| d.data)
                .map_err(|_| CallControlError::local(kind, Failure::Decode, None));
        }
        observe(kind, "error", elapsed);
        Err(CallControlError {
            command: kind,
            failure: Failure::Http { status },
            errors: parse_errors(&bytes),
            retry_after: retry_hint(status, &headers),
            source: None,
        })
    }
}

/// Sends and reads the whole answer (the body read is under the same total timeout).
async fn exchange(
    req: reqwest::RequestBuilder,
) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), reqwest::Error> {
    let res = req.send().await?;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await?;
    Ok((status, headers, bytes.to_vec()))
}

fn resend_at_once(e: &CallControlError) -> bool {
    match e.failure {
        Failure::Timeout | Failure::Transport => true,
        Failure::Http { status } => status >= 500,
        Failure::CircuitOpen | Failure::RateBudget | Failure::Decode => false,
    }
}

fn observe(kind: CommandKind, result: &'static str, secs: f64) {
    metrics::histogram!(
        "callfleet_telnyx_request_duration_seconds",
        "api" => API,
        "command" => kind.as_str(),
        "result" => result
    )
    .record(secs);
}

/// Codes that get their own label value; every other code is `other` (bounded cardinality).
const LABELLED_CODES: &[&str] = &[
    "90018", "90034", "90042", "90103", "90015", "90020", "10005", "10007", "10011", "10004", "10015",
    "10016", "10032", "10033", "10009",
];

fn record_error(e: &CallControlError) {
    let code = match e.failure {
        Failure::Http { status } => match e.codes().next() {
            Some(c) => LABELLED_CODES.iter().copied().find(|k| *k == c).unwrap_or("other"),
            None if status >= 500 => "http_5xx",
            None => "http_4xx",
        },
        other => other.as_str(),
    };
    let outcome = match e.outcome() {
        super::Outcome::Done => "done",
        super::Outcome::NotYetAnswered => "not_yet_answered",
        super::Outcome::AlreadyBridged => "already_bridged",
        super::Outcome::Wait { .. } => "wait",
        super::Outcome::Gone => "gone",
        super::Outcome::Permanent => "permanent",
    };
    metrics::counter!(
        "callfleet_telnyx_errors_total",
        "api" => API,
        "command" => e.command.as_str(),
        "code" => code,
        "outcome" => outcome
    )
    .increment(1);
    tracing::debug!(command = %e.command, error = %e, ?outcome, "Telnyx Call Control command failed");
}

/// Percent-encodes a path segment, leaving RFC 3986 pchars as they are (as Telnyx's SDK does):
/// `call_control_id`s are opaque (`v3:…`, or base64 with `/`, `+`, `=`).
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::path_segment;

    #[test]
    fn path_segments_keep_pchars_and_encode_the_rest() {
        assert_eq!(path_segment("v3:MdI9_x-Y.z~"), "v3:MdI9_x-Y.z~");
        assert_eq!(path_segment("ab/c+d=="), "ab%2Fc+d==");
        assert_eq!(path_segment("a b?#%"), "a%20b%3F%23%25");
    }
}
