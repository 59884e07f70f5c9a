//! PostgreSQL: the system of record and the apalis queues of a fleet — what it does its own way.
//!
//! Our tables live in `public` (migrations in `migrations/postgres`); apalis keeps its own in
//! schema `apalis` (its migrations, run by [`PgStore::migrate`]). Jobs are inserted by our own
//! statement into `apalis.jobs` inside our transactions, so a row and its jobs commit together;
//! a statement-level trigger then NOTIFYs the workers of that queue.
//!
//! Connections are acquired with a short timeout: when Postgres is down the ingress learns it
//! within ~2 s and answers 503 instead of hanging, and recovers by itself when Postgres returns.

use std::collections::HashSet;
use std::time::Duration;

use fleet_jobs::Pool as JobPool;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Postgres, Transaction};

use crate::sql::{Affected, DEAD, Dialect, SqlStore, Ts};
use crate::webhook_jobs::outcomes;
use crate::{Accepted, Engine, NewJob, NewWebhook, QueueStats, StoreError, queue_rows};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// The Postgres store.
pub type PgStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connects (lazily: the first query opens the first connection).
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy(url)?;
        Ok(Self::from_pool(pool))
    }

    /// Runs apalis's migrations and ours. Safe to run concurrently and repeatedly (both
    /// migrators take an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        apalis_postgres::PostgresStorage::migrations().run(self.pool()).await?;
        MIGRATOR.run(self.pool()).await?;
        Ok(())
    }
}

/// Jobs whose run time has come and that wait for a worker.
const DUE: &str = "(status IN ('Pending', 'Queued') AND run_at <= now())";

/// Jobs a worker would fetch now: the due ones, and failed ones apalis retries.
const READY: &str = "((status IN ('Pending', 'Queued') AND run_at <= now()) OR (status = 'Failed' AND attempts < max_attempts))";

/// One statement an autoscaler polls (KEDA's `postgresql` scaler; `deploy/k8s/keda.yaml`
/// carries these texts, and a test holds them equal): `pool`'s ready jobs, counted as
/// `callfleet queues` counts them.
pub fn ready_jobs_sql(pool: JobPool) -> String {
    format!("SELECT count(*) FROM apalis.jobs WHERE job_type = '{}' AND {READY}", pool.as_str())
}

/// Whole seconds (rounded up) `pool`'s oldest due job has waited, 0 when none: the age `callfleet
/// queues` shows, as an integer (what KEDA's scaler reads).
pub fn oldest_ready_age_sql(pool: JobPool) -> String {
    format!(
        "SELECT coalesce(ceil(extract(epoch FROM now() - min(run_at))), 0)::bigint FROM apalis.jobs WHERE job_type = '{}' AND {DUE}",
        pool.as_str()
    )
}

impl Affected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Dialect for Postgres {
    const ENGINE: Engine = Engine::Postgres;
    const JOBS: &'static str = "apalis.jobs";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const BEGIN_WRITE: Option<&'static str> = None;
    const SNAPSHOT: Option<&'static str> = Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");

    fn in_json_ids(column: &str, n: usize) -> String {
        format!("{column} = ANY(ARRAY(SELECT jsonb_array_elements_text(${n}::jsonb)))")
    }

