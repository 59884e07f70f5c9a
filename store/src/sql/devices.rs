//! Organizations, users, devices and credential rows, on both engines.
//!
//! Registration stores the device and, at most once per (user, org, device), a credential row in
//! `provisioning` with its job, in one transaction (the partial unique index
//! `device_credentials_one_live` is the arbiter; concurrent registrations of one device queue on
//! its row lock on Postgres and on the write lock on SQLite). Upserts are "insert or nothing,
//! then update", so both engines say the same thing about whether a row was created.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fleet_store_macros::engines;
use sqlx::Transaction;

use super::{Affected, SqlStore, Ts, json_ids};
use crate::devices::{SealedPassword, delete_job, provision_job};
use crate::{
    Device, DeviceCredential, DeviceRegistration, DialableCredential, DirectoryStore, NewJob, OrgCredential,
    Organization, ProvisionedCredential, Registered, RingTarget, StoreError, User,
};

const CRED_COLS: &str = "id, device_id, user_id, org_id, status, generation, telnyx_id, sip_username, \
                         sip_password, expires_at, last_error, updated_at";

pub(super) const DEVICE_COLS: &str =
    "id, user_id, org_id, platform, push_token, voip_token, app_version, name";

#[engines]
#[async_trait]
impl DirectoryStore for SqlStore<DB> {
    async fn upsert_organization(&self, org: &Organization) -> Result<bool, StoreError> {
        let now = self.now();
        let settings =
            serde_json::to_string(&org.settings).map_err(|e| StoreError::corrupt("org settings", e))?;
        let mut tx = super::begin_write(&self.pool).await?;
        let created = sqlx::query(
            "INSERT INTO organizations (id, name, settings, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&org.id)
        .bind(&org.name)
        .bind(&settings)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .affected()
            == 1;
        if !created {
            sqlx::query("UPDATE organizations SET name = $2, settings = $3, updated_at = $4 WHERE id = $1")
                .bind(&org.id)
                .bind(&org.name)
                .bind(&settings)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    /// Writes first, then checks the organizations (an unknown one rolls the writes back).
    async fn upsert_user(&self, user: &User) -> Result<bool, StoreError> {
        let now = self.now();
        let orgs = user.memberships();
        let mut tx = super::begin_write(&self.pool).await?;
        let created = sqlx::query(
            "INSERT INTO users (id, org_id, name, dnd, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&user.id)
        .bind(&user.org_id)
        .bind(&user.name)
        .bind(user.dnd)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .affected()
            == 1;
        if !created {
            sqlx::query("UPDATE users SET org_id = $2, name = $3, dnd = $4, updated_at = $5 WHERE id = $1")
                .bind(&user.id)
                .bind(&user.org_id)
                .bind(&user.name)
                .bind(user.dnd)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        let known = format!("SELECT count(*) FROM organizations WHERE {}", DB::in_json_ids("id", 1));
        let found: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(known)).bind(json_ids(&orgs)).fetch_one(&mut *tx).await?;
        if found != orgs.len() as i64 {
            return Err(StoreError::Invalid(format!("one of the organizations {orgs:?} does not exist")));
        }
        sqlx::query("DELETE FROM user_orgs WHERE user_id = $1").bind(&user.id).execute(&mut *tx).await?;
        let join = format!(
            "INSERT INTO user_orgs (user_id, org_id) SELECT $1, id FROM organizations WHERE {}",
            DB::in_json_ids("id", 2)
        );
        sqlx::query(sqlx::AssertSqlSafe(join)).bind(&user.id).bind(json_ids(&orgs)).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn organization(&self, id: &str) -> Result<Option<Organization>, StoreError> {
        let row: Option<(String, Option<String>, String)> =
            sqlx::query_as("SELECT id, name, settings FROM organizations WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(id, name, settings)| {
            let settings =
                serde_json::from_str(&settings).map_err(|e| StoreError::corrupt("org settings", e))?;
            Ok(Organization { id, name, settings })
        })
        .transpose()
    }

    async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(String, String, Option<String>, bool)> =
            sqlx::query_as("SELECT id, org_id, name, dnd FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some((id, org_id, name, dnd)) = row else { return Ok(None) };
        let org_ids: Vec<String> =
            sqlx::query_scalar("SELECT org_id FROM user_orgs WHERE user_id = $1 ORDER BY org_id")
                .bind(&id)
                .fetch_all(&self.pool)
                .await?;
        Ok(Some(User { id, org_id, org_ids, name, dnd }))
    }

    async fn ring_targets(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<RingTarget>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT d.id, d.user_id, d.org_id, d.platform, d.push_token, d.voip_token, d.app_version, d.name,
                    (SELECT c.sip_username FROM device_credentials c
                      WHERE c.device_id = d.id AND c.user_id = d.user_id AND c.org_id = d.org_id
                        AND c.status = 'active' AND c.sip_username IS NOT NULL
                        AND (c.expires_at IS NULL OR c.expires_at > $2)
                      ORDER BY c.expires_at DESC LIMIT 1) AS sip_username
               FROM devices d JOIN user_orgs m ON m.user_id = d.user_id AND m.org_id = d.org_id
              WHERE d.user_id = $1 ORDER BY d.id",
        )
        .bind(user_id)
        .bind(Ts(now))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn register_device(&self, reg: &DeviceRegistration) -> Result<Registered, StoreError> {
        let now = self.now();
        let mut tx = super::begin_write(&self.pool).await?;
        // Insert-or-lock: concurrent registrations of one device queue up on this row.
        let created = sqlx::query(
            "INSERT INTO devices (id, user_id, org_id, platform, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&reg.id)
        .bind(&reg.user_id)
        .bind(&reg.org_id)
        .bind(&reg.platform)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .affected()
            == 1;
        let memberships: Vec<String> = sqlx::query_scalar(
            "SELECT m.org_id FROM users u JOIN user_orgs m ON m.user_id = u.id WHERE u.id = $1",
        )
        .bind(&reg.user_id)
        .fetch_all(&mut *tx)
        .await?;
        if memberships.is_empty() {
            return Err(StoreError::Invalid(format!("user {:?} does not exist", reg.user_id)));
        }
        if !memberships.contains(&reg.org_id) {
            return Err(StoreError::Invalid(format!(
                "user {:?} is not in organization {:?}",
                reg.user_id, reg.org_id
            )));
        }
        let lock = format!("SELECT user_id, org_id FROM devices WHERE id = $1{}", DB::FOR_UPDATE);
        let (old_user, old_org): (String, String) =
            sqlx::query_as(sqlx::AssertSqlSafe(lock)).bind(&reg.id).fetch_one(&mut *tx).await?;
        sqlx::query(
            "UPDATE devices SET user_id = $2, org_id = $3, platform = $4, push_token = $5, voip_token = $6,
                    app_version = $7, name = $8, updated_at = $9 WHERE id = $1",
        )
        .bind(&reg.id)
        .bind(&reg.user_id)
        .bind(&reg.org_id)
        .bind(&reg.platform)
        .bind(&reg.push_token)
        .bind(&reg.voip_token)
        .bind(&reg.app_version)
        .bind(&reg.name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let mut jobs = Vec::new();
        if (old_user.as_str(), old_org.as_str()) != (reg.user_id.as_str(), reg.org_id.as_str()) {
            jobs.extend(self.retire_device_rows(&mut tx, &reg.id, Some((&reg.user_id, &reg.org_id))).await?);
        }
        sqlx::query(
            "INSERT INTO device_credentials (id, device_id, user_id, org_id, status, generation, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'provisioning', 1, $5, $5)
             ON CONFLICT (user_id, org_id, device_id) WHERE status <> 'deleting' DO NOTHING",
        )
        .bind(ulid::Ulid::generate().to_string())
        .bind(&reg.id)
        .bind(&reg.user_id)
        .bind(&reg.org_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // A failed row gets another chance under a new generation (a new job key).
        sqlx::query(
            "UPDATE device_credentials SET status = 'provisioning', generation = generation + 1, last_error = NULL,
                    updated_at = $4
              WHERE user_id = $1 AND org_id = $2 AND device_id = $3 AND status = 'failed'",
        )
        .bind(&reg.user_id)
        .bind(&reg.org_id)
        .bind(&reg.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let credential: DeviceCredential = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CRED_COLS} FROM device_credentials
              WHERE user_id = $1 AND org_id = $2 AND device_id = $3 AND status <> 'deleting'"
        )))
        .bind(&reg.user_id)
        .bind(&reg.org_id)
        .bind(&reg.id)
        .fetch_one(&mut *tx)
        .await?;
        if credential.status == fleet_domain::credentials::CredentialStatus::Provisioning {
            jobs.push(provision_job(&credential.id, credential.generation));
        }
        let pushed = self.push(&mut tx, &jobs).await?;
        tx.commit().await?;
        self.waker.pushed(&jobs, &pushed);
        Ok(Registered { created, credential })
    }

    async fn device(&self, id: &str) -> Result<Option<Device>, StoreError> {
        let device: Option<Device> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DEVICE_COLS}, created_at, updated_at FROM devices WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(mut device) = device else { return Ok(None) };
        device.credential = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CRED_COLS} FROM device_credentials
              WHERE device_id = $1 AND user_id = $2 AND org_id = $3 AND status <> 'deleting'"
        )))
        .bind(id)
        .bind(&device.registration.user_id)
        .bind(&device.registration.org_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(Some(device))
    }

