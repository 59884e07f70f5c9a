//! The schedules callfleet runs, with their configurable cron expressions.

use chrono::Duration;
use fleet_jobs::{Envelope, Job};
use fleet_platform::Config;
use fleet_store::NewJob;

use crate::{Schedule, SchedulerError};

/// Daily at 03:17:00 UTC unless `CALLFLEET_CRON_PURGE_WEBHOOKS` says otherwise.
const PURGE_WEBHOOKS: &str = "0 17 3 * * *";

/// Daily at 03:41:00 UTC unless `CALLFLEET_CRON_RECORDING_RETENTION` says otherwise.
const RECORDING_RETENTION: &str = "0 41 3 * * *";

/// Every 10 minutes unless `CALLFLEET_CRON_CREDENTIAL_CLEANUP` says otherwise.
const CREDENTIAL_CLEANUP: &str = "0 */10 * * * *";
/// Hourly at :41 unless `CALLFLEET_CRON_ORPHAN_SWEEP` says otherwise.
const ORPHAN_SWEEP: &str = "0 41 * * * *";
/// Hourly at :47 unless `CALLFLEET_CRON_DEPARTED_SWEEP` says otherwise.
const DEPARTED_SWEEP: &str = "0 47 * * * *";
/// Hourly at :05 unless `CALLFLEET_CRON_CREDENTIAL_ROTATION` says otherwise.
const CREDENTIAL_ROTATION: &str = "0 5 * * * *";
/// Daily at 04:23 unless `CALLFLEET_CRON_SECRET_RESEAL` says otherwise.
const SECRET_RESEAL: &str = "0 23 4 * * *";

/// Every schedule, built from the configuration: a `CALLFLEET_CRON_*` setting (environment or
/// `CALLFLEET_CONFIG` file, see [`Config::crons`]) replaces that schedule's default.
pub fn default_schedules(config: &Config) -> Result<Vec<Schedule>, SchedulerError> {
    let retention = Duration::days(i64::from(config.webhook_retention_days));
    let cron = |key: &str, default: &str| config.crons.get(key).cloned().unwrap_or_else(|| default.into());
    let purge = cron("CALLFLEET_CRON_PURGE_WEBHOOKS", PURGE_WEBHOOKS);
    let keep_recordings = Duration::days(i64::from(config.recording_retention_days));
    Ok(vec![
        Schedule::new(
            "recording-retention",
            &cron("CALLFLEET_CRON_RECORDING_RETENTION", RECORDING_RETENTION),
            move |tick| {
                let before = (tick - keep_recordings).timestamp();
                tick_job(Job::PurgeRecordingsV1 { before }, "recording-retention", tick)
            },
        )?,
        Schedule::new("purge-webhook-events", &purge, move |tick| {
            let before = (tick - retention).timestamp();
            tick_job(Job::PurgeWebhookEventsV1 { before }, "purge-webhook-events", tick)
        })?,
        Schedule::new(
            "credential-cleanup",
            &cron("CALLFLEET_CRON_CREDENTIAL_CLEANUP", CREDENTIAL_CLEANUP),
            |tick| {
                tick_job(
                    Job::CleanupExpiredCredentialsV1 { now: tick.timestamp() },
                    "credential-cleanup",
                    tick,
                )
            },
        )?,
        Schedule::new("orphan-sweep", &cron("CALLFLEET_CRON_ORPHAN_SWEEP", ORPHAN_SWEEP), |tick| {
            tick_job(
                Job::SweepOrphanCredentialsV1 { now: tick.timestamp(), resume_at: 0 },
                "orphan-sweep",
                tick,
            )
        })?,
        Schedule::new("departed-sweep", &cron("CALLFLEET_CRON_DEPARTED_SWEEP", DEPARTED_SWEEP), |tick| {
            tick_job(Job::SweepDepartedCredentialsV1 { now: tick.timestamp() }, "departed-sweep", tick)
        })?,
        Schedule::new(
            "credential-rotation",
            &cron("CALLFLEET_CRON_CREDENTIAL_ROTATION", CREDENTIAL_ROTATION),
            |tick| {
                tick_job(
                    Job::RotateExpiringCredentialsV1 { now: tick.timestamp() },
                    "credential-rotation",
                    tick,
                )
            },
        )?,
        Schedule::new("secret-reseal", &cron("CALLFLEET_CRON_SECRET_RESEAL", SECRET_RESEAL), |tick| {
            tick_job(Job::ResealSecretsV1 { now: tick.timestamp() }, "secret-reseal", tick)
        })?,
    ])
}

/// The job of one tick: its work id (and so its unique key) is the schedule and the tick time.
fn tick_job(job: Job, schedule: &str, tick: chrono::DateTime<chrono::Utc>) -> NewJob {
    NewJob::once(Envelope::new(job, format!("{schedule}:{}", tick.timestamp())))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn schedule(expr: &str) -> Result<Schedule, SchedulerError> {
        Schedule::new("t", expr, |tick| {
            NewJob::now(Envelope::new(Job::PurgeWebhookEventsV1 { before: tick.timestamp() }, "t"))
        })
    }

    #[test]
    fn five_field_expressions_are_refused() {
        assert!(schedule("17 3 * * *").is_err());
        assert!(schedule("not a cron").is_err());
        assert!(schedule("0 17 3 * * *").is_ok());
    }

    /// A cron setting in the configuration (the environment or the `CALLFLEET_CONFIG` file, which
    /// `Config` reads alike) replaces its schedule's default, and only that one (before, the
    /// scheduler read `CALLFLEET_CRON_*` from the environment itself, so a file's were ignored).
    #[test]
    fn a_configured_cron_replaces_that_schedules_default() {
        let every_five = |k: &str| (k == "CALLFLEET_CRON_ORPHAN_SWEEP").then(|| "0 */5 * * * *".to_owned());
        let schedules = default_schedules(&Config::from_lookup(every_five).unwrap()).unwrap();
        let named = |name: &str| schedules.iter().find(|s| s.name == name).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 10, 7, 0).unwrap();
        let at = |h, m| Some(Utc.with_ymd_and_hms(2026, 12, 4, h, m, 0).unwrap());
        assert_eq!(named("orphan-sweep").previous_tick(now), at(10, 5));
        assert_eq!(named("departed-sweep").previous_tick(now), at(9, 47), "the default");
    }

    #[test]
    fn previous_and_between() {
        let s = schedule("0 */15 * * * *").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 7, 0).unwrap();
        assert_eq!(s.previous_tick(now), Some(Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()));
        let exact = Utc.with_ymd_and_hms(2026, 11, 23, 10, 15, 0).unwrap();
        assert_eq!(s.previous_tick(exact), Some(exact));
        let hour = s.ticks_between(now, now + Duration::hours(1));
        assert_eq!(hour.len(), 4);
        assert_eq!(hour[0], exact);
    }
}
