//! SQLite adapter: the embedded default, store and queues in one file, no external service.
//!
//! The file runs in WAL mode with `synchronous=FULL`, so a committed webhook survives a crash of
//! the process or of the machine. (apalis's own `setup()` would switch `synchronous` off; we run
//! its migrations without it.) Our migrations keep their history in `_app_migrations`, apart from
//! apalis's `_sqlx_migrations`. SQLite allows one writer at a time; a busy timeout makes writers
//! queue instead of failing, and the ingress batches webhooks so one commit acknowledges many.

mod devices;
mod push;
mod queue;
mod webhooks;

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use fleet_domain::push::Provider;
use fleet_jobs::Pool;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::wake::QueueWaker;
use crate::{
    Accepted, CallLeg, DeadJob, Engine, LegUpdate, NewJob, NewWebhook, QueueStats, ReplaySelector,
    ReplayTarget, Store, StoreError, StoredWebhook,
};
use crate::{
    Device, DeviceCredential, DeviceRegistration, DialableCredential, OrgCredential, Organization,
    ProvisionedCredential, Registered, User,
};

/// The SQLite store; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    waker: QueueWaker,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file named by `url` (`sqlite://path?mode=rwc`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if let Some(dir) = file_of(url).and_then(|f| std::path::Path::new(f).parent().map(|p| p.to_owned())) {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| StoreError::Other(format!("{}: {e}", dir.display())))?;
            }
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Self { pool, waker: QueueWaker::default() })
    }

    /// Runs apalis's migrations and ours (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        apalis_sqlite::SqliteStorage::migrations().run(&self.pool).await?;
        let mut ours = sqlx::migrate!("../migrations/sqlite");
        ours.dangerous_set_table_name("_app_migrations");
        ours.run(&self.pool).await?;
        Ok(())
    }

    /// Wakes this process's workers after enqueues.
    pub fn waker(&self) -> &QueueWaker {
        &self.waker
    }

    /// The pool, for the queue workers.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn file_of(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

#[async_trait]
impl Store for SqliteStore {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1 FROM Jobs LIMIT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn accept_webhooks(&self, batch: &[NewWebhook]) -> Result<Vec<Accepted>, StoreError> {
        let (outcomes, jobs, pushed) = webhooks::accept(&self.pool, batch).await?;
        self.waker.pushed(&jobs, &pushed);
        Ok(outcomes)
    }

    async fn webhook(&self, event_id: &str) -> Result<Option<StoredWebhook>, StoreError> {
        webhooks::get(&self.pool, event_id).await
    }

