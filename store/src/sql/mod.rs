//! One implementation of the storage port for both engines: [`SqlStore<DB>`], generic over sqlx's
//! `Database`, with a small [`Dialect`] trait for what really differs.
//!
//! **What is shared.** Every table of ours and its methods are written once, in this module's
//! files (`webhooks.rs`, `devices.rs`, `push.rs`, `queue.rs`, `calls.rs`, `routing.rs`,
//! `recordings.rs`), as plain SQL with `$n` placeholders (sqlx's SQLite driver reads `$n` as the
//! n-th argument, as Postgres does). Times are bound from Rust as [`Ts`] — `TIMESTAMPTZ` on
//! Postgres, integer milliseconds on SQLite — and read through the same type, so row types derive
//! `FromRow` once. The current time of a record (`created_at`, `processed_at`, …) comes from the
//! store's [`Clock`], which tests and the call engine's timers can replace; queue run times stay
//! on the queue's own clock ([`time::QueueTs`]). apalis's queue table has the same columns on
//! both engines under another name ([`Dialect::JOBS`]), so the dead set, its retry and the purge
//! of finished jobs are shared too (`queue.rs`).
//!
//! **What differs, per engine** (`postgres.rs`, `sqlite.rs`, implementing [`Dialect`]): inserting
//! job rows (an `unnest` insert vs multi-row `VALUES`) and the queue's counts (`now()` vs a bound
//! Unix second); the Postgres one-statement `unnest`/CTE fast path of `accept_webhooks`
//! (measured: p99 24 → 10 ms against a transaction of several statements); id lists (`ANY` over
//! a JSON array vs `json_each`); row locks (`FOR UPDATE`, which SQLite does not need: a write
//! transaction holds the database lock).
//!
//! **Why a generic and not `Any` or a query DSL.** sqlx's `Any` driver has no chrono support
//! and erases the transaction type apalis needs for transactional enqueue; a query builder
//! (sea-query, diesel's DSL) would add a second language beside the raw SQL the fast path and
//! apalis's tables need. The price of the generic is a list of trait bounds (every value the SQL
//! binds or reads must be `Encode`/`Decode` for `DB`; Rust does not carry such bounds on other
//! types through a trait), written once in `fleet-store-macros` and put on each shared impl
//! block by `#[engines]`, and SQL that both engines accept — which the conformance suite checks
//! on both.
//!
//! **Transactions on SQLite.** A deferred transaction that reads and then writes fails to
//! upgrade its lock ("database is locked", no wait) when another writer committed in between, so
//! every write transaction opens through [`begin_write`] (`BEGIN IMMEDIATE` on SQLite): it takes
//! the write lock at once, and concurrent writers queue on the busy timeout instead of failing.
//! Only read-only transactions (queue statistics) use a plain `begin`.
//!
//! **Adding a table and its methods**: a migration per engine (`migrations/postgres`,
//! `migrations/sqlite`; the same columns, times as `TIMESTAMPTZ` / `INTEGER`), the method on its
//! area's port trait (`crate::port`), its body once in the area's file here (inside its
//! `#[engines] impl <Area>Store for SqlStore<DB>` block), and a conformance case. Only SQL that
//! really differs goes through a new [`Dialect`] item.

mod calls;
mod devices;
mod push;
mod queue;
mod recordings;
mod routing;
pub mod time;
mod webhooks;

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fleet_store_macros::engines;
use sqlx::{Database, IntoArguments, Pool, Transaction};

pub(crate) use queue::{DEAD, purge_done_jobs};
pub use time::{OptTs, Ts, opt};

use crate::wake::QueueWaker;
use crate::{Accepted, Engine, NewJob, NewWebhook, QueueStats, Store, StoreError};

/// The time source of record timestamps.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The store on one engine; cheap to clone (a pool handle, the waker, the clock).
pub struct SqlStore<DB: Database> {
    pool: Pool<DB>,
    waker: QueueWaker,
    clock: Clock,
}

impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self { pool: self.pool.clone(), waker: self.waker.clone(), clock: self.clock.clone() }
    }
}

impl<DB: Database> SqlStore<DB> {
    pub(crate) fn from_pool(pool: Pool<DB>) -> Self {
        Self { pool, waker: QueueWaker::default(), clock: Arc::new(Utc::now) }
    }

    /// The same store with record times read from `clock` (tests, simulated time).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Wakes this process's workers after enqueues.
    pub fn waker(&self) -> &QueueWaker {
        &self.waker
    }

    /// The pool, for the queue workers.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// The store clock's current time, as bound into SQL.
    pub(crate) fn now(&self) -> Ts {
        Ts((self.clock)())
    }
}

/// How many rows a statement changed (each driver has its own result type).
pub trait Affected {
    fn affected(&self) -> u64;
}

/// What each engine does its own way. Implemented for `sqlx::Postgres` and `sqlx::Sqlite`.
pub trait Dialect: Database<QueryResult: Affected, Arguments: IntoArguments<Self>> {
    const ENGINE: Engine;

    /// apalis's queue table (the same columns on both engines; run times as [`time::QueueTs`]).
    const JOBS: &'static str;

    /// Appended to a `SELECT` that locks the rows it reads inside a write transaction.
    const FOR_UPDATE: &'static str;

    /// The statement that opens a write transaction, when the engine's default `BEGIN` is not
    /// one (see [`begin_write`]).
    const BEGIN_WRITE: Option<&'static str>;

    /// Appended to a `SELECT` of rows to claim, so concurrent claimers take different rows.
    const SKIP_LOCKED: &'static str;

    /// A condition true when `column` is one of the strings of the JSON array bound as `$n`.
    fn in_json_ids(column: &str, n: usize) -> String;

