//! The [`SimHandle`] operations the call races need (issue 10, item 5): the constant API latency,
//! per-call device behaviours, the race anomalies, the merged per-call timeline and the app-event
//! receiver. Kept apart from `handle.rs` so each file stays readable.

use std::time::Duration;

use super::SimHandle;

impl SimHandle {
    /// The constant latency every `/v2` answer is held for.
    pub fn api_latency(&self) -> Duration {
        self.core.api_latency()
    }

    /// Sets the constant Telnyx API latency (applies to requests arriving from now on).
    pub fn set_api_latency(&self, latency: Duration) {
        self.core.set_api_latency(latency);
    }
}
