//! Worker pools end to end: processing, persisted backoff, the dead set and operator retry,
//! replay.

use fleet_jobs::Pool;
use fleet_store::{Engine, ReplaySelector};

use crate::on_both;
use crate::support::{Fleet, eventually, webhook};

on_both! {
    lifecycle_events_converge_in_any_order => lifecycle_events_converge_in_any_order_postgres, lifecycle_events_converge_in_any_order_sqlite;
    failures_back_off_then_succeed => failures_back_off_then_succeed_postgres, failures_back_off_then_succeed_sqlite;
    dead_jobs_are_listed_and_retried => dead_jobs_are_listed_and_retried_postgres, dead_jobs_are_listed_and_retried_sqlite;
    replay_reruns_stored_events_idempotently => replay_reruns_stored_events_idempotently_postgres, replay_reruns_stored_events_idempotently_sqlite;
}

async fn accepted(fleet: &Fleet, body: &str) {
    assert_eq!(fleet.deliver(body).await.status().as_u16(), 200);
}

async fn lifecycle_events_converge_in_any_order(engine: Engine) {
    let fleet = Fleet::start(engine).await;
    fleet.start_workers(&[Pool::Webhooks]);
    // The leg's answer and hangup arrive before its initiated.
    for (id, kind) in
        [("e3", "call.hangup"), ("e2", "call.answered"), ("e1", "call.initiated"), ("e4", "call.speak.ended")]
    {
        accepted(&fleet, &webhook::event(id, kind, "v3:leg-1", "session-1")).await;
    }
    fleet.drain().await;
    let legs = fleet.store.call_legs("session-1").await.unwrap();
    assert_eq!(legs.len(), 1);
    let leg = &legs[0];
    assert!(leg.initiated_at.is_some() && leg.answered_at.is_some() && leg.ended_at.is_some());
    assert_eq!(leg.hangup_cause.as_deref(), Some("normal_clearing"));
    for id in ["e1", "e2", "e3"] {
        assert_eq!(
            fleet.store.webhook(id).await.unwrap().unwrap().outcome.as_deref(),
            Some("processed"),
            "{id}"
        );
    }
    assert_eq!(fleet.store.webhook("e4").await.unwrap().unwrap().outcome.as_deref(), Some("ignored"));
}

/// A storage failure inside the job (injected with a trigger) schedules the next attempt as a
/// delayed job; once the fault is gone the retry succeeds.
async fn failures_back_off_then_succeed(engine: Engine) {
    let fleet = Fleet::start(engine).await;
    let trigger = match engine {
        Engine::Postgres => {
            "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END; $$ LANGUAGE plpgsql;
             CREATE TRIGGER boom BEFORE INSERT ON call_legs FOR EACH ROW WHEN (NEW.call_control_id = 'v3:boom') EXECUTE FUNCTION boom();"
        }
        Engine::Sqlite => {
            "CREATE TRIGGER boom BEFORE INSERT ON call_legs WHEN NEW.call_control_id = 'v3:boom'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        }
    };
    fleet.test_db.exec(trigger).await;
    accepted(&fleet, &webhook::event("boom-1", "call.initiated", "v3:boom", "sb")).await;
    fleet.start_workers(&[Pool::Webhooks]);
    let store = fleet.store.clone();
    eventually(20, "a scheduled retry", || {
        let store = store.clone();
        async move {
            let stats = store.queue_stats().await.ok()?;
            let hooks = stats.into_iter().find(|s| s.pool == "webhooks")?;
            (hooks.scheduled + hooks.ready == 1 && hooks.running == 0 && hooks.dead == 0).then_some(())
        }
    })
    .await;
    assert!(fleet.store.webhook("boom-1").await.unwrap().unwrap().processed_at.is_none());
    let drop = match engine {
        Engine::Postgres => "DROP TRIGGER boom ON call_legs",
        Engine::Sqlite => "DROP TRIGGER boom",
    };
    fleet.test_db.exec(drop).await;
    fleet.drain().await;
    let stored = fleet.store.webhook("boom-1").await.unwrap().unwrap();
    assert_eq!(stored.outcome.as_deref(), Some("processed"));
    assert!(fleet.store.dead_jobs(None, 10).await.unwrap().is_empty());
}

async fn dead_jobs_are_listed_and_retried(engine: Engine) {
    let fleet = Fleet::start(engine).await;
    fleet.start_workers(&[Pool::Webhooks]);
    // The ingress only checks the envelope head; a body the workers cannot decode is a
    // permanent failure and goes straight to the dead set.
    let bad = r#"{"data":{"id":"bad-1","event_type":"call.initiated","occurred_at":"yesterday","payload":{"call_control_id":"v3:bad","call_session_id":"sbad"}}}"#;
    accepted(&fleet, bad).await;
    let store = fleet.store.clone();
    let dead = eventually(20, "the job to die", || {
        let store = store.clone();
        async move { store.dead_jobs(Some(Pool::Webhooks), 10).await.ok().filter(|d| d.len() == 1) }
    })
    .await;
    assert_eq!(dead[0].kind, "process_webhook.v1");
    assert!(
        dead[0].last_error.as_deref().unwrap_or("").contains("does not decode"),
        "{:?}",
        dead[0].last_error
    );

    // The operator repairs the data, then retries the dead job.
    fleet
        .test_db
        .exec(&format!(
            "UPDATE webhook_events SET body = '{}' WHERE event_id = 'bad-1'",
            bad.replace("yesterday", "2026-11-23T03:30:00Z")
        ))
        .await;
    assert!(fleet.store.retry_dead_job(&dead[0].id).await.unwrap());
    assert!(!fleet.store.retry_dead_job(&dead[0].id).await.unwrap(), "a retried job leaves the dead set");
    fleet.drain().await;
    assert_eq!(fleet.store.webhook("bad-1").await.unwrap().unwrap().outcome.as_deref(), Some("processed"));
    assert!(fleet.store.dead_jobs(None, 10).await.unwrap().is_empty());
}

async fn replay_reruns_stored_events_idempotently(engine: Engine) {
    let fleet = Fleet::start(engine).await;
    fleet.start_workers(&[Pool::Webhooks]);
    for (id, kind) in [("r1", "call.initiated"), ("r2", "call.answered")] {
        accepted(&fleet, &webhook::event(id, kind, "v3:replay", "s-replay")).await;
    }
    fleet.drain().await;
    // A bug lost the derived state; replay rebuilds it from the stored events.
    fleet.test_db.exec("DELETE FROM call_legs").await;
    let selector = ReplaySelector::Ids(vec!["r1".into(), "r2".into()]);
    assert_eq!(fleet_store::webhook_jobs::replay(fleet.store.as_ref(), &selector).await.unwrap(), 2);
    fleet.drain().await;
    let first = fleet.store.call_legs("s-replay").await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(first[0].initiated_at.is_some() && first[0].answered_at.is_some());
    // Replaying again changes nothing.
    let range = ReplaySelector::Range {
        from: chrono::Utc::now() - chrono::Duration::hours(1),
        to: chrono::Utc::now(),
    };
    assert_eq!(fleet_store::webhook_jobs::replay(fleet.store.as_ref(), &range).await.unwrap(), 2);
    fleet.drain().await;
    assert_eq!(fleet.store.call_legs("s-replay").await.unwrap(), first);
}
