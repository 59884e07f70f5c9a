//! The app-event client: one HTTP POST per attempt to `CALLFLEET_EVENTS_URL`, signed per Standard
//! Webhooks with `CALLFLEET_EVENTS_SECRET` (payload and signature: `fleet_domain::app_events`).
//!
//! Built once per process from configuration ([`EventsClient::from_config`]): a malformed secret,
//! or a URL without a secret, stops the start; no URL means app events are off (the handler
//! completes each event job as `skipped`). Timeouts: 5 s to connect, 15 s for the whole exchange;
//! redirects are not followed (a POST must not turn into a GET elsewhere), so a 3xx is refused.
//! The secret is held as the decoded key only and never printed.

use std::time::Duration;

use chrono::Utc;
use fleet_domain::app_events::{Answer, EventSecret, parse_retry_after, payload};
use fleet_jobs::AppEventMessage;
use fleet_platform::Config;

/// Time allowed to open the connection to the receiver.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for one whole attempt (connect, send, answer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the events client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum EventsConfigError {
    #[error("CALLFLEET_EVENTS_SECRET: {0}")]
    Secret(#[from] fleet_domain::app_events::SecretError),
    #[error(
        "CALLFLEET_EVENTS_SECRET is required when CALLFLEET_EVENTS_URL is set (app events are signed; \
         use the whsec_… secret the app backend verifies with)"
    )]
    MissingSecret,
    #[error("app-event HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Sends app events to the app backend; cheap to clone.
#[derive(Clone, Debug)]
pub struct EventsClient {
    http: reqwest::Client,
    url: String,
    secret: EventSecret,
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Sent {
    /// The receiver answered `status`, meaning `answer`.
    Answered { status: u16, answer: Answer },
    /// No answer: timeout, connection refused, reset (always worth a retry).
    Transport { timeout: bool, detail: String },
    /// The request could not be built (a `webhook-id` that is not a valid header value): the
    /// same message will never be sendable.
    Unsendable { detail: String },
}

impl EventsClient {
    /// `Ok(None)` when `CALLFLEET_EVENTS_URL` is not set (app events are off). A secret is
    /// validated whenever one is given, URL or not.
    pub fn from_config(config: &Config) -> Result<Option<Self>, EventsConfigError> {
        let secret = config.events_secret.as_ref().map(|s| EventSecret::parse(s.expose())).transpose()?;
        let Some(url) = config.events_url.clone() else { return Ok(None) };
        let secret = secret.ok_or(EventsConfigError::MissingSecret)?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("callfleet/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Some(Self { http, url, secret }))
    }

    /// Where events go.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One delivery attempt of `event`: the body is rebuilt from the message (the same bytes every
    /// time), the `webhook-timestamp` is now.
    pub async fn send(&self, event: &AppEventMessage) -> Sent {
        let body = payload(&event.event_type, event.occurred_at_ms, &event.data);
        let now = Utc::now();
        let timestamp = now.timestamp();
        let signature = self.secret.sign(&event.id, timestamp, &body);
        let request = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body);
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, now));
                Sent::Answered { status, answer: Answer::of(status, retry_after) }
            }
            Err(e) if e.is_builder() => Sent::Unsendable { detail: error_detail(e) },
            Err(e) => Sent::Transport { timeout: e.is_timeout(), detail: error_detail(e) },
        }
    }
}

/// The error and its causes, without the URL (which may carry credentials in its user info).
fn error_detail(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: std::collections::HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|k| vars.get(k).cloned()).unwrap()
    }

    #[test]
    fn start_errors_name_the_variable_and_never_the_secret() {
        let url = ("CALLFLEET_EVENTS_URL", "https://app.example/hooks");
        let missing = EventsClient::from_config(&config(&[url])).unwrap_err();
        assert!(matches!(missing, EventsConfigError::MissingSecret));
        assert!(missing.to_string().contains("CALLFLEET_EVENTS_SECRET"), "{missing}");

        let bad = "whsec_not base64!";
        let malformed =
            EventsClient::from_config(&config(&[url, ("CALLFLEET_EVENTS_SECRET", bad)])).unwrap_err();
        let shown = malformed.to_string();
        assert!(shown.starts_with("CALLFLEET_EVENTS_SECRET: "), "{shown}");
        assert!(!shown.contains("not base64!"), "the secret is not echoed: {shown}");

        // A secret is checked even while events are off, so it does not fail later.
        let alone = EventsClient::from_config(&config(&[("CALLFLEET_EVENTS_SECRET", "whsec_c2hvcnQ=")]));
        assert!(matches!(alone, Err(EventsConfigError::Secret(_))));
    }

    #[test]
    fn no_url_means_events_are_off() {
        assert!(EventsClient::from_config(&config(&[])).unwrap().is_none());
        assert!(
            EventsClient::from_config(&config(&[("CALLFLEET_EVENTS_SECRET", SECRET)])).unwrap().is_none()
        );
        let on = config(&[
            ("CALLFLEET_EVENTS_URL", "https://app.example/hooks"),
            ("CALLFLEET_EVENTS_SECRET", SECRET),
        ]);
        let client = EventsClient::from_config(&on).unwrap().unwrap();
        assert_eq!(client.url(), "https://app.example/hooks");
        assert!(!format!("{client:?}").contains("MfKQ9r8G"), "Debug hides the key");
    }
}
