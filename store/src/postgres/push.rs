//! Push delivery records, token pruning and the devices a push fans out to, on PostgreSQL.

use chrono::{DateTime, Utc};
use fleet_domain::push::Provider;
use sqlx::PgPool;

use super::devices::{DEVICE_COLS, registration};
use crate::{DeviceRegistration, StoreError};

pub(super) async fn user_devices(
    pool: &PgPool,
    user_id: &str,
    org_id: &str,
) -> Result<Vec<DeviceRegistration>, StoreError> {
    let sql = format!("SELECT {DEVICE_COLS} FROM devices WHERE user_id = $1 AND org_id = $2 ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id).bind(org_id).fetch_all(pool).await?;
    rows.iter().map(registration).collect()
}

pub(super) async fn delivered(pool: &PgPool, key: &str) -> Result<bool, StoreError> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM push_deliveries WHERE push_key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}

pub(super) async fn record(
    pool: &PgPool,
    key: &str,
    device_id: &str,
    provider: Provider,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO push_deliveries (push_key, device_id, provider, delivered_at) VALUES ($1, $2, $3, now())
         ON CONFLICT (push_key) DO NOTHING",
    )
    .bind(key)
    .bind(device_id)
    .bind(provider.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn prune(
    pool: &PgPool,
    device_id: &str,
    provider: Provider,
    token: &str,
) -> Result<bool, StoreError> {
    let sql = match provider {
        Provider::Fcm => {
            "UPDATE devices SET push_token = NULL, updated_at = now() WHERE id = $1 AND push_token = $2"
        }
        Provider::Apns => {
            "UPDATE devices SET voip_token = NULL, updated_at = now() WHERE id = $1 AND voip_token = $2"
        }
    };
    let done = sqlx::query(sql).bind(device_id).bind(token).execute(pool).await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn purge(pool: &PgPool, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let done =
        sqlx::query("DELETE FROM push_deliveries WHERE delivered_at < $1").bind(before).execute(pool).await?;
    Ok(done.rows_affected())
}
