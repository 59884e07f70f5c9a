//! Which worker processes are alive (Postgres), and the rescue of the jobs of those that are not.
//!
//! apalis returns the jobs of a dead worker to the queue only after its heartbeat has been
//! silent for the orphan window (12 s by default): a worker SIGKILLed right after a call's winner
//! was decided would leave the other devices ringing that long. Postgres knows sooner: every
//! worker process holds a session advisory lock (class [`PROCESS_LOCK_CLASS`], a random key of
//! the process) on a connection of its own for as long as it lives, and the kernel closes that
//! connection the instant the process dies, which releases the lock. Worker names end in
//! `.{key}` ([`worker_name_suffix`]), so a claimed job (`Queued` in a worker's buffer, or
//! `Running`) whose worker's key is not locked by anyone belongs to a process that is gone.
//!
//! [`PgStore::gone_processes`] lists such keys; [`PgStore::rescue_jobs_of`] re-checks each key
//! inside its own statement and returns the claimed jobs to `Pending` the way apalis's orphan
//! rescue does (attempt counted, lock cleared), with a NOTIFY per queue so workers everywhere
//! fetch them at once. The caller (`fleet_workers::liveness`) decides when a key has been absent
//! long enough and whether its own lock is settled (after Postgres restarts every lock vanishes
//! at once, and live processes need a moment to take theirs again).
//!
//! Failure behaviour: a process whose lock connection is cut while it lives (a network fault,
//! a terminated backend) looks dead; its running jobs may be rescued and run a second time —
//! safe, because every handler is idempotent, and logged. Jobs of workers without a key suffix
//! (older versions) are left to apalis's orphan window. SQLite has no other process to rescue
//! from: its fleet is one process, which dies whole.
//!
//! The statements are assembled from the constants below only (hence `AssertSqlSafe`).

use std::str::FromStr;

use fleet_jobs::Pool as JobPool;
use sqlx::{Connection, PgConnection};

use crate::StoreError;
use crate::postgres::PgStore;

/// The advisory-lock class of worker-process locks ("cflt").
pub const PROCESS_LOCK_CLASS: i32 = 0x6366_6c74;

/// What every worker name of the process holding lock `key` ends with.
pub fn worker_name_suffix(key: i32) -> String {
    format!(".{key}")
}

/// The key named by a worker name's suffix, as SQL (`lock_by` → int8, NULL without a suffix).
const KEY_OF_LOCK_BY: &str = "substring(lock_by from '\\.([0-9]+)$')::int8";

/// The keys whose process lock is held in this database, as SQL.
const HELD_KEYS: &str = "SELECT objid::int8 FROM pg_locks
     WHERE locktype = 'advisory' AND classid = $1::int4::oid AND objsubid = 2 AND granted
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// A held process lock: released when dropped (or when the process dies).
pub struct ProcessLock {
    conn: PgConnection,
}

impl ProcessLock {
    /// Fails when the lock's connection is gone (and with it the lock).
    pub async fn check(&mut self) -> Result<(), StoreError> {
        Ok(self.conn.ping().await?)
    }
}

impl PgStore {
    /// Opens a connection of its own and takes the lock of `key` on it; `None` if another session
    /// holds that key (pick another, or wait for a zombie session of ours to be noticed). The
    /// lock lasts as long as the returned connection.
    pub async fn take_process_lock(&self, key: i32) -> Result<Option<ProcessLock>, StoreError> {
        let options = self.pool().connect_options();
        let mut conn = PgConnection::connect_with(&options).await?;
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(PROCESS_LOCK_CLASS)
            .bind(key)
            .fetch_one(&mut conn)
            .await?;
        if held {
            Ok(Some(ProcessLock { conn }))
        } else {
            conn.close().await.ok();
            Ok(None)
        }
    }

