//! Timers: how late a delayed job starts after its due time, and how fast a due job starts after
//! its enqueue — PostgreSQL with the worker in another process, SQLite (and PostgreSQL, as a
//! calibration) with the worker in this process — against apalis's own whole-second `run_at`
//! (what the fleet did before `scheduled_jobs` and the promoter), measured in the same run.
//!
//!   cargo bench --bench timers                      # 150 samples per variant, ~1 min
//!   BENCH_SAMPLES=400 BENCH_BASELINE_SAMPLES=40 cargo bench --bench timers
//!
//! The job is a real `purge_webhook_events.v1` on the `maintenance` pool (with `before = 0` it
//! deletes nothing, so the handler is cheap); each sample has its own work id. Samples are offered
//! open loop, one every 20 ms, with delays spread over 20–1,000 ms, so timers overlap as they
//! would in a fleet. The due time of a sample is the bench's clock read just *before* its enqueue
//! plus the delay (the store computes its own due time a little later, so lateness is, if
//! anything, overstated by the enqueue's own duration).
//!
//! How a start is timed (same host, one system clock):
//! - worker in another process (`callfleet worker --pool maintenance`, the release binary of this
//!   build, default settings): `apalis.jobs.lock_at`, which apalis sets to `now()` in the
//!   statement that claims the job for the worker. The handler starts right after (the in-process
//!   PostgreSQL rows measure that gap: span start − `lock_at`).
//! - worker in this process: the creation of the `job` tracing span, which the executor opens
//!   right before it calls the handler (a tracing layer here records the wall clock for the
//!   span's `work_id`). SQLite's `Jobs.lock_at` is whole seconds, so it cannot be used.
//!
//! Baseline: the same job inserted straight into apalis's queue table with `run_at` = its due
//! time rounded up to the whole second, and no wake-up: the worker finds it at its next poll
//! (heartbeat, `CALLFLEET_ORPHAN_AFTER_SECS` / 3 = 4 s by default) — the previous behaviour.

use std::collections::HashMap;
use std::fmt::Debug;
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fleet_jobs::{Envelope, Job, Pool};
use fleet_store::{Db, NewJob};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

const GAP: Duration = Duration::from_millis(20);

fn main() {
    tracing_subscriber::registry().with(SpanStarts).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(bench());
}

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Work id → when its `job` span opened (this process's workers only).
fn starts() -> &'static Mutex<HashMap<String, DateTime<Utc>>> {
    static STARTS: OnceLock<Mutex<HashMap<String, DateTime<Utc>>>> = OnceLock::new();
    STARTS.get_or_init(Default::default)
}

struct SpanStarts;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanStarts {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        metadata.is_span() && metadata.name() == "job"
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: Context<'_, S>,
    ) {
        let at = Utc::now();
        let mut work = WorkId(None);
        attrs.record(&mut work);
        if let Some(id) = work.0 {
            starts().lock().unwrap().insert(id, at);
        }
    }
}

struct WorkId(Option<String>);

impl tracing::field::Visit for WorkId {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn Debug) {
        if field.name() == "work_id" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// One offered timer: its work id and when it was due.
type Sample = (String, DateTime<Utc>);

struct Stats {
    n: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    Stats { n: ms.len(), p50: at(0.50), p99: at(0.99), max: *ms.last().unwrap() }
}

fn lateness(samples: &[Sample], started: &HashMap<String, DateTime<Utc>>) -> Stats {
    stats(
        samples
            .iter()
            .map(|(id, due)| (started[id] - *due).num_microseconds().unwrap() as f64 / 1000.0)
            .collect(),
    )
}

/// `Some(b)`: the p99 ratio against baseline `b`; `None`: no ratio (a baseline or a calibration).
fn row(label: &str, s: &Stats, baseline: Option<&Stats>) {
    let ratio = baseline.map_or("—".to_owned(), |b| format!("{:.0}×", b.p99 / s.p99.max(0.001)));
    println!("| {label} | {} | {:.1} | {:.1} | {:.1} | {ratio} |", s.n, s.p50, s.p99, s.max);
}

fn delay_of(i: usize) -> Duration {
    // A fixed spread over 20..=1,000 ms (a multiplicative walk, so neighbours differ).
    Duration::from_millis(20 + (i as u64 * 389) % 981)
}

fn job(work_id: &str) -> NewJob {
    NewJob::once(Envelope::new(Job::PurgeWebhookEventsV1 { before: 0 }, work_id))
}

/// Offers `n` jobs through the store, one every [`GAP`], each `delay(i)` from its enqueue.
async fn offer(db: &Db, tag: &str, n: usize, delay: fn(usize) -> Duration) -> Vec<Sample> {
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        tokio::time::sleep_until((t0 + GAP * i as u32).into()).await;
        let store = db.store();
        let id = format!("bench-{tag}-{i}");
        tasks.push(tokio::spawn(async move {
            let d = delay(i);
            let mut new = job(&id);
            new.delay = d;
            let before = Utc::now();
            assert_eq!(store.enqueue(&[new]).await.unwrap(), vec![true]);
            (id, before + chrono::Duration::milliseconds(d.as_millis() as i64))
        }));
    }
    let mut samples = Vec::with_capacity(n);
    for t in tasks {
        samples.push(t.await.unwrap());
    }
    samples
}

