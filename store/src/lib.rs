//! The storage port and its two adapters: PostgreSQL (fleets) and SQLite (the embedded default).
//!
//! One database holds both the system of record and the job queues, so "store the webhook and
//! enqueue its job" is one local transaction on either engine: either both exist or neither does.
//! That is the ingress's durability guarantee (a 2xx means stored *and* queued).
//!
//! [`Store`] is the port the roles program against; [`postgres::PgStore`] and
//! [`sqlite::SqliteStore`] implement it, each with its own migrations under `migrations/`, and
//! both pass the same conformance suite (`tests/it/store_conformance.rs`). Errors are one enum,
//! [`StoreError`], that says whether trying again can help.

mod db;
mod error;
pub mod postgres;
mod queue_rows;
pub mod sqlite;
mod types;
pub mod wake;
pub mod webhook_jobs;

pub use db::Db;
pub use error::StoreError;
pub use queue_rows::APALIS_MAX_ATTEMPTS;
pub(crate) use queue_rows::{dead_job, queue_rows, restart_from_dead};
pub use types::*;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fleet_jobs::Pool;

/// The storage port. Every method is one short transaction (or none); none holds a connection
/// across a call to anything outside the database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which engine this is.
    fn engine(&self) -> Engine;

    /// Round-trips to the database (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores each webhook unless its event id is already stored, and enqueues the processing
    /// job of each newly stored one — all in one transaction. Outcomes are in input order; a
    /// repeated id within the batch is `Duplicate` after its first occurrence.
    async fn accept_webhooks(&self, batch: &[NewWebhook]) -> Result<Vec<Accepted>, StoreError>;

    /// One stored webhook by Telnyx event id.
    async fn webhook(&self, event_id: &str) -> Result<Option<StoredWebhook>, StoreError>;

    /// Records that processing finished (outcome is a short word: `processed`, `ignored`).
    async fn finish_webhook(&self, event_id: &str, outcome: &str) -> Result<(), StoreError>;

    /// Ids (with call session) of stored webhooks matching the selector, oldest first.
    async fn select_webhooks(&self, selector: &ReplaySelector) -> Result<Vec<ReplayTarget>, StoreError>;

    /// Deletes webhooks received before `before`; returns how many.
    async fn purge_webhooks(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Applies one lifecycle event to its leg row; any order and any repetition converge.
    async fn apply_leg_event(&self, update: &LegUpdate) -> Result<(), StoreError>;

    /// The leg rows of a call session.
    async fn call_legs(&self, call_session_id: &str) -> Result<Vec<CallLeg>, StoreError>;

    /// Enqueues jobs. A job whose `unique_key` was already pushed is skipped (`false`).
    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError>;

    /// Depth and age per pool.
    async fn queue_stats(&self) -> Result<Vec<QueueStats>, StoreError>;

    /// Jobs that ended in the dead set (budget spent or permanent failure), newest first.
    async fn dead_jobs(&self, pool: Option<Pool>, limit: u32) -> Result<Vec<DeadJob>, StoreError>;

    /// Puts a dead job back in its queue as a first attempt. `false` if no dead job has that id.
    async fn retry_dead_job(&self, job_id: &str) -> Result<bool, StoreError>;

    /// Enqueues the job of one schedule tick, once across any number of schedulers: the tick row
    /// and the job commit together; `false` if the tick was already enqueued.
    async fn enqueue_tick(
        &self,
        schedule: &str,
        tick_at: DateTime<Utc>,
        job: &NewJob,
    ) -> Result<bool, StoreError>;
}
