//! One attempt of one job: decode, run under a timeout and a panic guard, then decide.
//!
//! Outcomes, and what apalis records:
//! - success → `Done`;
//! - retryable failure with budget left → the next attempt is pushed as a delayed job (unique key
//!   `work_id#attempt`, so a crash between push and ack cannot fork the chain) → this row `Done`;
//! - retryable failure whose next attempt would start after the job's deadline (an
//!   `incoming_call` push once the ring is over) → dropped → `Done`;
//! - permanent failure, spent budget, or undecodable payload → `AbortError` → `Killed` (dead set),
//!   after enqueuing the job's declared compensation, if it has one (a dial or bridge that failed
//!   for good tells its call, which then ends or reroutes cleanly);
//! - the push of the next attempt (or of the compensation) fails → it is tried again with a
//!   backoff (250 ms doubling to 5 s) for up to [`ENQUEUE_PATIENCE`], so a short store outage
//!   delays the chain instead of ending it; past that, a plain error → apalis re-runs this
//!   attempt at once, up to its own small budget, after which the row is `Failed` (dead set).

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use apalis::prelude::{AbortError, BoxDynError};
use fleet_domain::retry::{Failure, RetryDecision};
use fleet_jobs::Envelope;
use fleet_store::{NewJob, StoreError};
use futures::FutureExt as _;
use tracing::Instrument as _;

use crate::Runtime;

/// Why an attempt failed, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    pub failure: Failure,
    pub message: String,
}

impl JobError {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self { failure: Failure::Retryable { retry_after: None }, message: message.into() }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self { failure: Failure::Permanent, message: message.into() }
    }
}

impl From<fleet_telnyx::TelnyxError> for JobError {
    fn from(e: fleet_telnyx::TelnyxError) -> Self {
        match &e {
            fleet_telnyx::TelnyxError::Retryable { retry_after, .. } => {
                Self { failure: Failure::Retryable { retry_after: *retry_after }, message: e.to_string() }
            }
            _ => Self::permanent(e.to_string()),
        }
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt { .. } => Self::permanent(e.to_string()),
            _ => Self::retryable(e.to_string()),
        }
    }
}

/// How long an attempt keeps trying to enqueue what it decided (its next attempt, its
/// compensation) while the store is away.
pub const ENQUEUE_PATIENCE: Duration = Duration::from_secs(45);

/// Enqueues `jobs`, riding out a store outage of up to [`ENQUEUE_PATIENCE`] (a corrupt payload is
/// not retried), rather than failing the handler into apalis's re-run, which has no backoff.
/// (Measured: with a 13 s Postgres cut the old path also recovered, through the liveness rescue;
/// this keeps the chain in the attempt that decided it instead of relying on that.)
async fn enqueue_decided(runtime: &Runtime, jobs: &[NewJob]) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(250);
    loop {
        match runtime.store.enqueue(jobs).await {
            Ok(_) => return Ok(()),
            Err(e @ StoreError::Corrupt { .. }) => return Err(e),
            Err(e) if started.elapsed() + wait > ENQUEUE_PATIENCE => return Err(e),
            Err(e) => {
                metrics::counter!("callfleet_enqueue_retries_total").increment(1);
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "Could not enqueue the job's next step; retrying.");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Runs one attempt of the job in `payload` (apalis task `task_id`).
pub(crate) async fn execute(
    runtime: &Runtime,
    payload: serde_json::Value,
    task_id: String,
) -> Result<(), BoxDynError> {
    let envelope: Envelope = match serde_json::from_value(payload) {
        Ok(envelope) => envelope,
        Err(e) => {
            tracing::error!(task_id, error = %e, "Undecodable job payload; moved to the dead set.");
            metrics::counter!("callfleet_jobs_total", "pool" => "unknown", "kind" => "unknown", "outcome" => "dead")
                .increment(1);
            return Err(AbortError::new(format!("undecodable payload: {e}")).into());
        }
    };
    let kind = envelope.job.kind();
    let pool = envelope.pool().as_str();
    let span = tracing::info_span!(
        "job",
        pool,
        kind,
        task_id,
        work_id = %envelope.work_id,
        attempt = envelope.attempt,
        call_session_id = envelope.call_session_id.as_deref().unwrap_or(""),
    );
    // Exported traces: this job continues the span that created it, or its call's trace.
    fleet_platform::trace::continue_trace(
        &span,
        envelope.trace_parent.as_deref(),
        envelope.call_session_id.as_deref(),
    );
    async move {
        let started = Instant::now();
        let result = run_guarded(runtime, &envelope).await;
        let finished = |outcome: &'static str| {
            let labels = [("pool", pool), ("kind", kind), ("outcome", outcome)];
            metrics::counter!("callfleet_jobs_total", &labels).increment(1);
            metrics::histogram!("callfleet_job_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
        };
        let Err(error) = result else {
            finished("done");
            tracing::debug!("Job done.");
            return Ok(());
        };
        let policy = envelope.job.retry_policy();
        let remaining = envelope.job.deadline().map(|deadline| {
            Duration::from_millis((deadline * 1000 - runtime.store.now().timestamp_millis()).max(0) as u64)
        });
        match policy.decide_within(envelope.attempt, error.failure, rand::random::<f64>(), remaining) {
            RetryDecision::RetryAfter(delay) => {
                enqueue_decided(runtime, &[NewJob::once_after(envelope.next_attempt(), delay)]).await?;
                finished("retry");
                tracing::warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "Job failed; retry scheduled.");
                Ok(())
            }
            RetryDecision::Expired => {
                finished("expired");
                tracing::info!(error = %error, "Job failed and a retry would come after its deadline; dropped.");
                Ok(())
            }
            RetryDecision::Dead => {
                // The declared compensation runs before the job is dead (a failed enqueue retries
                // this attempt, so a dead job never lacks its compensation).
                if let Some(job) = envelope.job.compensation() {
                    let work_id = format!("compensate:{}", envelope.work_id);
                    let compensation = Envelope::new(job, work_id).with_call_session(envelope.call_session_id.clone());
                    enqueue_decided(runtime, &[NewJob::once(compensation)]).await?;
                    tracing::warn!("Compensation enqueued for a job that failed for good.");
                }
                finished("dead");
                tracing::error!(error = %error, "Job failed for good; moved to the dead set.");
                Err(AbortError::new(error.message).into())
            }
        }
    }
    .instrument(span)
    .await
}

async fn run_guarded(runtime: &Runtime, envelope: &Envelope) -> Result<(), JobError> {
    let attempt = AssertUnwindSafe(crate::jobs::run(runtime, envelope)).catch_unwind();
    let limit = envelope.job.attempt_timeout();
    match tokio::time::timeout(limit, attempt).await {
        Err(_) => Err(JobError::retryable(format!("attempt timed out after {limit:?}"))),
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(JobError::retryable(format!("handler panicked: {what}")))
        }
        Ok(Ok(result)) => result,
    }
}