/// The baseline: `n` jobs straight into apalis's table, `run_at` rounded up to the whole second.
async fn offer_apalis(db: &Db, tag: &str, n: usize) -> Vec<Sample> {
    let t0 = Instant::now();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        tokio::time::sleep_until((t0 + GAP * 5 * i as u32).into()).await;
        let id = format!("bench-{tag}-{i}");
        let due = Utc::now() + chrono::Duration::milliseconds(delay_of(i).as_millis() as i64 * 2);
        let run_at = due.timestamp() + i64::from(due.timestamp_subsec_nanos() > 0);
        let payload = serde_json::to_vec(&job(&id).envelope).unwrap();
        let task = ulid::Ulid::generate().to_string();
        match db {
            Db::Postgres(pg) => {
                sqlx::query(
                    "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority)
                     VALUES ($1, 'maintenance', $2, 'Pending', 0, 5, to_timestamp($3), 0)",
                )
                .bind(&task)
                .bind(payload)
                .bind(run_at as f64)
                .execute(pg.pool())
                .await
                .unwrap();
            }
            Db::Sqlite(sl) => {
                sqlx::query(
                    "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority)
                     VALUES ($1, $2, 'maintenance', 'Pending', 0, 5, $3, 0)",
                )
                .bind(payload)
                .bind(&task)
                .bind(run_at)
                .execute(sl.pool())
                .await
                .unwrap();
            }
        }
        samples.push((id, due));
    }
    samples
}

