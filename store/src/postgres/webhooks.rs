//! Webhook rows and leg rows on Postgres.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use crate::webhook_jobs::outcomes;
use crate::{
    Accepted, CallLeg, LegUpdate, NewJob, NewWebhook, ReplaySelector, ReplayTarget, StoreError, StoredWebhook,
};

/// Inserts the batch's new events and their processing jobs in ONE statement (so one round trip
/// and one commit): a data-modifying CTE stores the events, and the jobs are built in SQL for
/// exactly the rows it inserted. The job payload is the JSON form of
/// `Envelope::new(Job::ProcessWebhookV1 { event_id }, "webhook:<id>")` with the call session —
/// the same value [`process_job`](crate::webhook_jobs::process_job) builds (a store conformance
/// test checks the two agree).
pub(super) async fn accept(
    pool: &PgPool,
    batch: &[NewWebhook],
) -> Result<(Vec<Accepted>, Vec<NewJob>, Vec<bool>), StoreError> {
    let inserted: Vec<String> = sqlx::query_scalar(
        "WITH input AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::timestamptz[],
                                  $9::text[])
                 AS t(event_id, event_type, call_session_id, source, attempt, body, received_at, job_id)
         ), stored AS (
             INSERT INTO webhook_events (event_id, event_type, call_session_id, source, attempt, body, received_at)
             SELECT event_id, event_type, call_session_id, source, attempt, body, received_at FROM input
             ON CONFLICT (event_id) DO NOTHING
             RETURNING event_id, call_session_id
         )
         INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority, idempotency_key)
         SELECT input.job_id, 'webhooks',
                convert_to(json_build_object(
                    'v', 1,
                    'job', json_build_object('type', 'process_webhook.v1', 'event_id', event_id),
                    'attempt', 1,
                    'work_id', 'webhook:' || event_id,
                    'call_session_id', stored.call_session_id)::text, 'UTF8'),
                'Pending', 0, $8, now(), 0, 'webhook:' || event_id || '#1'
           FROM stored JOIN input USING (event_id)
         ON CONFLICT (job_type, idempotency_key) DO NOTHING
         RETURNING substr(idempotency_key, 9, length(idempotency_key) - 10)",
    )
    .bind(batch.iter().map(|w| w.event_id.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|w| w.event_type.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|w| w.call_session_id.as_deref()).collect::<Vec<_>>())
    .bind(batch.iter().map(|w| w.source.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|w| w.attempt.map(|a| a as i32)).collect::<Vec<_>>())
    .bind(batch.iter().map(|w| w.body.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|w| w.received_at).collect::<Vec<_>>())
    .bind(crate::APALIS_MAX_ATTEMPTS)
    // Job ids are ULIDs made here: apalis's plpgsql generate_ulid() cost more than the rest of
    // the statement together (measured with EXPLAIN ANALYZE, see docs/benchmarks.md).
    .bind(batch.iter().map(|_| ulid::Ulid::generate().to_string()).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    let (outcomes, jobs) = outcomes(batch, inserted.into_iter().collect());
    let pushed = vec![true; jobs.len()];
    Ok((outcomes, jobs, pushed))
}

pub(super) async fn get(pool: &PgPool, event_id: &str) -> Result<Option<StoredWebhook>, StoreError> {
    let row = sqlx::query(
        "SELECT event_id, event_type, call_session_id, source, body, received_at, processed_at, outcome
           FROM webhook_events WHERE event_id = $1",
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
            received_at: row.try_get("received_at")?,
            processed_at: row.try_get("processed_at")?,
            outcome: row.try_get("outcome")?,
        })
    })
    .transpose()
}

pub(super) async fn select(
    pool: &PgPool,
    selector: &ReplaySelector,
) -> Result<Vec<ReplayTarget>, StoreError> {
    let rows: Vec<(String, Option<String>)> = match selector {
        ReplaySelector::Ids(ids) => {
            sqlx::query_as(
                "SELECT event_id, call_session_id FROM webhook_events WHERE event_id = ANY($1) ORDER BY received_at, event_id",
            )
            .bind(ids)
            .fetch_all(pool)
            .await?
        }
        ReplaySelector::Range { from, to } => {
            sqlx::query_as(
                "SELECT event_id, call_session_id FROM webhook_events
                  WHERE received_at >= $1 AND received_at < $2 ORDER BY received_at, event_id",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(event_id, call_session_id)| ReplayTarget { event_id, call_session_id })
        .collect())
}

pub(super) async fn apply_leg<'e>(db: impl sqlx::PgExecutor<'e>, u: &LegUpdate) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO call_legs (call_control_id, call_session_id, call_leg_id, direction, from_number, to_number,
                                initiated_at, answered_at, bridged_at, ended_at, hangup_cause, hangup_source, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
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
            updated_at      = now()",
    )
    .bind(&u.call_control_id)
    .bind(&u.call_session_id)
    .bind(&u.call_leg_id)
    .bind(&u.direction)
    .bind(&u.from_number)
    .bind(&u.to_number)
    .bind(u.initiated_at)
    .bind(u.answered_at)
    .bind(u.bridged_at)
    .bind(u.ended_at)
    .bind(&u.hangup_cause)
    .bind(&u.hangup_source)
    .execute(db)
    .await?;
    Ok(())
}

pub(super) async fn legs(pool: &PgPool, call_session_id: &str) -> Result<Vec<CallLeg>, StoreError> {
    let rows = sqlx::query(
        "SELECT call_control_id, call_session_id, direction, from_number, to_number, initiated_at, answered_at,
                bridged_at, ended_at, hangup_cause, hangup_source
           FROM call_legs WHERE call_session_id = $1 ORDER BY initiated_at NULLS LAST, call_control_id",
    )
    .bind(call_session_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let ts = |name: &str| row.try_get::<Option<DateTime<Utc>>, _>(name);
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
