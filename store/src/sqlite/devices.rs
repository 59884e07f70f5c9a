//! Organizations, users, devices and credential rows on SQLite (times in Unix milliseconds).
//!
//! Every write transaction starts with a write statement, so it takes SQLite's write lock at once
//! and concurrent registrations queue on the busy timeout instead of failing on a lock upgrade.
//! Id lists are bound as one JSON array (`json_each`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::{from_millis, millis, queue};
use crate::devices::{delete_job, provision_job, status_of};
use crate::{
    Device, DeviceCredential, DeviceRegistration, DialableCredential, NewJob, OrgCredential, Organization,
    ProvisionedCredential, Registered, StoreError, User,
};

const CRED_COLS: &str = "id, device_id, user_id, org_id, status, generation, telnyx_id, sip_username, \
                         sip_password, expires_at, last_error, updated_at";

fn now_ms() -> i64 {
    millis(Utc::now())
}

fn json_ids(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

pub(super) const DEVICE_COLS: &str =
    "id, user_id, org_id, platform, push_token, voip_token, app_version, name";

pub(super) fn registration(row: &SqliteRow) -> Result<DeviceRegistration, StoreError> {
    Ok(DeviceRegistration {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        org_id: row.try_get("org_id")?,
        platform: row.try_get("platform")?,
        push_token: row.try_get("push_token")?,
        voip_token: row.try_get("voip_token")?,
        app_version: row.try_get("app_version")?,
        name: row.try_get("name")?,
    })
}

fn cred(row: &SqliteRow) -> Result<DeviceCredential, StoreError> {
    Ok(DeviceCredential {
        id: row.try_get("id")?,
        device_id: row.try_get("device_id")?,
        user_id: row.try_get("user_id")?,
        org_id: row.try_get("org_id")?,
        status: status_of(row.try_get::<&str, _>("status")?)?,
        generation: row.try_get("generation")?,
        telnyx_id: row.try_get("telnyx_id")?,
        sip_username: row.try_get("sip_username")?,
        sip_password_sealed: row.try_get("sip_password")?,
        expires_at: from_millis(row.try_get("expires_at")?),
        last_error: row.try_get("last_error")?,
        updated_at: from_millis(row.try_get("updated_at")?).unwrap_or_default(),
    })
}

pub(super) async fn upsert_org(pool: &SqlitePool, org: &Organization) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let created = sqlx::query(
        "INSERT INTO organizations (id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&org.id)
    .bind(&org.name)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !created {
        sqlx::query("UPDATE organizations SET name = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(&org.id)
            .bind(&org.name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(created)
}

pub(super) async fn upsert_user(pool: &SqlitePool, user: &User) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let created = sqlx::query(
        "INSERT INTO users (id, org_id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&user.id)
    .bind(&user.org_id)
    .bind(&user.name)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let org: Option<String> = sqlx::query_scalar("SELECT id FROM organizations WHERE id = ?1")
        .bind(&user.org_id)
        .fetch_optional(&mut *tx)
        .await?;
    if org.is_none() {
        return Err(StoreError::Invalid(format!("organization {:?} does not exist", user.org_id)));
    }
    if !created {
        sqlx::query("UPDATE users SET org_id = ?2, name = ?3, updated_at = ?4 WHERE id = ?1")
            .bind(&user.id)
            .bind(&user.org_id)
            .bind(&user.name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(created)
}

pub(super) async fn register(
    pool: &SqlitePool,
    reg: &DeviceRegistration,
) -> Result<(Registered, Vec<NewJob>), StoreError> {
    let mut tx = pool.begin().await?;
    let now = now_ms();
    let created = sqlx::query(
        "INSERT INTO devices (id, user_id, org_id, platform, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&reg.id)
    .bind(&reg.user_id)
    .bind(&reg.org_id)
    .bind(&reg.platform)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let member: Option<String> = sqlx::query_scalar("SELECT org_id FROM users WHERE id = ?1")
        .bind(&reg.user_id)
        .fetch_optional(&mut *tx)
        .await?;
    match member {
        None => return Err(StoreError::Invalid(format!("user {:?} does not exist", reg.user_id))),
        Some(org) if org != reg.org_id => {
            return Err(StoreError::Invalid(format!(
                "user {:?} is not in organization {:?}",
                reg.user_id, reg.org_id
            )));
        }
        Some(_) => {}
    }
    let (old_user, old_org): (String, String) =
        sqlx::query_as("SELECT user_id, org_id FROM devices WHERE id = ?1")
            .bind(&reg.id)
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query(
        "UPDATE devices SET user_id = ?2, org_id = ?3, platform = ?4, push_token = ?5, voip_token = ?6,
                app_version = ?7, name = ?8, updated_at = ?9 WHERE id = ?1",
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
        jobs.extend(retire_device_rows(&mut tx, &reg.id, Some((&reg.user_id, &reg.org_id))).await?);
    }
    sqlx::query(
        "INSERT INTO device_credentials (id, device_id, user_id, org_id, status, generation, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'provisioning', 1, ?5, ?5)
         ON CONFLICT (user_id, org_id, device_id) WHERE status <> 'deleting' DO NOTHING",
    )
    .bind(ulid::Ulid::generate().to_string())
    .bind(&reg.id)
    .bind(&reg.user_id)
    .bind(&reg.org_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE device_credentials SET status = 'provisioning', generation = generation + 1, last_error = NULL,
                updated_at = ?4
          WHERE user_id = ?1 AND org_id = ?2 AND device_id = ?3 AND status = 'failed'",
    )
    .bind(&reg.user_id)
    .bind(&reg.org_id)
    .bind(&reg.id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CRED_COLS} FROM device_credentials
          WHERE user_id = ?1 AND org_id = ?2 AND device_id = ?3 AND status <> 'deleting'"
    )))
    .bind(&reg.user_id)
    .bind(&reg.org_id)
    .bind(&reg.id)
    .fetch_one(&mut *tx)
    .await?;
    let credential = cred(&row)?;
    if credential.status == fleet_domain::credentials::CredentialStatus::Provisioning {
        jobs.push(provision_job(&credential.id, credential.generation));
    }
    let pushed = queue::push(&mut tx, &jobs).await?;
    tx.commit().await?;
    let jobs = jobs.into_iter().zip(pushed).filter(|(_, p)| *p).map(|(j, _)| j).collect();
    Ok((Registered { created, credential }, jobs))
}

async fn retire_device_rows(
    tx: &mut Transaction<'_, Sqlite>,
    device_id: &str,
    keep: Option<(&str, &str)>,
) -> Result<Vec<NewJob>, StoreError> {
    let (user, org) = keep.unwrap_or(("", ""));
    let ids: Vec<String> = sqlx::query_scalar(
        "UPDATE device_credentials SET status = 'deleting', updated_at = ?4
          WHERE device_id = ?1 AND status <> 'deleting' AND NOT (user_id = ?2 AND org_id = ?3)
          RETURNING id",
    )
    .bind(device_id)
    .bind(user)
    .bind(org)
    .bind(now_ms())
    .fetch_all(&mut **tx)
    .await?;
    Ok(ids.iter().map(|id| delete_job(id)).collect())
}

pub(super) async fn device(pool: &SqlitePool, id: &str) -> Result<Option<Device>, StoreError> {
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DEVICE_COLS}, created_at, updated_at FROM devices WHERE id = ?1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let registration = registration(&row)?;
    let credential = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CRED_COLS} FROM device_credentials
          WHERE device_id = ?1 AND user_id = ?2 AND org_id = ?3 AND status <> 'deleting'"
    )))
    .bind(id)
    .bind(&registration.user_id)
    .bind(&registration.org_id)
    .fetch_optional(pool)
    .await?
    .map(|r| cred(&r))
    .transpose()?;
    Ok(Some(Device {
        registration,
        created_at: from_millis(row.try_get("created_at")?).unwrap_or_default(),
        updated_at: from_millis(row.try_get("updated_at")?).unwrap_or_default(),
        credential,
    }))
}

