//! The job queues on both engines: transactional enqueue (see [`SqlStore::push`]), delayed-job
//! promotion, depth, cron ticks and the dead set.
//!
//! apalis keeps its queue in its own table ([`Dialect::JOBS`]: `apalis.jobs` on Postgres, `Jobs`
//! on SQLite) with the same columns on both; what differs is how its run times are kept
//! ([`QueueTs`]: `TIMESTAMPTZ` vs Unix seconds) and `last_result` (`jsonb` vs text, bound as
//! sqlx's `Json` and read back through `CAST(… AS TEXT)`). So the dead set — listing, discard,
//! retry — and the purge of finished rows are written once, here; only inserting job rows and
//! the queue's counts stay per engine (the Postgres `unnest` insert, `FILTER` with `now()`).
//!
//! Failure behaviour: a retry re-enqueues the dead job as a new generation and closes the dead
//! row in one transaction, so a crash between the two leaves either both or neither; a discard
//! or retry of an id that is not dead changes nothing and says `false`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fleet_jobs::Pool as JobPool;
use fleet_store_macros::engines;
use serde_json::json;
use sqlx::types::Json;
use sqlx::{Encode, Executor, FromRow, Pool, Type};

use super::time::{OptQueueTs, QueueTs};
use super::{Affected, Dialect, OptTs, SqlStore, Ts, begin_write, json_ids};
use crate::{ConnectionUse, DeadJob, NewJob, QueueStats, QueueStore, StoreError};

/// The most delayed jobs one promotion moves (the promoter loops while it finds this many).
const PROMOTE_BATCH: u32 = 500;

/// The dead set: jobs our handlers aborted (`Killed`) and rows that crashed their worker until
/// apalis's own budget ran out (`Failed`).
pub(crate) const DEAD: &str = "(status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))";

/// A job row as the dead set shows it.
#[derive(FromRow)]
struct DeadRow {
    id: String,
    job_type: String,
    job: Vec<u8>,
    attempts: i32,
    last_result: Option<String>,
    #[sqlx(try_from = "OptQueueTs")]
    died_at: Option<DateTime<Utc>>,
}

#[engines]
#[async_trait]
impl QueueStore for SqlStore<DB> {
    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
        let tx = begin_write(&self.pool).await?;
        self.commit_with_jobs(tx, jobs).await
    }

    async fn promote_due_jobs(&self, pools: &[JobPool], limit: u32) -> Result<usize, StoreError> {
        let queues: Vec<String> = pools.iter().map(|p| p.as_str().to_owned()).collect();
        let mut tx = begin_write(&self.pool).await?;
        let claim = format!(
            "DELETE FROM scheduled_jobs WHERE id IN (
                 SELECT id FROM scheduled_jobs WHERE {} AND due_at <= $2 ORDER BY due_at LIMIT $3{})
             RETURNING job, unique_key",
            DB::in_json_ids("queue", 1),
            DB::SKIP_LOCKED
        );
        let rows: Vec<(Vec<u8>, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(claim))
            .bind(json_ids(&queues))
            .bind(self.now())
            .bind(i64::from(limit.min(PROMOTE_BATCH)))
            .fetch_all(&mut *tx)
            .await?;
        let jobs = rows
            .into_iter()
            .map(|(payload, unique_key)| {
                let envelope =
                    serde_json::from_slice(&payload).map_err(|e| StoreError::corrupt("scheduled job", e))?;
                Ok(NewJob { envelope, delay: std::time::Duration::ZERO, unique_key })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.commit_with_jobs(tx, &jobs).await?;
        Ok(jobs.len())
    }

    async fn next_due_at(&self, pools: &[JobPool]) -> Result<Option<DateTime<Utc>>, StoreError> {
        let queues: Vec<String> = pools.iter().map(|p| p.as_str().to_owned()).collect();
        let sql = format!("SELECT min(due_at) FROM scheduled_jobs WHERE {}", DB::in_json_ids("queue", 1));
        let next: OptTs = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(json_ids(&queues))
            .fetch_one(&self.pool)
            .await?;
        Ok(next.0)
    }

    fn connections(&self) -> ConnectionUse {
        ConnectionUse {
            open: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.pool.options().get_max_connections(),
        }
    }

    /// The queue's own counts, plus the delayed jobs waiting in `scheduled_jobs` as `scheduled`,
    /// from one snapshot: a job moving between the two tables (a promotion, a retry pushed as a
    /// delayed job before its attempt is acknowledged) is counted once, never missed.
    async fn queue_stats(&self) -> Result<Vec<QueueStats>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(snapshot) = DB::SNAPSHOT {
            sqlx::query(snapshot).execute(&mut *tx).await?;
        }
        let mut stats = DB::queue_stats(&mut tx).await?;
        let waiting: Vec<(String, i64)> =
            sqlx::query_as("SELECT queue, count(*) FROM scheduled_jobs GROUP BY queue")
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        for (queue, n) in waiting {
            if let Some(s) = stats.iter_mut().find(|s| s.pool == queue) {
                s.scheduled += n.max(0) as u64;
            }
        }
        Ok(stats)
    }

    async fn dead_jobs(&self, pool: Option<JobPool>, limit: u32) -> Result<Vec<DeadJob>, StoreError> {
        self.dead_rows(pool, None, limit).await
    }

    async fn dead_job(&self, job_id: &str) -> Result<Option<DeadJob>, StoreError> {
        Ok(self.dead_rows(None, Some(job_id), 1).await?.pop())
    }

    async fn discard_dead_job(&self, job_id: &str) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.pool).await?;
        let closed = close_dead::<DB>(&mut tx, job_id, "discarded by an operator").await?;
        tx.commit().await?;
        Ok(closed)
    }

    /// Re-enqueues the dead job as a new generation of its work and closes the dead row, in one
    /// transaction (the row is locked first, so two operators retrying at once enqueue it once).
    async fn retry_dead_job(&self, job_id: &str) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.pool).await?;
        let sql = format!("SELECT job FROM {} WHERE id = $1 AND {DEAD}{}", DB::JOBS, DB::FOR_UPDATE);
        let payload: Option<Vec<u8>> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(job_id).fetch_optional(&mut *tx).await?;
        let Some(payload) = payload else { return Ok(false) };
        let job = crate::restart_from_dead(&payload)?;
        close_dead::<DB>(&mut tx, job_id, "retried by an operator").await?;
        self.commit_with_jobs(tx, std::slice::from_ref(&job)).await?;
        Ok(true)
    }

    async fn enqueue_tick(
        &self,
        schedule: &str,
        tick_at: DateTime<Utc>,
        job: &NewJob,
    ) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.pool).await?;
        let claimed = sqlx::query(
            "INSERT INTO schedule_ticks (schedule, tick_at, enqueued_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(schedule)
        .bind(Ts(tick_at))
        .bind(self.now())
        .execute(&mut *tx)
        .await?
        .affected()
            == 1;
        let jobs = if claimed { std::slice::from_ref(job) } else { &[] };
        self.commit_with_jobs(tx, jobs).await?;
        Ok(claimed)
    }
}

