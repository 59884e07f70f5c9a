//! `maintenance` pool: cron work enqueued by the scheduler.

use chrono::{TimeZone, Utc};

use crate::{JobError, Runtime};

/// Deletes webhook events (and finished queue rows) received before `before` (Unix seconds), and
/// the push delivery records of the same age (their calls are long over).
/// Idempotent: a second run deletes nothing more.
pub(super) async fn purge_webhook_events(runtime: &Runtime, before: i64) -> Result<(), JobError> {
    let before = Utc
        .timestamp_opt(before, 0)
        .single()
        .ok_or_else(|| JobError::permanent(format!("invalid purge time {before}")))?;
    let deleted = runtime.store.purge_webhooks(before).await?;
    let pushes = runtime.store.purge_push_deliveries(before).await?;
    tracing::info!(deleted, pushes, %before, "Purged stored webhook events and push records past retention.");
    Ok(())
}

/// Recordings one retention batch deletes.
const RECORDING_BATCH: u32 = 200;
/// One retention attempt works this long at most, then hands over to a follow-up job.
const RETENTION_BUDGET: std::time::Duration = std::time::Duration::from_secs(40);

/// Deletes the recordings stored before `before` (Unix seconds): a batch of rows at a time, each
/// object first, then the rows (a crash in between leaves rows whose objects are gone, which the
/// next run deletes again: a missing object counts as deleted). When the attempt's budget is
/// spent, a follow-up job (work id + `+`) continues.
pub(super) async fn purge_recordings(
    runtime: &Runtime,
    envelope: &fleet_jobs::Envelope,
    before: i64,
) -> Result<(), JobError> {
    let cutoff = Utc
        .timestamp_opt(before, 0)
        .single()
        .ok_or_else(|| JobError::permanent(format!("invalid purge time {before}")))?;
    let started = std::time::Instant::now();
    let mut deleted = 0u64;
    loop {
        let batch = runtime.store.recordings_stored_before(cutoff, RECORDING_BATCH).await?;
        if batch.is_empty() {
            break;
        }
        for recording in &batch {
            runtime.archive.delete(&recording.object_key).await?;
        }
        let ids: Vec<String> = batch.iter().map(|r| r.id.clone()).collect();
        deleted += runtime.store.delete_recordings(&ids).await?;
        if started.elapsed() >= runtime.attempt_budget.unwrap_or(RETENTION_BUDGET) {
            super::continue_in_follow_up(runtime, envelope, fleet_jobs::Job::PurgeRecordingsV1 { before })
                .await?;
            tracing::info!(deleted, "Recording retention continues in a follow-up job.");
            return Ok(());
        }
    }
    metrics::counter!("callfleet_recordings_purged_total").increment(deleted);
    tracing::info!(deleted, %cutoff, "Recordings past retention deleted.");
    Ok(())
}

/// Rows one re-seal pass reads at a time.
const RESEAL_PAGE: u32 = 500;

/// Re-seals every stored SIP password that the current key did not seal (or that is in the
/// unbound `v1:` format), a page at a time in row order; each row is replaced only if unchanged
/// meanwhile, so a rotation that writes a new password wins. A value no key of the ring opens
/// (its key was removed too early, or the row was tampered with) is left as it is and logged.
/// Idempotent: a rerun finds only what is still to do.
pub(super) async fn reseal_secrets(runtime: &Runtime) -> Result<(), JobError> {
    let Some(ring) = &runtime.keyring else {
        tracing::info!("No CALLFLEET_SECRET_KEY: nothing is sealed, nothing to re-seal.");
        return Ok(());
    };
    let current = ring.current_prefix();
    let (mut resealed, mut unreadable) = (0u64, 0u64);
    let mut after = String::new();
    loop {
        let rows = runtime.store.sealed_passwords_to_reseal(&current, &after, RESEAL_PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.id.clone();
        for row in &rows {
            match ring.open(&row.sealed, &row.telnyx_id) {
                Ok(plain) => {
                    let fresh = ring.seal(&plain, &row.telnyx_id, rand::random::<[u8; 12]>());
                    if runtime.store.replace_sealed_password(&row.id, &row.sealed, &fresh).await? {
                        resealed += 1;
                    }
                }
                Err(e) => {
                    unreadable += 1;
                    tracing::warn!(credential_id = %row.id, error = %e, "A sealed password opens with no key of the ring; left as it is.");
                }
            }
        }
    }
    tracing::info!(
        resealed,
        unreadable,
        key_id = ring.current_key_id(),
        "Secrets re-sealed under the current key."
    );
    Ok(())
}
