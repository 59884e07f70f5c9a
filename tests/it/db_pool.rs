//! A worker process and its Postgres connections (issue 12, item 2): one LISTEN per process,
//! outside the pool, taken again after Postgres ends it; every pool at full concurrency on the
//! pool sized from the configuration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use fleet_jobs::{AppEventMessage, Pool, event_envelope};
use fleet_platform::shutdown::CancellationToken;
use fleet_store::{Db, Engine, NewJob, NewWebhook, PoolSize};

use crate::support::fleet::test_config;
use crate::support::metrics::Delta;
use crate::support::{Fleet, TestDb, eventually, process, webhook};

/// A worker of every pool listens on one connection, which is not one of its pool's: jobs another
/// process inserts wake its workers through NOTIFY alone (their periodic nudge is ten minutes away
/// here), before and after Postgres ends that listening session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_listener_per_process_hears_again_after_its_session_ends_postgres() {
    let test_db = TestDb::new(Engine::Postgres).await;
    let admin = test_db.pg().await;
    // The ingress stands for another process: its store's commits wake no worker of this test.
    let fleet = Fleet::start_on(test_db, &[]).await;
    let config = test_config(&fleet.test_db.url, &[("CALLFLEET_ORPHAN_AFTER_SECS", "3600")]);
    // Four connections for eight pools: enough, since the listener does not take one of them.
    let size = PoolSize { max: 4, configured: true };
    let workers_db = Db::open_with(&fleet.test_db.url, size).await.unwrap();
    let reconnects = Delta::of("callfleet_db_listener_reconnects_total", &[]);
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move { fleet_workers::run(&config, &workers_db, &Pool::ALL, t).await });

    let hangup = |n: u32| webhook::event(&format!("evt-{n}"), "call.hangup", &format!("cc-{n}"), "s-1");
    assert_eq!(fleet.deliver(&hangup(1)).await.status(), 200);
    fleet.drain().await;
    let listening = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&admin)
        .await
        .unwrap()
    };
    assert_eq!(listening().await, 1, "one listening session for {} pools", Pool::ALL.len());

    // Postgres ends the listening session alone (an idle-session timeout, a connection reaper);
    // the workers' other connections live on.
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(ended, [true]);
    eventually(30, "the listener to connect again", || async { (reconnects.since() >= 1.0).then_some(()) })
        .await;

    assert_eq!(fleet.deliver(&hangup(2)).await.status(), 200);
    fleet.drain().await;
    let processed = fleet.store.webhook("evt-2").await.unwrap().expect("stored");
    assert!(processed.processed_at.is_some(), "the job after the session ended ran");
    token.cancel();
}

