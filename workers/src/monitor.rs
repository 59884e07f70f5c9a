//! Building and supervising one apalis worker per pool, each pool under a monitor of its own.
//!
//! Wake-ups: every worker waits on this process's [`QueueWaker`](fleet_store::wake::QueueWaker),
//! which this process's commits wake and, on Postgres, the process's one NOTIFY listener
//! ([`crate::listener`]) wakes for other processes' jobs. On top of that, [`crate::nudge`]
//! re-polls a worker shortly after each wake and each finished job, and every half heartbeat,
//! which apalis needs to see new jobs and write completions and heartbeats (see there). The
//! heartbeat (a third of `orphan_after`) drives orphan recovery: a live worker re-enqueues the
//! running jobs of a worker silent for `orphan_after`.
//!
//! Postgres worker processes also hold a liveness lock ([`crate::liveness`]): when one dies, the
//! others take its running jobs back within about a second instead of the orphan window.
//!
//! A worker that dies with a backend error (database restarting, connection lost) is restarted
//! with capped exponential backoff ([`Backoff`]) under a fresh unique name, until shutdown. apalis
//! polls a monitor's workers inside one future and sleeps the backoff in that poll, so each pool
//! has its own monitor task: a pool in backoff holds up no other pool's fetches, completions or
//! heartbeats. A pool whose monitor fails for good stops the others and the role. On shutdown,
//! workers stop fetching and in-flight jobs get `shutdown_timeout` to finish; a job cut off stays
//! `Running` until the orphan window returns it to the queue.

use std::time::Duration;

use apalis::prelude::{
    BackendExt, BoxDynError, Data, Monitor, ParallelizeExt, TaskId, WorkerBuilder, WorkerBuilderExt,
};
use fleet_jobs::Pool;
use fleet_platform::Config;
use fleet_platform::shutdown::CancellationToken;
use fleet_store::Db;
use fleet_store::postgres::PgStore;

use crate::Runtime;
use crate::backoff::Backoff;
use crate::execute::execute;
use crate::nudge::{self, Finished};

/// The worker role stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("no pool to run")]
    NoPools,
    #[error("the worker monitor failed: {0}")]
    Monitor(String),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
}

/// Runs the workers of `pools` until `shutdown` is cancelled.
pub async fn run(
    config: &Config,
    db: &Db,
    pools: &[Pool],
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    if pools.is_empty() {
        return Err(WorkerError::NoPools);
    }
    fleet_platform::metrics::install();
    let runtime = Runtime::from_config(config, db.store())?;
    let settings = Settings { heartbeat: config.orphan_after / 3, concurrency: config.worker_concurrency };
    let key = crate::liveness::process_key();
    let pg = match db {
        Db::Postgres(pg) => Some(pg),
        Db::Sqlite(_) => None,
    };
    // Dropped (its tasks stopped, its lock released) when the workers have finished.
    let _liveness = pg.map(|pg| crate::liveness::Liveness::start(pg.clone(), key));
    tokio::spawn(crate::promoter::run(db.store(), db.waker().clone(), pools.to_vec(), shutdown.clone()));
    if let Some(pg) = pg {
        tokio::spawn(crate::listener::run(pg.clone(), pg.waker().clone(), pools.to_vec(), shutdown.clone()));
    }
    // One monitor per pool, each its own task: apalis polls a monitor's workers inside its one
    // future and sleeps the restart backoff in that poll, so with one monitor for every pool a
    // pool in backoff held up the fetches, completions and heartbeats of all the others.
    let stop = shutdown.child_token();
    let mut monitors = tokio::task::JoinSet::new();
    for &pool in pools {
        let monitor = register(Monitor::new(), db, pool, runtime.clone(), settings, key);
        monitors.spawn(supervise(monitor, pool, pg.cloned(), config.shutdown_timeout, stop.clone()));
        tracing::info!(pool = pool.as_str(), concurrency = settings.concurrency, "Worker pool started.");
    }
    let mut first_error = None;
    while let Some(done) = monitors.join_next().await {
        let error = match done {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(e) => WorkerError::Monitor(format!("a pool's monitor panicked: {e}")),
        };
        // One pool gone for good stops the others: a process that runs half its pools is worse.
        stop.cancel();
        first_error.get_or_insert(error);
    }
    first_error.map_or(Ok(()), Err)
}

