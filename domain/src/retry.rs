//! Retry policy: a pure function from (attempt, failure, jitter) to "retry after d" or "dead".
//!
//! Backoff is exponential with "equal jitter" (half fixed, half random) and a cap, so retries of
//! many jobs that failed together spread out. A provider's `Retry-After` is a floor, never
//! shortened. Permanent failures and an exhausted budget go to the dead set, where an operator can
//! see and retry them. The caller persists the decision (a delayed job), so no worker slot is
//! held while waiting and a restart loses nothing.

use std::time::Duration;

/// How one attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Worth another try (timeouts, 5xx, 429), optionally not before `retry_after`.
    Retryable { retry_after: Option<Duration> },
    /// Will fail the same way again (4xx, bad input): straight to the dead set.
    Permanent,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    RetryAfter(Duration),
    Dead,
    /// The next attempt would come after the work's deadline (a ring that is over): drop it.
    Expired,
}

/// Budget and backoff of one job kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. 1 means "never retry".
    pub max_attempts: u32,
    /// Backoff before the second attempt.
    pub base: Duration,
    /// Longest backoff between two attempts.
    pub cap: Duration,
}

impl RetryPolicy {
    pub const fn new(max_attempts: u32, base: Duration, cap: Duration) -> Self {
        Self { max_attempts, base, cap }
    }

    /// The decision after attempt number `attempt` (1-based) failed. `jitter` is uniform in [0, 1).
    pub fn decide(&self, attempt: u32, failure: Failure, jitter: f64) -> RetryDecision {
        let retry_after = match failure {
            Failure::Permanent => return RetryDecision::Dead,
            Failure::Retryable { retry_after } => retry_after,
        };
        if attempt >= self.max_attempts {
            return RetryDecision::Dead;
        }
        let backoff = self.backoff(attempt, jitter);
        RetryDecision::RetryAfter(retry_after.map_or(backoff, |floor| backoff.max(floor)))
    }

    /// As [`Self::decide`] for work that is worthless after a deadline `remaining` from now: a
    /// retry that could not start before it is [`RetryDecision::Expired`] instead.
    pub fn decide_within(
        &self,
        attempt: u32,
        failure: Failure,
        jitter: f64,
        remaining: Option<Duration>,
    ) -> RetryDecision {
        match (self.decide(attempt, failure, jitter), remaining) {
            (RetryDecision::RetryAfter(delay), Some(left)) if delay >= left => RetryDecision::Expired,
            (decision, _) => decision,
        }
    }

    /// Backoff after attempt `attempt` failed: `min(cap, base·2^(attempt-1))`, half of it jittered.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1u32 << exp).min(self.cap);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy::new(5, Duration::from_secs(1), Duration::from_secs(60));
    const RETRYABLE: Failure = Failure::Retryable { retry_after: None };

    #[test]
    fn backoff_grows_and_is_capped() {
        let at = |n| POLICY.backoff(n, 1.0);
        assert_eq!(at(1), Duration::from_secs(1));
        assert_eq!(at(2), Duration::from_secs(2));
        assert_eq!(at(3), Duration::from_secs(4));
        assert_eq!(at(10), Duration::from_secs(60));
        assert_eq!(at(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_within_half_and_full() {
        for attempt in 1..12 {
            let lo = POLICY.backoff(attempt, 0.0);
            let hi = POLICY.backoff(attempt, 0.999);
            assert!(lo <= hi && hi <= POLICY.cap);
            assert_eq!(lo, POLICY.backoff(attempt, 1.0) / 2);
        }
    }

    #[test]
    fn budget_and_permanent_failures_end_in_the_dead_set() {
        assert!(matches!(POLICY.decide(4, RETRYABLE, 0.5), RetryDecision::RetryAfter(_)));
        assert_eq!(POLICY.decide(5, RETRYABLE, 0.5), RetryDecision::Dead);
        assert_eq!(POLICY.decide(1, Failure::Permanent, 0.5), RetryDecision::Dead);
        let once = RetryPolicy::new(1, Duration::from_secs(1), Duration::from_secs(1));
        assert_eq!(once.decide(1, RETRYABLE, 0.0), RetryDecision::Dead);
    }

    #[test]
    fn retries_past_the_deadline_expire() {
        let slow = Failure::Retryable { retry_after: Some(Duration::from_secs(60)) };
        assert_eq!(POLICY.decide_within(1, slow, 0.0, Some(Duration::from_secs(30))), RetryDecision::Expired);
        let soon = Failure::Retryable { retry_after: Some(Duration::from_secs(3)) };
        assert_eq!(
            POLICY.decide_within(1, soon, 0.0, Some(Duration::from_secs(30))),
            RetryDecision::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            POLICY.decide_within(1, soon, 0.0, None),
            RetryDecision::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(POLICY.decide_within(5, soon, 0.0, Some(Duration::from_secs(30))), RetryDecision::Dead);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let failure = Failure::Retryable { retry_after: Some(Duration::from_secs(3)) };
        assert_eq!(POLICY.decide(1, failure, 0.0), RetryDecision::RetryAfter(Duration::from_secs(3)));
        let short = Failure::Retryable { retry_after: Some(Duration::from_millis(10)) };
        assert_eq!(POLICY.decide(3, short, 1.0), RetryDecision::RetryAfter(Duration::from_secs(4)));
    }
}