pub(super) async fn deregister(pool: &SqlitePool, id: &str) -> Result<(bool, Vec<NewJob>), StoreError> {
    let mut tx = pool.begin().await?;
    let existed =
        sqlx::query("DELETE FROM devices WHERE id = ?1").bind(id).execute(&mut *tx).await?.rows_affected()
            == 1;
    let mut jobs = retire_device_rows(&mut tx, id, None).await?;
    let pending: Vec<String> =
        sqlx::query_scalar("SELECT id FROM device_credentials WHERE device_id = ?1 AND status = 'deleting'")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
    for p in pending {
        if !jobs.iter().any(|j| j.unique_key == delete_job(&p).unique_key) {
            jobs.push(delete_job(&p));
        }
    }
    let pushed = queue::push(&mut tx, &jobs).await?;
    tx.commit().await?;
    let jobs = jobs.into_iter().zip(pushed).filter(|(_, p)| *p).map(|(j, _)| j).collect();
    Ok((existed, jobs))
}

pub(super) async fn credential(pool: &SqlitePool, id: &str) -> Result<Option<DeviceCredential>, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {CRED_COLS} FROM device_credentials WHERE id = ?1")))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| cred(&r))
        .transpose()
}

pub(super) async fn activate(
    pool: &SqlitePool,
    id: &str,
    c: &ProvisionedCredential,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE device_credentials SET status = 'active', telnyx_id = ?2, sip_username = ?3, sip_password = ?4,
                expires_at = ?5, last_error = NULL, updated_at = ?6
          WHERE id = ?1 AND status = 'provisioning'",
    )
    .bind(id)
    .bind(&c.telnyx_id)
    .bind(&c.sip_username)
    .bind(&c.sip_password_sealed)
    .bind(millis(c.expires_at))
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn fail(pool: &SqlitePool, id: &str, error: &str) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE device_credentials SET status = 'failed', last_error = ?2, updated_at = ?3
          WHERE id = ?1 AND status = 'provisioning'",
    )
    .bind(id)
    .bind(error)
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn swap(
    pool: &SqlitePool,
    old_id: &str,
    new_id: &str,
    c: &ProvisionedCredential,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let Some(row) = sqlx::query(
        "UPDATE device_credentials SET status = 'deleting', updated_at = ?2
          WHERE id = ?1 AND status = 'active' RETURNING device_id, user_id, org_id",
    )
    .bind(old_id)
    .bind(now_ms())
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(false);
    };
    sqlx::query(
        "INSERT INTO device_credentials (id, device_id, user_id, org_id, status, generation, telnyx_id, sip_username,
                                         sip_password, expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'active', 1, ?5, ?6, ?7, ?8, ?9, ?9)",
    )
    .bind(new_id)
    .bind(row.try_get::<String, _>("device_id")?)
    .bind(row.try_get::<String, _>("user_id")?)
    .bind(row.try_get::<String, _>("org_id")?)
    .bind(&c.telnyx_id)
    .bind(&c.sip_username)
    .bind(&c.sip_password_sealed)
    .bind(millis(c.expires_at))
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn mark_deleting(pool: &SqlitePool, ids: &[String]) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE device_credentials SET status = 'deleting', updated_at = ?2
          WHERE id IN (SELECT value FROM json_each(?1))",
    )
    .bind(json_ids(ids))
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn delete_rows(pool: &SqlitePool, ids: &[String]) -> Result<u64, StoreError> {
    Ok(sqlx::query("DELETE FROM device_credentials WHERE id IN (SELECT value FROM json_each(?1))")
        .bind(json_ids(ids))
        .execute(pool)
        .await?
        .rows_affected())
}

