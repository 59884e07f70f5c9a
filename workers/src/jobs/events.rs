//! The events pool: one app event to the app backend, signed per Standard Webhooks.
//!
//! Each attempt POSTs the same body with the same `webhook-id` (the event's id, fixed when its
//! call decision committed) and a fresh `webhook-timestamp`, so a receiver that dedupes on
//! `webhook-id` sees each event once even when a crash between its 2xx and our ack, or an
//! operator's retry, sends it again. The receiver's answer decides (`Answer` in
//! `fleet_domain::app_events`):
//! - 2xx → done; 409 (the receiver already has it) → done; 410 (the receiver will never take it)
//!   → done, logged as a warning and counted `gone`, not retried;
//! - 408, 425, 429, 5xx, timeouts, connection errors → retryable: the executor persists the
//!   backoff (12 attempts, 1 s doubling to 300 s) as a delayed job, `Retry-After` as a floor;
//! - any other status (other 4xx, a 3xx: redirects are not followed) → permanent: the dead set,
//!   where `callfleet retry-dead` sends it again once the receiver or the URL is fixed.
//!
//! Without `CALLFLEET_EVENTS_URL` app events are off: each job completes as `skipped` (one info
//! line per process, then debug lines). The body is never logged above debug; the secret never.
//!
//! Metrics: `callfleet_events_total{type, outcome}` (outcome `delivered`, `duplicate`, `gone`,
//! `retry`, `failed`, `skipped`; `type` is one of the five event types or `other`) and
//! `callfleet_event_delivery_seconds{type}`, from the decision (`occurred_at_ms`) to acceptance,
//! across retries.

use std::sync::atomic::Ordering;

use chrono::Utc;
use fleet_domain::app_events::{Answer, metric_type};
use fleet_domain::retry::Failure;
use fleet_jobs::AppEventMessage;

use crate::events::Sent;
use crate::{JobError, Runtime};

fn count(event_type: &'static str, outcome: &'static str) {
    metrics::counter!("callfleet_events_total", "type" => event_type, "outcome" => outcome).increment(1);
}

pub(crate) async fn emit(runtime: &Runtime, event: &AppEventMessage) -> Result<(), JobError> {
    let event_type = metric_type(&event.event_type);
    let id = event.id.as_str();
    let Some(client) = runtime.events.as_ref() else {
        if !runtime.events_off_logged.swap(true, Ordering::Relaxed) {
            tracing::info!(
                "App events are off (CALLFLEET_EVENTS_URL is not set); event jobs complete as skipped."
            );
        }
        tracing::debug!(event_id = id, event_type = %event.event_type, "App event skipped.");
        count(event_type, "skipped");
        return Ok(());
    };
    tracing::debug!(event_id = id, body = %event.data, "Sending app event.");
    let (status, answer) = match client.send(event).await {
        Sent::Answered { status, answer } => (status, answer),
        Sent::Transport { timeout, detail } => {
            count(event_type, "retry");
            let what = if timeout { "timed out" } else { "unreachable" };
            return Err(JobError::retryable(format!("app backend {what}: {detail}")));
        }
        Sent::Unsendable { detail } => {
            count(event_type, "failed");
            return Err(JobError::permanent(format!("app event {id:?} cannot be sent: {detail}")));
        }
    };
    count(event_type, answer.outcome());
    match answer {
        Answer::Accepted => {
            let latency_ms = (Utc::now().timestamp_millis() - event.occurred_at_ms).max(0);
            metrics::histogram!("callfleet_event_delivery_seconds", "type" => event_type)
                .record(latency_ms as f64 / 1000.0);
            tracing::info!(event_id = id, event_type = %event.event_type, status, latency_ms, "App event delivered.");
            Ok(())
        }
        Answer::Duplicate => {
            tracing::info!(event_id = id, event_type = %event.event_type, status, "App backend already had this event.");
            Ok(())
        }
        Answer::Gone => {
            tracing::warn!(
                event_id = id,
                event_type = %event.event_type,
                status,
                "App backend answered 410 Gone; event dropped, not retried."
            );
            Ok(())
        }
        Answer::Retry { after } => Err(JobError {
            failure: Failure::Retryable { retry_after: after },
            message: format!("app backend answered HTTP {status}"),
        }),
        Answer::Refused => Err(JobError::permanent(format!(
            "app backend refused the event with HTTP {status}; not retried (fix the receiver or \
             CALLFLEET_EVENTS_URL, then `callfleet retry-dead`)"
        ))),
    }
}
