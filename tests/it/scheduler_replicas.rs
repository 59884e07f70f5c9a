//! Two scheduler replicas over an hour of simulated ticks: each tick's job is enqueued exactly
//! once, and a tick missed while both were down is fired on start.

use chrono::{Duration, TimeZone, Utc};
use fleet_store::Engine;

use crate::on_both;
use crate::support::TestDb;
use crate::support::fleet::test_config;
use crate::support::proxy::Proxy;

on_both! {
    two_replicas_fire_each_tick_once => two_replicas_fire_each_tick_once_postgres, two_replicas_fire_each_tick_once_sqlite;
}

async fn two_replicas_fire_each_tick_once(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    let config = test_config(
        &db.url,
        &[
            ("CALLFLEET_CRON_CREDENTIAL_CLEANUP", "0 * * * * *"),
            ("CALLFLEET_CRON_ORPHAN_SWEEP", "30 */5 * * * *"),
            ("CALLFLEET_CRON_DEPARTED_SWEEP", "0 */15 * * * *"),
            ("CALLFLEET_CRON_CREDENTIAL_ROTATION", "0 0 * * * *"),
            ("CALLFLEET_CRON_PURGE_WEBHOOKS", "0 */30 * * * *"),
        ],
    );
    let start = Utc.with_ymd_and_hms(2026, 11, 23, 9, 59, 59).unwrap();
    let end = start + Duration::hours(1);
    // Replica A steps 7 s at a time, replica B 13 s, concurrently; both start (catch up) at `start`.
    let replica = |step: i64| {
        let store = store.clone();
        let schedules = fleet_scheduler::default_schedules(&config).unwrap();
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

    let schedules = fleet_scheduler::default_schedules(&config).unwrap();
    let mut expected = 0;
    for s in &schedules {
        // The tick before `start` (missed while "down") plus every tick in (start, end].
        let n = s.ticks_between(start, end).len() + usize::from(s.previous_tick(start).is_some());
        let stored =
            db.count(&format!("SELECT count(*) FROM schedule_ticks WHERE schedule = '{}'", s.name)).await;
        assert_eq!(stored as usize, n, "{}", s.name);
        expected += n;
    }
    // + the daily re-seal's tick at 04:23 and the recording retention's at 03:41, fired on start.
    assert_eq!(expected, 61 + 13 + 5 + 2 + 3 + 1 + 1);
    let jobs =
        db.count(&format!("SELECT count(*) FROM {} WHERE job_type = 'maintenance'", db.jobs_table())).await;
    assert_eq!(jobs as usize, expected, "one job per tick across both replicas");
}

/// A tick whose enqueue fails (the database is away) is not skipped until the next tick — a day
/// for the purge: the scheduler's clock stays before it, and the next step fires it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tick_that_could_not_be_enqueued_fires_on_the_next_step() {
    let mut db = TestDb::new(Engine::Postgres).await;
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let direct_url = db.url.clone();
    db.url = db.url.replace("127.0.0.1:5432", &proxy.addr.to_string());
    let store = db.open().await.store();
    let config = test_config(&db.url, &[("CALLFLEET_CRON_PURGE_WEBHOOKS", "0 17 3 * * *")]);
    let schedules = fleet_scheduler::default_schedules(&config).unwrap();
    let purge: Vec<_> = schedules.into_iter().filter(|s| s.name == "purge-webhook-events").collect();
    let before = Utc.with_ymd_and_hms(2026, 11, 23, 3, 17, 0).unwrap() - Duration::seconds(5);
    let after = before + Duration::seconds(10);

    proxy.cut();
    let last = fleet_scheduler::tick(store.as_ref(), &purge, before, after).await;
    assert!(last < Utc.with_ymd_and_hms(2026, 11, 23, 3, 17, 0).unwrap(), "the clock stays before the tick");
    proxy.restore();
    let last = fleet_scheduler::tick(store.as_ref(), &purge, last, after + Duration::seconds(2)).await;
    assert_eq!(last, after + Duration::seconds(2));
    db.url = direct_url;
    let ticks = db.count("SELECT count(*) FROM schedule_ticks WHERE schedule = 'purge-webhook-events'").await;
    assert_eq!(ticks, 1, "the 03:17 tick was enqueued once, on the step after the outage");
}
