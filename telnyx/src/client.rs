//! The HTTP calls: `/telephony_credentials` create, list (paged, filtered), delete, token; and
//! `/recordings/{id}` (fresh download links of a saved recording).
//!
//! Order of a request: the `credentials` breaker (open → `Retryable` at once, with the remaining
//! cooldown as `retry_after`), the housekeeping rate limiter (a job waits as long as needed; an
//! interactive call — a device's login token — at most [`INTERACTIVE_WAIT`], then `Busy`), then
//! HTTP.
//! 5xx, 408, timeouts and transport errors count against the breaker; 429 and other 4xx do not.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::breaker::{ApiBreaker, is_api_failure};
use crate::{RateLimiter, TelnyxError};

/// Connect timeout of every call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Whole-request timeout of every call.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a caller that a person waits on waits for the shared rate budget.
pub const INTERACTIVE_WAIT: Duration = Duration::from_secs(2);

/// A SIP password as Telnyx returned it. Never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SipPassword(String);

impl SipPassword {
    /// The value, for the one place that seals it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SipPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A telephony credential as Telnyx returns it (fields callfleet uses).
#[derive(Debug, Clone, Deserialize)]
pub struct Credential {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub sip_username: String,
    #[serde(default)]
    pub sip_password: Option<SipPassword>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub expired: bool,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct CredentialPage {
    pub data: Vec<Credential>,
    pub total_pages: u32,
}

/// What to create.
#[derive(Debug, Clone)]
pub struct CreateCredential {
    pub connection_id: String,
    pub name: String,
    pub tag: String,
    pub expires_at: DateTime<Utc>,
}

/// A recording as `GET /recordings/{id}` describes it (fields callfleet uses).
#[derive(Debug, Clone, Deserialize)]
pub struct RecordingInfo {
    pub id: String,
    /// Fresh pre-signed download links by format (each valid for ten minutes).
    #[serde(default)]
    pub download_urls: RecordingDownloadUrls,
    #[serde(default)]
    pub duration_millis: Option<i64>,
}

/// Download links of a recording, by format.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RecordingDownloadUrls {
    pub mp3: Option<String>,
    pub wav: Option<String>,
}

/// Telnyx client; cheap to clone.
#[derive(Clone)]
pub struct TelnyxClient {
    http: reqwest::Client,
    base: String,
    api_key: String,
    limiter: RateLimiter,
    breaker: Arc<ApiBreaker>,
}

/// Defaults of the credentials breaker (see [`TelnyxClient::with_breaker`]).
const BREAKER_THRESHOLD: u32 = 10;
const BREAKER_COOLDOWN: Duration = Duration::from_secs(10);

impl fmt::Debug for TelnyxClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelnyxClient").field("base", &self.base).finish_non_exhaustive()
    }
}

