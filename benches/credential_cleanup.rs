//! Credential-cleanup benchmark: delete N expired device credentials (default 100,000) on the
//! carrier simulator and in the store with one run of the scheduled cleanup job, under the
//! configured Telnyx rate limit. Reports wall time and Telnyx delete calls per second against it.
//!
//!   cargo bench --bench credential_cleanup
//!   BENCH_CREDENTIALS=10000 BENCH_RATE=500 BENCH_DB=postgres cargo bench --bench credential_cleanup
//!
//! Set-up (not timed): N credentials are created on the simulator (1,000 per org tag, Telnyx's
//! per-tag maximum) and N matching `active` rows with `expires_at` in the past are bulk-inserted
//! into a fresh database. The timed part is `cleanup_expired_credentials.v1` run in-process, as a
//! `maintenance` worker would run it: pages of 500, 16 deletions in flight, every call through the
//! client's rate limiter.

use std::time::Instant;

use chrono::Utc;
use fleet_domain::credentials::credential_tag;
use fleet_jobs::{Envelope, Job};
use fleet_platform::Config;
use fleet_sim::{SimConfig, Simulator};
use fleet_store::{Db, Engine};
use fleet_telnyx::{CreateCredential, RateLimiter, TelnyxClient};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let n: usize = env("BENCH_CREDENTIALS", 100_000);
    let rate: u32 = env("BENCH_RATE", 2_000);
    let engine = if std::env::var("BENCH_DB").as_deref() == Ok("postgres") {
        Engine::Postgres
    } else {
        Engine::Sqlite
    };
    let token = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::start(SimConfig::new("http://127.0.0.1:9/webhooks/telnyx"), listener, token.clone())
        .await
        .unwrap();

    let (db_url, cleanup) = database(engine).await;
    let db = Db::open(&db_url).await.unwrap();
    db.migrate().await.unwrap();

    eprintln!("set-up: creating {n} credentials on the simulator…");
    let setup = Instant::now();
    let telnyx = TelnyxClient::new(&sim.telnyx_api_base(), "bench", RateLimiter::unlimited()).unwrap();
    let created: Vec<(usize, String, String)> = futures::stream::iter(0..n)
        .map(|i| {
            let telnyx = telnyx.clone();
            async move {
                let c = telnyx
                    .create_credential(&CreateCredential {
                        connection_id: "cred-conn".into(),
                        name: format!("callfleet:bench-{i}"),
                        tag: credential_tag(&format!("org-{}", i / 1000), &format!("bench-{i}")),
                        expires_at: Utc::now() + chrono::Duration::days(1),
                    })
                    .await
                    .expect("create on the simulator");
                (i, c.id, c.sip_username)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    insert_rows(&db, &created).await;
    eprintln!("set-up done in {:.1}s", setup.elapsed().as_secs_f64());
    sim.clear_logs();

    let base = sim.telnyx_api_base();
    let vars = [
        ("CALLFLEET_DATABASE_URL", db_url.as_str()),
        ("TELNYX_API_KEY", "bench"),
        ("TELNYX_API_BASE", base.as_str()),
        ("CALLFLEET_TELNYX_RATE_LIMIT", &rate.to_string()),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let config =
        Config::from_lookup(|k| vars.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())).unwrap();
    let mut runtime = fleet_workers::Runtime::from_config(&config, db.store()).unwrap();
    // One uninterrupted run (a worker would chain 40 s attempts; the total is the same).
    runtime.attempt_budget = Some(std::time::Duration::from_secs(3600));
    let job = Envelope::new(Job::CleanupExpiredCredentialsV1 { now: Utc::now().timestamp() }, "bench");

    let started = Instant::now();
    fleet_workers::run_job(&runtime, &job).await.expect("cleanup");
    let wall = started.elapsed().as_secs_f64();

    let deletes =
        sim.requests().iter().filter(|r| r.operation == "credential_delete" && r.status == 200).count();
    let left_sim = sim.credentials().len();
    let left_store: i64 = match &db {
        Db::Postgres(pg) => {
            sqlx::query_scalar("SELECT count(*) FROM device_credentials").fetch_one(pg.pool()).await.unwrap()
        }
        Db::Sqlite(sl) => {
            sqlx::query_scalar("SELECT count(*) FROM device_credentials").fetch_one(sl.pool()).await.unwrap()
        }
    };
    println!(
        "| store | credentials | rate limit (calls/s) | wall time (s) | Telnyx deletes/s | of limit | left (sim/store) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    println!(
        "| {engine:?} | {n} | {rate} | {wall:.1} | {:.0} | {:.0}% | {left_sim}/{left_store} |",
        deletes as f64 / wall,
        100.0 * deletes as f64 / wall / f64::from(rate)
    );
    token.cancel();
    drop(db);
    cleanup().await;
}

async fn insert_rows(db: &Db, created: &[(usize, String, String)]) {
    let past = Utc::now() - chrono::Duration::hours(1);
    match db {
        Db::Postgres(pg) => {
            for chunk in created.chunks(10_000) {
                sqlx::query(
                    "INSERT INTO device_credentials (id, device_id, user_id, org_id, status, generation, telnyx_id,
                                                     sip_username, expires_at, created_at, updated_at)
                     SELECT 'row-' || i, 'dev-' || i, 'user-' || i, 'org-' || (i / 1000), 'active', 1, t, u, $4, now(), now()
                       FROM unnest($1::int8[], $2::text[], $3::text[]) AS x(i, t, u)",
                )
                .bind(chunk.iter().map(|c| c.0 as i64).collect::<Vec<_>>())
                .bind(chunk.iter().map(|c| c.1.clone()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|c| c.2.clone()).collect::<Vec<_>>())
                .bind(past)
                .execute(pg.pool())
                .await
                .unwrap();
            }
        }
        Db::Sqlite(sl) => {
            let mut tx = sl.pool().begin().await.unwrap();
            let now = Utc::now().timestamp_millis();
            for (i, t, u) in created {
                sqlx::query(
                    "INSERT INTO device_credentials (id, device_id, user_id, org_id, status, generation, telnyx_id,
                                                     sip_username, expires_at, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, 'active', 1, ?5, ?6, ?7, ?8, ?8)",
                )
                .bind(format!("row-{i}"))
                .bind(format!("dev-{i}"))
                .bind(format!("user-{i}"))
                .bind(format!("org-{}", i / 1000))
                .bind(t)
                .bind(u)
                .bind(past.timestamp_millis())
                .bind(now)
                .execute(&mut *tx)
                .await
                .unwrap();
            }
            tx.commit().await.unwrap();
        }
    }
}

type Cleanup = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>>;

async fn database(engine: Engine) -> (String, Cleanup) {
    let id = std::process::id();
    match engine {
        Engine::Sqlite => {
            let dir = std::env::temp_dir().join(format!("callfleet-cleanup-bench-{id}"));
            std::fs::create_dir_all(&dir).unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
            (
                url,
                Box::new(move || {
                    Box::pin(async move {
                        let _ = std::fs::remove_dir_all(dir);
                    })
                }),
            )
        }
        Engine::Postgres => {
            let admin_url = std::env::var("CALLFLEET_TEST_PG")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let name = format!("cf_cleanup_bench_{id}");
            let admin = sqlx::PgPool::connect(&admin_url).await.expect("Postgres at CALLFLEET_TEST_PG");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&admin)
                .await
                .unwrap();
            let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
            (
                url,
                Box::new(move || {
                    Box::pin(async move {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await;
                    })
                }),
            )
        }
    }
}
