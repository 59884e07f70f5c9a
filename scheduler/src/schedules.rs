//! The schedules callfleet runs, with their configurable cron expressions.

use chrono::Duration;
use fleet_jobs::{Envelope, Job};
use fleet_platform::Config;
use fleet_store::NewJob;

use crate::{Schedule, SchedulerError};

/// Daily at 03:17:00 UTC unless `CALLFLEET_CRON_PURGE_WEBHOOKS` says otherwise.
const PURGE_WEBHOOKS: &str = "0 17 3 * * *";

/// Every schedule, built from the configuration.
pub fn default_schedules(config: &Config) -> Result<Vec<Schedule>, SchedulerError> {
    let retention = Duration::days(i64::from(config.webhook_retention_days));
    let purge = std::env::var("CALLFLEET_CRON_PURGE_WEBHOOKS").unwrap_or_else(|_| PURGE_WEBHOOKS.into());
    Ok(vec![Schedule::new("purge-webhook-events", &purge, move |tick| {
        let before = (tick - retention).timestamp();
        let envelope = Envelope::new(
            Job::PurgeWebhookEventsV1 { before },
            format!("purge-webhook-events:{}", tick.timestamp()),
        );
        let key = envelope.attempt_key();
        NewJob { envelope, delay: std::time::Duration::ZERO, unique_key: Some(key) }
    })?])
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
