//! Redis is only a shared rate-limit counter for the fleet: with it gone mid-run, calls still
//! ring, answer and end (the limiters fall back to their local buckets), on both engines.

use std::net::SocketAddr;
use std::time::Duration;

use fleet_domain::call::CallState;
use fleet_sim::RingBehaviour;
use fleet_store::{Engine, OrgSettings};

use crate::calls::{CALLER, NUMBER, answer_after, assert_events_once, assert_no_anomaly};
use crate::on_both;
use crate::support::calls::CallEnv;
use crate::support::proxy::Proxy;

on_both! {
    calls_ring_and_answer_with_redis_down => calls_ring_and_answer_with_redis_down_postgres, calls_ring_and_answer_with_redis_down_sqlite;
}

const FALLBACK: &str = "Redis rate limiter unavailable";

async fn calls_ring_and_answer_with_redis_down(engine: Engine) {
    crate::support::logs::capture();
    let redis_url = std::env::var("CALLFLEET_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let target: SocketAddr = redis_url.trim_start_matches("redis://").trim_end_matches('/').parse().unwrap();
    let proxy = Proxy::start(target).await;
    let prefix = format!("cf-test-{}", ulid::Ulid::generate());
    let via_proxy = format!("redis://{}", proxy.addr);
    let env = CallEnv::start_with(
        engine,
        &[("CALLFLEET_REDIS_URL", &via_proxy), ("CALLFLEET_REDIS_PREFIX", &prefix)],
    )
    .await;
    env.org("o1", OrgSettings::default()).await;
    env.user("u1", &["o1"], false).await;
    env.number(NUMBER, "o1", Some("u1"), 30).await;
    env.phone("android-1", "u1", "o1", "android", true, answer_after(1_000)).await;
    env.phone("ios-1", "u1", "o1", "ios", true, RingBehaviour::Never).await;

    // Redis up: the live-call commands are counted there, without a fallback.
    let first = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(3)).await;
    assert_eq!(env.call(&first.call_session_id).await.state, CallState::Answered);
    env.sim.remote_hangup(&first.call_control_id).unwrap();
    env.run_for(Duration::from_secs(2)).await;
    // The log is shared by every test of the process: only this test's limiters (its prefix) count.
    let fell_back = || {
        crate::support::logs::captured().lines().any(|line| line.contains(FALLBACK) && line.contains(&prefix))
    };
    assert!(!fell_back(), "Redis answered while it was up");

    // Redis gone (connections severed, new ones refused): the next call rings both phones, is
    // answered and bridged, and ends cleanly.
    proxy.cut();
    let dials_before = env.requests("dial").len();
    let second = env.call_from("+13125550001", NUMBER);
    env.run_for(Duration::from_secs(3)).await;
    let call = env.call(&second.call_session_id).await;
    assert_eq!(call.state, CallState::Answered, "{call:#?}");
    assert_eq!(call.answered_by_device_id(), Some("android-1"));
    assert_eq!(env.requests("dial").len() - dials_before, 2, "both phones dialed without Redis");
    env.sim.remote_hangup(&second.call_control_id).unwrap();
    env.run_for(Duration::from_secs(2)).await;
    assert_eq!(env.call(&second.call_session_id).await.state, CallState::Ended);
    assert_eq!(env.requests("bridge").len(), 2, "one bridge per call");
    assert_events_once(&env);
    assert_no_anomaly(&env);
    assert!(fell_back(), "the limiters fell back to local buckets");
    // The window keys this test wrote expire on their own (two windows, 2 s).
}
