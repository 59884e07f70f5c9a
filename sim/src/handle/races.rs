//! The [`SimHandle`] operations the call races need (issue 10, item 5): the constant API latency,
//! per-call device behaviours, the race anomalies, the merged per-call timeline and the app-event
//! receiver. Kept apart from `handle.rs` so each file stays readable.

use std::time::Duration;

use super::SimHandle;
use crate::call_timeline::{CallSummary, CallTimeline};
use crate::error::SimError;
use crate::log::PushRecord;
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

    /// Every push reported delivered to the call model, in order.
    pub fn pushes(&self) -> Vec<PushRecord> {
        self.core.read(|w| w.log.pushes.clone())
    }
}