    async fn deregister_device(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = super::begin_write(&self.pool).await?;
        let existed =
            sqlx::query("DELETE FROM devices WHERE id = $1").bind(id).execute(&mut *tx).await?.affected()
                == 1;
        let mut jobs = self.retire_device_rows(&mut tx, id, None).await?;
        // Rows already `deleting` whose job may have been lost get their (deduplicated) job again.
        let pending: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM device_credentials WHERE device_id = $1 AND status = 'deleting'",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for p in pending {
            if !jobs.iter().any(|j| j.unique_key == delete_job(&p).unique_key) {
                jobs.push(delete_job(&p));
            }
        }
        let pushed = self.push(&mut tx, &jobs).await?;
        tx.commit().await?;
        self.waker.pushed(&jobs, &pushed);
        Ok(existed)
    }

    async fn credential(&self, id: &str) -> Result<Option<DeviceCredential>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CRED_COLS} FROM device_credentials WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn activate_credential(&self, id: &str, c: &ProvisionedCredential) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE device_credentials SET status = 'active', telnyx_id = $2, sip_username = $3, sip_password = $4,
                    expires_at = $5, last_error = NULL, updated_at = $6
              WHERE id = $1 AND status = 'provisioning'",
        )
        .bind(id)
        .bind(&c.telnyx_id)
        .bind(&c.sip_username)
        .bind(&c.sip_password_sealed)
        .bind(Ts(c.expires_at))
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        Ok(done.affected() == 1)
    }

    async fn fail_credential(&self, id: &str, error: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE device_credentials SET status = 'failed', last_error = $2, updated_at = $3
              WHERE id = $1 AND status = 'provisioning'",
        )
        .bind(id)
        .bind(error)
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        Ok(done.affected() == 1)
    }

    async fn swap_credential(
        &self,
        old_id: &str,
        new_id: &str,
        c: &ProvisionedCredential,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = super::begin_write(&self.pool).await?;
        let owner: Option<(String, String, String)> = sqlx::query_as(
            "UPDATE device_credentials SET status = 'deleting', updated_at = $2
              WHERE id = $1 AND status = 'active' RETURNING device_id, user_id, org_id",
        )
        .bind(old_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((device_id, user_id, org_id)) = owner else { return Ok(false) };
        sqlx::query(
            "INSERT INTO device_credentials (id, device_id, user_id, org_id, status, generation, telnyx_id,
                                             sip_username, sip_password, expires_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'active', 1, $5, $6, $7, $8, $9, $9)",
        )
        .bind(new_id)
        .bind(device_id)
        .bind(user_id)
        .bind(org_id)
        .bind(&c.telnyx_id)
        .bind(&c.sip_username)
        .bind(&c.sip_password_sealed)
        .bind(Ts(c.expires_at))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn mark_credentials_deleting(&self, ids: &[String]) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE device_credentials SET status = 'deleting', updated_at = $2 WHERE {}",
            DB::in_json_ids("id", 1)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(json_ids(ids))
            .bind(self.now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_credential_rows(&self, ids: &[String]) -> Result<u64, StoreError> {
        self.delete_by_id("device_credentials", ids).await
    }

    async fn credential_by_sip_username(
        &self,
        sip_username: &str,
    ) -> Result<Option<DeviceCredential>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CRED_COLS} FROM device_credentials WHERE sip_username = $1 AND status <> 'deleting'"
        )))
        .bind(sip_username)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn expired_credentials(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DeviceCredential>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CRED_COLS} FROM device_credentials
              WHERE expires_at <= $1 OR (status = 'deleting' AND updated_at < $2)
              ORDER BY expires_at NULLS LAST, id LIMIT $3"
        )))
        .bind(Ts(now))
        .bind(Ts(stale_before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn credentials_to_rotate(
        &self,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM device_credentials WHERE status = 'active' AND expires_at > $1 AND expires_at <= $2
              ORDER BY expires_at, id LIMIT $3",
        )
        .bind(Ts(now))
        .bind(Ts(horizon))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn sealed_passwords_to_reseal(
        &self,
        current: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<SealedPassword>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, telnyx_id, sip_password AS sealed FROM device_credentials
              WHERE sip_password IS NOT NULL AND telnyx_id IS NOT NULL AND substr(sip_password, 1, length($1)) <> $1
                AND id > $2
              ORDER BY id LIMIT $3",
        )
        .bind(current)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn replace_sealed_password(&self, id: &str, old: &str, new: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE device_credentials SET sip_password = $3, updated_at = $4 WHERE id = $1 AND sip_password = $2",
        )
        .bind(id)
        .bind(old)
        .bind(new)
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        Ok(done.affected() == 1)
    }

    async fn known_telnyx_ids(&self, ids: &[String]) -> Result<HashSet<String>, StoreError> {
        let sql = format!(
            "SELECT telnyx_id FROM device_credentials WHERE {}
             UNION SELECT telnyx_id FROM org_credentials WHERE {}",
            DB::in_json_ids("telnyx_id", 1),
            DB::in_json_ids("telnyx_id", 1)
        );
        let found: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(json_ids(ids)).fetch_all(&self.pool).await?;
        Ok(found.into_iter().collect())
    }

    async fn dialable_credentials(
        &self,
        user_id: &str,
        org_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<DialableCredential>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT c.device_id, c.id AS credential_id, c.sip_username, c.expires_at
               FROM device_credentials c
               JOIN devices d ON d.id = c.device_id AND d.user_id = c.user_id AND d.org_id = c.org_id
              WHERE c.user_id = $1 AND c.org_id = $2 AND c.status = 'active' AND c.sip_username IS NOT NULL
                AND (c.expires_at IS NULL OR c.expires_at > $3)
              ORDER BY c.device_id",
        )
        .bind(user_id)
        .bind(org_id)
        .bind(Ts(now))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn upsert_org_credential(&self, c: &OrgCredential) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO org_credentials (id, user_id, org_id, telnyx_id, sip_username, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&c.id)
        .bind(&c.user_id)
        .bind(&c.org_id)
        .bind(&c.telnyx_id)
        .bind(&c.sip_username)
        .bind(c.expires_at.map(Ts))
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn departed_org_credentials(&self, limit: u32) -> Result<Vec<OrgCredential>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT c.id, c.user_id, c.org_id, c.telnyx_id, c.sip_username, c.expires_at FROM org_credentials c
              WHERE NOT EXISTS (SELECT 1 FROM user_orgs m WHERE m.user_id = c.user_id AND m.org_id = c.org_id)
              ORDER BY c.id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_org_credentials(&self, ids: &[String]) -> Result<u64, StoreError> {
        self.delete_by_id("org_credentials", ids).await
    }
}

#[engines]
impl SqlStore<DB> {
    /// Marks the device's live rows `deleting` (except those of the `keep` owner) and builds
    /// their deletion jobs.
    async fn retire_device_rows(
        &self,
        tx: &mut Transaction<'_, DB>,
        device_id: &str,
        keep: Option<(&str, &str)>,
    ) -> Result<Vec<NewJob>, StoreError> {
        let (user, org) = keep.unwrap_or(("", ""));
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE device_credentials SET status = 'deleting', updated_at = $4
              WHERE device_id = $1 AND status <> 'deleting' AND NOT (user_id = $2 AND org_id = $3)
              RETURNING id",
        )
        .bind(device_id)
        .bind(user)
        .bind(org)
        .bind(self.now())
        .fetch_all(&mut **tx)
        .await?;
        Ok(ids.iter().map(|id| delete_job(id)).collect())
    }

    /// Deletes rows of `table` (one of ours, never caller input) by id.
    async fn delete_by_id(&self, table: &'static str, ids: &[String]) -> Result<u64, StoreError> {
        let sql = format!("DELETE FROM {table} WHERE {}", DB::in_json_ids("id", 1));
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(json_ids(ids)).execute(&self.pool).await?.affected())
    }
}
