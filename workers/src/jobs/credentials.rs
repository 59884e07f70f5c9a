//! `credentials` pool: provision, delete and rotate one device credential.
//!
//! Exactly one Telnyx credential per row: the credential's `name` is derived from the row id, so
//! an attempt first looks for a credential of that name (created by an attempt that crashed before
//! recording it) and adopts it instead of creating another. Recording is conditional on the row
//! still being `provisioning`; if the device was deregistered meanwhile, the credential just
//! created is deleted again. A provisioning that fails for good marks the row `failed`, which the
//! next registration of the device retries.
//!
//! Rotation is create → store (one transaction swaps old for new, so the device is dialable
//! throughout) → delete old. A crash after the swap leaves the old row `deleting`; the expiry
//! cleanup finishes it. Passwords are sealed before they reach the store and never logged.

use chrono::Utc;
use fleet_domain::credentials::{CredentialStatus, credential_name, credential_tag};
use fleet_jobs::Envelope;
use fleet_store::{DeviceCredential, ProvisionedCredential};
use fleet_telnyx::{CreateCredential, Credential};

use crate::{JobError, Runtime};

pub(super) async fn provision(runtime: &Runtime, envelope: &Envelope, id: &str) -> Result<(), JobError> {
    let Some(row) = runtime.store.credential(id).await? else { return Ok(()) };
    if row.status != CredentialStatus::Provisioning {
        return Ok(());
    }
    let result = provision_row(runtime, &row).await;
    if let Err(e) = &result {
        let last = envelope.attempt >= envelope.job.retry_policy().max_attempts;
        if last || e.failure == fleet_domain::retry::Failure::Permanent {
            runtime.store.fail_credential(id, &e.message).await?;
            tracing::warn!(credential_id = id, error = %e, "Credential provisioning failed; re-registering retries it.");
        }
    }
    result
}

async fn provision_row(runtime: &Runtime, row: &DeviceCredential) -> Result<(), JobError> {
    let name = credential_name(&row.id);
    let created = find_or_create(runtime, &name, &credential_tag(&row.org_id, &row.id)).await?;
    let provisioned = provisioned(runtime, &created);
    if runtime.store.activate_credential(&row.id, &provisioned).await? {
        tracing::info!(credential_id = %row.id, device_id = %row.device_id, telnyx_id = %created.id, "Credential provisioned.");
    } else {
        // Deregistered (or otherwise retired) while we were creating it: do not leave a ghost.
        runtime.telnyx()?.delete_credential(&created.id).await?;
        tracing::info!(credential_id = %row.id, "Credential row retired during provisioning; Telnyx credential deleted.");
    }
    Ok(())
}

/// The Telnyx credential named `name`, created (with our `tag` and expiry) if none exists.
async fn find_or_create(runtime: &Runtime, name: &str, tag: &str) -> Result<Credential, JobError> {
    let telnyx = runtime.telnyx()?;
    if let Some(found) = telnyx.list_credentials(&[("name", name)], 1, 10).await?.data.into_iter().next() {
        tracing::info!(telnyx_id = %found.id, "Adopting the credential an earlier attempt created.");
        return Ok(found);
    }
    let connection_id = runtime
        .credential_connection_id
        .clone()
        .ok_or_else(|| JobError::permanent("TELNYX_CREDENTIAL_CONNECTION_ID is not configured"))?;
    let request = CreateCredential {
        connection_id,
        name: name.to_owned(),
        tag: tag.to_owned(),
        expires_at: runtime.credential_policy.expires_at(Utc::now()),
    };
    Ok(telnyx.create_credential(&request).await?)
}

fn provisioned(runtime: &Runtime, c: &Credential) -> ProvisionedCredential {
    let sealed = match (&runtime.keyring, &c.sip_password) {
        // Bound to its Telnyx credential: copied onto another row, it does not open.
        (Some(ring), Some(password)) => Some(ring.seal(password.expose(), &c.id, rand::random::<[u8; 12]>())),
        _ => None,
    };
    ProvisionedCredential {
        telnyx_id: c.id.clone(),
        sip_username: c.sip_username.clone(),
        sip_password_sealed: sealed,
        expires_at: c.expires_at.unwrap_or_else(|| runtime.credential_policy.expires_at(Utc::now())),
    }
}

/// Deletes a `deleting` row's Telnyx credential (404 = already gone), then the row.
pub(super) async fn delete(runtime: &Runtime, id: &str) -> Result<(), JobError> {
    let Some(row) = runtime.store.credential(id).await? else { return Ok(()) };
    if row.status != CredentialStatus::Deleting {
        return Ok(());
    }
    delete_row(runtime, &row).await
}

pub(super) async fn delete_row(runtime: &Runtime, row: &DeviceCredential) -> Result<(), JobError> {
    let telnyx = runtime.telnyx()?;
    match &row.telnyx_id {
        Some(tid) => {
            telnyx.delete_credential(tid).await?;
        }
        None => {
            // Never recorded: an attempt may still have created one under the row's name.
            for c in telnyx.list_credentials(&[("name", &credential_name(&row.id))], 1, 10).await?.data {
                telnyx.delete_credential(&c.id).await?;
            }
        }
    }
    runtime.store.delete_credential_rows(std::slice::from_ref(&row.id)).await?;
    tracing::info!(credential_id = %row.id, device_id = %row.device_id, "Credential deleted.");
    Ok(())
}

/// Replaces an active credential that nears expiry.
pub(super) async fn rotate(runtime: &Runtime, id: &str) -> Result<(), JobError> {
    let Some(row) = runtime.store.credential(id).await? else { return Ok(()) };
    match row.status {
        // A retry after the swap: finish deleting the old one.
        CredentialStatus::Deleting => return delete_row(runtime, &row).await,
        CredentialStatus::Active => {}
        _ => return Ok(()),
    }
    let due = row.expires_at.is_some_and(|e| runtime.credential_policy.should_rotate(e, Utc::now()));
    if !due {
        return Ok(());
    }
    // Deterministic name: a retry adopts what a crashed attempt created.
    let name = format!("{}:next", credential_name(&row.id));
    let created = find_or_create(runtime, &name, &credential_tag(&row.org_id, &row.id)).await?;
    let new_id = ulid::Ulid::generate().to_string();
    if !runtime.store.swap_credential(&row.id, &new_id, &provisioned(runtime, &created)).await? {
        runtime.telnyx()?.delete_credential(&created.id).await?;
        return Ok(());
    }
    tracing::info!(old = %row.id, new = %new_id, "Credential rotated; deleting the old one.");
    let mut old = row;
    old.status = CredentialStatus::Deleting;
    delete_row(runtime, &old).await
}
