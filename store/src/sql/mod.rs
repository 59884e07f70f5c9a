//! One implementation of the storage port for both engines: [`SqlStore<DB>`], generic over sqlx's
//! `Database`, with a small [`Dialect`] trait for what really differs.
//!
//! **What is shared.** Every table of ours and its methods are written once, in this module's
//! files (`webhooks.rs`, `devices.rs`, `push.rs`), as plain SQL with `$n` placeholders (sqlx's
//! SQLite driver reads `$n` as the n-th argument, as Postgres does). Times are bound from Rust as
//! [`Ts`] — `TIMESTAMPTZ` on Postgres, integer milliseconds on SQLite — and read through the
//! same type, so row types derive `FromRow` once. The current time of a record (`created_at`,
//! `processed_at`, …) comes from the store's [`Clock`], which tests and the call engine's timers
//! can replace; queue run times stay on the queue's own clock (see below).
//!
//! **What differs, per engine** (`postgres.rs`, `sqlite.rs`, implementing [`Dialect`]): apalis's
//! queue tables (`apalis.jobs` with `TIMESTAMPTZ` run times vs `Jobs` with Unix seconds) and so
//! job pushes, queue statistics, the dead set and its retry; the Postgres one-statement
//! `unnest`/CTE fast path of `accept_webhooks` (measured: p99 24 → 10 ms against a transaction of
//! several statements); id lists (`ANY` over a JSON array vs `json_each`); row locks
//! (`FOR UPDATE`, which SQLite does not need: a write transaction holds the database lock).
//!
//! **Why a generic and not `Any` or a query DSL.** sqlx's `Any` driver has no chrono support
//! and erases the transaction type apalis needs for transactional enqueue; a query builder
//! (sea-query, diesel's DSL) would add a second language beside the raw SQL the fast path and
//! apalis's tables need. The price of the generic is one list of trait bounds ([`SqlStore`]'s
//! impl blocks repeat it, because Rust does not carry bounds on foreign types through a trait),
//! and SQL that both engines accept — which the conformance suite checks on both.
//!
//! **Transactions on SQLite.** A transaction that reads and then writes can fail to upgrade its
//! lock when another writer got there first, so every shared write transaction starts with a
//! write statement: it takes the write lock at once, and concurrent writers queue on the busy
//! timeout instead of failing.
//!
//! **Adding a table and its methods**: a migration per engine (`migrations/postgres`,
//! `migrations/sqlite`; the same columns, times as `TIMESTAMPTZ` / `INTEGER`), the method on
//! [`crate::Store`], its body once in a file here (an inherent `impl<DB> SqlStore<DB>` block with
//! the bounds), a one-line delegation in `impl Store`, and a conformance case. Only SQL that
//! really differs goes through a new [`Dialect`] item.

mod devices;
mod push;
pub mod time;
mod webhooks;

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fleet_jobs::Pool as JobPool;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Transaction, Type};

pub use time::{OptTs, Ts, opt};

use crate::wake::QueueWaker;
use crate::{Accepted, DeadJob, Engine, NewJob, NewWebhook, QueueStats, QueueStore, Store, StoreError};

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

    pub(crate) fn now(&self) -> Ts {
        Ts((self.clock)())
    }
}

/// How many rows a statement changed (each driver has its own result type).
pub trait Affected {
    fn affected(&self) -> u64;
}

/// What each engine does its own way. Implemented for `sqlx::Postgres` and `sqlx::Sqlite`.
pub trait Dialect: Database<QueryResult: Affected> {
    const ENGINE: Engine;

    /// A cheap statement that fails unless the store and its queue table answer.
    const PING: &'static str;

    /// Appended to a `SELECT` that locks the rows it reads inside a write transaction.
    const FOR_UPDATE: &'static str;

    /// A condition true when `column` is one of the strings of the JSON array bound as `$n`.
    fn in_json_ids(column: &str, n: usize) -> String;

    /// Inserts job rows inside `tx`; per job, whether it was inserted (`false`: its unique key
    /// was pushed before). Run times are the queue's own clock plus each job's delay.
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

    fn queue_stats(pool: &Pool<Self>) -> impl Future<Output = Result<Vec<QueueStats>, StoreError>> + Send;

    fn dead_jobs(
        pool: &Pool<Self>,
        which: Option<JobPool>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<DeadJob>, StoreError>> + Send;

    /// Re-enqueues a dead job as a new generation of its work and closes the dead row, in one
    /// transaction; the new job, or `None` if no dead job has that id.
    fn retry_dead(
        pool: &Pool<Self>,
        job_id: &str,
    ) -> impl Future<Output = Result<Option<NewJob>, StoreError>> + Send;

    /// Deletes finished job rows older than `before` (apalis never does).
    fn purge_done_jobs(
        pool: &Pool<Self>,
        before: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Serialises an id list for [`Dialect::in_json_ids`].
pub(crate) fn json_ids(ids: &[String]) -> String {
    serde_json::Value::from(ids).to_string()
}

/// Keeps the jobs that were actually enqueued.
pub(crate) fn inserted_only(jobs: Vec<NewJob>, pushed: Vec<bool>) -> Vec<NewJob> {
    jobs.into_iter().zip(pushed).filter(|(_, p)| *p).map(|(j, _)| j).collect()
}

#[async_trait]
impl<DB> QueueStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'r> &'r str: Encode<'r, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'r> String: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Encode<'r, DB>,
    for<'r> i64: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> Ts: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> Option<Ts>: Encode<'r, DB>,
    for<'r> OptTs: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let pushed = DB::push_jobs(&mut tx, jobs).await?;
        tx.commit().await?;
        self.waker.pushed(jobs, &pushed);
        Ok(pushed)
    }

    async fn queue_stats(&self) -> Result<Vec<QueueStats>, StoreError> {
        DB::queue_stats(&self.pool).await
    }

    async fn dead_jobs(&self, pool: Option<JobPool>, limit: u32) -> Result<Vec<DeadJob>, StoreError> {
        DB::dead_jobs(&self.pool, pool, limit).await
    }

    async fn retry_dead_job(&self, job_id: &str) -> Result<bool, StoreError> {
        let job = DB::retry_dead(&self.pool, job_id).await?;
        self.waker.pushed_all(job.as_slice());
        Ok(job.is_some())
    }

    async fn enqueue_tick(
        &self,
        schedule: &str,
        tick_at: DateTime<Utc>,
        job: &NewJob,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
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
        let job = std::slice::from_ref(job);
        let pushed = if claimed { DB::push_jobs(&mut tx, job).await? } else { Vec::new() };
        tx.commit().await?;
        self.waker.pushed(job, &pushed);
        Ok(claimed)
    }
}

#[async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'r> &'r str: Encode<'r, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'r> String: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Encode<'r, DB>,
    for<'r> i64: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> Ts: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> Option<Ts>: Encode<'r, DB>,
    for<'r> OptTs: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    fn engine(&self) -> Engine {
        DB::ENGINE
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(DB::PING).execute(&self.pool).await?;
        Ok(())
    }
}