#[engines]
impl SqlStore<DB> {
    /// Dead jobs of `which` pool (all when `None`), or the one with id `only`, newest first.
    async fn dead_rows(
        &self,
        which: Option<JobPool>,
        only: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeadJob>, StoreError> {
        let sql = format!(
            "SELECT id, job_type, job, attempts, CAST(last_result AS TEXT) AS last_result,
                    coalesce(done_at, lock_at) AS died_at
               FROM {} WHERE {DEAD} AND ($1 IS NULL OR job_type = $1) AND ($3 IS NULL OR id = $3)
              ORDER BY coalesce(done_at, lock_at, run_at) DESC LIMIT $2",
            DB::JOBS
        );
        let rows: Vec<DeadRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(which.map(|p| p.as_str().to_owned()))
            .bind(i64::from(limit))
            .bind(only.map(str::to_owned))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| crate::dead_job(r.id, r.job_type, r.attempts, r.last_result, r.died_at, &r.job))
            .collect()
    }
}

/// Deletes up to `limit` finished job rows older than `before` (apalis never does); how many.
pub(crate) async fn purge_done_jobs<DB>(
    pool: &Pool<DB>,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<u64, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> i64: Encode<'r, DB> + Type<DB>,
    for<'r> QueueTs: Encode<'r, DB> + Type<DB>,
{
    let sql = format!(
        "DELETE FROM {0} WHERE id IN (SELECT id FROM {0} WHERE status = 'Done' AND done_at < $1 LIMIT $2)",
        DB::JOBS
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(QueueTs(before)).bind(limit).execute(pool).await?;
    Ok(done.affected())
}

/// Closes the dead job `job_id` as `Done` with `why` as its last result; `false` if no dead job
/// has that id.
async fn close_dead<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    job_id: &str,
    why: &str,
) -> Result<bool, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> &'r str: Encode<'r, DB> + Type<DB>,
    for<'r> QueueTs: Encode<'r, DB> + Type<DB>,
    for<'r> Json<serde_json::Value>: Encode<'r, DB> + Type<DB>,
{
    let sql = format!(
        "UPDATE {} SET status = 'Done', done_at = $2, last_result = $3 WHERE id = $1 AND {DEAD}",
        DB::JOBS
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(job_id)
        .bind(QueueTs(Utc::now()))
        .bind(Json(json!({ "Err": why })))
        .execute(&mut **tx)
        .await?;
    Ok(done.affected() == 1)
}