/// Runs one pool's monitor until `stop`, restarting its worker after a backend error with
/// [`Backoff`]. On Postgres the stopped worker's claimed jobs go back to the queue at once
/// ([`release_jobs_of`]) instead of after the orphan window.
async fn supervise(
    monitor: Monitor,
    pool: Pool,
    pg: Option<PgStore>,
    shutdown_timeout: Duration,
    stop: CancellationToken,
) -> Result<(), WorkerError> {
    let stopping = stop.clone();
    let backoff = std::sync::Mutex::new(Backoff::default());
    monitor
        .should_restart(move |ctx, error| {
            if stopping.is_cancelled() {
                return false;
            }
            if let Some(pg) = &pg {
                tokio::spawn(release_jobs_of(pg.clone(), ctx.name().to_owned(), stopping.clone()));
            }
            let wait = backoff.lock().unwrap_or_else(|p| p.into_inner()).next(std::time::Instant::now());
            tracing::warn!(worker = %ctx.name(), %error, backoff_ms = wait.as_millis() as u64, "Worker stopped; restarting.");
            metrics::counter!("callfleet_worker_restarts_total", "pool" => pool.as_str()).increment(1);
            // The callback is synchronous: this pool's monitor waits, no other task does.
            crate::backoff::pause(wait);
            true
        })
        .shutdown_timeout(shutdown_timeout)
        .run_with_signal(async move {
            stop.cancelled().await;
            Ok(())
        })
        .await
        .map_err(|e| WorkerError::Monitor(e.to_string()))
}

/// Returns a stopped worker's claimed jobs to the queue, trying again every half second while
/// the database is unreachable (it usually is: that is why the worker stopped), for at most a
/// minute — past the orphan window, apalis's own rescue has them anyway.
async fn release_jobs_of(pg: PgStore, worker: String, stop: CancellationToken) {
    for _ in 0..120 {
        match pg.release_jobs_of_worker(&worker).await {
            Ok(released) => {
                for (pool, n) in released {
                    metrics::counter!("callfleet_jobs_released_total", "pool" => pool.as_str()).increment(n);
                    tracing::info!(%worker, pool = pool.as_str(), jobs = n, "Re-enqueued the claimed jobs of a stopped worker.");
                }
                return;
            }
            Err(_) => {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Settings {
    heartbeat: Duration,
    concurrency: usize,
}

async fn handle(
    payload: serde_json::Value,
    task_id: TaskId,
    runtime: Data<Runtime>,
    finished: Data<Finished>,
) -> Result<(), BoxDynError> {
    let outcome = execute(&runtime, payload, task_id.to_string()).await;
    finished.signal();
    outcome
}

fn register(monitor: Monitor, db: &Db, pool: Pool, runtime: Runtime, s: Settings, key: i32) -> Monitor {
    let queue = pool.as_str();
    let finished = Finished::default();
    let backstop = s.heartbeat / 2;
    match db {
        Db::Postgres(pg) => {
            let config = apalis_postgres::Config::default()
                .queue(queue)
                .heartbeat_interval(s.heartbeat)
                .missed_heartbeats(3)
                .batch_size(s.concurrency.clamp(1, 100));
            let storage =
                apalis_postgres::PostgresStorage::<serde_json::Value>::new(pg.pool()).with_config(config);
            let waker = pg.waker().clone();
            monitor.register(move |_restarts| {
                let wake = nudge::stream(waker.stream(pool), finished.clone(), backstop);
                WorkerBuilder::new(worker_name(pool, key))
                    .backend(storage.clone().poll_with_stream(wake))
                    .concurrency(s.concurrency)
                    .parallelize(tokio::spawn)
                    .data(runtime.clone())
                    .data(finished.clone())
                    .build(handle)
            })
        }
        Db::Sqlite(sl) => {
            let config = apalis_sqlite::Config::default()
                .queue(queue)
                .heartbeat_interval(s.heartbeat)
                .missed_heartbeats(3)
                .batch_size(s.concurrency.clamp(1, 100));
            let storage =
                apalis_sqlite::SqliteStorage::<serde_json::Value>::new(sl.pool()).with_config(config);
            let waker = sl.waker().clone();
            monitor.register(move |_restarts| {
                let wake = nudge::stream(waker.stream(pool), finished.clone(), backstop);
                WorkerBuilder::new(worker_name(pool, key))
                    .backend(storage.clone().poll_with_stream(wake))
                    .concurrency(s.concurrency)
                    .parallelize(tokio::spawn)
                    .data(runtime.clone())
                    .data(finished.clone())
                    .build(handle)
            })
        }
    }
}

/// Unique per process and per restart: apalis leaves a job `Running` forever if a worker comes
/// back under the name of a dead one. Ends in the process's lock key (`fleet_store::liveness`).
fn worker_name(pool: Pool, key: i32) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    let (pid, id, suffix) =
        (std::process::id(), ulid::Ulid::generate(), fleet_store::liveness::worker_name_suffix(key));
    format!("{}@{}-{pid}-{id}{suffix}", pool.as_str(), host.trim())
}
