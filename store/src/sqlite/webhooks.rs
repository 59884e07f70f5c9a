//! Webhook rows and leg rows on SQLite (times in Unix milliseconds).

use std::collections::HashSet;

use sqlx::{Row, SqlitePool};

use super::{from_millis, millis};
use crate::webhook_jobs::outcomes;
use crate::{
    Accepted, CallLeg, LegUpdate, NewJob, NewWebhook, ReplaySelector, ReplayTarget, StoreError, StoredWebhook,
};

/// Rows per multi-row INSERT (7 parameters each, far below SQLite's parameter limit).
const CHUNK: usize = 128;

/// Inserts the batch's new events and their jobs in one transaction, a few multi-row
/// statements at a time (each statement is a round trip to sqlx's SQLite thread).
pub(super) async fn accept(
    pool: &SqlitePool,
    batch: &[NewWebhook],
) -> Result<(Vec<Accepted>, Vec<NewJob>, Vec<bool>), StoreError> {
    let mut tx = pool.begin().await?;
    let mut inserted = HashSet::with_capacity(batch.len());
    for chunk in batch.chunks(CHUNK) {
        let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO webhook_events (event_id, event_type, call_session_id, source, attempt, body, received_at)
             VALUES {values} ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        );
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
        for w in chunk {
            query = query
                .bind(&w.event_id)
                .bind(&w.event_type)
                .bind(&w.call_session_id)
                .bind(w.source.as_str())
                .bind(w.attempt.map(i64::from))
                .bind(&w.body)
                .bind(millis(w.received_at));
        }
        inserted.extend(query.fetch_all(&mut *tx).await?);
    }
    let (outcomes, jobs) = outcomes(batch, inserted);
    let pushed = super::queue::push(&mut tx, &jobs).await?;
    tx.commit().await?;
    Ok((outcomes, jobs, pushed))
}

pub(super) async fn get(pool: &SqlitePool, event_id: &str) -> Result<Option<StoredWebhook>, StoreError> {
    let row = sqlx::query(
        "SELECT event_id, event_type, call_session_id, source, body, received_at, processed_at, outcome
           FROM webhook_events WHERE event_id = ?1",
    )
    .bind(event_id)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(StoredWebhook {
            event_id: row.try_get("event_id")?,
            event_type: row.try_get("event_type")?,
            call_session_id: row.try_get("call_session_id")?,
            source: row.try_get("source")?,
            body: row.try_get("body")?,
            received_at: from_millis(row.try_get("received_at")?).unwrap_or_default(),
            processed_at: from_millis(row.try_get("processed_at")?),
            outcome: row.try_get("outcome")?,
        })
    })
    .transpose()
}

pub(super) async fn select(
    pool: &SqlitePool,
    selector: &ReplaySelector,
) -> Result<Vec<ReplayTarget>, StoreError> {
    let rows: Vec<(String, Option<String>)> = match selector {
        ReplaySelector::Ids(ids) => {
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                let row: Option<(String, Option<String>, i64)> = sqlx::query_as(
                    "SELECT event_id, call_session_id, received_at FROM webhook_events WHERE event_id = ?1",
                )
                .bind(id)
                .fetch_optional(pool)
                .await?;
                found.extend(row);
            }
            found.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
            found.into_iter().map(|(id, session, _)| (id, session)).collect()
        }
        ReplaySelector::Range { from, to } => {
            sqlx::query_as(
                "SELECT event_id, call_session_id FROM webhook_events
                  WHERE received_at >= ?1 AND received_at < ?2 ORDER BY received_at, event_id",
            )
            .bind(millis(*from))
            .bind(millis(*to))
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(event_id, call_session_id)| ReplayTarget { event_id, call_session_id })
        .collect())
}

pub(super) async fn apply_leg<'e>(
    db: impl sqlx::SqliteExecutor<'e>,
    u: &LegUpdate,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO call_legs (call_control_id, call_session_id, call_leg_id, direction, from_number, to_number,
                                initiated_at, answered_at, bridged_at, ended_at, hangup_cause, hangup_source, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
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
    .bind(u.initiated_at.map(millis))
    .bind(u.answered_at.map(millis))
    .bind(u.bridged_at.map(millis))
    .bind(u.ended_at.map(millis))
    .bind(&u.hangup_cause)
    .bind(&u.hangup_source)
    .bind(millis(chrono::Utc::now()))
    .execute(db)
    .await?;
    Ok(())
}

pub(super) async fn legs(pool: &SqlitePool, call_session_id: &str) -> Result<Vec<CallLeg>, StoreError> {
    let rows = sqlx::query(
        "SELECT call_control_id, call_session_id, direction, from_number, to_number, initiated_at, answered_at,
                bridged_at, ended_at, hangup_cause, hangup_source
           FROM call_legs WHERE call_session_id = ?1 ORDER BY initiated_at IS NULL, initiated_at, call_control_id",
    )
    .bind(call_session_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let ts = |name: &str| row.try_get::<Option<i64>, _>(name).map(from_millis);
            Ok(CallLeg {
                call_control_id: row.try_get("call_control_id")?,
                call_session_id: row.try_get("call_session_id")?,
                direction: row.try_get("direction")?,
                from_number: row.try_get("from_number")?,
                to_number: row.try_get("to_number")?,
                initiated_at: ts("initiated_at")?,
                answered_at: ts("answered_at")?,
                bridged_at: ts("bridged_at")?,
                ended_at: ts("ended_at")?,
                hangup_cause: row.try_get("hangup_cause")?,
                hangup_source: row.try_get("hangup_source")?,
            })
        })
        .collect()
}
