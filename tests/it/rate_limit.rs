//! The Telnyx rate limiter: shared across "replicas" through Redis, local when Redis is down.

use std::time::Instant;

use fleet_telnyx::RateLimiter;

fn redis_url() -> String {
    std::env::var("CALLFLEET_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Two limiters (two replicas) sharing 20 calls/s: 60 calls between them need three one-second
/// windows, so they take more than 1 s (the third window opens at least 1 s after the first call,
/// wherever in its window that fell). Unshared, each replica would do its 30 in two windows.
/// (A lower bound on wall time: a slow machine only makes it longer. Redis windows are wall-clock
/// seconds shared between processes, so tokio's paused clock cannot drive this one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_limit_is_shared_between_replicas() {
    let prefix = format!("cf-test:{}", ulid::Ulid::generate());
    let a = RateLimiter::shared(&redis_url(), &prefix, 20, 20).unwrap();
    let b = RateLimiter::shared(&redis_url(), &prefix, 20, 20).unwrap();
    let started = Instant::now();
    let calls = (0..60).map(|i| {
        let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { limiter.acquire().await }
    });
    futures::future::join_all(calls).await;
    assert!(a.is_shared() && b.is_shared(), "Redis was used");
    let took = started.elapsed().as_secs_f64();
    assert!(took >= 1.0, "60 calls at 20/s across two replicas took only {took:.2}s");
}

/// With Redis unreachable, calls still go out, under the local bucket (whose pacing is
/// unit-tested on tokio's paused clock in `fleet_platform::rate_limiter`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_falls_back_to_local_limits() {
    let port = crate::support::process::free_port();
    let limiter = RateLimiter::shared(&format!("redis://127.0.0.1:{port}"), "cf-test:down", 50, 5).unwrap();
    for _ in 0..15 {
        limiter.acquire().await;
    }
    assert!(!limiter.is_shared(), "fell back to local");
}
