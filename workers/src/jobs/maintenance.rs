//! `maintenance` pool: cron work enqueued by the scheduler.

use chrono::{TimeZone, Utc};

use crate::{JobError, Runtime};

/// Deletes webhook events (and finished queue rows) received before `before` (Unix seconds).
/// Idempotent: a second run deletes nothing more.
pub(super) async fn purge_webhook_events(runtime: &Runtime, before: i64) -> Result<(), JobError> {
    let before = Utc
        .timestamp_opt(before, 0)
        .single()
        .ok_or_else(|| JobError::permanent(format!("invalid purge time {before}")))?;
    let deleted = runtime.store.purge_webhooks(before).await?;
    tracing::info!(deleted, %before, "Purged stored webhook events past retention.");
    Ok(())
}
