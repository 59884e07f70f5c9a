//! Two scheduler replicas over an hour of simulated ticks: each tick's job is enqueued exactly
//! once, and a tick missed while both were down is fired on start.

use chrono::{Duration, TimeZone, Utc};
use fleet_store::Engine;

use crate::on_both;
use crate::support::TestDb;
use crate::support::fleet::test_config;

on_both! {
    two_replicas_fire_each_tick_once => two_replicas_fire_each_tick_once_postgres, two_replicas_fire_each_tick_once_sqlite;
}

async fn two_replicas_fire_each_tick_once(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    let config = test_config(&db.url, &[]);
    let crons = |key: &str| match key {
        "CALLFLEET_CRON_CREDENTIAL_CLEANUP" => Some("0 * * * * *".to_owned()),
        "CALLFLEET_CRON_ORPHAN_SWEEP" => Some("30 */5 * * * *".to_owned()),
        "CALLFLEET_CRON_DEPARTED_SWEEP" => Some("0 */15 * * * *".to_owned()),
        "CALLFLEET_CRON_CREDENTIAL_ROTATION" => Some("0 0 * * * *".to_owned()),
        "CALLFLEET_CRON_PURGE_WEBHOOKS" => Some("0 */30 * * * *".to_owned()),
        _ => None,
    };
    let start = Utc.with_ymd_and_hms(2026, 11, 23, 9, 59, 59).unwrap();
    let end = start + Duration::hours(1);
    // Replica A steps 7 s at a time, replica B 13 s, concurrently; both start (catch up) at `start`.
    let replica = |step: i64| {
        let store = store.clone();
        let schedules = fleet_scheduler::schedules_with(&config, crons).unwrap();
        async move {
            fleet_scheduler::catch_up(store.as_ref(), &schedules, start).await;
            let mut last = start;
            while last < end {
                let now = (last + Duration::seconds(step)).min(end);
                last = fleet_scheduler::tick(store.as_ref(), &schedules, last, now).await;
            }
        }
    };
    tokio::join!(replica(7), replica(13));

    let schedules = fleet_scheduler::schedules_with(&config, crons).unwrap();
    let mut expected = 0;
    for s in &schedules {
        // The tick before `start` (missed while "down") plus every tick in (start, end].
        let n = s.ticks_between(start, end).len() + usize::from(s.previous_tick(start).is_some());
        let stored =
            db.count(&format!("SELECT count(*) FROM schedule_ticks WHERE schedule = '{}'", s.name)).await;
        assert_eq!(stored as usize, n, "{}", s.name);
        expected += n;
    }
    assert_eq!(expected, 61 + 13 + 5 + 2 + 3);
    let jobs =
        db.count(&format!("SELECT count(*) FROM {} WHERE job_type = 'maintenance'", db.jobs_table())).await;
    assert_eq!(jobs as usize, expected, "one job per tick across both replicas");
}
