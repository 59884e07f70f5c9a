//! The rate limiter every Telnyx call passes through.
//!
//! Local mode: a token bucket ([`fleet_domain::rate::TokenBucket`]) per process. A caller over the
//! limit waits (asynchronously) for its token; nothing is dropped. The limiter is shared by every
//! clone of a client, so all pools of one process share one budget.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleet_domain::rate::TokenBucket;

/// Limits outbound calls per second; cheap to clone (clones share the budget).
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    per_sec: f64,
    epoch: Instant,
    bucket: Mutex<TokenBucket>,
}

impl RateLimiter {
    /// `per_sec` calls per second in this process, with bursts of up to `burst`.
    pub fn local(per_sec: u32, burst: u32) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        Self {
            inner: Arc::new(Inner {
                per_sec,
                epoch: Instant::now(),
                bucket: Mutex::new(TokenBucket::new(per_sec, burst, 0.0)),
            }),
        }
    }

    /// No limit worth mentioning (tests of other behaviour).
    pub fn unlimited() -> Self {
        Self::local(1_000_000, 1_000_000)
    }

    /// The configured rate (calls per second).
    pub fn per_sec(&self) -> f64 {
        self.inner.per_sec
    }

    /// Waits until one call may go out.
    pub async fn acquire(&self) {
        loop {
            let now = self.inner.epoch.elapsed().as_secs_f64();
            let wait = match self.inner.bucket.lock() {
                Ok(mut b) => b.try_take(now),
                Err(_) => Ok(()),
            };
            match wait {
                Ok(()) => return,
                Err(d) => tokio::time::sleep(d.max(Duration::from_micros(200))).await,
            }
        }
    }
}
