//! `maintenance` pool, credential work enqueued by the scheduler: expiry cleanup, orphan sweep,
//! departed-user sweep, rotation fan-out.
//!
//! Each run works from the tick's time (`now` in the job), so a run is reproducible and a late
//! run deletes what was due at its tick. Work is paged (500 rows), and Telnyx deletions run 16 at
//! a time through the client's rate limiter. A Telnyx failure ends the attempt with what was
//! already confirmed deleted removed from the store; the job is retried with persisted backoff and
//! resumes (a repeated delete is a 404, i.e. success). The expiry cleanup and the orphan sweep
//! work for at most [`ATTEMPT_BUDGET`] per attempt and hand the rest of their tick to a
//! continuation job, so no backlog is too large to finish.

use chrono::{DateTime, Duration, TimeZone, Utc};
use fleet_domain::credentials::{CredentialStatus, RemoteCredential, orphans};
use futures::StreamExt as _;

use crate::{JobError, Runtime};

const PAGE: u32 = 500;
const PARALLEL: usize = 16;
/// A `deleting` row untouched this long is a deletion that crashed.
const STALE_DELETE: Duration = Duration::minutes(10);

fn at(secs: i64) -> Result<DateTime<Utc>, JobError> {
    Utc.timestamp_opt(secs, 0).single().ok_or_else(|| JobError::permanent(format!("invalid time {secs}")))
}

/// Deletes, 16 at a time, Telnyx credentials by id; returns the indexes confirmed gone and the
/// first error.
async fn delete_remote(
    runtime: &Runtime,
    ids: &[Option<String>],
) -> Result<(Vec<usize>, Option<JobError>), JobError> {
    let telnyx = runtime.telnyx()?.clone();
    // Owned inputs: the futures must be `Send` for any lifetime (they run on the worker's task).
    let tasks: Vec<_> = ids
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, id)| {
            let telnyx = telnyx.clone();
            async move {
                match id {
                    Some(id) => (i, telnyx.delete_credential(&id).await.map(|_| ())),
                    None => (i, Ok(())),
                }
            }
        })
        .collect();
    let results: Vec<(usize, Result<(), fleet_telnyx::TelnyxError>)> =
        futures::stream::iter(tasks).buffer_unordered(PARALLEL).collect().await;
    let mut done = Vec::new();
    let mut error = None;
    for (i, r) in results {
        match r {
            Ok(()) => done.push(i),
            Err(e) => error = error.or(Some(JobError::from(e))),
        }
    }
    Ok((done, error))
}

/// One attempt works this long at most (attempts time out at 60 s); what remains is handed to a
/// continuation job of the same tick (unique key: the work id plus `+`), so a large backlog is
/// worked through in a chain of short attempts at the rate limit.
const ATTEMPT_BUDGET: std::time::Duration = std::time::Duration::from_secs(40);

pub(super) async fn cleanup_expired(
    runtime: &Runtime,
    envelope: &fleet_jobs::Envelope,
    tick: i64,
) -> Result<(), JobError> {
    let now = at(tick)?;
    let started = std::time::Instant::now();
    let mut deleted = 0u64;
    loop {
        let rows = runtime.store.expired_credentials(now, now - STALE_DELETE, PAGE).await?;
        if rows.is_empty() {
            break;
        }
        let marking: Vec<String> =
            rows.iter().filter(|r| r.status != CredentialStatus::Deleting).map(|r| r.id.clone()).collect();
        if !marking.is_empty() {
            runtime.store.mark_credentials_deleting(&marking).await?;
        }
        let remote: Vec<Option<String>> = rows.iter().map(|r| r.telnyx_id.clone()).collect();
        let (done, error) = delete_remote(runtime, &remote).await?;
        let ids: Vec<String> = done.iter().map(|&i| rows[i].id.clone()).collect();
        deleted += runtime.store.delete_credential_rows(&ids).await?;
        if let Some(e) = error {
            tracing::warn!(deleted, error = %e, "Expired-credential cleanup interrupted; it will resume.");
            return Err(e);
        }
        // At least one page per attempt, then hand over when the budget is spent.
        if started.elapsed() >= runtime.attempt_budget.unwrap_or(ATTEMPT_BUDGET) {
            let next = fleet_jobs::Job::CleanupExpiredCredentialsV1 { now: tick };
            super::continue_in_follow_up(runtime, envelope, next).await?;
            tracing::info!(deleted, "Expired-credential cleanup continues in a follow-up job.");
            return Ok(());
        }
    }
    tracing::info!(deleted, %now, "Expired credentials deleted.");
    Ok(())
}

/// The listing's page size (Telnyx's largest).
const LISTING_PAGE: u64 = 250;

