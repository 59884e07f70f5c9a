//! Numbers and blocked callers, on both engines. A number's routing is one JSON document
//! (`fleet_domain::routing::NumberConfig`, validated by the API) beside its organization.

use async_trait::async_trait;
use fleet_domain::routing::NumberConfig;
use fleet_store_macros::engines;

use super::{Affected, SqlStore};
use crate::{RoutingStore, StoreError};

#[engines]
#[async_trait]
impl RoutingStore for SqlStore<DB> {
    /// Writes first, then checks the organization and the user's membership (a mismatch rolls
    /// the write back).
    async fn put_number(&self, e164: &str, config: &NumberConfig) -> Result<bool, StoreError> {
        let doc = serde_json::to_string(config).map_err(|e| StoreError::corrupt("number config", e))?;
        let now = self.now();
        let mut tx = super::begin_write(&self.pool).await?;
        let created = sqlx::query(
            "INSERT INTO numbers (e164, org_id, config, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (e164) DO NOTHING",
        )
        .bind(e164)
        .bind(&config.org_id)
        .bind(&doc)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .affected()
            == 1;
        if !created {
            sqlx::query("UPDATE numbers SET org_id = $2, config = $3, updated_at = $4 WHERE e164 = $1")
                .bind(e164)
                .bind(&config.org_id)
                .bind(&doc)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        let org: i64 = sqlx::query_scalar("SELECT count(*) FROM organizations WHERE id = $1")
            .bind(&config.org_id)
            .fetch_one(&mut *tx)
            .await?;
        if org == 0 {
            return Err(StoreError::Invalid(format!("organization {:?} does not exist", config.org_id)));
        }
        if let Some(user) = &config.user_id {
            let member: i64 =
                sqlx::query_scalar("SELECT count(*) FROM user_orgs WHERE user_id = $1 AND org_id = $2")
                    .bind(user)
                    .bind(&config.org_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if member == 0 {
                return Err(StoreError::Invalid(format!(
                    "user {user:?} is not a member of organization {:?}",
                    config.org_id
                )));
            }
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn number(&self, e164: &str) -> Result<Option<NumberConfig>, StoreError> {
        let doc: Option<String> = sqlx::query_scalar("SELECT config FROM numbers WHERE e164 = $1")
            .bind(e164)
            .fetch_optional(&self.pool)
            .await?;
        doc.map(|d| serde_json::from_str(&d).map_err(|e| StoreError::corrupt("number config", e))).transpose()
    }

    async fn delete_number(&self, e164: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM numbers WHERE e164 = $1").bind(e164).execute(&self.pool).await?;
        Ok(done.affected() == 1)
    }

    async fn block_number(&self, org_id: &str, e164: &str) -> Result<bool, StoreError> {
        let mut tx = super::begin_write(&self.pool).await?;
        let created = sqlx::query(
            "INSERT INTO blocked_numbers (org_id, e164, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(org_id)
        .bind(e164)
        .bind(self.now())
        .execute(&mut *tx)
        .await?
        .affected()
            == 1;
        let org: i64 = sqlx::query_scalar("SELECT count(*) FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_one(&mut *tx)
            .await?;
        if org == 0 {
            return Err(StoreError::Invalid(format!("organization {org_id:?} does not exist")));
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn unblock_number(&self, org_id: &str, e164: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM blocked_numbers WHERE org_id = $1 AND e164 = $2")
            .bind(org_id)
            .bind(e164)
            .execute(&self.pool)
            .await?;
        Ok(done.affected() == 1)
    }

    async fn is_blocked(&self, org_id: &str, e164: &str) -> Result<bool, StoreError> {
        let found: i64 =
            sqlx::query_scalar("SELECT count(*) FROM blocked_numbers WHERE org_id = $1 AND e164 = $2")
                .bind(org_id)
                .bind(e164)
                .fetch_one(&self.pool)
                .await?;
        Ok(found > 0)
    }

    async fn org_numbers(&self, org_id: &str) -> Result<Vec<(String, NumberConfig)>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT e164, config FROM numbers WHERE org_id = $1 ORDER BY e164")
                .bind(org_id)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(e164, doc)| {
                let config =
                    serde_json::from_str(&doc).map_err(|e| StoreError::corrupt("number config", e))?;
                Ok((e164, config))
            })
            .collect()
    }
}
