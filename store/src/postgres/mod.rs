//! PostgreSQL adapter: the system of record and the apalis queues of a fleet.
//!
//! Our tables live in `public` (migrations in `migrations/postgres`); apalis keeps its own in
//! schema `apalis` (its migrations, run by [`PgStore::migrate`]). Jobs are inserted by our own
//! statement into `apalis.jobs` inside our transactions, so a webhook row and its job commit
//! together; apalis's insert trigger then NOTIFYs the workers of that queue.
//!
//! Connections are acquired with a short timeout: when Postgres is down the ingress learns it
//! within ~2 s and answers 503 instead of hanging, and recovers by itself when Postgres returns.

mod devices;
mod push;
mod queue;
mod webhooks;

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fleet_domain::push::Provider;
use fleet_jobs::Pool;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::wake::QueueWaker;
use crate::{
    Accepted, CallLeg, DeadJob, Engine, LegUpdate, NewJob, NewWebhook, QueueStats, ReplaySelector,
    ReplayTarget, Store, StoreError, StoredWebhook,
};
use crate::{
    Device, DeviceCredential, DeviceRegistration, DialableCredential, OrgCredential, Organization,
    ProvisionedCredential, Registered, User,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// The Postgres store; cheap to clone (a pool handle).
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    waker: QueueWaker,
}

impl PgStore {
    /// Connects (lazily: the first query opens the first connection).
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy(url)?;
        Ok(Self { pool, waker: QueueWaker::default() })
    }

    /// Runs apalis's migrations and ours. Safe to run concurrently and repeatedly.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        // Both migrators take an advisory lock, so replicas starting together do not race.
        apalis_postgres::PostgresStorage::migrations().run(&self.pool).await?;
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Wakes this process's workers after enqueues.
    pub fn waker(&self) -> &QueueWaker {
        &self.waker
    }

    /// The pool, for the queue workers.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PgStore {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1 FROM apalis.jobs LIMIT 1").execute(&self.pool).await?;
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
        let mut tx = self.pool.begin().await?;
        if let Some(update) = leg {
            webhooks::apply_leg(&mut *tx, update).await?;
        }
        sqlx::query("UPDATE webhook_events SET processed_at = now(), outcome = $2 WHERE event_id = $1")
            .bind(event_id)
            .bind(outcome)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn select_webhooks(&self, selector: &ReplaySelector) -> Result<Vec<ReplayTarget>, StoreError> {
        webhooks::select(&self.pool, selector).await
    }

    async fn purge_webhooks(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM webhook_events WHERE received_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        // Finished jobs are history too; apalis never deletes them.
        sqlx::query("DELETE FROM apalis.jobs WHERE status = 'Done' AND done_at < $1")
            .bind(before)
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
            "INSERT INTO schedule_ticks (schedule, tick_at, enqueued_at) VALUES ($1, $2, now()) ON CONFLICT DO NOTHING",
        )
        .bind(schedule)
        .bind(tick_at)
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