    async fn finish_webhook(
        &self,
        event_id: &str,
        outcome: &str,
        leg: Option<&LegUpdate>,
    ) -> Result<(), StoreError> {
        // The first statement writes, so the transaction takes the write lock at once.
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE webhook_events SET processed_at = ?2, outcome = ?3 WHERE event_id = ?1")
            .bind(event_id)
            .bind(millis(Utc::now()))
            .bind(outcome)
            .execute(&mut *tx)
            .await?;
        if let Some(update) = leg {
            webhooks::apply_leg(&mut *tx, update).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn select_webhooks(&self, selector: &ReplaySelector) -> Result<Vec<ReplayTarget>, StoreError> {
        webhooks::select(&self.pool, selector).await
    }

    async fn purge_webhooks(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM webhook_events WHERE received_at < ?1")
            .bind(millis(before))
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM Jobs WHERE status = 'Done' AND done_at < ?1")
            .bind(before.timestamp())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn apply_leg_event(&self, update: &LegUpdate) -> Result<(), StoreError> {
        webhooks::apply_leg(&self.pool, update).await
    }

    async fn call_legs(&self, call_session_id: &str) -> Result<Vec<CallLeg>, StoreError> {
        webhooks::legs(&self.pool, call_session_id).await
    }

    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let pushed = queue::push(&mut tx, jobs).await?;
        tx.commit().await?;
        self.waker.pushed(jobs, &pushed);
        Ok(pushed)
    }

    async fn queue_stats(&self) -> Result<Vec<QueueStats>, StoreError> {
        queue::stats(&self.pool).await
    }

    async fn dead_jobs(&self, pool: Option<Pool>, limit: u32) -> Result<Vec<DeadJob>, StoreError> {
        queue::dead(&self.pool, pool, limit).await
    }

    async fn retry_dead_job(&self, job_id: &str) -> Result<bool, StoreError> {
        match queue::retry_dead(&self.pool, job_id).await? {
            Some(job) => {
                self.waker.pushed_all(std::slice::from_ref(&job));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn enqueue_tick(
        &self,
        schedule: &str,
        tick_at: DateTime<Utc>,
        job: &NewJob,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "INSERT INTO schedule_ticks (schedule, tick_at, enqueued_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )
        .bind(schedule)
        .bind(millis(tick_at))
        .bind(millis(Utc::now()))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let pushed =
            if claimed { queue::push(&mut tx, std::slice::from_ref(job)).await? } else { Vec::new() };
        tx.commit().await?;
        self.waker.pushed(std::slice::from_ref(job), &pushed);
        Ok(claimed)
    }

    async fn upsert_organization(&self, org: &Organization) -> Result<bool, StoreError> {
        devices::upsert_org(&self.pool, org).await
    }

    async fn upsert_user(&self, user: &User) -> Result<bool, StoreError> {
        devices::upsert_user(&self.pool, user).await
    }

    async fn register_device(&self, reg: &DeviceRegistration) -> Result<Registered, StoreError> {
        let (registered, jobs) = devices::register(&self.pool, reg).await?;
        self.waker.pushed_all(&jobs);
        Ok(registered)
    }

    async fn device(&self, id: &str) -> Result<Option<Device>, StoreError> {
        devices::device(&self.pool, id).await
    }

    async fn deregister_device(&self, id: &str) -> Result<bool, StoreError> {
        let (existed, jobs) = devices::deregister(&self.pool, id).await?;
        self.waker.pushed_all(&jobs);
        Ok(existed)
    }

    async fn credential(&self, id: &str) -> Result<Option<DeviceCredential>, StoreError> {
        devices::credential(&self.pool, id).await
    }

    async fn activate_credential(
        &self,
        id: &str,
        created: &ProvisionedCredential,
    ) -> Result<bool, StoreError> {
        devices::activate(&self.pool, id, created).await
    }

    async fn fail_credential(&self, id: &str, error: &str) -> Result<bool, StoreError> {
        devices::fail(&self.pool, id, error).await
    }

    async fn swap_credential(
        &self,
        old_id: &str,
        new_id: &str,
        created: &ProvisionedCredential,
    ) -> Result<bool, StoreError> {
        devices::swap(&self.pool, old_id, new_id, created).await
    }

    async fn mark_credentials_deleting(&self, ids: &[String]) -> Result<(), StoreError> {
        devices::mark_deleting(&self.pool, ids).await
    }

    async fn delete_credential_rows(&self, ids: &[String]) -> Result<u64, StoreError> {
        devices::delete_rows(&self.pool, ids).await
    }

    async fn expired_credentials(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DeviceCredential>, StoreError> {
        devices::expired(&self.pool, now, stale_before, limit).await
    }

    async fn credentials_to_rotate(
        &self,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        devices::to_rotate(&self.pool, now, horizon, limit).await
    }

    async fn known_telnyx_ids(&self, ids: &[String]) -> Result<HashSet<String>, StoreError> {
        devices::known(&self.pool, ids).await
    }

    async fn organization_ids(&self) -> Result<Vec<String>, StoreError> {
        devices::org_ids(&self.pool).await
    }

    async fn dialable_credentials(
        &self,
        user_id: &str,
        org_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<DialableCredential>, StoreError> {
        devices::dialable(&self.pool, user_id, org_id, now).await
    }

    async fn upsert_org_credential(&self, cred: &OrgCredential) -> Result<(), StoreError> {
        devices::upsert_org_credential(&self.pool, cred).await
    }

    async fn departed_org_credentials(&self, limit: u32) -> Result<Vec<OrgCredential>, StoreError> {
        devices::departed(&self.pool, limit).await
    }

    async fn delete_org_credentials(&self, ids: &[String]) -> Result<u64, StoreError> {
        devices::delete_org_credentials(&self.pool, ids).await
    }

    async fn user_devices(&self, user_id: &str, org_id: &str) -> Result<Vec<DeviceRegistration>, StoreError> {
        push::user_devices(&self.pool, user_id, org_id).await
    }

    async fn push_delivered(&self, push_key: &str) -> Result<bool, StoreError> {
        push::delivered(&self.pool, push_key).await
    }

    async fn record_push_delivery(
        &self,
        push_key: &str,
        device_id: &str,
        provider: Provider,
    ) -> Result<(), StoreError> {
        push::record(&self.pool, push_key, device_id, provider).await
    }

    async fn prune_push_token(
        &self,
        device_id: &str,
        provider: Provider,
        token: &str,
    ) -> Result<bool, StoreError> {
        push::prune(&self.pool, device_id, provider, token).await
    }

    async fn purge_push_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        push::purge(&self.pool, before).await
    }
}
