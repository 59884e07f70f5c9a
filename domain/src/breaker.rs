//! A circuit breaker per outside provider (FCM, APNs, Telnyx), as a pure state machine.
//!
//! Closed: requests flow; `threshold` consecutive failures open it. Open: requests are refused
//! (the caller reschedules them with backoff instead of hammering a failing provider) until
//! `cooldown` has passed. Half-open: one probe is let through; its success closes the breaker,
//! its failure opens it again for another cooldown. Time is passed in, so it is tested without a
//! clock; the caller keeps one per provider (and per process) and exports its state as a metric.

use std::time::{Duration, Instant};

/// The breaker's state, for decisions and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// 0 closed, 1 half-open, 2 open (a gauge value).
    pub fn as_gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    opened_at: Option<Instant>,
    probing: bool,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self { threshold: threshold.max(1), cooldown, failures: 0, opened_at: None, probing: false }
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match self.opened_at {
            None => BreakerState::Closed,
            Some(at) if now.duration_since(at) >= self.cooldown => BreakerState::HalfOpen,
            Some(_) => BreakerState::Open,
        }
    }

    /// Whether a request may go out now. In half-open, only one probe at a time.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.state(now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen if self.probing => false,
            BreakerState::HalfOpen => {
                self.probing = true;
                true
            }
        }
    }

    /// How long until a refused request is worth trying again.
    pub fn retry_in(&self, now: Instant) -> Duration {
        self.opened_at.map_or(Duration::ZERO, |at| self.cooldown.saturating_sub(now.duration_since(at)))
    }

    pub fn on_success(&mut self) {
        self.failures = 0;
        self.opened_at = None;
        self.probing = false;
    }

    /// A provider failure (5xx, timeout, 429) — not a per-token error such as an unregistered token.
    pub fn on_failure(&mut self, now: Instant) {
        self.probing = false;
        if self.opened_at.is_some() {
            self.opened_at = Some(now);
            return;
        }
        self.failures += 1;
        if self.failures >= self.threshold {
            self.opened_at = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_probes_after_cooldown() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            assert!(b.allow(t0));
            b.on_failure(t0);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
        b.on_failure(t0);
        assert_eq!(b.state(t0), BreakerState::Open);
        assert!(!b.allow(t0 + Duration::from_secs(9)));
        assert_eq!(b.retry_in(t0 + Duration::from_secs(4)), Duration::from_secs(6));
        let later = t0 + Duration::from_secs(10);
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        assert!(b.allow(later), "one probe");
        assert!(!b.allow(later), "only one probe at a time");
        b.on_failure(later);
        assert_eq!(b.state(later + Duration::from_secs(5)), BreakerState::Open, "a failed probe reopens");
        let again = later + Duration::from_secs(10);
        assert!(b.allow(again));
        b.on_success();
        assert_eq!(b.state(again), BreakerState::Closed);
        assert!(b.allow(again) && b.allow(again));
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(2, Duration::from_secs(1));
        b.on_failure(t0);
        b.on_success();
        b.on_failure(t0);
        assert_eq!(b.state(t0), BreakerState::Closed);
    }
}