impl TelnyxClient {
    /// A client for `base` (e.g. `https://api.telnyx.com/v2`).
    pub fn new(base: &str, api_key: &str, limiter: RateLimiter) -> Result<Self, TelnyxError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| TelnyxError::Permanent { status: 0, message: format!("HTTP client: {e}") })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            limiter,
            breaker: Arc::new(ApiBreaker::new("credentials", BREAKER_THRESHOLD, BREAKER_COOLDOWN)),
        })
    }

    /// Replaces the breaker: `threshold` consecutive API failures open it for `cooldown`.
    pub fn with_breaker(mut self, threshold: u32, cooldown: Duration) -> Self {
        self.breaker = Arc::new(ApiBreaker::new("credentials", threshold, cooldown));
        self
    }

    /// The credentials breaker's state now.
    pub fn breaker_state(&self) -> fleet_domain::breaker::BreakerState {
        self.breaker.state()
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, TelnyxError> {
        self.send_within(req, None).await
    }

    /// [`Self::send`], waiting at most `max_wait` for the rate budget when one is given.
    async fn send_within(
        &self,
        req: reqwest::RequestBuilder,
        max_wait: Option<Duration>,
    ) -> Result<reqwest::Response, TelnyxError> {
        let open = |wait| TelnyxError::Retryable { message: "circuit open".into(), retry_after: Some(wait) };
        if let Some(wait) = self.breaker.refuses() {
            return Err(open(wait));
        }
        let waited = std::time::Instant::now();
        match max_wait {
            None => self.limiter.acquire().await,
            Some(max) => {
                if tokio::time::timeout(max, self.limiter.acquire()).await.is_err() {
                    metrics::counter!("callfleet_telnyx_limiter_busy_total", "budget" => "housekeeping")
                        .increment(1);
                    return Err(TelnyxError::Busy { waited: max });
                }
            }
        }
        metrics::histogram!("callfleet_telnyx_limiter_wait_seconds", "budget" => "housekeeping")
            .record(waited.elapsed().as_secs_f64());
        self.breaker.allow().map_err(open)?;
        let pending = self.breaker.pending();
        let sent = req.bearer_auth(&self.api_key).send().await;
        pending.settle(sent.as_ref().map_or(true, |r| is_api_failure(r.status().as_u16())));
        let res = sent.map_err(|e| TelnyxError::Retryable {
            message: if e.is_timeout() { "request timed out".into() } else { format!("request failed: {e}") },
            retry_after: None,
        })?;
        let status = res.status().as_u16();
        if res.status().is_success() {
            return Ok(res);
        }
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let first = &body["errors"][0];
        let message = format!(
            "{} {}",
            first["code"].as_str().unwrap_or("?"),
            first["title"].as_str().unwrap_or("(no title)")
        );
        Err(match status {
            404 => TelnyxError::NotFound,
            408 | 429 | 500..=599 => {
                TelnyxError::Retryable { message: format!("{status} {message}"), retry_after }
            }
            _ => TelnyxError::Permanent { status, message },
        })
    }

    async fn data<T: for<'de> Deserialize<'de>>(res: reqwest::Response) -> Result<T, TelnyxError> {
        #[derive(Deserialize)]
        struct Data<T> {
            data: T,
        }
        res.json::<Data<T>>().await.map(|d| d.data).map_err(|e| TelnyxError::Retryable {
            message: format!("unreadable answer: {e}"),
            retry_after: None,
        })
    }

    /// `POST /telephony_credentials`.
    pub async fn create_credential(&self, c: &CreateCredential) -> Result<Credential, TelnyxError> {
        let body = json!({
            "connection_id": c.connection_id,
            "name": c.name,
            "tag": c.tag,
            "expires_at": c.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        let res =
            self.send(self.http.post(format!("{}/telephony_credentials", self.base)).json(&body)).await?;
        Self::data(res).await
    }

    /// `GET /telephony_credentials` with exact-match filters (`("tag", v)`, `("name", v)`), one page.
    pub async fn list_credentials(
        &self,
        filters: &[(&str, &str)],
        page: u32,
        size: u32,
    ) -> Result<CredentialPage, TelnyxError> {
        let mut query: Vec<(String, String)> =
            filters.iter().map(|(k, v)| (format!("filter[{k}]"), (*v).to_owned())).collect();
        query.push(("page[number]".into(), page.to_string()));
        query.push(("page[size]".into(), size.clamp(1, 250).to_string()));
        let res =
            self.send(self.http.get(format!("{}/telephony_credentials", self.base)).query(&query)).await?;
        #[derive(Deserialize)]
        struct Page {
            data: Vec<Credential>,
            #[serde(default)]
            meta: Value,
        }
        let page: Page = res.json().await.map_err(|e| TelnyxError::Retryable {
            message: format!("unreadable listing: {e}"),
            retry_after: None,
        })?;
        let total_pages = page.meta["total_pages"].as_u64().unwrap_or(1) as u32;
        Ok(CredentialPage { data: page.data, total_pages })
    }

    /// `DELETE /telephony_credentials/{id}`; `Ok(false)` when it was already gone (404).
    pub async fn delete_credential(&self, id: &str) -> Result<bool, TelnyxError> {
        match self.send(self.http.delete(format!("{}/telephony_credentials/{id}", self.base))).await {
            Ok(_) => Ok(true),
            Err(TelnyxError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST /telephony_credentials/{id}/token`: a login JWT (the body is the token, text/plain).
    /// A person waits on it, so it waits at most [`INTERACTIVE_WAIT`] for the rate budget.
    pub async fn credential_token(&self, id: &str) -> Result<String, TelnyxError> {
        let req = self.http.post(format!("{}/telephony_credentials/{id}/token", self.base));
        let res = self.send_within(req, Some(INTERACTIVE_WAIT)).await?;
        let token = res.text().await.map_err(|e| TelnyxError::Retryable {
            message: format!("unreadable token: {e}"),
            retry_after: None,
        })?;
        Ok(token.trim().to_owned())
    }
}

impl TelnyxClient {
    /// `GET /recordings/{id}`: the recording with fresh download links (a copy whose event URL
    /// expired gets a working one here). On the housekeeping budget: no caller waits on it.
    pub async fn recording(&self, id: &str) -> Result<RecordingInfo, TelnyxError> {
        let res = self.send(self.http.get(format!("{}/recordings/{id}", self.base))).await?;
        Self::data(res).await
    }
}

fn lenient_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else { return Ok(None) };
    Ok(DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc())))
}
