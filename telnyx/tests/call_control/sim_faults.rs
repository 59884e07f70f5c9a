//! Failures injected through the simulator's fault API: 5xx then success, lost answers, the
//! dials-per-second limit, the breaker and the rate budgets, and the metrics they leave.

use std::time::Duration;

use fleet_domain::breaker::BreakerState;
use fleet_sim::{DialLimit, Fault};
use fleet_telnyx::call_control::{Dial, DialTo, Failure, Hangup, Outcome};
use fleet_telnyx::{CreateCredential, RateLimiter, TelnyxSettings};

use fleet_platform::metrics::sum;

use crate::support::{Env, NUMBER, id, settings};

fn error_fault(operation: &str, status: u16, count: u32) -> Fault {
    Fault::ApiError { operation: Some(operation.into()), status, code: None, count }
}

async fn live_leg(env: &Env, step: &str) -> String {
    let d = Dial::new(DialTo::One("+13125550190".into()), NUMBER, env.connection_id(), id(step));
    env.cc.dial(&d).await.unwrap().leg().call_control_id.clone()
}

#[tokio::test]
async fn a_500_is_wait_and_the_retry_with_the_same_id_succeeds() {
    let env = Env::start(settings(), |_| {}).await;
    let leg = live_leg(&env, "d").await;
    env.sim.inject(error_fault("hangup", 500, 1));
    let h = Hangup::new(id("job-1:hangup"));
    let err = env.cc.hangup(&leg, &h).await.unwrap_err();
    assert_eq!((err.status(), err.has_code("10007")), (Some(500), true), "{err}");
    assert_eq!(err.outcome(), Outcome::Wait { retry_after: None });
    env.cc.hangup(&leg, &h).await.unwrap();
    let sent = env.requests_of("hangup");
    assert_eq!(sent.iter().map(|r| r.status).collect::<Vec<_>>(), [500, 200]);
    assert_eq!(sent[0].body["command_id"], sent[1].body["command_id"]);
}

#[tokio::test]
async fn a_500_is_resent_at_once_when_configured() {
    let env = Env::start(TelnyxSettings { calls_immediate_retries: 1, ..settings() }, |_| {}).await;
    let leg = live_leg(&env, "d").await;
    env.sim.inject(error_fault("hangup", 503, 1));
    env.cc.hangup(&leg, &Hangup::new(id("h"))).await.unwrap();
    assert_eq!(env.requests_of("hangup").iter().map(|r| r.status).collect::<Vec<_>>(), [503, 200]);
}

#[tokio::test]
async fn a_lost_answer_times_out_and_the_resend_is_deduplicated() {
    let s = TelnyxSettings {
        calls_timeout: Duration::from_millis(300),
        calls_immediate_retries: 1,
        ..settings()
    };
    let env = Env::start(s, |_| {}).await;
    let leg = live_leg(&env, "d").await;
    env.sim.inject(Fault::ApiTimeout {
        operation: Some("hangup".into()),
        delay: Duration::from_millis(1_500),
        apply: true,
        count: 1,
    });
    env.cc.hangup(&leg, &Hangup::new(id("h"))).await.unwrap();
    let sent = env.requests_of("hangup");
    assert_eq!(sent.len(), 2);
    assert!(sent[1].deduplicated, "the first one took effect; the resend was ignored");

    // Without a resend the timeout is a Wait.
    let env =
        Env::start(TelnyxSettings { calls_timeout: Duration::from_millis(300), ..settings() }, |_| {}).await;
    let leg = live_leg(&env, "d").await;
    env.sim.inject(Fault::ApiTimeout {
        operation: Some("hangup".into()),
        delay: Duration::from_millis(1_500),
        apply: false,
        count: 1,
    });
    let err = env.cc.hangup(&leg, &Hangup::new(id("h"))).await.unwrap_err();
    assert_eq!(err.failure, Failure::Timeout);
    assert!(std::error::Error::source(&err).is_some(), "the transport error is kept");
    assert!(matches!(err.outcome(), Outcome::Wait { .. }));
}

#[tokio::test]
async fn the_dial_limit_is_wait_and_does_not_open_the_breaker() {
    let s = TelnyxSettings { breaker_threshold: 1, ..settings() };
    let env =
        Env::start(s, |c| c.dial_limit = Some(DialLimit { max_dials: 1, window: Duration::from_secs(5) }))
            .await;
    live_leg(&env, "d1").await;
    let err = env
        .cc
        .dial(&Dial::new(DialTo::One("+13125550191".into()), NUMBER, env.connection_id(), id("d2")))
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.has_code("90103")), (Some(429), true), "{err}");
    assert!(matches!(err.outcome(), Outcome::Wait { .. }));
    assert_eq!(env.cc.breaker_state(), BreakerState::Closed, "429 is our pace, not an unhealthy API");
}

