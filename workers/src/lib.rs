//! The worker pools: apalis workers that run callfleet's jobs, one queue per pool.
//!
//! `callfleet worker --pool webhooks,push` runs the named pools in one process; each pool is its
//! own queue and its own apalis worker, so operators scale pools apart. Delivery is at least once,
//! so every job handler is idempotent.
//!
//! Failure handling is ours, not apalis's (see `shared/guides/apalis.md`): a handler never hands
//! apalis a plain error. [`execute`] guards each attempt with a timeout and a panic catcher, then
//! either finishes it, schedules the next attempt as a *delayed job* (persisted backoff: no worker
//! slot is held while waiting, and a restart loses nothing), or aborts it into the dead set where
//! `callfleet dead-jobs` lists it and `callfleet retry-dead` revives it.
//!
//! Crash safety: worker names are unique per process and restart, heartbeats are short
//! (`orphan_after`, default 12 s), so the running jobs of a SIGKILLed worker return to the queue
//! and run elsewhere within ~15 s.

mod backoff;
pub mod calls;
mod events;
mod execute;
mod jobs;
mod listener;
mod liveness;
mod monitor;
mod nudge;
pub mod promoter;
mod runtime;

pub use events::{EventsClient, EventsConfigError};
pub use execute::JobError;
pub use monitor::{WorkerError, run};
pub use runtime::{Runtime, RuntimeError};

/// Runs one job now, in this task (tests and benchmarks drive handlers with it); the retry
/// decision is the caller's.
pub async fn run_job(runtime: &Runtime, envelope: &fleet_jobs::Envelope) -> Result<(), JobError> {
    jobs::run(runtime, envelope).await
}
