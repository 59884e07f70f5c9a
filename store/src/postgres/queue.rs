//! Queue rows in `apalis.jobs`: our inserts (inside our transactions), depth, dead set, retry.
//!
//! Status vocabulary is apalis's: `Pending`, `Queued`, `Running`, `Done`, `Failed`, `Killed`.
//! The dead set is `Killed` (our handlers abort a job whose retry budget is spent or whose
//! failure is permanent) plus `Failed` rows whose apalis attempts are exhausted (a job that kept
//! crashing its worker).

use chrono::{DateTime, Utc};
use fleet_jobs::Pool;
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::{DeadJob, NewJob, QueueStats, StoreError, queue_rows};

/// Pushes jobs; returns, per job, whether it was inserted (`false`: its unique key exists).
pub(super) async fn push(
    tx: &mut Transaction<'_, Postgres>,
    jobs: &[NewJob],
) -> Result<Vec<bool>, StoreError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let rows = queue_rows(jobs)?;
    let inserted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority, idempotency_key)
         SELECT id, job_type, job, 'Pending', 0, max_attempts,
                CASE WHEN delay_secs = 0 THEN now() ELSE now() + make_interval(secs => delay_secs) END, 0, key
           FROM unnest($1::text[], $2::text[], $3::bytea[], $4::int[], $5::bigint[], $6::text[])
                AS t(id, job_type, job, max_attempts, delay_secs, key)
         ON CONFLICT (job_type, idempotency_key) DO NOTHING
         RETURNING id",
    )
    .bind(rows.ids.clone())
    .bind(rows.queues)
    .bind(rows.payloads)
    .bind(rows.max_attempts)
    .bind(rows.delays)
    .bind(rows.keys)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.ids.iter().map(|id| inserted.contains(id)).collect())
}

pub(super) async fn stats(pool: &PgPool) -> Result<Vec<QueueStats>, StoreError> {
    let rows = sqlx::query(
        "SELECT job_type,
                count(*) FILTER (WHERE status IN ('Pending', 'Queued') AND run_at <= now()
                                    OR status = 'Failed' AND attempts < max_attempts) AS ready,
                count(*) FILTER (WHERE status = 'Pending' AND run_at > now()) AS scheduled,
                count(*) FILTER (WHERE status = 'Running') AS running,
                count(*) FILTER (WHERE status = 'Killed' OR status = 'Failed' AND attempts >= max_attempts) AS dead,
                coalesce(extract(epoch FROM now() - min(run_at) FILTER (
                    WHERE status IN ('Pending', 'Queued') AND run_at <= now())), 0)::float8 AS oldest
           FROM apalis.jobs WHERE status <> 'Done' GROUP BY job_type",
    )
    .fetch_all(pool)
    .await?;
    let mut by_pool: Vec<QueueStats> = Pool::ALL.iter().map(|p| QueueStats::empty(*p)).collect();
    for row in rows {
        let name: String = row.try_get("job_type")?;
        if let Some(stats) = by_pool.iter_mut().find(|s| s.pool == name) {
            stats.ready = row.try_get::<i64, _>("ready")? as u64;
            stats.scheduled = row.try_get::<i64, _>("scheduled")? as u64;
            stats.running = row.try_get::<i64, _>("running")? as u64;
            stats.dead = row.try_get::<i64, _>("dead")? as u64;
            stats.oldest_ready_age_secs = row.try_get("oldest")?;
        }
    }
    Ok(by_pool)
}

pub(super) async fn dead(pool: &PgPool, which: Option<Pool>, limit: u32) -> Result<Vec<DeadJob>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, job_type, job, attempts, last_result::text AS last_result, done_at, lock_at
           FROM apalis.jobs
          WHERE (status = 'Killed' OR status = 'Failed' AND attempts >= max_attempts)
            AND ($1::text IS NULL OR job_type = $1)
          ORDER BY coalesce(done_at, lock_at, run_at) DESC LIMIT $2",
    )
    .bind(which.map(|p| p.as_str()))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let payload: Vec<u8> = row.try_get("job")?;
            let died_at: Option<DateTime<Utc>> = row.try_get("done_at")?;
            let locked_at: Option<DateTime<Utc>> = row.try_get("lock_at")?;
            crate::dead_job(
                row.try_get("id")?,
                row.try_get("job_type")?,
                row.try_get::<i32, _>("attempts")?,
                row.try_get("last_result")?,
                died_at.or(locked_at),
                &payload,
            )
        })
        .collect()
}

/// Re-enqueues a dead job as the first attempt of a new generation of the same work, and marks
/// the dead row `Done` with a note, in one transaction.
pub(super) async fn retry_dead(pool: &PgPool, job_id: &str) -> Result<Option<NewJob>, StoreError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT job FROM apalis.jobs
          WHERE id = $1 AND (status = 'Killed' OR status = 'Failed' AND attempts >= max_attempts) FOR UPDATE",
    )
    .bind(job_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let payload: Vec<u8> = row.try_get("job")?;
    let job = crate::restart_from_dead(&payload)?;
    push(&mut tx, std::slice::from_ref(&job)).await?;
    sqlx::query(
        "UPDATE apalis.jobs SET status = 'Done', done_at = now(),
                last_result = jsonb_build_object('Err', 'retried by an operator') WHERE id = $1",
    )
    .bind(job_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(job))
}