    /// Keys of processes that have claimed jobs and hold no lock: gone, or cut off. None in the
    /// first seconds after the server started (every lock was just dropped).
    pub async fn gone_processes(&self) -> Result<Vec<i64>, StoreError> {
        let sql = format!(
            "SELECT DISTINCT {KEY_OF_LOCK_BY} FROM apalis.jobs WHERE status IN ('Running', 'Queued') AND lock_by ~ '\\.[0-9]+$'
                AND now() - pg_postmaster_start_time() > interval '5 seconds'
             EXCEPT {HELD_KEYS}"
        );
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(PROCESS_LOCK_CLASS)
            .fetch_all(self.pool())
            .await?)
    }

    /// Returns to their queues the claimed jobs of one worker of this process that apalis has
    /// just given up on (its future ended with a backend error; the monitor starts a new one under
    /// a new name). Nothing else would free them before the orphan window: the dead worker's
    /// heartbeat stops, but its process's lock is still held. Its buffered (`Queued`) jobs never
    /// started; its `Running` ones may still be finishing in a task of their own, but apalis writes
    /// completions from the worker's poll loop, which is gone, so they would run again after the
    /// orphan window anyway — now they run again at once (handlers are idempotent). How many per
    /// pool, with a NOTIFY per queue.
    pub async fn release_jobs_of_worker(&self, worker: &str) -> Result<Vec<(JobPool, u64)>, StoreError> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "WITH released AS (
                 UPDATE apalis.jobs
                    SET status = 'Pending', done_at = NULL, lock_by = NULL, lock_at = NULL,
                        attempts = attempts + 1,
                        last_result = '{\"Err\": \"Re-enqueued: its worker stopped on a database error.\"}'
                  WHERE lock_by = $1 AND status IN ('Running', 'Queued')
                 RETURNING job_type, id
             )
             SELECT job_type, count(*), max(id) FROM released GROUP BY job_type",
        )
        .bind(worker)
        .fetch_all(self.pool())
        .await?;
        self.announce(rows).await
    }

    /// NOTIFYs each queue of re-enqueued jobs (an UPDATE fires no insert trigger) and wakes this
    /// process's workers of it.
    async fn announce(&self, rows: Vec<(String, i64, String)>) -> Result<Vec<(JobPool, u64)>, StoreError> {
        let mut announced = Vec::with_capacity(rows.len());
        for (queue, n, id) in rows {
            // The payload is apalis's, as our insert trigger sends it.
            let payload = serde_json::json!({ "job_type": queue, "id": id }).to_string();
            sqlx::query("SELECT pg_notify('apalis::job::insert', $1)")
                .bind(payload)
                .execute(self.pool())
                .await?;
            if let Ok(pool) = JobPool::from_str(&queue) {
                self.waker().notify(pool);
                announced.push((pool, n as u64));
            }
        }
        Ok(announced)
    }

    /// Returns to their queues the claimed (`Queued` or `Running`) jobs of the processes `keys`
    /// whose lock is still not held (checked in the same statement); how many per pool.
    pub async fn rescue_jobs_of(&self, keys: &[i64]) -> Result<Vec<(JobPool, u64)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "WITH gone AS (
                 SELECT id FROM apalis.jobs
                  WHERE status IN ('Running', 'Queued') AND lock_by ~ '\\.[0-9]+$' AND {KEY_OF_LOCK_BY} = ANY($2)
                    AND {KEY_OF_LOCK_BY} NOT IN ({HELD_KEYS})
                  FOR UPDATE SKIP LOCKED
             ), rescued AS (
                 UPDATE apalis.jobs j
                    SET status = 'Pending', done_at = NULL, lock_by = NULL, lock_at = NULL,
                        attempts = j.attempts + 1,
                        last_result = '{{\"Err\": \"Re-enqueued: the worker process running it is gone.\"}}'
                   FROM gone WHERE j.id = gone.id
                 RETURNING j.job_type, j.id
             )
             SELECT job_type, count(*), max(id) FROM rescued GROUP BY job_type"
        );
        let rows: Vec<(String, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(PROCESS_LOCK_CLASS)
            .bind(keys)
            .fetch_all(self.pool())
            .await?;
        self.announce(rows).await
    }
}
