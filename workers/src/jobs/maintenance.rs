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