pub(super) async fn expired(
    pool: &SqlitePool,
    now: DateTime<Utc>,
    stale_before: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<DeviceCredential>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CRED_COLS} FROM device_credentials
          WHERE expires_at <= ?1 OR (status = 'deleting' AND updated_at < ?2)
          ORDER BY expires_at IS NULL, expires_at, id LIMIT ?3"
    )))
    .bind(millis(now))
    .bind(millis(stale_before))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(cred).collect()
}

pub(super) async fn to_rotate(
    pool: &SqlitePool,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM device_credentials WHERE status = 'active' AND expires_at > ?1 AND expires_at <= ?2
          ORDER BY expires_at, id LIMIT ?3",
    )
    .bind(millis(now))
    .bind(millis(horizon))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}

pub(super) async fn known(pool: &SqlitePool, ids: &[String]) -> Result<HashSet<String>, StoreError> {
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT telnyx_id FROM device_credentials WHERE telnyx_id IN (SELECT value FROM json_each(?1))
         UNION SELECT telnyx_id FROM org_credentials WHERE telnyx_id IN (SELECT value FROM json_each(?1))",
    )
    .bind(json_ids(ids))
    .fetch_all(pool)
    .await?;
    Ok(found.into_iter().collect())
}

pub(super) async fn org_ids(pool: &SqlitePool) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar("SELECT id FROM organizations ORDER BY id").fetch_all(pool).await?)
}

