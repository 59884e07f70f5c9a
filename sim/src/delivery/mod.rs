//! Webhook delivery: the wire envelope, signing, lanes, retries, failover, duplicates and drops.
//!
//! Design: an event is scheduled on the timeline (`Action::Deliver`). When due, [`World::dispatch`] builds the
//! envelope for that attempt (`meta.attempt`, `meta.delivered_to`), logs it, and hands it to the lane of its
//! leg (or call session, [`crate::LaneScope`]): a lane sends one request at a time, so a leg's events leave in order
//! while sessions proceed in parallel. The HTTP exchange happens outside the world lock; its result comes
//! back through [`World::delivery_finished`].
//!
//! Failure behaviour (Telnyx: "non-2xx twice → failover URL"): a non-2xx answer, a transport error, a timeout
//! or a drop is a failed attempt. After `primary_attempts` failures the event goes to the failover URL (if
//! configured) for up to `failover_attempts` attempts; then it is abandoned and a `webhook_abandoned` anomaly
//! is logged. Every retry keeps `data.id` and bumps `meta.attempt`. After a 2xx, with probability
//! `duplicate_rate`, the event is delivered once more (a duplicate, `attempt` + 1).

pub mod signing;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use rand::Rng;
use serde_json::{Map, Value, json};

use crate::log::{DeliveryOutcome, SentWebhook};
use crate::world::{Action, World};

/// An event, independent of delivery attempts.
pub(crate) struct EventData {
    /// Creation order of events (orders retries deterministically).
    pub seq: u64,
    pub id: String,
    pub event_type: &'static str,
    pub occurred_at: String,
    pub payload: Map<String, Value>,
    pub ccid: Option<String>,
    pub session: Option<String>,
}

/// The state of one event's delivery.
pub(crate) struct Delivery {
    pub event: Arc<EventData>,
    pub primary: Arc<str>,
    /// Lane key: the `call_control_id` (or `call_session_id`, per [`crate::LaneScope`]); `""` for none.
    pub lane: Arc<str>,
    /// Number of the next attempt (1-based).
    pub attempt: u32,
    pub primary_failures: u32,
    pub failover_failures: u32,
    /// This attempt is a deliberate duplicate of a successful delivery.
    pub duplicate: bool,
    /// Decided at the first dispatch: deliver once more after the first success.
    pub duplicate_planned: bool,
}

impl Delivery {
    pub fn first(event: Arc<EventData>, primary: Arc<str>, lane: Arc<str>) -> Self {
        Self {
            event,
            primary,
            lane,
            attempt: 1,
            primary_failures: 0,
            failover_failures: 0,
            duplicate: false,
            duplicate_planned: false,
        }
    }
}

/// One attempt handed to a lane.
pub(crate) struct Outgoing {
    pub log_index: usize,
    pub url: String,
    pub body: Bytes,
    /// `telnyx-timestamp` fixed at dispatch (sim clock), or `None` for the wall clock at send time.
    pub timestamp: Option<i64>,
    pub timeout: Duration,
    pub delivery: Box<Delivery>,
}

impl World {
    fn failover_url(&self, d: &Delivery) -> Option<String> {
        let f = self.config.failover_url.clone()?;
        (d.primary_failures >= self.knobs.primary_attempts.max(1)).then_some(f)
    }

