//! The scheduler role: cron ticks become jobs on the `maintenance` pool, and nothing else.
//!
//! Each [`Schedule`] is a 6-field cron expression (with seconds) and a job constructor. The
//! scheduler never does the work itself. A tick is enqueued through
//! [`Store::enqueue_tick`](fleet_store::Store::enqueue_tick), which records `(schedule, tick)` and
//! pushes the job in one transaction: with any number of replicas, each tick is enqueued once.
//! On start, the most recent tick at or before now is enqueued too (a no-op if it already was),
//! so a tick missed while every scheduler was down still runs.

mod schedules;

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use fleet_platform::Config;
use fleet_platform::shutdown::CancellationToken;
use fleet_store::{NewJob, Store, StoreError};

pub use schedules::default_schedules;

/// A cron schedule and the job of each tick.
pub struct Schedule {
    pub name: &'static str,
    pub cron: cron::Schedule,
    pub job: Box<dyn Fn(DateTime<Utc>) -> NewJob + Send + Sync>,
}

/// The scheduler could not start.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("invalid cron expression for {name}: {problem} (6 fields: sec min hour day month weekday)")]
    InvalidCron { name: &'static str, problem: String },
}

impl Schedule {
    pub fn new(
        name: &'static str,
        expression: &str,
        job: impl Fn(DateTime<Utc>) -> NewJob + Send + Sync + 'static,
    ) -> Result<Self, SchedulerError> {
        if expression.split_whitespace().count() != 6 {
            return Err(SchedulerError::InvalidCron {
                name,
                problem: format!("{expression:?} does not have 6 fields"),
            });
        }
        let cron = cron::Schedule::from_str(expression)
            .map_err(|e| SchedulerError::InvalidCron { name, problem: e.to_string() })?;
        Ok(Self { name, cron, job: Box::new(job) })
    }

    /// The latest tick at or before `now`.
    pub fn previous_tick(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let just_after = now + chrono::Duration::milliseconds(1);
        self.cron.after(&just_after).next_back()
    }

    /// Ticks in `(from, to]`, oldest first.
    pub fn ticks_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        self.cron.after(&from).take_while(|t| *t <= to).collect()
    }
}

/// Enqueues the job of one tick, once across replicas. `Ok(false)`: already enqueued.
pub async fn fire(store: &dyn Store, schedule: &Schedule, tick: DateTime<Utc>) -> Result<bool, StoreError> {
    let job = (schedule.job)(tick);
    let fresh = store.enqueue_tick(schedule.name, tick, &job).await?;
    // `enqueued` by this replica, or `duplicate` (another replica, or an earlier start, had it).
    let outcome = if fresh { "enqueued" } else { "duplicate" };
    metrics::counter!("callfleet_schedule_ticks_total", "schedule" => schedule.name, "outcome" => outcome)
        .increment(1);
    if fresh {
        tracing::info!(schedule = schedule.name, %tick, kind = job.envelope.job.kind(), "Schedule tick enqueued.");
    }
    Ok(fresh)
}

/// Runs the scheduler until `shutdown` is cancelled.
pub async fn run(
    config: &Config,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
) -> Result<(), SchedulerError> {
    let schedules = default_schedules(config)?;
    let mut last = Utc::now();
    catch_up(store.as_ref(), &schedules, last).await;
    let mut failures = 0u32;
    loop {
        let next = schedules.iter().filter_map(|s| s.cron.after(&last).next()).min();
        let Some(next) = next else { return Ok(()) };
        // A tick that could not be enqueued is due again at once; retry it after a backoff.
        let wait = match failures {
            0 => (next - Utc::now()).to_std().unwrap_or_default(),
            n => RETRY_FIRST.saturating_mul(1 << (n - 1).min(4)).min(RETRY_MAX),
        };
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
        let now = Utc::now().max(next);
        last = tick(store.as_ref(), &schedules, last, now).await;
        failures = if last < now { failures + 1 } else { 0 };
    }
}

/// Backoff of a tick that could not be enqueued (the database is down): 2 s doubling to 30 s.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(2);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// One step of the scheduler's clock: fires every tick of every schedule in `(last, now]` and
/// returns the next `last`: `now` when every tick was enqueued, else just before the earliest
/// tick that failed, so the next step fires it again (a purge that is due daily is not skipped
/// for a day because the database was away at 03:17). Tests drive it with a simulated clock; any
/// number of replicas may call it with overlapping windows, each tick is still enqueued once.
pub async fn tick(
    store: &dyn Store,
    schedules: &[Schedule],
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let mut failed: Option<DateTime<Utc>> = None;
    for schedule in schedules {
        for t in schedule.ticks_between(last, now) {
            if !fire_logged(store, schedule, t).await {
                failed = Some(failed.map_or(t, |f| f.min(t)));
            }
        }
    }
    match failed {
        Some(t) => t - chrono::Duration::microseconds(1),
        None => now,
    }
}

/// What a scheduler does on start: fires the latest tick at or before `now` of every schedule
/// (a no-op if it was enqueued), so a tick missed while every scheduler was down still runs.
pub async fn catch_up(store: &dyn Store, schedules: &[Schedule], now: DateTime<Utc>) {
    for schedule in schedules {
        if let Some(t) = schedule.previous_tick(now) {
            fire_logged(store, schedule, t).await;
        }
    }
}

/// A failed enqueue is logged, not fatal: [`tick`] fires it again after a backoff (and the next
/// start or replica would too); the tick table keeps that from doubling. Whether it was enqueued
/// (or had been before).
async fn fire_logged(store: &dyn Store, schedule: &Schedule, tick: DateTime<Utc>) -> bool {
    match fire(store, schedule, tick).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(schedule = schedule.name, %tick, error = %e, "Could not enqueue a schedule tick; retrying.");
            metrics::counter!("callfleet_schedule_tick_failures_total", "schedule" => schedule.name)
                .increment(1);
            false
        }
    }
}