    /// Inserts job rows that are due now inside `tx`; per job, whether it was inserted (`false`:
    /// its unique key was pushed before). Delayed jobs never come here (see `SqlStore::push`).
    fn push_jobs(
        tx: &mut Transaction<'_, Self>,
        jobs: &[NewJob],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// Stores new webhooks and the processing job of each, in one transaction. Returns the
    /// outcome per delivery and the jobs that were enqueued.
    fn accept_webhooks(
        store: &SqlStore<Self>,
        batch: &[NewWebhook],
    ) -> impl Future<Output = Result<(Vec<Accepted>, Vec<NewJob>), StoreError>> + Send;

    /// Makes the transaction it starts read one snapshot across statements (Postgres' default,
    /// READ COMMITTED, takes a new one per statement; a SQLite read transaction already holds one).
    const SNAPSHOT: Option<&'static str>;

    /// Counts of the queue table, read inside `tx` (which [`Self::SNAPSHOT`] made consistent).
    fn queue_stats(
        tx: &mut Transaction<'_, Self>,
    ) -> impl Future<Output = Result<Vec<QueueStats>, StoreError>> + Send;
}

/// Opens a transaction that will write. On SQLite that is `BEGIN IMMEDIATE`: it takes the write
/// lock up front, so a writer that finds the lock taken waits on the busy timeout. A deferred
/// `BEGIN` would read first and then fail to upgrade (`SQLITE_BUSY`, "database is locked", with no
/// wait) whenever another connection committed in between — which the operator's dead-job retry
/// and any read-then-write method would meet under load.
pub(crate) async fn begin_write<DB: Dialect>(
    pool: &Pool<DB>,
) -> Result<Transaction<'static, DB>, StoreError> {
    Ok(match DB::BEGIN_WRITE {
        Some(statement) => pool.begin_with(statement).await?,
        None => pool.begin().await?,
    })
}

/// Serialises an id list for [`Dialect::in_json_ids`].
pub(crate) fn json_ids(ids: &[String]) -> String {
    serde_json::Value::from(ids).to_string()
}

/// Keeps the jobs that were actually enqueued.
pub(crate) fn inserted_only(jobs: Vec<NewJob>, pushed: Vec<bool>) -> Vec<NewJob> {
    jobs.into_iter().zip(pushed).filter(|(_, p)| *p).map(|(j, _)| j).collect()
}

#[engines]
impl SqlStore<DB> {
    /// Pushes `jobs` inside `tx`, commits, then wakes this process's workers: the end of every
    /// transaction that writes rows together with the jobs they cause. Per job, whether it was new.
    pub(crate) async fn commit_with_jobs(
        &self,
        mut tx: Transaction<'_, DB>,
        jobs: &[NewJob],
    ) -> Result<Vec<bool>, StoreError> {
        let pushed = self.push(&mut tx, jobs).await?;
        tx.commit().await?;
        self.waker.pushed(jobs, &pushed);
        Ok(pushed)
    }

    /// Commits `tx` with `jobs` if its write took (`wrote`: the row was new, or the
    /// compare-and-set won); otherwise drops it (a rollback) and pushes nothing. Returns `wrote`.
    pub(crate) async fn commit_if(
        &self,
        tx: Transaction<'_, DB>,
        wrote: bool,
        jobs: &[NewJob],
    ) -> Result<bool, StoreError> {
        if wrote {
            self.commit_with_jobs(tx, jobs).await?;
        }
        Ok(wrote)
    }

    /// Enqueues `jobs` inside `tx`: those due now into their queue, delayed ones into
    /// `scheduled_jobs` with a due time in milliseconds by the store's clock (the promoter moves
    /// them into the queue when they fall due). Per job, whether it was newly enqueued. A unique
    /// key dedupes within each table; a delayed job whose key already reached the queue is
    /// dropped when it is promoted.
    pub(crate) async fn push(
        &self,
        tx: &mut Transaction<'_, DB>,
        jobs: &[NewJob],
    ) -> Result<Vec<bool>, StoreError> {
        let (due, later): (Vec<_>, Vec<_>) = jobs.iter().enumerate().partition(|(_, j)| j.delay.is_zero());
        let due_jobs: Vec<NewJob> = due.iter().map(|(_, j)| (*j).clone()).collect();
        let mut pushed = vec![false; jobs.len()];
        for ((i, _), ok) in due.iter().zip(DB::push_jobs(tx, &due_jobs).await?) {
            pushed[*i] = ok;
        }
        let now = self.now().0;
        for (i, job) in later {
            let payload =
                serde_json::to_vec(&job.envelope).map_err(|e| StoreError::corrupt("job envelope", e))?;
            // Whole milliseconds, rounded up (never early), the same on both engines.
            let delay_ms = i64::try_from(job.delay.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX);
            let due_at = now + chrono::Duration::try_milliseconds(delay_ms).unwrap_or(chrono::Duration::MAX);
            pushed[i] = sqlx::query(
                "INSERT INTO scheduled_jobs (id, queue, job, unique_key, due_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT DO NOTHING",
            )
            .bind(ulid::Ulid::generate().to_string())
            .bind(job.envelope.pool().as_str())
            .bind(payload)
            .bind(&job.unique_key)
            .bind(Ts(due_at))
            .execute(&mut **tx)
            .await?
            .affected()
                == 1;
        }
        Ok(pushed)
    }
}

#[engines]
#[async_trait]
impl Store for SqlStore<DB> {
    fn engine(&self) -> Engine {
        DB::ENGINE
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Fails unless the store and its queue table answer.
        let sql = format!("SELECT 1 FROM {} LIMIT 1", DB::JOBS);
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&self.pool).await?;
        Ok(())
    }
}