    /// Runs a due delivery attempt: envelope, log, drop decision, hand-off to the lane.
    pub(crate) fn dispatch(&mut self, mut d: Box<Delivery>) {
        if d.attempt == 1 && self.knobs.duplicate_rate > 0.0 {
            d.duplicate_planned = self.drng.r#gen::<f64>() < self.knobs.duplicate_rate;
        }
        let failover = self.failover_url(&d);
        let on_failover = failover.is_some();
        let url = failover.unwrap_or_else(|| d.primary.to_string());
        let ev = &d.event;
        let envelope = json!({
            "data": {
                "event_type": ev.event_type,
                "id": ev.id,
                "occurred_at": ev.occurred_at,
                "payload": ev.payload,
                "record_type": "event",
            },
            "meta": {"attempt": d.attempt, "delivered_to": url},
        });
        let body = Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default());
        let dropped = self.faults.take_webhook_drop(ev.event_type)
            || (self.knobs.drop_rate > 0.0 && self.drng.r#gen::<f64>() < self.knobs.drop_rate);
        let seq = self.log.next_seq();
        let log_index = self.log.webhooks.len();
        self.log.webhooks.push(SentWebhook {
            seq,
            at_ms: self.now,
            event_id: ev.id.clone(),
            event_type: ev.event_type.to_owned(),
            attempt: d.attempt,
            url: url.clone(),
            failover: on_failover,
            call_control_id: ev.ccid.clone(),
            call_session_id: ev.session.clone(),
            body: body.clone(),
            outcome: if dropped { DeliveryOutcome::Dropped } else { DeliveryOutcome::Pending },
        });
        if dropped {
            self.attempt_failed(d, on_failover);
            return;
        }
        let timestamp = match self.config.timestamp_source {
            crate::config::TimestampSource::Sim => Some(self.now_utc().timestamp()),
            crate::config::TimestampSource::Wall => None,
        };
        let out = Outgoing { log_index, url, body, timestamp, timeout: self.knobs.http_timeout, delivery: d };
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.lanes.send(out).is_err() {
            // The dispatcher is gone: the simulator is shutting down.
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Records the result of an attempt a lane made and schedules what follows (retry, failover, duplicate).
    pub(crate) fn delivery_finished(&mut self, out: Outgoing, outcome: DeliveryOutcome) {
        let ok = matches!(outcome, DeliveryOutcome::Delivered { .. });
        let on_failover = self.log.webhooks.get(out.log_index).is_some_and(|w| w.failover);
        if let Some(entry) = self.log.webhooks.get_mut(out.log_index) {
            entry.outcome = outcome;
        }
        let mut d = out.delivery;
        if ok {
            if d.duplicate_planned && !d.duplicate {
                let due = self.now + self.knobs.duplicate_delay.as_millis() as u64;
                d.attempt += 1;
                d.duplicate = true;
                let key = d.event.seq;
                self.timeline.schedule_keyed(due, key, Action::Deliver(d));
            }
            return;
        }
        self.attempt_failed(d, on_failover);
    }

    fn attempt_failed(&mut self, mut d: Box<Delivery>, on_failover: bool) {
        if on_failover {
            d.failover_failures += 1;
        } else {
            d.primary_failures += 1;
        }
        let k = &self.knobs;
        let budget_left = if self.config.failover_url.is_some() {
            !on_failover || d.failover_failures < k.failover_attempts
        } else {
            d.primary_failures < k.primary_attempts + k.failover_attempts
        };
        if d.duplicate || !budget_left {
            if !d.duplicate {
                let detail = format!("{} {} after {} attempts", d.event.event_type, d.event.id, d.attempt);
                let ccid = d.event.ccid.clone();
                self.anomaly("webhook_abandoned", ccid.as_deref(), detail);
            }
            return;
        }
        d.attempt += 1;
        let due = self.now + self.knobs.retry_delay.as_millis() as u64;
        let key = d.event.seq;
        self.timeline.schedule_keyed(due, key, Action::Deliver(d));
    }
}

/// Sends one attempt (no world lock held). Returns its outcome.
pub(crate) async fn send(
    http: &reqwest::Client,
    signer: &signing::Signer,
    out: &Outgoing,
) -> DeliveryOutcome {
    let ts = out.timestamp.unwrap_or_else(|| chrono::Utc::now().timestamp()).to_string();
    let sig = signer.sign(&ts, &out.body);
    let res = http
        .post(&out.url)
        .header("content-type", "application/json")
        .header("user-agent", "telnyx-webhooks")
        .header("telnyx-signature-ed25519", sig)
        .header("telnyx-timestamp", ts)
        .timeout(out.timeout)
        .body(out.body.clone())
        .send()
        .await;
    match res {
        Ok(r) => {
            let status = r.status();
            // Drain the body so the connection goes back to the pool.
            let _ = r.bytes().await;
            if status.is_success() {
                DeliveryOutcome::Delivered { status: status.as_u16() }
            } else {
                DeliveryOutcome::Rejected { status: status.as_u16() }
            }
        }
        Err(e) => DeliveryOutcome::Error { message: e.to_string() },
    }
}
