//! The push pool end to end, on both engines, against the simulator's FCM and APNs: retries with
//! persisted backoff (503 then 200 delivered once; `Retry-After` honoured), dead tokens pruned,
//! 500 forever into the dead set, rings that are over never delivered late, org-scoped
//! `call_ended`, the circuit breaker in metrics, and the rate limit shared through Redis.
//!
//! Delayed retries are driven with [`PushEnv::settle`], which advances the queue's clock (marks
//! scheduled push jobs due) instead of sleeping; only the `Retry-After` test lets real time run,
//! because "not before 3 s" is what it checks.

use std::time::Duration;

use chrono::Utc;
use fleet_domain::push::{CallEndedReason, Provider, PushMessage};
use fleet_jobs::Pool;
use fleet_sim::push::{Outcome, Provider as SimProvider, Script};
use fleet_sim::{SimConfig, SimHandle, Simulator};
use fleet_store::push::{enqueue_for_user, push_job};
use fleet_store::{DeviceRegistration, Engine, Organization, User};
use tokio_util::sync::CancellationToken;

use crate::on_both;
use crate::support::metrics::Delta;
use crate::support::{Fleet, TestDb, eventually};

on_both! {
    unavailable_then_ok_is_delivered_exactly_once => unavailable_then_ok_is_delivered_exactly_once_postgres, unavailable_then_ok_is_delivered_exactly_once_sqlite;
    retry_after_is_honoured => retry_after_is_honoured_postgres, retry_after_is_honoured_sqlite;
    dead_tokens_are_pruned_without_retry => dead_tokens_are_pruned_without_retry_postgres, dead_tokens_are_pruned_without_retry_sqlite;
    server_errors_forever_end_in_the_dead_set => server_errors_forever_end_in_the_dead_set_postgres, server_errors_forever_end_in_the_dead_set_sqlite;
    rings_that_are_over_are_not_delivered => rings_that_are_over_are_not_delivered_postgres, rings_that_are_over_are_not_delivered_sqlite;
    call_ended_is_org_scoped => call_ended_is_org_scoped_postgres, call_ended_is_org_scoped_sqlite;
    prune_keeps_a_token_the_app_refreshed => prune_keeps_a_token_the_app_refreshed_postgres, prune_keeps_a_token_the_app_refreshed_sqlite;
}

const FCM_TOKEN: &str = "fcm-token-android-1";
const VOIP_TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// A fleet whose push pool talks to the simulator's FCM and APNs, with org-1 (user u1) and org-2
/// (user u2) provisioned.
pub struct PushEnv {
    pub fleet: Fleet,
    pub sim: SimHandle,
    cancel: CancellationToken,
}

impl Drop for PushEnv {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl PushEnv {
    pub async fn start(engine: Engine, extra: &[(&str, &str)]) -> Self {
        let cancel = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim =
            Simulator::start(SimConfig::new("http://127.0.0.1:9/webhooks/telnyx"), listener, cancel.clone())
                .await
                .unwrap();
        let test_db = TestDb::new(engine).await;
        let key_path = std::env::temp_dir().join(format!("callfleet-apns-{}.p8", ulid::Ulid::generate()));
        let push_env = sim.push_env(&key_path, "com.example.phone").unwrap();
        let mut vars: Vec<(&str, &str)> = push_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        vars.extend_from_slice(extra);
        let fleet = Fleet::start_on(test_db, &vars).await;
        for (org, user) in [("org-1", "u1"), ("org-2", "u2")] {
            let name = Some(format!("{org} name"));
            fleet
                .store
                .upsert_organization(&Organization { id: org.into(), name, ..Organization::default() })
                .await
                .unwrap();
            let user = User { id: user.into(), org_id: org.into(), name: None, ..User::default() };
            fleet.store.upsert_user(&user).await.unwrap();
        }
        Self { fleet, sim, cancel }
    }

    /// Registers a device (Android: `token` is its FCM token; iOS: its VoIP token).
    pub async fn device(&self, id: &str, user: &str, org: &str, platform: &str, token: &str) {
        let android = platform == "android";
        let reg = DeviceRegistration {
            id: id.into(),
            user_id: user.into(),
            org_id: org.into(),
            platform: platform.into(),
            push_token: android.then(|| token.to_owned()),
            voip_token: (!android).then(|| token.to_owned()),
            app_version: None,
            name: None,
        };
        self.fleet.store.register_device(&reg).await.unwrap();
    }

