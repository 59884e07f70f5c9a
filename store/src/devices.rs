//! Rows and requests for organizations, users, devices and their Telnyx credentials, plus the
//! jobs the store enqueues in the same transaction as the rows that need them.
//!
//! Registration stores the device and, at most once per (user, org, device), a credential row in
//! `provisioning` with its provisioning job (unique key per row and generation, so ten racing
//! registrations push one job). A `failed` row is put back to `provisioning` under a new generation
//! by the next registration: a failure is never stuck. Deregistration marks the device's rows
//! `deleting` and enqueues their deletion; the row disappears only after Telnyx confirmed.

use chrono::{DateTime, Utc};
use fleet_domain::credentials::CredentialStatus;
use fleet_jobs::{Envelope, Job};
use serde::Serialize;
use sqlx::FromRow;

use crate::NewJob;
use crate::sql::{OptTs, Ts};

/// An organization (tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    pub id: String,
    pub name: Option<String>,
}

/// A user, member of one organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub org_id: String,
    pub name: Option<String>,
}

/// What the app sends when a device registers.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct DeviceRegistration {
    pub id: String,
    pub user_id: String,
    pub org_id: String,
    pub platform: String,
    pub push_token: Option<String>,
    pub voip_token: Option<String>,
    pub app_version: Option<String>,
    pub name: Option<String>,
}

/// A stored device with the state of its current credential (never the password).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Device {
    #[sqlx(flatten)]
    pub registration: DeviceRegistration,
    #[sqlx(try_from = "Ts")]
    pub created_at: DateTime<Utc>,
    #[sqlx(try_from = "Ts")]
    pub updated_at: DateTime<Utc>,
    #[sqlx(skip)]
    pub credential: Option<DeviceCredential>,
}

/// A credential row.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct DeviceCredential {
    pub id: String,
    pub device_id: String,
    pub user_id: String,
    pub org_id: String,
    #[sqlx(try_from = "String")]
    pub status: CredentialStatus,
    pub generation: i64,
    pub telnyx_id: Option<String>,
    pub sip_username: Option<String>,
    /// Sealed (`v1:<key id>:…`), or `None` when no password is kept.
    #[sqlx(rename = "sip_password")]
    pub sip_password_sealed: Option<String>,
    #[sqlx(try_from = "OptTs")]
    pub expires_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    #[sqlx(try_from = "Ts")]
    pub updated_at: DateTime<Utc>,
}

/// A Telnyx credential created for a row, ready to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedCredential {
    pub telnyx_id: String,
    pub sip_username: String,
    pub sip_password_sealed: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// A credential routing may dial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct DialableCredential {
    pub device_id: String,
    pub credential_id: String,
    pub sip_username: String,
    #[sqlx(try_from = "OptTs")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// An org-level (web) credential of a user.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct OrgCredential {
    pub id: String,
    pub user_id: String,
    pub org_id: String,
    pub telnyx_id: String,
    pub sip_username: String,
    #[sqlx(try_from = "OptTs")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// What a registration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The device did not exist before.
    pub created: bool,
    /// The current credential row after registration.
    pub credential: DeviceCredential,
}

/// The provisioning job of generation `generation` of credential row `id`.
pub fn provision_job(id: &str, generation: i64) -> NewJob {
    keyed(Job::ProvisionCredentialV1 { credential_id: id.to_owned() }, format!("provision:{id}:{generation}"))
}

/// The deletion job of credential row `id`.
pub fn delete_job(id: &str) -> NewJob {
    keyed(Job::DeleteCredentialV1 { credential_id: id.to_owned() }, format!("delete-credential:{id}"))
}

/// The rotation job of credential row `id` (one per row: a rotated row is replaced by a new one).
pub fn rotate_job(id: &str) -> NewJob {
    keyed(Job::RotateCredentialV1 { credential_id: id.to_owned() }, format!("rotate:{id}"))
}

fn keyed(job: Job, work_id: String) -> NewJob {
    NewJob::once(Envelope::new(job, work_id))
}
