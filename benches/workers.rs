//! Worker throughput: how fast one `webhooks` worker process drains a backlog of stored events,
//! on PostgreSQL and on SQLite, at two concurrency settings.
//!
//!   cargo bench --bench workers
//!
//! The backlog is stored first (with its jobs, as the ingress does); then the pool starts in this
//! process and the clock runs until every event is processed. Each job reads its event, applies
//! the leg update and marks the event processed (three statements, each its own commit), plus
//! apalis's own fetch / lock / ack writes.

use std::time::{Duration, Instant};

use fleet_jobs::Pool;
use fleet_store::{Db, NewWebhook, Source};
use tokio_util::sync::CancellationToken;

const EVENTS: usize = 5_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let admin_url = std::env::var("CALLFLEET_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = sqlx::PgPool::connect(&admin_url).await.expect("Postgres");
    println!("| engine | concurrency | events | wall time | jobs/s |");
    println!("|---|---|---|---|---|");
    for concurrency in [8usize, 32] {
        for engine in ["PostgreSQL", "SQLite"] {
            let name = format!("cf_bench_workers_{}_{concurrency}", std::process::id());
            let dir = std::env::temp_dir().join(&name);
            let url = if engine == "PostgreSQL" {
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&admin)
                    .await
                    .unwrap();
                format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0)
            } else {
                std::fs::create_dir_all(&dir).unwrap();
                format!("sqlite://{}?mode=rwc", dir.join("w.db").display())
            };
            let elapsed = drain(&url, concurrency).await;
            println!(
                "| {engine} | {concurrency} | {EVENTS} | {:.2} s | {:.0} |",
                elapsed.as_secs_f64(),
                EVENTS as f64 / elapsed.as_secs_f64()
            );
            if engine == "PostgreSQL" {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&admin)
                .await;
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
}

async fn drain(url: &str, concurrency: usize) -> Duration {
    let db = Db::open(url).await.unwrap();
    db.migrate().await.unwrap();
    let store = db.store();
    let events: Vec<NewWebhook> = (0..EVENTS)
        .map(|i| NewWebhook {
            event_id: format!("w-{i}"),
            event_type: "call.initiated".into(),
            call_session_id: Some(format!("s-{i}")),
            source: Source::Primary,
            attempt: Some(1),
            body: format!(
                r#"{{"data":{{"event_type":"call.initiated","id":"w-{i}","occurred_at":"2026-11-23T03:30:00Z","payload":{{"call_control_id":"v3:w{i}","call_session_id":"s-{i}","direction":"incoming","from":"+13125550101","to":"+13125550199"}}}}}}"#
            ),
            received_at: chrono::Utc::now(),
            trace_parent: None,
        })
        .collect();
    for chunk in events.chunks(250) {
        store.accept_webhooks(chunk).await.unwrap();
    }
    let config = fleet_platform::Config::from_lookup(|k| match k {
        "CALLFLEET_DATABASE_URL" => Some(url.to_owned()),
        "CALLFLEET_WORKER_CONCURRENCY" => Some(concurrency.to_string()),
        _ => None,
    })
    .unwrap();
    let token = CancellationToken::new();
    let start = Instant::now();
    let (c, d, t) = (config.clone(), db.clone(), token.clone());
    let worker = tokio::spawn(async move { fleet_workers::run(&c, &d, &[Pool::Webhooks], t).await });
    loop {
        let stats = store.queue_stats().await.unwrap();
        let hooks = stats.iter().find(|s| s.pool == "webhooks").unwrap();
        if hooks.ready + hooks.running + hooks.scheduled == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    token.cancel();
    let _ = worker.await;
    elapsed
}