/// `apalis.jobs.lock_at` of every sample, waiting until all were claimed.
async fn lock_times(db: &Db, samples: &[Sample]) -> HashMap<String, DateTime<Utc>> {
    let Db::Postgres(pg) = db else { unreachable!() };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows: Vec<(Option<String>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT convert_from(job, 'UTF8')::jsonb ->> 'work_id', lock_at FROM apalis.jobs
              WHERE job_type = 'maintenance' AND lock_at IS NOT NULL",
        )
        .fetch_all(pg.pool())
        .await
        .unwrap();
        let got: HashMap<String, DateTime<Utc>> =
            rows.into_iter().filter_map(|(id, at)| Some((id?, at))).collect();
        if samples.iter().all(|(id, _)| got.contains_key(id)) {
            return got;
        }
        assert!(Instant::now() < deadline, "jobs not claimed within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Span starts of every sample (this process's workers), waiting until all started.
async fn span_times(samples: &[Sample]) -> HashMap<String, DateTime<Utc>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        {
            let got = starts().lock().unwrap();
            if samples.iter().all(|(id, _)| got.contains_key(id)) {
                return got.clone();
            }
        }
        assert!(Instant::now() < deadline, "jobs not started within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config(url: &str) -> fleet_platform::Config {
    fleet_platform::Config::from_lookup(|k| (k == "CALLFLEET_DATABASE_URL").then(|| url.to_owned())).unwrap()
}

/// Waits until a `maintenance` worker has registered in apalis (the child is up).
async fn worker_registered(db: &Db) {
    let Db::Postgres(pg) = db else { unreachable!() };
    for _ in 0..200 {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM apalis.workers").fetch_one(pg.pool()).await.unwrap_or(0);
        if n > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the worker process did not register");
}

async fn bench() {
    let n = knob("BENCH_SAMPLES", 150);
    let nb = knob("BENCH_BASELINE_SAMPLES", 20);
    let admin_url = std::env::var("CALLFLEET_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = sqlx::PgPool::connect(&admin_url).await.expect("Postgres");
    let name = format!("cf_bench_timers_{}", std::process::id());
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();

    println!("| variant | samples | p50 ms | p99 ms | max ms | p99 ratio, baseline / this |");
    println!("|---|---:|---:|---:|---:|---:|");

    // PostgreSQL, worker in another process.
    for (db_name, in_process) in [(format!("{name}_x"), false), (format!("{name}_i"), true)] {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db_name}\"")))
            .execute(&admin)
            .await
            .unwrap();
        let url = format!("{}/{db_name}", admin_url.rsplit_once('/').unwrap().0);
        let db = Db::open(&url).await.unwrap();
        db.migrate().await.unwrap();
        let token = CancellationToken::new();
        let mut child = None;
        let mut worker = None;
        if in_process {
            let (c, d, t) = (config(&url), db.clone(), token.clone());
            worker =
                Some(tokio::spawn(async move { fleet_workers::run(&c, &d, &[Pool::Maintenance], t).await }));
        } else {
            let log = std::fs::File::create(dir.join("worker.log")).unwrap();
            child = Some(
                tokio::process::Command::new(env!("CARGO_BIN_EXE_callfleet"))
                    .args(["worker", "--pool", "maintenance"])
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .env("CALLFLEET_DATABASE_URL", &url)
                    .env("RUST_LOG", "warn")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log)
                    .kill_on_drop(true)
                    .spawn()
                    .expect("spawn callfleet worker"),
            );
        }
        worker_registered(&db).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let tag = if in_process { "pg-i" } else { "pg-x" };
        let place = if in_process { "in this process" } else { "worker in another process" };

        let base = offer_apalis(&db, &format!("{tag}-base"), nb).await;
        let locks = lock_times(&db, &base).await;
        let base = lateness(&base, &locks);
        let delayed = offer(&db, &format!("{tag}-delayed"), n, delay_of).await;
        let due = offer(&db, &format!("{tag}-due"), n, |_| Duration::ZERO).await;
        let locks = lock_times(&db, &delayed).await;
        let locks_due = lock_times(&db, &due).await;
        row(
            &format!("PostgreSQL, {place}: apalis whole-second `run_at` (baseline), due → claim"),
            &base,
            None,
        );
        row(
            &format!("PostgreSQL, {place}: delayed job, due → claim (`lock_at`)"),
            &lateness(&delayed, &locks),
            Some(&base),
        );
        row(
            &format!("PostgreSQL, {place}: due job, enqueue → claim (`lock_at`)"),
            &lateness(&due, &locks_due),
            None,
        );
        if in_process {
            let spans = span_times(&delayed).await;
            let spans_due = span_times(&due).await;
            row(
                "PostgreSQL, in this process: delayed job, due → handler start (span)",
                &lateness(&delayed, &spans),
                Some(&base),
            );
            row(
                "PostgreSQL, in this process: due job, enqueue → handler start (span)",
                &lateness(&due, &spans_due),
                None,
            );
            let gap: Vec<f64> = delayed
                .iter()
                .chain(&due)
                .map(|(id, _)| {
                    let at = locks.get(id).or_else(|| locks_due.get(id)).unwrap();
                    (*spans.get(id).or_else(|| spans_due.get(id)).unwrap() - *at).num_microseconds().unwrap()
                        as f64
                        / 1000.0
                })
                .collect();
            row(
                "PostgreSQL, in this process: claim (`lock_at`) → handler start (span), calibration",
                &stats(gap),
                None,
            );
        }

        token.cancel();
        if let Some(w) = worker {
            let _ = w.await;
        }
        if let Some(mut c) = child {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
        drop(db);
        let _ =
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)")))
                .execute(&admin)
                .await;
    }

    // SQLite, worker in this process.
    {
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        let db = Db::open(&url).await.unwrap();
        db.migrate().await.unwrap();
        let token = CancellationToken::new();
        let (c, d, t) = (config(&url), db.clone(), token.clone());
        let worker = tokio::spawn(async move { fleet_workers::run(&c, &d, &[Pool::Maintenance], t).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let base = offer_apalis(&db, "sl-base", nb).await;
        let base = lateness(&base, &span_times(&base).await);
        let delayed = offer(&db, "sl-delayed", n, delay_of).await;
        let due = offer(&db, "sl-due", n, |_| Duration::ZERO).await;
        let spans = span_times(&delayed).await;
        let spans_due = span_times(&due).await;
        row(
            "SQLite, in this process: apalis whole-second `run_at` (baseline), due → handler start",
            &base,
            None,
        );
        row(
            "SQLite, in this process: delayed job, due → handler start (span)",
            &lateness(&delayed, &spans),
            Some(&base),
        );
        row(
            "SQLite, in this process: due job, enqueue → handler start (span)",
            &lateness(&due, &spans_due),
            None,
        );
        token.cancel();
        let _ = worker.await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
