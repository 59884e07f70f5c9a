//! The rate limiter every outbound provider call passes through (Telnyx, FCM, APNs).
//!
//! - **Shared** (`CALLFLEET_REDIS_URL` set): a fixed window per second counted in Redis
//!   (`INCR` + `PEXPIRE` in one MULTI, key `<prefix>:<window index>`), so all replicas together stay
//!   under the limit. The arithmetic is [`fleet_domain::rate::FixedWindow`].
//! - **Local** (no Redis, or Redis down or slow): a token bucket per process
//!   ([`fleet_domain::rate::TokenBucket`]). Each Redis call has a 250 ms timeout; on any failure the
//!   call falls back to the local bucket at once and Redis is not tried again for 5 s. Calls are
//!   never refused because Redis is down — only paced locally.
//!
//! A caller over the limit waits (asynchronously) for its slot; nothing is dropped. Clones share
//! one budget, so all pools of a process share it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

// tokio's clock (the same as the system's, except in tests that pause it).
use tokio::time::Instant;

use fleet_domain::rate::{FixedWindow, TokenBucket};

const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
const REDIS_BACKOFF: Duration = Duration::from_secs(5);

/// `CALLFLEET_REDIS_URL` is not a valid Redis URL (the value itself is never shown).
#[derive(Debug, thiserror::Error)]
#[error("CALLFLEET_REDIS_URL is not a valid Redis URL ({0})")]
pub struct RateLimiterError(String);

/// Limits outbound calls per second; cheap to clone (clones share the budget).
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    per_sec: f64,
    epoch: Instant,
    bucket: Mutex<TokenBucket>,
    shared: Option<Shared>,
}

struct Shared {
    client: redis::Client,
    prefix: String,
    window: FixedWindow,
    conn: tokio::sync::Mutex<Option<redis::aio::ConnectionManager>>,
    /// Redis failed at this instant: use the local bucket until `REDIS_BACKOFF` has passed.
    down_since: Mutex<Option<Instant>>,
    /// What `callfleet_rate_limiter_redis_up` last said (0 unset, 1 up, 2 down): the gauge is
    /// written when it changes, not on every call.
    reported: std::sync::atomic::AtomicU8,
}

impl RateLimiter {
    /// `per_sec` calls per second in this process, with bursts of up to `burst`.
    pub fn local(per_sec: u32, burst: u32) -> Self {
        Self::build(per_sec, burst, None)
    }

    /// `per_sec` calls per second across every process sharing `redis_url` and `prefix`; the local
    /// bucket (same rate) is the fallback. Fails only on a malformed URL (no connection is made yet).
    pub fn shared(
        redis_url: &str,
        prefix: &str,
        per_sec: u32,
        burst: u32,
    ) -> Result<Self, redis::RedisError> {
        let shared = Shared {
            client: redis::Client::open(redis_url)?,
            prefix: prefix.to_owned(),
            window: FixedWindow::per_second(u64::from(per_sec.max(1))),
            conn: tokio::sync::Mutex::new(None),
            down_since: Mutex::new(None),
            reported: std::sync::atomic::AtomicU8::new(0),
        };
        Ok(Self::build(per_sec, burst, Some(shared)))
    }

    fn build(per_sec: u32, burst: u32, shared: Option<Shared>) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        Self {
            inner: Arc::new(Inner {
                per_sec,
                epoch: Instant::now(),
                bucket: Mutex::new(TokenBucket::new(per_sec, burst, 0.0)),
                shared,
            }),
        }
    }

    /// The limiter of one provider as configured: shared through `CALLFLEET_REDIS_URL` under
    /// `<CALLFLEET_REDIS_PREFIX>:ratelimit:<name>` when set, else local. Bursts equal the rate.
    pub fn from_config(config: &crate::Config, name: &str, per_sec: u32) -> Result<Self, RateLimiterError> {
        Self::from_config_with_burst(config, name, per_sec, per_sec)
    }

    /// As [`Self::from_config`], with bursts of up to `burst` calls.
    pub fn from_config_with_burst(
        config: &crate::Config,
        name: &str,
        per_sec: u32,
        burst: u32,
    ) -> Result<Self, RateLimiterError> {
        match &config.redis_url {
            Some(url) => {
                let prefix = format!("{}:ratelimit:{name}", config.redis_prefix);
                Self::shared(url.expose(), &prefix, per_sec, burst)
                    .map_err(|e| RateLimiterError(format!("{:?}", e.kind())))
            }
            None => Ok(Self::local(per_sec, burst)),
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

    /// Whether calls are currently counted in Redis (false: local fallback or local mode).
    pub fn is_shared(&self) -> bool {
        self.inner.shared.as_ref().is_some_and(|s| !s.backing_off())
    }

    /// Waits until one call may go out.
    pub async fn acquire(&self) {
        if let Some(shared) = &self.inner.shared {
            if !shared.backing_off() {
                match shared.acquire().await {
                    Ok(()) => {
                        shared.redis_up(true);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            key = %shared.prefix,
                            "Redis rate limiter unavailable; limiting locally for 5 s."
                        );
                        shared.mark_down();
                    }
                }
            }
        }
        self.acquire_local().await;
    }

    async fn acquire_local(&self) {
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

impl Shared {
    fn backing_off(&self) -> bool {
        let mut down = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        match *down {
            Some(t) if t.elapsed() < REDIS_BACKOFF => true,
            Some(_) => {
                *down = None;
                false
            }
            None => false,
        }
    }

    /// `callfleet_rate_limiter_redis_up{limiter}`: 1 while calls are counted in Redis, 0 while
    /// this process limits alone (the fallback).
    fn redis_up(&self, up: bool) {
        let state = if up { 1 } else { 2 };
        if self.reported.swap(state, std::sync::atomic::Ordering::Relaxed) != state {
            let value = if up { 1.0 } else { 0.0 };
            metrics::gauge!("callfleet_rate_limiter_redis_up", "limiter" => self.prefix.clone()).set(value);
        }
    }

    fn mark_down(&self) {
        self.redis_up(false);
        *self.down_since.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    async fn acquire(&self) -> Result<(), String> {
        loop {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default();
            let count = tokio::time::timeout(REDIS_TIMEOUT, self.incr(now_ms))
                .await
                .map_err(|_| "Redis timed out".to_owned())??;
            match self.window.admit(count, now_ms) {
                Ok(()) => return Ok(()),
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    async fn incr(&self, now_ms: u64) -> Result<u64, String> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            let manager = self.client.get_connection_manager().await.map_err(|e| e.to_string())?;
            *guard = Some(manager);
        }
        let Some(conn) = guard.as_mut() else { return Err("no Redis connection".into()) };
        let mut conn = conn.clone();
        drop(guard);
        let key = self.window.key(&self.prefix, now_ms);
        let ttl = (self.window.window.as_millis() as i64) * 2;
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .incr(&key, 1u64)
            .pexpire(&key, ttl)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Driven by tokio's paused clock, not the wall clock: the pacing is exact on any machine.
    #[tokio::test(start_paused = true)]
    async fn the_local_bucket_paces_calls() {
        let limiter = RateLimiter::local(50, 5);
        let started = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO, "a burst of five goes at once");
        for _ in 0..10 {
            limiter.acquire().await;
        }
        let took = started.elapsed();
        // Ten more at 50/s: 200 ms (sleeps round up to the timer's millisecond).
        assert!(took >= Duration::from_millis(199) && took < Duration::from_millis(215), "{took:?}");
    }
}
