//! Stored webhooks and the leg rows their events fill in, on both engines.
//!
//! Storing a batch is engine-specific ([`super::Dialect::accept_webhooks`]); everything after it
//! is here. Leg updates only fill empty fields (`coalesce`), so events applied in any order and
//! any number of times converge on one row.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fleet_store_macros::engines;

use super::{Affected, SqlStore, Ts, json_ids, opt};

/// The most rows one purge statement deletes.
pub(crate) const PURGE_BATCH: i64 = 2_000;

/// Runs `batch` (one statement deleting at most [`PURGE_BATCH`] rows, how many it did) until a
/// batch comes back short, yielding between batches; the rows deleted in all.
async fn in_batches<F, Fut>(mut batch: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    loop {
        let n = batch().await?;
        total += n;
        if n < PURGE_BATCH as u64 {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}
use crate::{
    Accepted, CallLeg, LegUpdate, NewWebhook, ReplaySelector, ReplayTarget, StoreError, StoredWebhook,
    WebhookStore,
};

#[engines]
#[async_trait]
impl WebhookStore for SqlStore<DB> {
    async fn accept_webhooks(&self, batch: &[NewWebhook]) -> Result<Vec<Accepted>, StoreError> {
        let (outcomes, jobs) = DB::accept_webhooks(self, batch).await?;
        self.waker.pushed_all(&jobs);
        Ok(outcomes)
    }

    async fn webhook(&self, event_id: &str) -> Result<Option<StoredWebhook>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT event_id, event_type, call_session_id, source, body, received_at, processed_at, outcome
               FROM webhook_events WHERE event_id = $1",
        )
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Marks the event processed and applies its leg fact in one transaction (the mark first:
    /// the transaction's first statement writes).
    async fn finish_webhook(
        &self,
        event_id: &str,
        outcome: &str,
        leg: Option<&LegUpdate>,
    ) -> Result<(), StoreError> {
        let mut tx = super::begin_write(&self.pool).await?;
        sqlx::query("UPDATE webhook_events SET processed_at = $2, outcome = $3 WHERE event_id = $1")
            .bind(event_id)
            .bind(self.now())
            .bind(outcome)
            .execute(&mut *tx)
            .await?;
        if let Some(update) = leg {
            self.apply_leg(&mut tx, update).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn select_webhooks(&self, selector: &ReplaySelector) -> Result<Vec<ReplayTarget>, StoreError> {
        let rows: Vec<(String, Option<String>)> = match selector {
            ReplaySelector::Ids(ids) => {
                let sql = format!(
                    "SELECT event_id, call_session_id FROM webhook_events WHERE {}
                      ORDER BY received_at, event_id",
                    DB::in_json_ids("event_id", 1)
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(json_ids(ids)).fetch_all(&self.pool).await?
            }
            ReplaySelector::Session(session) => {
                sqlx::query_as(
                    "SELECT event_id, call_session_id FROM webhook_events
                      WHERE call_session_id = $1 ORDER BY received_at, event_id",
                )
                .bind(session.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            ReplaySelector::Range { from, to } => {
                sqlx::query_as(
                    "SELECT event_id, call_session_id FROM webhook_events
                      WHERE received_at >= $1 AND received_at < $2 ORDER BY received_at, event_id",
                )
                .bind(Ts(*from))
                .bind(Ts(*to))
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(event_id, call_session_id)| ReplayTarget { event_id, call_session_id })
            .collect())
    }

    /// Deletes old events, the schedule ticks and finished job rows of the same age (apalis
    /// never deletes its rows), each in statements of at most [`PURGE_BATCH`] rows: every batch
    /// commits on its own, so a purge that dies is resumed by its retry, and on SQLite the write
    /// lock is free between batches (the ingress keeps committing instead of answering 503).
    async fn purge_webhooks(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let events = self
            .delete_batched(
                "DELETE FROM webhook_events WHERE event_id IN
                   (SELECT event_id FROM webhook_events WHERE received_at < $1 LIMIT $2)",
                before,
            )
            .await?;
        self.delete_batched(
            "DELETE FROM schedule_ticks WHERE (schedule, tick_at) IN
               (SELECT schedule, tick_at FROM schedule_ticks WHERE tick_at < $1 LIMIT $2)",
            before,
        )
        .await?;
        in_batches(|| super::purge_done_jobs(&self.pool, before, PURGE_BATCH)).await?;
        Ok(events)
    }

    async fn apply_leg_event(&self, update: &LegUpdate) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.apply_leg(&mut conn, update).await
    }

    async fn call_legs(&self, call_session_id: &str) -> Result<Vec<CallLeg>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT call_control_id, call_session_id, direction, from_number, to_number, initiated_at, answered_at,
                    bridged_at, ended_at, hangup_cause, hangup_source
               FROM call_legs WHERE call_session_id = $1 ORDER BY initiated_at NULLS LAST, call_control_id",
        )
        .bind(call_session_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn call_leg(&self, call_control_id: &str) -> Result<Option<CallLeg>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT call_control_id, call_session_id, direction, from_number, to_number, initiated_at, answered_at,
                    bridged_at, ended_at, hangup_cause, hangup_source
               FROM call_legs WHERE call_control_id = $1",
        )
        .bind(call_control_id)
        .fetch_optional(&self.pool)
        .await?)
    }
}

#[engines]
impl SqlStore<DB> {
    /// Runs `sql` (a `DELETE` of at most `$2` rows older than `$1`) until a batch comes back
    /// short; the rows deleted.
    pub(crate) async fn delete_batched(
        &self,
        sql: &'static str,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        in_batches(|| async {
            Ok(sqlx::query(sql).bind(Ts(before)).bind(PURGE_BATCH).execute(&self.pool).await?.affected())
        })
        .await
    }

    /// Applies one leg fact on `conn` (a pooled connection or an open transaction).
    async fn apply_leg(&self, conn: &mut DB::Connection, u: &LegUpdate) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO call_legs (call_control_id, call_session_id, call_leg_id, direction, from_number, to_number,
                                    initiated_at, answered_at, bridged_at, ended_at, hangup_cause, hangup_source,
                                    updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (call_control_id) DO UPDATE SET
                call_session_id = coalesce(call_legs.call_session_id, excluded.call_session_id),
                call_leg_id     = coalesce(call_legs.call_leg_id, excluded.call_leg_id),
                direction       = coalesce(call_legs.direction, excluded.direction),
                from_number     = coalesce(call_legs.from_number, excluded.from_number),
                to_number       = coalesce(call_legs.to_number, excluded.to_number),
                initiated_at    = coalesce(call_legs.initiated_at, excluded.initiated_at),
                answered_at     = coalesce(call_legs.answered_at, excluded.answered_at),
                bridged_at      = coalesce(call_legs.bridged_at, excluded.bridged_at),
                ended_at        = coalesce(call_legs.ended_at, excluded.ended_at),
                hangup_cause    = coalesce(call_legs.hangup_cause, excluded.hangup_cause),
                hangup_source   = coalesce(call_legs.hangup_source, excluded.hangup_source),
                updated_at      = excluded.updated_at",
        )
        .bind(&u.call_control_id)
        .bind(&u.call_session_id)
        .bind(&u.call_leg_id)
        .bind(&u.direction)
        .bind(&u.from_number)
        .bind(&u.to_number)
        .bind(opt(u.initiated_at))
        .bind(opt(u.answered_at))
        .bind(opt(u.bridged_at))
        .bind(opt(u.ended_at))
        .bind(&u.hangup_cause)
        .bind(&u.hangup_source)
        .bind(self.now())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
