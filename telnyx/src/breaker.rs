//! One circuit breaker per Telnyx API (`call_control`, `credentials`), over the pure state machine
//! [`fleet_domain::breaker::CircuitBreaker`], with its state exported as the gauge
//! `callfleet_telnyx_breaker_state{api}` (0 closed, 1 half-open, 2 open).
//!
//! Only signs of an unhealthy API count as failures: 5xx, 408, timeouts and transport errors. A
//! 429 does not (it is our own pace, answered with `Wait`; counting it would let a dial burst
//! block the hangups that end calls), nor does any other 4xx (the API answered, the request was
//! wrong). The breaker is per process; replicas each learn on their own.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use fleet_domain::breaker::{BreakerState, CircuitBreaker};

pub(crate) struct ApiBreaker {
    api: &'static str,
    inner: Mutex<CircuitBreaker>,
}

impl ApiBreaker {
    pub(crate) fn new(api: &'static str, threshold: u32, cooldown: Duration) -> Self {
        let b = Self { api, inner: Mutex::new(CircuitBreaker::new(threshold, cooldown)) };
        b.publish(&b.lock(), Instant::now());
        b
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CircuitBreaker> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, b: &CircuitBreaker, now: Instant) {
        metrics::gauge!("callfleet_telnyx_breaker_state", "api" => self.api).set(b.state(now).as_gauge());
    }

    /// `Err(remaining cooldown)` while open, without taking the half-open probe (a request that
    /// will wait for the rate limiter asks here first, then [`ApiBreaker::allow`] right before sending).
    pub(crate) fn refuses(&self) -> Option<Duration> {
        let now = Instant::now();
        let b = self.lock();
        (b.state(now) == BreakerState::Open).then(|| b.retry_in(now))
    }

    /// Whether a request may go out now (takes the probe when half-open).
    pub(crate) fn allow(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let mut b = self.lock();
        let allowed = b.allow(now);
        self.publish(&b, now);
        if allowed { Ok(()) } else { Err(b.retry_in(now).max(Duration::from_millis(100))) }
    }

    /// A guard for a request about to go out: settle it with the verdict; dropped unsettled (the
    /// request future was cancelled), it counts as a failure, so a half-open probe never leaks.
    pub(crate) fn pending(&self) -> Pending<'_> {
        Pending { breaker: self, settled: false }
    }

    /// Records the verdict of a request that went out.
    pub(crate) fn settle(&self, api_failure: bool) {
        let now = Instant::now();
        let mut b = self.lock();
        if api_failure {
            b.on_failure(now);
        } else {
            b.on_success();
        }
        self.publish(&b, now);
    }

    pub(crate) fn state(&self) -> BreakerState {
        self.lock().state(Instant::now())
    }
}

/// Whether an HTTP status says the API itself is unhealthy.
pub(crate) fn is_api_failure(status: u16) -> bool {
    status == 408 || status >= 500
}

pub(crate) struct Pending<'a> {
    breaker: &'a ApiBreaker,
    settled: bool,
}

impl Pending<'_> {
    pub(crate) fn settle(mut self, api_failure: bool) {
        self.settled = true;
        self.breaker.settle(api_failure);
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.settle(true);
        }
    }
}
