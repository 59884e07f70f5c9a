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
use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::NewJob;
use crate::sql::{OptTs, Ts};

/// An organization (tenant).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Organization {
    pub id: String,
    pub name: Option<String>,
    #[serde(flatten)]
    pub settings: OrgSettings,
}

/// What an organization's calls do when nobody answers (stored as one JSON document; `None`
/// means the product default: see `fleet_domain::call::VoicemailSettings`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSettings {
    pub voicemail_greeting: Option<String>,
    pub voicemail_voice: Option<String>,
    pub voicemail_language: Option<String>,
    pub voicemail_max_secs: Option<u32>,
    pub ai_agent_sip_uri: Option<String>,
}

/// A user: a member of one or more organizations (`org_id` is the first of `org_ids`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub org_id: String,
    /// Every organization the user belongs to, `org_id` included (empty means `[org_id]`).
    pub org_ids: Vec<String>,
    pub name: Option<String>,
    /// Do not disturb: inbound calls go to voicemail.
    pub dnd: bool,
}

impl User {
    /// Every organization of the user, the primary one first, without repeats.
    pub fn memberships(&self) -> Vec<String> {
        let mut orgs = vec![self.org_id.clone()];
        orgs.extend(self.org_ids.iter().filter(|o| **o != self.org_id).cloned());
        orgs.dedup();
        orgs
    }
}

/// A device that an inbound call to its user rings, in any of the user's organizations.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RingTarget {
    #[sqlx(flatten)]
    pub device: DeviceRegistration,
    /// The SIP username of its active, unexpired credential, if it has one (dialable now).
    pub sip_username: Option<String>,
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

/// A sealed SIP password due for a re-seal, with what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SealedPassword {
    pub id: String,
    pub telnyx_id: String,
    pub sealed: String,
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
