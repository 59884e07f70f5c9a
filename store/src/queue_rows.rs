//! Engine-independent pieces of the queue adapters: row building, dead-job decoding, restarts.

use chrono::{DateTime, Utc};
use fleet_jobs::{Envelope, Pool};

use crate::{DeadJob, NewJob, QueueStats, StoreError};

/// apalis's own attempt budget. Our handlers never hand apalis a plain error (they retry through
/// persisted backoff or abort to the dead set), so apalis only counts executions and orphan
/// re-enqueues; a job that crashed its worker this many times ends `Failed`, in the dead set.
pub const APALIS_MAX_ATTEMPTS: i32 = 5;

/// Column arrays for one multi-row insert.
pub(crate) struct QueueRows {
    pub ids: Vec<String>,
    pub queues: Vec<String>,
    pub payloads: Vec<Vec<u8>>,
    pub max_attempts: Vec<i32>,
    pub keys: Vec<Option<String>>,
}

pub(crate) fn queue_rows(jobs: &[NewJob]) -> Result<QueueRows, StoreError> {
    let mut rows = QueueRows {
        ids: Vec::with_capacity(jobs.len()),
        queues: Vec::with_capacity(jobs.len()),
        payloads: Vec::with_capacity(jobs.len()),
        max_attempts: Vec::with_capacity(jobs.len()),
        keys: Vec::with_capacity(jobs.len()),
    };
    for job in jobs {
        rows.ids.push(ulid::Ulid::generate().to_string());
        rows.queues.push(job.envelope.pool().as_str().to_owned());
        rows.payloads
            .push(serde_json::to_vec(&job.envelope).map_err(|e| StoreError::corrupt("job envelope", e))?);
        rows.max_attempts.push(APALIS_MAX_ATTEMPTS);
        rows.keys.push(job.unique_key.clone());
    }
    Ok(rows)
}

pub(crate) fn dead_job(
    id: String,
    pool: String,
    attempts: i32,
    last_result: Option<String>,
    died_at: Option<DateTime<Utc>>,
    payload: &[u8],
) -> Result<DeadJob, StoreError> {
    let payload: serde_json::Value = serde_json::from_slice(payload).unwrap_or(serde_json::Value::Null);
    let kind = payload.pointer("/job/type").and_then(|v| v.as_str()).unwrap_or("unknown").to_owned();
    let envelope_attempt = payload.get("attempt").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    Ok(DeadJob {
        id,
        pool,
        kind,
        attempts: envelope_attempt.max(attempts.max(0) as u32),
        last_error: last_result.map(|r| describe_result(&r)),
        died_at,
        payload,
    })
}

/// apalis stores `{"Err": "…"}`; show the message.
fn describe_result(raw: &str) -> String {
    serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| v.get("Err").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| raw.to_owned())
}

pub(crate) fn restart_from_dead(payload: &[u8]) -> Result<NewJob, StoreError> {
    let envelope: Envelope =
        serde_json::from_slice(payload).map_err(|e| StoreError::corrupt("dead job payload", e))?;
    Ok(NewJob::once(envelope.restarted(&ulid::Ulid::generate().to_string())))
}

impl QueueStats {
    fn empty(pool: Pool) -> Self {
        Self {
            pool: pool.as_str().to_owned(),
            ready: 0,
            scheduled: 0,
            running: 0,
            dead: 0,
            oldest_ready_age_secs: 0.0,
        }
    }

    /// One entry per pool (zeros where a queue has no rows) from `(queue, ready, scheduled,
    /// running, dead, oldest ready age in seconds)` rows.
    pub(crate) fn per_pool(rows: Vec<(String, i64, i64, i64, i64, f64)>) -> Vec<Self> {
        let mut by_pool: Vec<Self> = Pool::ALL.iter().map(|p| Self::empty(*p)).collect();
        for (name, ready, scheduled, running, dead, oldest) in rows {
            if let Some(stats) = by_pool.iter_mut().find(|s| s.pool == name) {
                stats.ready = ready.max(0) as u64;
                stats.scheduled = scheduled.max(0) as u64;
                stats.running = running.max(0) as u64;
                stats.dead = dead.max(0) as u64;
                stats.oldest_ready_age_secs = oldest;
            }
        }
        by_pool
    }
}