#[tokio::test]
async fn the_breaker_opens_per_api() {
    let s = TelnyxSettings { breaker_threshold: 2, breaker_cooldown: Duration::from_secs(60), ..settings() };
    let env = Env::start(s, |_| {}).await;
    let open = || sum("callfleet_telnyx_errors_total", &[r#"api="call_control""#, r#"code="circuit_open""#]);
    let timed = || sum("callfleet_telnyx_request_duration_seconds_count", &[r#"command="hangup""#]);
    let waited = || sum("callfleet_telnyx_limiter_wait_seconds_count", &[]);
    let (open_before, timed_before, waited_before) = (open(), timed(), waited());
    let leg = live_leg(&env, "d").await;
    env.sim.inject(error_fault("hangup", 503, 2));
    for n in 0..2 {
        let e = env.cc.hangup(&leg, &Hangup::new(id(&format!("h{n}")))).await.unwrap_err();
        assert_eq!(e.status(), Some(503));
    }
    assert_eq!(env.cc.breaker_state(), BreakerState::Open);
    let before = env.sim.requests().len();
    let refused = env.cc.hangup(&leg, &Hangup::new(id("h3"))).await.unwrap_err();
    assert_eq!(refused.failure, Failure::CircuitOpen);
    let Outcome::Wait { retry_after: Some(wait) } = refused.outcome() else { panic!("{refused}") };
    assert!(wait > Duration::from_secs(50), "the remaining cooldown: {wait:?}");
    assert_eq!(env.sim.requests().len(), before, "nothing was sent");

    // The credentials API has its own breaker and budget: housekeeping still works.
    let cred = CreateCredential {
        connection_id: "cred-conn".into(),
        name: "alice".into(),
        tag: "t".into(),
        expires_at: chrono::Utc::now() + chrono::Duration::days(1),
    };
    env.creds.create_credential(&cred).await.unwrap();
    assert_eq!(env.creds.breaker_state(), BreakerState::Closed);

    // The breaker's state is a gauge (this process's one Call Control breaker); the rest count.
    let state = sum("callfleet_telnyx_breaker_state", &[r#"api="call_control""#]);
    assert_eq!(state, BreakerState::Open.as_gauge());
    assert_eq!(open() - open_before, 1.0, "the refused hangup");
    assert_eq!(timed() - timed_before, 2.0, "the two hangups sent were timed");
    assert!(waited() - waited_before >= 3.0, "each command sent waited for its budget");
}

#[tokio::test]
async fn a_live_call_command_waits_only_briefly_for_its_budget() {
    let s = TelnyxSettings { calls_max_wait: Duration::from_millis(50), ..settings() };
    let env = Env::with_limiter(s, RateLimiter::local(1, 1), |_| {}).await;
    let refused = || sum("callfleet_telnyx_limiter_refused_total", &[r#"budget="calls""#]);
    let refused_before = refused();
    let leg = live_leg(&env, "d").await; // takes the only slot of this second
    let started = std::time::Instant::now();
    let err = env.cc.hangup(&leg, &Hangup::new(id("h"))).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(500), "bounded wait");
    assert_eq!(err.failure, Failure::RateBudget);
    assert!(matches!(err.outcome(), Outcome::Wait { retry_after: Some(_) }));
    assert!(env.requests_of("hangup").is_empty(), "nothing was sent");
    // Housekeeping has its own budget and is not held up.
    env.creds.list_credentials(&[], 1, 10).await.unwrap();
    assert_eq!(refused() - refused_before, 1.0, "the hangup refused for its budget is counted");
}

#[tokio::test]
async fn errors_are_counted_by_command_and_code() {
    let env = Env::start(settings(), |_| {}).await;
    let gone = || {
        let labels = [r#"command="hangup""#, r#"code="90018""#, r#"outcome="done""#];
        sum("callfleet_telnyx_errors_total", &labels)
    };
    let before = gone();
    let leg = live_leg(&env, "d").await;
    env.cc.hangup(&leg, &Hangup::new(id("h1"))).await.unwrap();
    env.sim.settle().await;
    let err = env.cc.hangup(&leg, &Hangup::new(id("h2"))).await.unwrap_err();
    assert_eq!(err.outcome(), Outcome::Done);
    assert_eq!(gone() - before, 1.0, "one 90018 hangup, counted as done");
}
