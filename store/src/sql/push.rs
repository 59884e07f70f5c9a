//! Push delivery records, token pruning and the devices a push fans out to, on both engines.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fleet_domain::push::Provider;
use fleet_store_macros::engines;

use super::devices::DEVICE_COLS;
use super::{Affected, SqlStore};
use crate::{DeviceRegistration, NewJob, PushStore, StoreError};

#[engines]
#[async_trait]
impl PushStore for SqlStore<DB> {
    async fn user_devices(&self, user_id: &str, org_id: &str) -> Result<Vec<DeviceRegistration>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLS} FROM devices WHERE user_id = $1 AND org_id = $2 ORDER BY id");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(user_id).bind(org_id).fetch_all(&self.pool).await?)
    }

    async fn device_registration(&self, device_id: &str) -> Result<Option<DeviceRegistration>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLS} FROM devices WHERE id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(device_id).fetch_optional(&self.pool).await?)
    }

    async fn push_delivered(&self, key: &str) -> Result<bool, StoreError> {
        let found: i64 = sqlx::query_scalar("SELECT count(*) FROM push_deliveries WHERE push_key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok(found > 0)
    }

    async fn record_push_delivery(
        &self,
        key: &str,
        device_id: &str,
        provider: Provider,
        jobs: &[NewJob],
    ) -> Result<(), StoreError> {
        let mut tx = super::begin_write(&self.pool).await?;
        sqlx::query(
            "INSERT INTO push_deliveries (push_key, device_id, provider, delivered_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (push_key) DO NOTHING",
        )
        .bind(key)
        .bind(device_id)
        .bind(provider.as_str())
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        self.commit_with_jobs(tx, jobs).await?;
        Ok(())
    }

    /// Clears the provider's token column only while it still holds `token`.
    async fn prune_push_token(
        &self,
        device_id: &str,
        provider: Provider,
        token: &str,
    ) -> Result<bool, StoreError> {
        let sql = match provider {
            Provider::Fcm => {
                "UPDATE devices SET push_token = NULL, updated_at = $3 WHERE id = $1 AND push_token = $2"
            }
            Provider::Apns => {
                "UPDATE devices SET voip_token = NULL, updated_at = $3 WHERE id = $1 AND voip_token = $2"
            }
        };
        let done = sqlx::query(sql).bind(device_id).bind(token).bind(self.now()).execute(&self.pool).await?;
        Ok(done.affected() == 1)
    }

    async fn purge_push_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.delete_batched(
            "DELETE FROM push_deliveries WHERE push_key IN
               (SELECT push_key FROM push_deliveries WHERE delivered_at < $1 LIMIT $2)",
            before,
        )
        .await
    }
}
