//! SQLite: the embedded default, store and queues in one file, no external service — what it
//! does its own way.
//!
//! The file runs in WAL mode with `synchronous=FULL`, so a committed webhook survives a crash of
//! the process or of the machine. (apalis's own `setup()` would switch `synchronous` off; we run
//! its migrations without it.) Our migrations keep their history in `_app_migrations`, apart from
//! apalis's `_sqlx_migrations`. SQLite allows one writer at a time; a busy timeout makes writers
//! queue instead of failing, and the ingress batches webhooks so one commit acknowledges many.
//! apalis's `Jobs` table keeps run times in Unix seconds.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};

use crate::sql::{Affected, DEAD, Dialect, SqlStore, Ts};
use crate::webhook_jobs::outcomes;
use crate::{Accepted, Engine, NewJob, NewWebhook, QueueStats, StoreError, queue_rows};

/// The SQLite store.
pub type SqliteStore = SqlStore<Sqlite>;

/// Rows per multi-row INSERT (far below SQLite's parameter limit).
const CHUNK: usize = 128;

impl SqlStore<Sqlite> {
    /// Opens (creating if needed) the database file named by `url` (`sqlite://path?mode=rwc`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        if let Some(dir) = file_of(url).and_then(|f| std::path::Path::new(f).parent().map(|p| p.to_owned())) {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(&dir)
                    .map_err(|source| StoreError::Io { path: dir.display().to_string(), source })?;
            }
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// Runs apalis's migrations and ours (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        apalis_sqlite::SqliteStorage::migrations().run(self.pool()).await?;
        let mut ours = sqlx::migrate!("../migrations/sqlite");
        ours.dangerous_set_table_name("_app_migrations");
        ours.run(self.pool()).await?;
        Ok(())
    }
}

fn file_of(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

impl Affected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Dialect for Sqlite {
    const ENGINE: Engine = Engine::Sqlite;
    const JOBS: &'static str = "Jobs";
    const SKIP_LOCKED: &'static str = "";
    const FOR_UPDATE: &'static str = "";
    const BEGIN_WRITE: Option<&'static str> = Some("BEGIN IMMEDIATE");
    const SNAPSHOT: Option<&'static str> = None;

    fn in_json_ids(column: &str, n: usize) -> String {
        format!("{column} IN (SELECT value FROM json_each(${n}))")
    }

    /// A multi-row statement per chunk, due at the current second.
    async fn push_jobs(tx: &mut Transaction<'_, Self>, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
        let rows = queue_rows(jobs)?;
        let now = Utc::now().timestamp();
        let mut inserted = HashSet::with_capacity(jobs.len());
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
                    .bind(now)
                    .bind(&rows.keys[i]);
            }
            inserted.extend(query.fetch_all(&mut **tx).await?);
        }
        Ok(rows.ids.iter().map(|id| inserted.contains(id)).collect())
    }

    /// One transaction, a few multi-row statements (each is a round trip to sqlx's SQLite
    /// thread): the events, then the jobs of the ones that were new.
    async fn accept_webhooks(
        store: &SqlStore<Self>,
        batch: &[NewWebhook],
    ) -> Result<(Vec<Accepted>, Vec<NewJob>), StoreError> {
        let mut tx = crate::sql::begin_write(store.pool()).await?;
        let mut inserted = HashSet::with_capacity(batch.len());
        for chunk in batch.chunks(CHUNK) {
            let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO webhook_events (event_id, event_type, call_session_id, source, attempt, body, received_at)
                 VALUES {values} ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
            );
            let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
            for w in chunk {
                query = query
                    .bind(&w.event_id)
                    .bind(&w.event_type)
                    .bind(&w.call_session_id)
                    .bind(w.source.as_str())
                    .bind(w.attempt.map(i64::from))
                    .bind(&w.body)
                    .bind(Ts(w.received_at));
            }
            inserted.extend(query.fetch_all(&mut *tx).await?);
        }
        let (outcomes, jobs) = outcomes(batch, inserted);
        let pushed = Self::push_jobs(&mut tx, &jobs).await?;
        tx.commit().await?;
        Ok((outcomes, crate::sql::inserted_only(jobs, pushed)))
    }

    async fn queue_stats(tx: &mut Transaction<'_, Self>) -> Result<Vec<QueueStats>, StoreError> {
        let rows: Vec<(String, i64, i64, i64, i64, f64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT job_type,
                    count(*) FILTER (WHERE status IN ('Pending', 'Queued') AND run_at <= $1
                                        OR status = 'Failed' AND attempts < max_attempts),
                    count(*) FILTER (WHERE status = 'Pending' AND run_at > $1),
                    count(*) FILTER (WHERE status = 'Running'),
                    count(*) FILTER (WHERE {DEAD}),
                    CAST(max(0, coalesce($1 - min(run_at) FILTER (
                        WHERE status IN ('Pending', 'Queued') AND run_at <= $1), 0)) AS REAL)
               FROM Jobs WHERE status <> 'Done' GROUP BY job_type"
        )))
        .bind(Utc::now().timestamp())
        .fetch_all(&mut **tx)
        .await?;
        Ok(QueueStats::per_pool(rows))
    }
}