    pub fn script(&self, provider: SimProvider, token: &str, script: impl Into<Script>) {
        self.sim.push().script(provider, token, script);
    }

    pub fn attempts(&self, provider: SimProvider, token: &str) -> usize {
        self.sim.push().attempts(provider, token).len()
    }

    pub fn delivered(&self, token: &str) -> usize {
        self.sim.push().delivered(token).len()
    }

    /// Waits until the push pool has nothing ready or running (scheduled retries may remain).
    pub async fn idle(&self) -> (u64, u64) {
        let store = self.fleet.store.clone();
        eventually(30, "the push pool to go idle", || {
            let store = store.clone();
            async move {
                let stats = store.queue_stats().await.ok()?;
                let push = stats.into_iter().find(|s| s.pool == Pool::Push.as_str())?;
                (push.ready == 0 && push.running == 0).then_some((push.scheduled, push.dead))
            }
        })
        .await
    }

    /// Runs the push pool until nothing is left to do, advancing the queue's clock over every
    /// scheduled retry (the persisted backoff is honoured in order, just not waited for).
    pub async fn settle(&self) {
        loop {
            let (scheduled, _) = self.idle().await;
            if scheduled == 0 {
                return;
            }
            self.make_due().await;
        }
    }

    async fn make_due(&self) {
        self.fleet.test_db.make_scheduled_due(Pool::Push.as_str()).await;
    }

