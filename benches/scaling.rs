//! Scaling out one pool: does a second `callfleet worker` process drain a backlog about twice
//! as fast as one? (Issue 14: operators scale each pool by adding processes.)
//!
//!   cargo bench --bench scaling
//!
//! The backlog: `JOBS` `emit_event` jobs of the `events` pool on a fresh PostgreSQL database,
//! enqueued before any worker runs. The receiver, in this process, answers each delivery after
//! a fixed latency (an app backend at 50 ms; and at 0 ms, where the two cores are the limit). The
//! workers are the release binary as separate processes (`worker --pool events`, concurrency
//! 32 each). Measured from the first delivery to the last distinct one, so process start-up is
//! not counted; each variant three times, the median reported, 1 process beside 2 in the same
//! run.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use fleet_jobs::{AppEventMessage, event_envelope};
use fleet_store::{Db, NewJob};

const JOBS: usize = 4_000;
const ROUNDS: usize = 3;

#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    first: Option<Instant>,
    last: Option<Instant>,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let admin_url = std::env::var("CALLFLEET_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = sqlx::PgPool::connect(&admin_url).await.expect("Postgres");
    println!(
        "| receiver latency | processes | jobs | median drain s (rounds) | jobs/s | ratio to 1 process |"
    );
    println!("|---:|---:|---:|---|---:|---:|");
    for latency_ms in [50u64, 0] {
        let mut one = 0.0;
        for processes in [1usize, 2] {
            let mut times = Vec::new();
            for round in 0..ROUNDS {
                let name =
                    format!("cf_bench_scaling_{}_{latency_ms}_{processes}_{round}", std::process::id());
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&admin)
                    .await
                    .unwrap();
                let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
                times.push(drain(&url, processes, latency_ms).await);
                let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&admin).await;
            }
            let mut sorted = times.clone();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[ROUNDS / 2];
            if processes == 1 {
                one = median;
            }
            let rounds: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
            println!(
                "| {latency_ms} ms | {processes} | {JOBS} | {median:.2} ({}) | {:.0} | {:.2}× |",
                rounds.join(", "),
                JOBS as f64 / median,
                one / median
            );
        }
    }
}

/// Seconds from the first delivery to the last distinct one with `processes` workers.
async fn drain(url: &str, processes: usize, latency_ms: u64) -> f64 {
    let db = Db::open(url).await.unwrap();
    db.migrate().await.unwrap();
    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|i| {
            NewJob::once(event_envelope(AppEventMessage {
                id: format!("evt-{i}"),
                event_type: "call.ended".into(),
                occurred_at_ms: 1_764_000_000_000,
                data: serde_json::json!({"call_session_id": format!("s-{i}"), "org_id": "o-1"}),
            }))
        })
        .collect();
    for chunk in jobs.chunks(500) {
        db.store().enqueue(chunk).await.unwrap();
    }

    let seen = Arc::new(Mutex::new(Seen::default()));
    let receiver = {
        let seen = seen.clone();
        axum::Router::new().route(
            "/events",
            axum::routing::post(move |headers: HeaderMap| {
                let seen = seen.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(latency_ms)).await;
                    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    let mut seen = seen.lock().unwrap();
                    let now = Instant::now();
                    seen.first.get_or_insert(now);
                    if seen.ids.insert(id) {
                        seen.last = Some(now);
                    }
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let events_url = format!("http://{}/events", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, receiver).await });

    let mut workers: Vec<tokio::process::Child> = (0..processes)
        .map(|_| {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_callfleet"))
                .args(["worker", "--pool", "events"])
                .env_clear()
                .env("CALLFLEET_DATABASE_URL", url)
                .env("CALLFLEET_EVENTS_URL", &events_url)
                .env("CALLFLEET_EVENTS_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .env("CALLFLEET_WORKER_CONCURRENCY", "32")
                .env("RUST_LOG", "error")
                .kill_on_drop(true)
                .spawn()
                .expect("callfleet worker")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    let elapsed = loop {
        {
            let seen = seen.lock().unwrap();
            if seen.ids.len() >= JOBS {
                break (seen.last.unwrap() - seen.first.unwrap()).as_secs_f64();
            }
        }
        assert!(Instant::now() < deadline, "the backlog did not drain in 300 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for w in &mut workers {
        let _ = w.start_kill();
        let _ = w.wait().await;
    }
    server.abort();
    elapsed
}