    async fn push_jobs(tx: &mut Transaction<'_, Self>, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let rows = queue_rows(jobs)?;
        let inserted: Vec<String> = sqlx::query_scalar(
            "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority,
                                      idempotency_key)
             SELECT id, job_type, job, 'Pending', 0, max_attempts, now(), 0, key
               FROM unnest($1::text[], $2::text[], $3::bytea[], $4::int[], $5::text[])
                    AS t(id, job_type, job, max_attempts, key)
             ON CONFLICT (job_type, idempotency_key) DO NOTHING
             RETURNING id",
        )
        .bind(&rows.ids)
        .bind(rows.queues)
        .bind(rows.payloads)
        .bind(rows.max_attempts)
        .bind(rows.keys)
        .fetch_all(&mut **tx)
        .await?;
        let inserted: HashSet<String> = inserted.into_iter().collect();
        Ok(rows.ids.iter().map(|id| inserted.contains(id)).collect())
    }

    /// The fast path: events and their jobs in ONE statement (one round trip, one commit). A
    /// data-modifying CTE stores the events; the jobs — envelopes encoded here, in Rust, the one
    /// encoder of the job contract — are inserted for exactly the rows it stored.
    async fn accept_webhooks(
        store: &SqlStore<Self>,
        batch: &[NewWebhook],
    ) -> Result<(Vec<Accepted>, Vec<NewJob>), StoreError> {
        let jobs: Vec<NewJob> = batch
            .iter()
            .map(|w| {
                crate::webhook_jobs::process_job(
                    &w.event_id,
                    w.call_session_id.clone(),
                    w.trace_parent.clone(),
                )
            })
            .collect();
        let rows = queue_rows(&jobs)?;
        let stored: Vec<String> = sqlx::query_scalar(
            "WITH input AS (
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
                                      $7::timestamptz[], $8::text[], $9::bytea[], $10::text[])
                     AS t(event_id, event_type, call_session_id, source, attempt, body, received_at, job_id, job,
                          job_key)
             ), stored AS (
                 INSERT INTO webhook_events (event_id, event_type, call_session_id, source, attempt, body, received_at)
                 SELECT event_id, event_type, call_session_id, source, attempt, body, received_at FROM input
                 ON CONFLICT (event_id) DO NOTHING
                 RETURNING event_id
             ), queued AS (
                 INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority,
                                          idempotency_key)
                 SELECT input.job_id, 'webhooks', input.job, 'Pending', 0, $11, now(), 0,
                        input.job_key
                   FROM stored JOIN input USING (event_id)
                 ON CONFLICT (job_type, idempotency_key) DO NOTHING
             )
             SELECT event_id FROM stored",
        )
        .bind(batch.iter().map(|w| w.event_id.as_str()).collect::<Vec<_>>())
        .bind(batch.iter().map(|w| w.event_type.as_str()).collect::<Vec<_>>())
        .bind(batch.iter().map(|w| w.call_session_id.as_deref()).collect::<Vec<_>>())
        .bind(batch.iter().map(|w| w.source.as_str()).collect::<Vec<_>>())
        .bind(batch.iter().map(|w| w.attempt.map(|a| a as i32)).collect::<Vec<_>>())
        .bind(batch.iter().map(|w| w.body.as_str()).collect::<Vec<_>>())
        .bind(batch.iter().map(|w| Ts(w.received_at)).collect::<Vec<_>>())
        // Job ids are ULIDs made in Rust: apalis's plpgsql generate_ulid() cost more than the rest
        // of the statement together (measured with EXPLAIN ANALYZE, see docs/benchmarks.md).
        .bind(&rows.ids)
        .bind(&rows.payloads)
        .bind(&rows.keys)
        .bind(crate::APALIS_MAX_ATTEMPTS)
        .fetch_all(store.pool())
        .await?;
        Ok(outcomes(batch, stored.into_iter().collect()))
    }

    async fn queue_stats(tx: &mut Transaction<'_, Self>) -> Result<Vec<QueueStats>, StoreError> {
        let rows: Vec<(String, i64, i64, i64, i64, f64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT job_type,
                    count(*) FILTER (WHERE {READY}),
                    count(*) FILTER (WHERE status = 'Pending' AND run_at > now()),
                    count(*) FILTER (WHERE status = 'Running'),
                    count(*) FILTER (WHERE {DEAD}),
                    coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE {DUE})), 0)::float8
               FROM apalis.jobs WHERE status <> 'Done' GROUP BY job_type"
        )))
        .fetch_all(&mut **tx)
        .await?;
        Ok(QueueStats::per_pool(rows))
    }
}
