//! The events pool end to end, on both engines, against the simulator's app-event receiver
//! (`POST /sim/events`, which verifies Standard Webhooks signatures and dedupes by `webhook-id`):
//! a delivered event verifies with its type, data and decision timestamp; 503 twice then 200 is
//! delivered once through persisted backoff; a re-run sends the same `webhook-id`; a 400 ends in
//! the dead set and an operator's retry delivers it; neither the secret nor the body is logged at
//! info. Without workers: `Retry-After`, 409/410 and redirects from a scripted receiver, and events
//! off without `CALLFLEET_EVENTS_URL`.
//!
//! Delayed retries are driven with [`EventsEnv::settle`], which marks scheduled event jobs due
//! (the backoff is honoured in order, just not waited for).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use fleet_domain::retry::Failure;
use fleet_jobs::{AppEventMessage, Pool, event_envelope};
use fleet_sim::{Fault, SimConfig, SimHandle, Simulator};
use fleet_store::{Engine, NewJob};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::on_both;
use crate::support::fleet::test_config;
use crate::support::metrics::Delta;
use crate::support::{Fleet, TestDb, eventually, logs};

on_both! {
    a_delivered_event_verifies_at_the_receiver => a_delivered_event_verifies_at_the_receiver_postgres, a_delivered_event_verifies_at_the_receiver_sqlite;
    unavailable_twice_then_delivered_once => unavailable_twice_then_delivered_once_postgres, unavailable_twice_then_delivered_once_sqlite;
    a_rerun_sends_the_same_webhook_id => a_rerun_sends_the_same_webhook_id_postgres, a_rerun_sends_the_same_webhook_id_sqlite;
    a_refused_event_goes_to_the_dead_set => a_refused_event_goes_to_the_dead_set_postgres, a_refused_event_goes_to_the_dead_set_sqlite;
}

/// A marker in event data that must never reach a log line at info or above.
const PII: &str = "+13125550101-caller-number";

/// A fleet whose events pool sends to the simulator's receiver, with its secret.
struct EventsEnv {
    fleet: Fleet,
    sim: SimHandle,
    cancel: CancellationToken,
}

impl Drop for EventsEnv {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl EventsEnv {
    async fn start(engine: Engine) -> Self {
        let cancel = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim =
            Simulator::start(SimConfig::new("http://127.0.0.1:9/webhooks/telnyx"), listener, cancel.clone())
                .await
                .unwrap();
        let (url, secret) = (sim.events_url(), sim.events_secret().to_owned());
        let vars = [("CALLFLEET_EVENTS_URL", url.as_str()), ("CALLFLEET_EVENTS_SECRET", secret.as_str())];
        let fleet = Fleet::start_on(TestDb::new(engine).await, &vars).await;
        fleet.start_workers(&[Pool::Events]);
        Self { fleet, sim, cancel }
    }

    async fn emit(&self, event: &AppEventMessage) -> bool {
        let inserted =
            self.fleet.store.enqueue(&[NewJob::once(event_envelope(event.clone()))]).await.unwrap();
        inserted[0]
    }

    /// Waits until the events pool has nothing ready or running; returns (scheduled, dead).
    async fn idle(&self) -> (u64, u64) {
        let store = self.fleet.store.clone();
        eventually(30, "the events pool to go idle", || {
            let store = store.clone();
            async move {
                let stats = store.queue_stats().await.ok()?;
                let pool = stats.into_iter().find(|s| s.pool == Pool::Events.as_str())?;
                (pool.ready == 0 && pool.running == 0).then_some((pool.scheduled, pool.dead))
            }
        })
        .await
    }

    /// Runs the pool until nothing is left, making every scheduled retry due at once.
    async fn settle(&self) {
        while self.idle().await.0 > 0 {
            self.fleet.test_db.make_scheduled_due(Pool::Events.as_str()).await;
        }
    }