/// Deletes the credentials on the credential connection that are ours by name, unknown to the
/// store and past the grace period, page by page from `resume_at` (the listing position of the
/// first credential not yet looked at). Deleted credentials leave the listing, so the position
/// advances by the ones kept: the listing is in creation order, and one created meanwhile lands at
/// its end. One deleted meanwhile by someone else before the position shifts the rest back by
/// one, and one credential waits for the next tick. When the attempt's budget is spent, a
/// continuation of the same tick (work id plus `+`) starts where this one stopped; a failed
/// attempt is retried from its own start, so a large connection is worked through instead of
/// listed from the first page in every attempt.
pub(super) async fn sweep_orphans(
    runtime: &Runtime,
    envelope: &fleet_jobs::Envelope,
    tick: i64,
    resume_at: u64,
) -> Result<(), JobError> {
    let now = at(tick)?;
    let telnyx = runtime.telnyx()?;
    let Some(connection) = runtime.credential_connection_id.as_deref() else {
        // Nothing is provisioned without one, so nothing of ours can be orphaned.
        tracing::info!("No TELNYX_CREDENTIAL_CONNECTION_ID: no credentials to sweep.");
        return Ok(());
    };
    // The whole credential connection, not one tag per organization: an organization's
    // credentials are spread over many tags, a deleted organization's are still ours, and a
    // listing shows names (ours: `callfleet:<row>`), not tags.
    let filter = format!("connection:{connection}");
    let started = std::time::Instant::now();
    let (mut position, mut deleted) = (resume_at, 0usize);
    loop {
        let page = (position / LISTING_PAGE) as u32 + 1;
        let listed = telnyx.list_credentials(&[("resource_id", &filter)], page, LISTING_PAGE as u32).await?;
        let skip = ((position % LISTING_PAGE) as usize).min(listed.data.len());
        let remote: Vec<RemoteCredential> = listed.data[skip..]
            .iter()
            .map(|c| RemoteCredential { id: c.id.clone(), name: c.name.clone(), created_at: c.created_at })
            .collect();
        if remote.is_empty() {
            break;
        }
        let ids: Vec<String> = remote.iter().map(|c| c.id.clone()).collect();
        let known = runtime.store.known_telnyx_ids(&ids).await?;
        let doomed: Vec<Option<String>> =
            orphans(&remote, &known, now, runtime.credential_policy.orphan_grace)
                .into_iter()
                .map(|c| Some(c.id.clone()))
                .collect();
        let (done, error) = delete_remote(runtime, &doomed).await?;
        deleted += done.len();
        if let Some(e) = error {
            tracing::warn!(deleted, position, error = %e, "Orphan sweep interrupted; it will resume.");
            return Err(e);
        }
        position += (remote.len() - done.len()) as u64;
        if page >= listed.total_pages {
            break;
        }
        if started.elapsed() >= runtime.attempt_budget.unwrap_or(ATTEMPT_BUDGET) {
            let next = fleet_jobs::Job::SweepOrphanCredentialsV1 { now: tick, resume_at: position };
            super::continue_in_follow_up(runtime, envelope, next).await?;
            tracing::info!(deleted, position, "Orphan sweep continues in a follow-up job.");
            return Ok(());
        }
    }
    tracing::info!(deleted, kept = position, "Orphan Telnyx credentials deleted.");
    Ok(())
}

pub(super) async fn sweep_departed(runtime: &Runtime, _now: i64) -> Result<(), JobError> {
    let mut deleted = 0u64;
    loop {
        let rows = runtime.store.departed_org_credentials(PAGE).await?;
        if rows.is_empty() {
            break;
        }
        let remote: Vec<Option<String>> = rows.iter().map(|r| Some(r.telnyx_id.clone())).collect();
        let (done, error) = delete_remote(runtime, &remote).await?;
        let ids: Vec<String> = done.iter().map(|&i| rows[i].id.clone()).collect();
        deleted += runtime.store.delete_org_credentials(&ids).await?;
        if let Some(e) = error {
            return Err(e);
        }
    }
    tracing::info!(deleted, "Org-level credentials of departed users deleted.");
    Ok(())
}

pub(super) async fn rotate_expiring(runtime: &Runtime, now: i64) -> Result<(), JobError> {
    let now = at(now)?;
    let horizon = runtime.credential_policy.rotation_horizon(now);
    let ids = runtime.store.credentials_to_rotate(now, horizon, 10_000).await?;
    let jobs: Vec<_> = ids.iter().map(|id| fleet_store::devices::rotate_job(id)).collect();
    for chunk in jobs.chunks(500) {
        runtime.store.enqueue(chunk).await?;
    }
    tracing::info!(due = ids.len(), "Credential rotations enqueued.");
    Ok(())
}
