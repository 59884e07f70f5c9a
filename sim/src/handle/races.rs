//! The [`SimHandle`] operations the call races need (issue 10, item 5): the constant API latency,
//! per-call device behaviours, the race anomalies, the merged per-call timeline and the app-event
//! receiver. Kept apart from `handle.rs` so each file stays readable.

use std::time::Duration;

use super::SimHandle;
use crate::call_timeline::{CallSummary, CallTimeline};
use crate::error::SimError;
use crate::log::{PushRecord, ReceivedEvent};
use crate::scenario::DeviceBehaviour;

impl SimHandle {
    /// The constant latency every `/v2` answer is held for.
    pub fn api_latency(&self) -> Duration {
        self.core.api_latency()
    }

    /// Sets the constant Telnyx API latency (applies to requests arriving from now on).
    pub fn set_api_latency(&self, latency: Duration) {
        self.core.set_api_latency(latency);
    }

    /// Changes a scripted device's behaviour for every later call (see [`DeviceBehaviour`]).
    pub fn set_device_behaviour(&self, device_id: &str, behaviour: DeviceBehaviour) -> Result<(), SimError> {
        self.core.with(|w| w.set_device_behaviour(device_id, behaviour))
    }

    /// Changes a scripted device's behaviour for the legs of one call (`call_session_id`: legs dialed with
    /// `link_to` share the linked leg's session); it wins over the device's own behaviour.
    pub fn set_call_device_behaviour(
        &self,
        call_session_id: &str,
        device_id: &str,
        behaviour: DeviceBehaviour,
    ) -> Result<(), SimError> {
        self.core.with(|w| w.set_call_device_behaviour(call_session_id, device_id, behaviour))
    }

    /// How long after a call was answered or ended a leg may ring, or a device stay undismissed, before
    /// it is an anomaly.
    pub fn set_anomaly_grace(&self, grace: Duration) {
        self.core.with(|w| w.rings.grace = grace.as_millis() as u64);
    }

    /// The merged timeline of one call (`call_session_id`): its legs, then every webhook attempt,
    /// command, push, app event and anomaly of it in order; `None` if the simulator has no leg of it.
    pub fn call_timeline(&self, call_session_id: &str) -> Option<CallTimeline> {
        self.core.read(|w| w.call_timeline(call_session_id))
    }

    /// One line per call session the simulator has legs of, oldest first.
    pub fn call_summaries(&self) -> Vec<CallSummary> {
        self.core.read(|w| w.call_summaries())
    }

    /// Where the fleet sends its app events (`CALLFLEET_EVENTS_URL`): `<base>/sim/events`.
    pub fn events_url(&self) -> String {
        format!("{}/sim/events", self.base_url)
    }

    /// The Standard Webhooks secret app events must be signed with (`CALLFLEET_EVENTS_SECRET`).
    pub fn events_secret(&self) -> &str {
        &self.core.events_secret
    }

    /// The verified app events received, once per `webhook-id`, in arrival order.
    pub fn app_events(&self) -> Vec<ReceivedEvent> {
        self.core.read(|w| w.log.app_events.clone())
    }

    /// `POST /sim/events`: verifies, then records (see [`crate::app_events`]). Returns the status and,
    /// for a refusal, its reason.
    pub(crate) fn receive_app_event(
        &self,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> (axum::http::StatusCode, Option<String>) {
        use axum::http::StatusCode;
        let verified = self.core.events.verify(headers, body, chrono::Utc::now().timestamp());
        self.core.with(|w| {
            let (id, ts) = match verified {
                Ok(v) => v,
                Err(crate::app_events::Rejected(why)) => {
                    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("?");
                    w.anomaly("app_event_rejected", None, format!("webhook-id {id}: {why}"));
                    return (StatusCode::UNAUTHORIZED, Some(why));
                }
            };
            if let Some(status) = w.faults.take_app_event_error() {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return (status, Some("injected app_event_error".into()));
            }
            let Ok(body) = serde_json::from_slice::<serde_json::Value>(body) else {
                return (StatusCode::BAD_REQUEST, Some("the body is not JSON".into()));
            };
            if let Some(&i) = w.log.app_event_index.get(&id) {
                w.log.app_events[i].duplicates += 1;
                return (StatusCode::NO_CONTENT, None);
            }
            let seq = w.log.next_seq();
            let event = ReceivedEvent {
                seq,
                at_ms: w.now,
                webhook_id: id.clone(),
                webhook_timestamp: ts,
                event_type: body["type"].as_str().map(str::to_owned),
                call_session_id: body["data"]["call_session_id"].as_str().map(str::to_owned),
                body,
                duplicates: 0,
            };
            w.log.app_event_index.insert(id, w.log.app_events.len());
            w.log.app_events.push(event);
            (StatusCode::NO_CONTENT, None)
        })
    }

    /// Every push reported delivered to the call model, in order.
    pub fn pushes(&self) -> Vec<PushRecord> {
        self.core.read(|w| w.log.pushes.clone())
    }
}
