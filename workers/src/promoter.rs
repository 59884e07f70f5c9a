//! The promoter: moves delayed jobs into their queues when they fall due.
//!
//! Delayed jobs (persisted backoff, call timers, sim-ring redials) wait in `scheduled_jobs` with a
//! due time in milliseconds by the store's clock. Each worker process runs one promoter for its
//! pools. It promotes what is due, then sleeps until the next due time, at most [`POLL`]: a job
//! delayed by this process wakes it at once (the store's waker), one delayed by another process
//! is seen at the next poll. A promotion is a transaction that deletes the claimed rows
//! (`FOR UPDATE SKIP LOCKED` on Postgres) and inserts them into the queue, so any number of
//! promoters promote each job exactly once; the insert wakes the workers like any enqueue.
//!
//! Failure behaviour: a store error is logged and retried after a second; nothing is lost (the
//! rows stay until a promotion commits). Lateness is bounded by the poll interval plus the
//! queue's pick-up time (measured in `benches/timers.rs`).

use std::sync::Arc;
use std::time::Duration;

use fleet_jobs::Pool;
use fleet_platform::shutdown::CancellationToken;
use fleet_store::Store;
use fleet_store::wake::QueueWaker;

/// Longest sleep between two looks at the next due time.
pub const POLL: Duration = Duration::from_millis(50);

/// Jobs moved per transaction; a full batch means more may be due, so it loops at once.
const BATCH: u32 = 500;

/// Runs until `shutdown`.
pub async fn run(store: Arc<dyn Store>, waker: QueueWaker, pools: Vec<Pool>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let wait = match promote_then_plan(store.as_ref(), &pools).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "Promoting delayed jobs failed; retrying in 1 s.");
                Duration::from_secs(1)
            }
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = waker.scheduled() => {}
            () = shutdown.cancelled() => {}
        }
    }
}

/// Promotes what is due; returns how long to sleep before looking again.
async fn promote_then_plan(store: &dyn Store, pools: &[Pool]) -> Result<Duration, fleet_store::StoreError> {
    let promoted = store.promote_due_jobs(pools, BATCH).await?;
    if promoted > 0 {
        metrics::counter!("callfleet_delayed_jobs_promoted_total").increment(promoted as u64);
    }
    if promoted as u32 >= BATCH {
        return Ok(Duration::ZERO);
    }
    let Some(next) = store.next_due_at(pools).await? else { return Ok(POLL) };
    let until = (next - store.now()).to_std().unwrap_or(Duration::ZERO);
    // Due already (promoted by another process meanwhile, or the clock moved): look again soon,
    // without spinning.
    Ok(until.clamp(Duration::from_millis(1), POLL))
}