/// `worker --pool all` at concurrency 32 on Postgres, every connection in use: each job runs
/// once, none is rescued as an orphan while its worker lives (apalis counts a re-enqueue as an
/// attempt), and every app event is delivered once. `CALLFLEET_POOL_SOAK_JOBS` sizes the load
/// (each kind; default 1,500).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_pool_at_full_concurrency_runs_each_job_once_postgres() {
    let jobs: usize =
        std::env::var("CALLFLEET_POOL_SOAK_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_500);
    let test_db = TestDb::new(Engine::Postgres).await;
    let store = test_db.open().await.store();
    let events: Vec<NewJob> = (0..jobs)
        .map(|i| {
            NewJob::once(event_envelope(AppEventMessage {
                id: format!("evt-{i}"),
                event_type: "call.ended".into(),
                occurred_at_ms: 1_764_000_000_000,
                data: serde_json::json!({"call_session_id": format!("s-{i}"), "org_id": "o-1"}),
            }))
        })
        .collect();
    for chunk in events.chunks(500) {
        store.enqueue(chunk).await.unwrap();
    }
    let webhooks: Vec<NewWebhook> = (0..jobs)
        .map(|i| webhook::stored(&format!("wh-{i}"), "call.hangup", &format!("cc-{i}"), &format!("s-{i}")))
        .collect();
    for chunk in webhooks.chunks(500) {
        store.accept_webhooks(chunk).await.unwrap();
    }

    let deliveries: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let receiver = {
        let deliveries = deliveries.clone();
        axum::Router::new().route(
            "/events",
            axum::routing::post(move |headers: HeaderMap| {
                let deliveries = deliveries.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    *deliveries.lock().unwrap().entry(id).or_default() += 1;
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let events_url = format!("http://{}/events", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, receiver).await });

    let env = [
        ("CALLFLEET_EVENTS_URL", events_url.as_str()),
        ("CALLFLEET_EVENTS_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("CALLFLEET_WORKER_CONCURRENCY", "32"),
    ];
    let mut worker = process::spawn(&test_db.url, &["worker", "--pool", "all"], &env);
    eventually(180, "every job to finish", || {
        let store = store.clone();
        async move {
            let stats = store.queue_stats().await.ok()?;
            stats.iter().all(|s| s.ready == 0 && s.running == 0 && s.scheduled == 0).then_some(())
        }
    })
    .await;
    assert!(worker.try_wait().unwrap().is_none(), "the worker process lived through the load");
    process::kill9(&mut worker).await;
    server.abort();

    let stats = store.queue_stats().await.unwrap();
    assert!(stats.iter().all(|s| s.dead == 0), "no dead job: {stats:#?}");
    let deliveries = deliveries.lock().unwrap().clone();
    assert_eq!(deliveries.len(), jobs, "every event delivered");
    let twice: Vec<_> = deliveries.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "events delivered more than once: {twice:?}");
    let pg = test_db.pg().await;
    let attempts: Vec<(String, i32, i64)> = sqlx::query_as(
        "SELECT job_type, attempts, count(*) FROM apalis.jobs GROUP BY job_type, attempts ORDER BY 1, 2",
    )
    .fetch_all(&pg)
    .await
    .unwrap();
    assert!(attempts.iter().all(|(_, a, _)| *a == 1), "every job ran exactly once: {attempts:?}");
    let total: i64 = attempts.iter().map(|(_, _, n)| n).sum();
    assert_eq!(total as usize, 2 * jobs, "{attempts:?}");
}

/// A pool whose worker keeps dying (here: Postgres refuses every claim of a credentials job, so
/// each fetch fails and the worker restarts after its backoff, which grows to 5 s) holds up no
/// other pool of the same process: webhooks delivered one at a time are each processed while the
/// credentials pool restarts a few times at most. With every pool under one apalis monitor, each
/// 5 s pause stalled every pool's fetches (checked: with one monitor again, the webhooks were
/// not processed and the test ran out of time).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_in_restart_backoff_holds_up_no_other_pool_postgres() {
    let test_db = TestDb::new(Engine::Postgres).await;
    let admin = test_db.pg().await;
    for ddl in [
        "CREATE FUNCTION refuse_claim() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'this test refuses credentials claims'; END $$",
        "CREATE TRIGGER refuse_credentials_claims BEFORE UPDATE ON apalis.jobs FOR EACH ROW \
         WHEN (NEW.job_type = 'credentials' AND NEW.lock_by IS NOT NULL AND OLD.lock_by IS NULL) \
         EXECUTE FUNCTION refuse_claim()",
    ] {
        sqlx::query(ddl).execute(&admin).await.unwrap();
    }
    let fleet = Fleet::start_on(test_db, &[]).await;
    let stuck = fleet_jobs::Envelope::new(
        fleet_jobs::Job::ProvisionCredentialV1 { credential_id: "cred-1".into() },
        "provision:cred-1",
    );
    fleet.store.enqueue(&[NewJob::once(stuck)]).await.unwrap();
    let restarts = Delta::of("callfleet_worker_restarts_total", &["pool=\"credentials\""]);
    fleet.start_workers(&[Pool::Webhooks, Pool::Credentials]);
    // Seven restarts (100 ms doubling): the pause has reached its 5 s cap.
    eventually(60, "the credentials pool's backoff to reach its cap", || async {
        (restarts.since() >= 7.0).then_some(())
    })
    .await;

    let before = restarts.since();
    for n in 0..20 {
        let id = format!("evt-{n}");
        let body = webhook::event(&id, "call.hangup", &format!("cc-{n}"), "s-1");
        assert_eq!(fleet.deliver(&body).await.status(), 200);
        eventually(30, "the webhook to be processed", || async {
            let stored = fleet.store.webhook(&id).await.ok()??;
            stored.processed_at.map(|_| ())
        })
        .await;
    }
    let during = restarts.since() - before;
    // Twenty webhooks take well under a second here; each pause is 5 s. Sharing the stalled
    // monitor, each webhook would wait for a pause to end: about twenty restarts.
    assert!(during <= 4.0, "the credentials pool restarted {during} times while 20 webhooks ran");
}

/// The pool a worker process opens is the size its configuration says: `CALLFLEET_DB_MAX_CONNECTIONS`
/// when set, else 4 plus one per eight jobs its pools may run at once (every pool at concurrency
/// 32: 36). Before, the pool was 16 whatever was configured, and `--pool all` ran 8 × 32 jobs
/// (plus heartbeats and 8 listeners) on it. Read from the worker's own gauge of its pool, and
/// from Postgres while the worker works through 2,000 webhooks: its sessions never exceed the
/// configured pool plus its listener and its liveness lock (measured: 8 with a pool of 6, 38
/// unconfigured). With the pool hard-coded to 16 again, the gauge said 16 and the test failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_worker_pool_is_the_size_its_configuration_says_postgres() {
    let test_db = TestDb::new(Engine::Postgres).await;
    let store = test_db.open().await.store();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for (configured, expected) in [(Some("6"), 6.0), (None, 36.0)] {
        let batch = if configured.is_some() { "a" } else { "b" };
        let webhooks: Vec<NewWebhook> = (0..2_000)
            .map(|i| {
                let (id, cc, session) =
                    (format!("wh-{batch}{i}"), format!("cc-{batch}{i}"), format!("s-{batch}{i}"));
                webhook::stored(&id, "call.hangup", &cc, &session)
            })
            .collect();
        for chunk in webhooks.chunks(500) {
            store.accept_webhooks(chunk).await.unwrap();
        }
        let addr = format!("127.0.0.1:{}", process::free_port());
        let mut env =
            vec![("CALLFLEET_WORKER_CONCURRENCY", "32"), ("CALLFLEET_METRICS_LISTEN", addr.as_str())];
        if let Some(n) = configured {
            env.push(("CALLFLEET_DB_MAX_CONNECTIONS", n));
        }
        // The sessions already open are the test's own (its queries below share one connection);
        // the worker's are the ones that come after.
        let pg = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&test_db.url).await.unwrap();
        store.queue_stats().await.unwrap();
        let ours: Vec<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
                .fetch_all(&pg)
                .await
                .unwrap();
        let mut worker = process::spawn(&test_db.url, &["worker", "--pool", "all"], &env);
        let most = Arc::new(std::sync::atomic::AtomicI64::new(0));
        eventually(120, "the webhooks to be processed", || {
            let (pg, most, ours) = (pg.clone(), most.clone(), ours.clone());
            async move {
                let sessions: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity
                      WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> ALL($1)",
                )
                .bind(&ours)
                .fetch_one(&pg)
                .await
                .ok()?;
                most.fetch_max(sessions, std::sync::atomic::Ordering::Relaxed);
                let left: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM apalis.jobs WHERE job_type = 'webhooks' AND status <> 'Done'",
                )
                .fetch_one(&pg)
                .await
                .ok()?;
                (left == 0).then_some(())
            }
        })
        .await;
        let most = most.load(std::sync::atomic::Ordering::Relaxed);
        let url = format!("http://{addr}/metrics");
        let max = eventually(30, "the worker's pool gauge", || async {
            let text = http.get(&url).send().await.ok()?.text().await.ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix(r#"callfleet_db_connections{state="max"} "#))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .await;
        assert_eq!(max, expected, "pool size with CALLFLEET_DB_MAX_CONNECTIONS={configured:?}");
        println!("CALLFLEET_DB_MAX_CONNECTIONS={configured:?}: the worker had at most {most} sessions");
        if configured.is_some() {
            // The pool's 6, the listener's and the liveness lock's.
            assert!(most <= 6 + 2, "the worker had {most} sessions, its pool is 6");
        }
        process::kill9(&mut worker).await;
        pg.close().await;
    }
}
