//! Rate-limit arithmetic, shared by the local limiter and the Redis one.
//!
//! - [`TokenBucket`]: the in-process limiter (a replica alone, or when Redis is absent or down):
//!   `rate` tokens per second, bursts up to `burst`.
//! - [`FixedWindow`]: the cross-replica limiter's math: each window of `window` has `limit` slots
//!   counted in Redis (`INCR` + `EXPIRE` of a key named after the window); a caller over the limit
//!   waits until the next window starts.
//!
//! Both are pure: time comes in as an argument.

use std::time::Duration;

/// Token bucket state.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    /// Seconds (caller's clock) of the last update.
    last: f64,
}

impl TokenBucket {
    /// Full bucket at time `now` (seconds).
    pub fn new(rate_per_sec: f64, burst: u32, now: f64) -> Self {
        let burst = f64::from(burst.max(1));
        Self { rate: rate_per_sec.max(f64::MIN_POSITIVE), burst, tokens: burst, last: now }
    }

    /// Takes one token at `now` if there is one; otherwise says how long until there will be.
    pub fn try_take(&mut self, now: f64) -> Result<(), Duration> {
        if now > self.last {
            self.tokens = (self.tokens + (now - self.last) * self.rate).min(self.burst);
            self.last = now;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// Fixed-window counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindow {
    pub limit: u64,
    pub window: Duration,
}

impl FixedWindow {
    /// A limit of `per_sec` per second counted in windows of one second.
    pub fn per_second(per_sec: u64) -> Self {
        Self { limit: per_sec.max(1), window: Duration::from_secs(1) }
    }

    /// The window index that `now_ms` (Unix milliseconds) falls in.
    pub fn window_index(&self, now_ms: u64) -> u64 {
        now_ms / (self.window.as_millis() as u64).max(1)
    }

    /// The counter key for the window of `now_ms`.
    pub fn key(&self, prefix: &str, now_ms: u64) -> String {
        format!("{prefix}:{}", self.window_index(now_ms))
    }

    /// Given the counter value after our increment, `Ok` if we are within the limit, else how long
    /// until the next window opens.
    pub fn admit(&self, count: u64, now_ms: u64) -> Result<(), Duration> {
        if count <= self.limit {
            return Ok(());
        }
        let w = (self.window.as_millis() as u64).max(1);
        let next = (self.window_index(now_ms) + 1) * w;
        Err(Duration::from_millis(next - now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let mut b = TokenBucket::new(10.0, 3, 0.0);
        for _ in 0..3 {
            assert!(b.try_take(0.0).is_ok());
        }
        let wait = b.try_take(0.0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9);
        assert!(b.try_take(0.1).is_ok());
        assert!(b.try_take(0.1).is_err());
        // Never more than the burst, however long idle.
        assert!(b.try_take(100.0).is_ok() && b.try_take(100.0).is_ok() && b.try_take(100.0).is_ok());
        assert!(b.try_take(100.0).is_err());
    }

    #[test]
    fn bucket_sustains_its_rate() {
        let mut b = TokenBucket::new(50.0, 1, 0.0);
        let mut taken = 0;
        for ms in 0..10_000 {
            if b.try_take(f64::from(ms) / 1000.0).is_ok() {
                taken += 1;
            }
        }
        // 1 (full bucket) + 50/s × 10 s, give or take float rounding at the edges.
        assert!((480..=501).contains(&taken), "{taken}");
    }

    #[test]
    fn fixed_window_keys_and_waits() {
        let w = FixedWindow::per_second(5);
        assert_eq!(w.key("cf:telnyx", 12_345), "cf:telnyx:12");
        assert!(w.admit(5, 12_345).is_ok());
        assert_eq!(w.admit(6, 12_345), Err(Duration::from_millis(655)));
        assert_eq!(w.window_index(12_999), w.window_index(12_000));
    }
}