    fn rejected(&self) -> Vec<String> {
        let anomalies = self.sim.anomalies();
        anomalies.into_iter().filter(|a| a.kind == "app_event_rejected").map(|a| a.detail).collect()
    }
}

fn answered(session: &str, occurred_at_ms: i64) -> AppEventMessage {
    AppEventMessage {
        id: format!("evt_{session}_answered"),
        event_type: "call.answered".into(),
        occurred_at_ms,
        data: json!({
            "call_session_id": session,
            "org_id": "org-1",
            "device_id": "d-1",
            "from": PII,
        }),
    }
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn a_delivered_event_verifies_at_the_receiver(engine: Engine) {
    logs::capture();
    let delivered =
        Delta::of("callfleet_events_total", &[r#"type="call.answered""#, r#"outcome="delivered""#]);
    let timed = Delta::of("callfleet_event_delivery_seconds_count", &[r#"type="call.answered""#]);
    let env = EventsEnv::start(engine).await;
    // Decided ten minutes ago (a backlog): the body keeps the decision time, while the signed
    // webhook-timestamp is the send time, inside the receiver's ±5 min tolerance.
    let decided = Utc::now().timestamp_millis() - 10 * 60 * 1000;
    let event = answered("s-ok", decided);
    assert!(env.emit(&event).await);
    env.settle().await;

    let received = env.sim.app_events();
    assert_eq!(received.len(), 1, "rejected: {:?}", env.rejected());
    let got = &received[0];
    assert_eq!(got.webhook_id, "evt_s-ok_answered");
    assert_eq!(got.event_type.as_deref(), Some("call.answered"));
    assert_eq!(got.call_session_id.as_deref(), Some("s-ok"));
    assert_eq!(got.body["timestamp"], rfc3339(decided));
    assert_eq!(got.body["data"], event.data);
    assert_eq!(got.body.as_object().unwrap().len(), 3, "only type, timestamp, data: {}", got.body);
    assert!((got.webhook_timestamp - Utc::now().timestamp()).abs() <= 5, "signed at send time");
    assert_eq!(got.duplicates, 0);
    assert!(env.rejected().is_empty());
    assert_eq!((delivered.since(), timed.since()), (1.0, 1.0));

    // Logs: never the secret (nor its key), never the event body at info or above.
    let logs = logs::captured();
    assert!(logs.contains("App event delivered."), "the delivery is logged");
    let secret = env.sim.events_secret();
    let key = secret.trim_start_matches("whsec_");
    assert!(!logs.contains(secret) && !logs.contains(key), "the events secret leaked into the logs");
    for line in
        logs.lines().filter(|l| !l.contains(r#""level":"DEBUG""#) && !l.contains(r#""level":"TRACE""#))
    {
        assert!(!line.contains(PII), "event data logged above debug: {line}");
    }
}

async fn unavailable_twice_then_delivered_once(engine: Engine) {
    let env = EventsEnv::start(engine).await;
    let retries = Delta::of("callfleet_events_total", &[r#"outcome="retry""#]);
    env.sim.inject(Fault::AppEventError { status: 503, count: 2 });
    env.emit(&answered("s-503", Utc::now().timestamp_millis())).await;

    // The first 503 leaves a scheduled retry (persisted backoff, no worker slot held).
    assert_eq!(env.idle().await, (1, 0));
    assert!(env.sim.app_events().is_empty());
    env.settle().await;
    assert!(env.sim.faults().is_empty(), "both 503s were consumed");
    let received = env.sim.app_events();
    assert_eq!(received.len(), 1, "delivered once");
    assert_eq!(received[0].duplicates, 0, "and not again after the 200");
    assert!(env.fleet.store.dead_jobs(Some(Pool::Events), 10).await.unwrap().is_empty());
    assert_eq!(retries.since(), 2.0, "one retry per 503");
}

async fn a_rerun_sends_the_same_webhook_id(engine: Engine) {
    let env = EventsEnv::start(engine).await;
    let event = answered("s-twice", Utc::now().timestamp_millis());
    assert!(env.emit(&event).await);
    env.settle().await;
    // Asked again (a replayed webhook): the same event is the same job, already done.
    assert!(!env.emit(&event).await);
    // The job runs again anyway (a worker died before its ack, or an operator's retry).
    let runtime = fleet_workers::Runtime::from_config(&env.fleet.config, env.fleet.store.clone()).unwrap();
    fleet_workers::run_job(&runtime, &event_envelope(event.clone())).await.unwrap();

    let received = env.sim.app_events();
    assert_eq!(received.len(), 1, "the receiver counts one event");
    assert_eq!(received[0].webhook_id, event.id);
    assert_eq!(received[0].duplicates, 1, "and one redelivery of the same webhook-id");
    assert!(env.rejected().is_empty(), "the second signature verified too");
}

async fn a_refused_event_goes_to_the_dead_set(engine: Engine) {
    let env = EventsEnv::start(engine).await;
    let failed = Delta::of("callfleet_events_total", &[r#"outcome="failed""#]);
    env.sim.inject(Fault::AppEventError { status: 400, count: 1 });
    env.emit(&answered("s-400", Utc::now().timestamp_millis())).await;
    env.settle().await;

    let dead = env.fleet.store.dead_jobs(Some(Pool::Events), 10).await.unwrap();
    assert_eq!(dead.len(), 1, "visible to operators");
    assert_eq!(dead[0].kind, "emit_event.v1");
    assert_eq!(dead[0].attempts, 1, "a 400 is not retried");
    let error = dead[0].last_error.as_deref().unwrap_or("");
    assert!(error.contains("HTTP 400") && error.contains("retry-dead"), "{error}");
    assert!(env.sim.app_events().is_empty());
    assert_eq!(failed.since(), 1.0);

    // The receiver is fixed; the operator retries the dead job and it is delivered once.
    assert!(env.fleet.store.retry_dead_job(&dead[0].id).await.unwrap());
    env.settle().await;
    let received = env.sim.app_events();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].webhook_id, "evt_s-400_answered", "the same webhook-id after the retry");
    assert!(env.fleet.store.dead_jobs(Some(Pool::Events), 10).await.unwrap().is_empty());
}

/// A receiver that answers from a script (status, `Retry-After`), for answers the simulator does
/// not give.
async fn scripted_receiver(script: Vec<(u16, Option<&'static str>)>) -> String {
    use axum::http::{HeaderMap, StatusCode};
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let script = script.clone();
            async move {
                let (status, retry_after) = script.lock().unwrap().pop_front().unwrap_or((204, None));
                let mut headers = HeaderMap::new();
                headers.insert("location", "http://127.0.0.1:9/elsewhere".parse().unwrap());
                if let Some(after) = retry_after {
                    headers.insert("retry-after", after.parse().unwrap());
                }
                (StatusCode::from_u16(status).unwrap(), headers)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hooks")
}

/// How each answer ends one attempt: `Retry-After` is the floor of a retry (seconds or a date),
/// 409 and 410 end the job, a redirect is not followed and is permanent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_decide_retry_done_or_dead() {
    let url = scripted_receiver(vec![
        (429, Some("7")),
        (503, None),
        (409, None),
        (410, None),
        (307, None),
        (401, None),
        (200, None),
    ])
    .await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let test_db = TestDb::new(Engine::Sqlite).await;
    let config =
        test_config(&test_db.url, &[("CALLFLEET_EVENTS_URL", &url), ("CALLFLEET_EVENTS_SECRET", secret)]);
    let runtime = fleet_workers::Runtime::from_config(&config, test_db.open().await.store()).unwrap();
    let job = event_envelope(answered("s-scripted", Utc::now().timestamp_millis()));
    let attempt = || fleet_workers::run_job(&runtime, &job);

    let e = attempt().await.unwrap_err();
    assert_eq!(e.failure, Failure::Retryable { retry_after: Some(Duration::from_secs(7)) }, "{e}");
    let e = attempt().await.unwrap_err();
    assert_eq!(e.failure, Failure::Retryable { retry_after: None }, "{e}");
    attempt().await.expect("409: the receiver already has it");
    attempt().await.expect("410: dropped, not retried");
    let e = attempt().await.unwrap_err();
    assert_eq!(e.failure, Failure::Permanent, "a redirect is not followed: {e}");
    assert!(e.message.contains("HTTP 307"), "{e}");
    let e = attempt().await.unwrap_err();
    assert_eq!(e.failure, Failure::Permanent, "{e}");
    attempt().await.expect("200");
}

/// Without `CALLFLEET_EVENTS_URL` events are off: jobs complete as skipped. A URL without a
/// secret, or a malformed secret, stops the start with an error naming the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_off_are_skipped_and_bad_settings_stop_the_start() {
    let skipped = Delta::of("callfleet_events_total", &[r#"outcome="skipped""#]);
    let test_db = TestDb::new(Engine::Sqlite).await;
    let store = test_db.open().await.store();
    let off = test_config(&test_db.url, &[]);
    let runtime = fleet_workers::Runtime::from_config(&off, store.clone()).unwrap();
    assert!(runtime.events.is_none());
    let job = event_envelope(answered("s-off", Utc::now().timestamp_millis()));
    fleet_workers::run_job(&runtime, &job).await.expect("skipped, not failed");
    assert_eq!(skipped.since(), 1.0);

    let url = ("CALLFLEET_EVENTS_URL", "http://127.0.0.1:9/hooks");
    for extra in [vec![url], vec![url, ("CALLFLEET_EVENTS_SECRET", "whsec_not base64!")]] {
        let config = test_config(&test_db.url, &extra);
        let error = fleet_workers::Runtime::from_config(&config, store.clone()).err().expect("refused");
        assert!(error.to_string().contains("CALLFLEET_EVENTS_SECRET"), "{error}");
    }
}