pub(super) async fn dialable(
    pool: &SqlitePool,
    user_id: &str,
    org_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<DialableCredential>, StoreError> {
    let rows = sqlx::query(
        "SELECT c.device_id, c.id, c.sip_username, c.expires_at
           FROM device_credentials c JOIN devices d ON d.id = c.device_id AND d.user_id = c.user_id AND d.org_id = c.org_id
          WHERE c.user_id = ?1 AND c.org_id = ?2 AND c.status = 'active' AND c.sip_username IS NOT NULL
            AND (c.expires_at IS NULL OR c.expires_at > ?3)
          ORDER BY c.device_id",
    )
    .bind(user_id)
    .bind(org_id)
    .bind(millis(now))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DialableCredential {
                device_id: r.try_get("device_id")?,
                credential_id: r.try_get("id")?,
                sip_username: r.try_get("sip_username")?,
                expires_at: from_millis(r.try_get("expires_at")?),
            })
        })
        .collect()
}

pub(super) async fn upsert_org_credential(pool: &SqlitePool, c: &OrgCredential) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO org_credentials (id, user_id, org_id, telnyx_id, sip_username, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&c.id)
    .bind(&c.user_id)
    .bind(&c.org_id)
    .bind(&c.telnyx_id)
    .bind(&c.sip_username)
    .bind(c.expires_at.map(millis))
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn departed(pool: &SqlitePool, limit: u32) -> Result<Vec<OrgCredential>, StoreError> {
    let rows = sqlx::query(
        "SELECT c.id, c.user_id, c.org_id, c.telnyx_id, c.sip_username, c.expires_at FROM org_credentials c
          WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = c.user_id AND u.org_id = c.org_id)
          ORDER BY c.id LIMIT ?1",
    )
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OrgCredential {
                id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                org_id: r.try_get("org_id")?,
                telnyx_id: r.try_get("telnyx_id")?,
                sip_username: r.try_get("sip_username")?,
                expires_at: from_millis(r.try_get("expires_at")?),
            })
        })
        .collect()
}

pub(super) async fn delete_org_credentials(pool: &SqlitePool, ids: &[String]) -> Result<u64, StoreError> {
    Ok(sqlx::query("DELETE FROM org_credentials WHERE id IN (SELECT value FROM json_each(?1))")
        .bind(json_ids(ids))
        .execute(pool)
        .await?
        .rows_affected())
}