    pub async fn token_of(&self, device: &str) -> (Option<String>, Option<String>) {
        let d = self.fleet.store.device(device).await.unwrap().expect("device").registration;
        (d.push_token, d.voip_token)
    }
}

fn ended(session: &str, org: &str) -> PushMessage {
    PushMessage::CallEnded {
        call_session_id: session.into(),
        org_id: org.into(),
        reason: CallEndedReason::AnsweredElsewhere,
    }
}

fn ringing(session: &str, ring_ends_at: i64) -> PushMessage {
    PushMessage::IncomingCall {
        call_session_id: session.into(),
        call_control_id: format!("v3:{session}"),
        caller_number: "+13125550101".into(),
        caller_name: Some("Ada".into()),
        org_id: "org-1".into(),
        org_name: "org-1 name".into(),
        channel_number: "+13125550199".into(),
        ring_ends_at,
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

async fn unavailable_then_ok_is_delivered_exactly_once(engine: Engine) {
    let env = PushEnv::start(engine, &[]).await;
    let counted = [r#"provider="fcm""#, r#"provider="apns""#].map(|provider| {
        (
            Delta::of("callfleet_push_total", &[provider, r#"outcome="sent""#]),
            Delta::of("callfleet_push_delivery_seconds_count", &[provider, r#"kind="call_ended""#]),
        )
    });
    env.device("d-android", "u1", "org-1", "android", FCM_TOKEN).await;
    env.device("d-ios", "u1", "org-1", "ios", VOIP_TOKEN).await;
    env.script(SimProvider::Fcm, FCM_TOKEN, vec![Outcome::Status(503)]);
    env.script(SimProvider::Apns, VOIP_TOKEN, vec![Outcome::Status(503)]);
    env.fleet.start_workers(&[Pool::Push]);

    let message = ended("s-once", "org-1");
    let store = env.fleet.store.as_ref();
    assert_eq!(enqueue_for_user(store, "u1", &message, &[], now_ms()).await.unwrap(), 2);
    env.settle().await;
    for (provider, token) in [(SimProvider::Fcm, FCM_TOKEN), (SimProvider::Apns, VOIP_TOKEN)] {
        assert_eq!(env.attempts(provider, token), 2, "{token}: one 503, one 200");
        assert_eq!(env.delivered(token), 1, "{token}: delivered exactly once");
    }
    for (sent, timed) in &counted {
        assert_eq!((sent.since(), timed.since()), (1.0, 1.0), "one push sent and timed per provider");
    }
    let delivered = &env.sim.push().delivered(FCM_TOKEN)[0];
    assert_eq!(delivered.data["type"], "call_ended");
    assert_eq!(delivered.data["reason"], "answered_elsewhere");

    // Asked again (a replayed webhook): the same push is the same job, already done.
    assert_eq!(enqueue_for_user(store, "u1", &message, &[], now_ms()).await.unwrap(), 0);
    // The job delivered again at least once (a worker died before its ack): no second ring.
    let runtime = fleet_workers::Runtime::from_config(&env.fleet.config, env.fleet.store.clone()).unwrap();
    let again = push_job("d-android", &message, now_ms()).envelope;
    fleet_workers::run_job(&runtime, &again).await.unwrap();
    env.settle().await;
    assert_eq!(env.delivered(FCM_TOKEN), 1, "a re-run does not ring the phone twice");
    assert!(env.fleet.store.dead_jobs(Some(Pool::Push), 10).await.unwrap().is_empty());
}

async fn retry_after_is_honoured(engine: Engine) {
    let env = PushEnv::start(engine, &[]).await;
    env.device("d-android", "u1", "org-1", "android", FCM_TOKEN).await;
    env.script(SimProvider::Fcm, FCM_TOKEN, vec![Outcome::RetryAfter(429, Duration::from_secs(3))]);
    env.fleet.start_workers(&[Pool::Push]);
    enqueue_for_user(env.fleet.store.as_ref(), "u1", &ended("s-429", "org-1"), &[], now_ms()).await.unwrap();

    // The 429 leaves a scheduled retry (no worker slot held) and nothing else.
    let (scheduled, dead) = env.idle().await;
    assert_eq!((scheduled, dead), (1, 0));
    assert_eq!(env.attempts(SimProvider::Fcm, FCM_TOKEN), 1);
    // Real time runs here: the retry comes by itself, and not before the provider's 3 s.
    let sim = env.sim.push().clone();
    eventually(20, "the retry to deliver", || {
        let sim = sim.clone();
        async move { (!sim.delivered(FCM_TOKEN).is_empty()).then_some(()) }
    })
    .await;
    let attempts = env.sim.push().attempts(SimProvider::Fcm, FCM_TOKEN);
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].reply.retry_after_secs, Some(3));
    let gap = attempts[1].unix_ms - attempts[0].unix_ms;
    assert!(gap >= 3_000, "retried {gap} ms after a Retry-After of 3 s");
    assert_eq!(env.delivered(FCM_TOKEN), 1);
}

async fn dead_tokens_are_pruned_without_retry(engine: Engine) {
    let env = PushEnv::start(engine, &[]).await;
    let gone_ios = "b1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    env.device("d-android", "u1", "org-1", "android", FCM_TOKEN).await;
    env.device("d-ios-410", "u1", "org-1", "ios", VOIP_TOKEN).await;
    env.device("d-ios-bad", "u1", "org-1", "ios", gone_ios).await;
    env.script(SimProvider::Fcm, FCM_TOKEN, vec![Outcome::Unregistered]);
    env.script(SimProvider::Apns, VOIP_TOKEN, vec![Outcome::Status(410)]);
    env.script(SimProvider::Apns, gone_ios, vec![Outcome::BadDeviceToken]);
    env.fleet.start_workers(&[Pool::Push]);
    let message = ended("s-prune", "org-1");
    assert_eq!(enqueue_for_user(env.fleet.store.as_ref(), "u1", &message, &[], now_ms()).await.unwrap(), 3);

    let (scheduled, dead) = env.idle().await;
    assert_eq!((scheduled, dead), (0, 0), "a dead token is neither retried nor a dead job");
    assert_eq!(env.attempts(SimProvider::Fcm, FCM_TOKEN), 1);
    assert_eq!(env.attempts(SimProvider::Apns, VOIP_TOKEN), 1);
    assert_eq!(env.attempts(SimProvider::Apns, gone_ios), 1);
    assert_eq!(env.token_of("d-android").await, (None, None), "UNREGISTERED pruned the FCM token");
    assert_eq!(env.token_of("d-ios-410").await, (None, None), "410 pruned the VoIP token");
    assert_eq!(env.token_of("d-ios-bad").await, (None, None), "BadDeviceToken pruned the VoIP token");

    // With no token left, the next call's pushes are not even enqueued.
    let next = ended("s-prune-2", "org-1");
    assert_eq!(enqueue_for_user(env.fleet.store.as_ref(), "u1", &next, &[], now_ms()).await.unwrap(), 0);
}

async fn server_errors_forever_end_in_the_dead_set(engine: Engine) {
    let env = PushEnv::start(engine, &[]).await;
    env.device("d-android", "u1", "org-1", "android", FCM_TOKEN).await;
    env.script(SimProvider::Fcm, FCM_TOKEN, Script::always(Outcome::Status(500)));
    env.fleet.start_workers(&[Pool::Push]);
    enqueue_for_user(env.fleet.store.as_ref(), "u1", &ended("s-500", "org-1"), &[], now_ms()).await.unwrap();
    env.settle().await;

    let budget = fleet_jobs::Job::SendPushV1 {
        device_id: String::new(),
        message: ended("x", "org-1"),
        requested_at_ms: 0,
    }
    .retry_policy()
    .max_attempts as usize;
    assert_eq!(env.attempts(SimProvider::Fcm, FCM_TOKEN), budget, "every attempt of the budget, no more");
    let dead = env.fleet.store.dead_jobs(Some(Pool::Push), 10).await.unwrap();
    assert_eq!(dead.len(), 1, "visible to operators");
    assert_eq!(dead[0].kind, "send_push.v1");
    assert!(dead[0].last_error.as_deref().unwrap_or("").contains("INTERNAL"), "{:?}", dead[0].last_error);
    assert_eq!(env.delivered(FCM_TOKEN), 0);

    // FCM recovers; the operator retries the dead push and it is delivered once.
    env.sim.push().clear_script(SimProvider::Fcm, FCM_TOKEN);
    assert!(env.fleet.store.retry_dead_job(&dead[0].id).await.unwrap());
    env.settle().await;
    assert_eq!(env.delivered(FCM_TOKEN), 1);
    assert!(env.fleet.store.dead_jobs(Some(Pool::Push), 10).await.unwrap().is_empty());
}

async fn rings_that_are_over_are_not_delivered(engine: Engine) {
    let env = PushEnv::start(engine, &[]).await;
    env.device("d-android", "u1", "org-1", "android", FCM_TOKEN).await;
    env.device("d-ios", "u1", "org-1", "ios", VOIP_TOKEN).await;
    env.fleet.start_workers(&[Pool::Push]);
    let store = env.fleet.store.as_ref();

    // Queued while ringing, run after the ring ended (a backlog): dropped, not delivered late.
    let over = ringing("s-over", Utc::now().timestamp() - 1);
    assert_eq!(enqueue_for_user(store, "u1", &over, &[], now_ms()).await.unwrap(), 2);
    env.settle().await;
    assert_eq!(env.attempts(SimProvider::Fcm, FCM_TOKEN) + env.attempts(SimProvider::Apns, VOIP_TOKEN), 0);

    // Still ringing, but the provider asks for a wait longer than the ring: no retry, no dead job.
    env.script(SimProvider::Fcm, FCM_TOKEN, vec![Outcome::RetryAfter(503, Duration::from_secs(20))]);
    let short = ringing("s-short", Utc::now().timestamp() + 10);
    env.fleet.store.enqueue(&[push_job("d-android", &short, now_ms())]).await.unwrap();
    let (scheduled, dead) = env.idle().await;
    assert_eq!((scheduled, dead), (0, 0), "the retry would miss the ring: dropped");
    assert_eq!(env.attempts(SimProvider::Fcm, FCM_TOKEN), 1);
    assert_eq!(env.delivered(FCM_TOKEN), 0);

    // A ring in progress is delivered, with its deadline as the FCM TTL and a collapse id.
    let live = ringing("s-live", Utc::now().timestamp() + 30);
    env.fleet.store.enqueue(&[push_job("d-ios", &live, now_ms())]).await.unwrap();
    env.settle().await;
    let pushes = env.sim.push().delivered(VOIP_TOKEN);
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].data["type"], "incoming_call");
    assert_eq!(pushes[0].data["call_session_id"], "s-live");
    let request = &env.sim.push().attempts(SimProvider::Apns, VOIP_TOKEN)[0];
    assert_eq!(request.headers.get("apns-push-type").map(String::as_str), Some("voip"));
    assert_eq!(request.headers.get("apns-collapse-id").map(String::as_str), Some("incoming_call:s-live"));
}

async fn call_ended_is_org_scoped(engine: Engine) {
    let env = PushEnv::start(engine, &[]).await;
    let other_token = "fcm-token-org-2";
    let moved_token = "fcm-token-moved";
    env.device("d-1", "u1", "org-1", "android", FCM_TOKEN).await;
    env.device("d-moving", "u1", "org-1", "android", moved_token).await;
    env.device("d-2", "u2", "org-2", "android", other_token).await;
    let message = ended("s-org", "org-1");
    let store = env.fleet.store.as_ref();

    // Fan-out only selects the user's devices in the message's org.
    assert_eq!(enqueue_for_user(store, "u2", &message, &[], now_ms()).await.unwrap(), 0);
    // A job that names a device of another org anyway (a bug upstream) sends nothing.
    store.enqueue(&[push_job("d-2", &message, now_ms())]).await.unwrap();
    // A device that signs into org-2 after its push was queued gets nothing from org-1.
    assert_eq!(enqueue_for_user(store, "u1", &message, &[], now_ms()).await.unwrap(), 2);
    let moved = DeviceRegistration {
        id: "d-moving".into(),
        user_id: "u2".into(),
        org_id: "org-2".into(),
        platform: "android".into(),
        push_token: Some(moved_token.into()),
        voip_token: None,
        app_version: None,
        name: None,
    };
    store.register_device(&moved).await.unwrap();

    env.fleet.start_workers(&[Pool::Push]);
    env.settle().await;
    assert_eq!(env.delivered(FCM_TOKEN), 1, "the org-1 device is dismissed");
    assert_eq!(
        env.attempts(SimProvider::Fcm, other_token),
        0,
        "an org-2 device never gets org-1's call_ended"
    );
    assert_eq!(env.attempts(SimProvider::Fcm, moved_token), 0, "nor does a device that moved to org-2");
    assert!(store.dead_jobs(Some(Pool::Push), 10).await.unwrap().is_empty());
}

/// Ten tokens failing at once open the FCM breaker: the gauge says so, and the retries are
/// refused locally (rescheduled) instead of reaching the failing provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_provider_opens_the_breaker() {
    let env = PushEnv::start(Engine::Sqlite, &[]).await;
    let unavailable = Delta::of("callfleet_push_total", &[r#"outcome="retry""#, r#"reason="UNAVAILABLE""#]);
    let refused = Delta::of("callfleet_push_total", &[r#"reason="circuit_open""#]);
    for i in 0..10 {
        let token = format!("fcm-failing-{i}");
        env.device(&format!("d-{i}"), "u1", "org-1", "android", &token).await;
        env.script(SimProvider::Fcm, &token, Script::always(Outcome::Status(503)));
    }
    env.fleet.start_workers(&[Pool::Push]);
    enqueue_for_user(env.fleet.store.as_ref(), "u1", &ended("s-breaker", "org-1"), &[], now_ms())
        .await
        .unwrap();
    let (scheduled, _) = env.idle().await;
    assert_eq!(scheduled, 10);
    let metrics = fleet_platform::metrics::render();
    assert!(metrics.contains(r#"callfleet_push_breaker_state{provider="fcm"} 2"#), "{metrics}");
    assert_eq!(unavailable.since(), 10.0, "{metrics}");
    // The retries fall due while the breaker is open: refused here, FCM sees nothing more.
    env.make_due().await;
    let (scheduled, _) = env.idle().await;
    assert_eq!(scheduled, 10);
    let sent: usize = (0..10).map(|i| env.attempts(SimProvider::Fcm, &format!("fcm-failing-{i}"))).sum();
    assert_eq!(sent, 10, "no request reached FCM while its breaker was open");
    assert!(refused.since() >= 10.0, "the ten due retries were refused by the open breaker");
}

/// The FCM limit is counted in Redis (shared by every replica); with Redis down, pushes still go
/// out under the local limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_limits_are_shared_through_redis() {
    let redis_url = std::env::var("CALLFLEET_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("cf-test-{}", ulid::Ulid::generate());
    let env = PushEnv::start(
        Engine::Sqlite,
        &[("CALLFLEET_REDIS_URL", &redis_url), ("CALLFLEET_REDIS_PREFIX", &prefix)],
    )
    .await;
    for i in 0..3 {
        env.device(&format!("d-{i}"), "u1", "org-1", "android", &format!("fcm-shared-{i}")).await;
    }
    env.fleet.start_workers(&[Pool::Push]);
    enqueue_for_user(env.fleet.store.as_ref(), "u1", &ended("s-redis", "org-1"), &[], now_ms())
        .await
        .unwrap();
    env.settle().await;
    assert_eq!((0..3).map(|i| env.delivered(&format!("fcm-shared-{i}"))).sum::<usize>(), 3);

    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}:ratelimit:fcm:*")).query_async(&mut conn).await.unwrap();
    let mut counted = 0u64;
    for key in &keys {
        let n: u64 = redis::cmd("GET").arg(key).query_async(&mut conn).await.unwrap();
        counted += n;
    }
    assert_eq!(counted, 3, "every FCM send took its slot in Redis ({keys:?})");
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();

    // Redis unreachable: the same pool still delivers, limited locally.
    let port = crate::support::process::free_port();
    let down = format!("redis://127.0.0.1:{port}");
    let env = PushEnv::start(Engine::Sqlite, &[("CALLFLEET_REDIS_URL", &down)]).await;
    env.device("d-down", "u1", "org-1", "android", "fcm-no-redis").await;
    env.fleet.start_workers(&[Pool::Push]);
    enqueue_for_user(env.fleet.store.as_ref(), "u1", &ended("s-down", "org-1"), &[], now_ms()).await.unwrap();
    env.settle().await;
    assert_eq!(env.delivered("fcm-no-redis"), 1);
}

/// A prune clears the token that failed, never one the app registered since.
async fn prune_keeps_a_token_the_app_refreshed(engine: Engine) {
    let env = PushEnv::start(engine, &[]).await;
    env.device("d-android", "u1", "org-1", "android", FCM_TOKEN).await;
    env.device("d-android", "u1", "org-1", "android", "fcm-token-refreshed").await;
    let store = env.fleet.store.as_ref();
    assert!(!store.prune_push_token("d-android", Provider::Fcm, FCM_TOKEN).await.unwrap());
    assert_eq!(env.token_of("d-android").await.0.as_deref(), Some("fcm-token-refreshed"));
    assert!(store.prune_push_token("d-android", Provider::Fcm, "fcm-token-refreshed").await.unwrap());
    assert_eq!(env.token_of("d-android").await.0, None);
}

/// APNs that does not answer: the push is retried, and the log says why without the request's
/// URL, which ends in the device token (before: the transport error was logged as reqwest
/// formats it, URL included; checked: this test then fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_apns_is_logged_without_the_device_token() {
    crate::support::logs::capture();
    let env = PushEnv::start(Engine::Sqlite, &[("APNS_API_BASE", "http://127.0.0.1:9")]).await;
    env.device("ios-1", "u1", "org-1", "ios", VOIP_TOKEN).await;
    let transport = Delta::of("callfleet_push_total", &[r#"provider="apns""#, r#"reason="transport""#]);
    env.fleet.start_workers(&[Pool::Push]);
    enqueue_for_user(env.fleet.store.as_ref(), "u1", &ended("s-unreachable", "org-1"), &[], now_ms())
        .await
        .unwrap();
    let (scheduled, _) = env.idle().await;
    assert_eq!(scheduled, 1, "the push waits for its retry");
    assert_eq!(transport.since(), 1.0);
    let logs = crate::support::logs::captured();
    assert!(logs.contains("Push provider unreachable."), "the failure is logged");
    assert!(!logs.contains(VOIP_TOKEN), "the device token is in the log");
}
