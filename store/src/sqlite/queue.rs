//! Queue rows in apalis's `Jobs` table on SQLite (run times in Unix seconds).

use chrono::Utc;
use fleet_jobs::Pool;
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use crate::{DeadJob, NewJob, QueueStats, StoreError, queue_rows};

const DEAD: &str = "(status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))";

/// Rows per multi-row INSERT.
const CHUNK: usize = 128;

/// Pushes jobs, a multi-row statement per chunk; returns, per job, whether it was inserted.
pub(super) async fn push(tx: &mut Transaction<'_, Sqlite>, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
    let rows = queue_rows(jobs)?;
    // run_at is whole seconds: round a due time up, so a delayed job never runs early (a
    // provider's Retry-After is a floor), and leave an immediate one at the current second.
    let now_ms = Utc::now().timestamp_millis();
    let run_at = |delay_secs: i64| match delay_secs {
        0 => now_ms.div_euclid(1000),
        d => (now_ms + d * 1000 + 999).div_euclid(1000),
    };
    let mut inserted = std::collections::HashSet::with_capacity(jobs.len());
    for start in (0..rows.ids.len()).step_by(CHUNK) {
        let end = (start + CHUNK).min(rows.ids.len());
        let values = vec!["(?, ?, ?, 'Pending', 0, ?, ?, 0, ?)"; end - start].join(", ");
        let sql = format!(
            "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority, idempotency_key)
             VALUES {values} ON CONFLICT (job_type, idempotency_key) DO NOTHING RETURNING id"
        );
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
        for i in start..end {
            query = query
                .bind(&rows.payloads[i])
                .bind(&rows.ids[i])
                .bind(&rows.queues[i])
                .bind(rows.max_attempts[i])
                .bind(run_at(rows.delays[i]))
                .bind(&rows.keys[i]);
        }
        inserted.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(rows.ids.iter().map(|id| inserted.contains(id)).collect())
}

pub(super) async fn stats(pool: &SqlitePool) -> Result<Vec<QueueStats>, StoreError> {
    let now = Utc::now().timestamp();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT job_type,
                sum(CASE WHEN (status IN ('Pending', 'Queued') AND run_at <= ?1)
                          OR (status = 'Failed' AND attempts < max_attempts) THEN 1 ELSE 0 END) AS ready,
                sum(CASE WHEN status = 'Pending' AND run_at > ?1 THEN 1 ELSE 0 END) AS scheduled,
                sum(CASE WHEN status = 'Running' THEN 1 ELSE 0 END) AS running,
                sum(CASE WHEN {DEAD} THEN 1 ELSE 0 END) AS dead,
                min(CASE WHEN status IN ('Pending', 'Queued') AND run_at <= ?1 THEN run_at END) AS oldest
           FROM Jobs WHERE status <> 'Done' GROUP BY job_type"
    )))
    .bind(now)
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
            let oldest: Option<i64> = row.try_get("oldest")?;
            stats.oldest_ready_age_secs = oldest.map_or(0.0, |t| (now - t).max(0) as f64);
        }
    }
    Ok(by_pool)
}

pub(super) async fn dead(
    pool: &SqlitePool,
    which: Option<Pool>,
    limit: u32,
) -> Result<Vec<DeadJob>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, job_type, job, attempts, last_result, done_at, lock_at FROM Jobs
          WHERE {DEAD} AND (?1 IS NULL OR job_type = ?1)
          ORDER BY coalesce(done_at, lock_at, run_at) DESC LIMIT ?2"
    )))
    .bind(which.map(|p| p.as_str()))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let payload: Vec<u8> = row.try_get("job")?;
            let at: Option<i64> = row.try_get::<Option<i64>, _>("done_at")?.or(row.try_get("lock_at")?);
            crate::dead_job(
                row.try_get("id")?,
                row.try_get("job_type")?,
                row.try_get::<i32, _>("attempts")?,
                row.try_get("last_result")?,
                super::from_millis(at.map(|s| s * 1000)),
                &payload,
            )
        })
        .collect()
}

pub(super) async fn retry_dead(pool: &SqlitePool, job_id: &str) -> Result<Option<NewJob>, StoreError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT job FROM Jobs WHERE id = ?1 AND {DEAD}")))
        .bind(job_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let payload: Vec<u8> = row.try_get("job")?;
    let job = crate::restart_from_dead(&payload)?;
    push(&mut tx, std::slice::from_ref(&job)).await?;
    sqlx::query(
        "UPDATE Jobs SET status = 'Done', done_at = ?2, last_result = '{\"Err\":\"retried by an operator\"}' WHERE id = ?1",
    )
    .bind(job_id)
    .bind(Utc::now().timestamp())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(job))
}
