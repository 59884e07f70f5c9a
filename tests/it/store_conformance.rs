//! One conformance suite for both storage adapters: the port's promises, checked on each engine.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use fleet_jobs::{Envelope, Job, Pool};
use fleet_store::{Accepted, Engine, LegUpdate, NewJob, NewWebhook, ReplaySelector, Source};

use crate::on_both;
use crate::support::TestDb;

on_both! {
    webhooks_are_stored_once => webhooks_are_stored_once_postgres, webhooks_are_stored_once_sqlite;
    unique_keys_and_delays => unique_keys_and_delays_postgres, unique_keys_and_delays_sqlite;
    leg_updates_converge => leg_updates_converge_postgres, leg_updates_converge_sqlite;
    ticks_fire_once_and_purge => ticks_fire_once_and_purge_postgres, ticks_fire_once_and_purge_sqlite;
}

fn webhook(id: &str, at: i64) -> NewWebhook {
    NewWebhook {
        event_id: id.into(),
        event_type: "call.initiated".into(),
        call_session_id: Some("s".into()),
        source: Source::Primary,
        attempt: Some(1),
        body: format!(r#"{{"data":{{"id":"{id}","event_type":"call.initiated"}}}}"#),
        received_at: Utc.timestamp_opt(at, 0).unwrap(),
    }
}

async fn webhooks_are_stored_once(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    let batch = [webhook("a", 100), webhook("b", 200), webhook("a", 100)];
    let got = store.accept_webhooks(&batch).await.unwrap();
    assert_eq!(got, vec![Accepted::Stored, Accepted::Stored, Accepted::Duplicate]);
    let again = store.accept_webhooks(&[webhook("b", 300), webhook("c", 300)]).await.unwrap();
    assert_eq!(again, vec![Accepted::Duplicate, Accepted::Stored]);
    let stats = store.queue_stats().await.unwrap();
    let hooks = stats.iter().find(|s| s.pool == "webhooks").unwrap();
    assert_eq!(hooks.ready, 3, "one job per stored event");
    let stored = store.webhook("b").await.unwrap().unwrap();
    assert_eq!((stored.received_at.timestamp(), stored.source.as_str()), (200, "primary"));
    let range = ReplaySelector::Range {
        from: Utc.timestamp_opt(150, 0).unwrap(),
        to: Utc.timestamp_opt(301, 0).unwrap(),
    };
    let picked: Vec<String> =
        store.select_webhooks(&range).await.unwrap().into_iter().map(|t| t.event_id).collect();
    assert_eq!(picked, vec!["b", "c"]);
    let ids = ReplaySelector::Ids(vec!["c".into(), "a".into(), "zz".into()]);
    let picked: Vec<String> =
        store.select_webhooks(&ids).await.unwrap().into_iter().map(|t| t.event_id).collect();
    assert_eq!(picked, vec!["a", "c"]);
    store.finish_webhook("a", "processed").await.unwrap();
    assert_eq!(store.webhook("a").await.unwrap().unwrap().outcome.as_deref(), Some("processed"));
}

async fn unique_keys_and_delays(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    let env = Envelope::new(Job::PurgeWebhookEventsV1 { before: 1 }, "w1");
    let keyed = NewJob { envelope: env.clone(), delay: Duration::ZERO, unique_key: Some("w1#1".into()) };
    assert_eq!(store.enqueue(&[keyed.clone(), keyed.clone()]).await.unwrap(), vec![true, false]);
    assert_eq!(store.enqueue(&[keyed]).await.unwrap(), vec![false]);
    let delayed = NewJob { envelope: env.next_attempt(), delay: Duration::from_secs(600), unique_key: None };
    assert_eq!(store.enqueue(&[delayed]).await.unwrap(), vec![true]);
    let stats = store.queue_stats().await.unwrap();
    let m = stats.iter().find(|s| s.pool == Pool::Maintenance.as_str()).unwrap();
    assert_eq!((m.ready, m.scheduled, m.running, m.dead), (1, 1, 0, 0));
    assert!(store.dead_jobs(None, 10).await.unwrap().is_empty());
    assert!(!store.retry_dead_job("01ARZ3NDEKTSV4RRFFQ69G5FAV").await.unwrap());
}

async fn leg_updates_converge(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    let t = |s| Some(Utc.timestamp_opt(s, 0).unwrap());
    let leg = |f: fn(&mut LegUpdate)| {
        let mut u = LegUpdate {
            call_control_id: "v3:x".into(),
            call_session_id: Some("s9".into()),
            ..Default::default()
        };
        f(&mut u);
        u
    };
    let initiated = leg(|u| {
        u.direction = Some("incoming".into());
        u.initiated_at = Some(Utc.timestamp_opt(10, 0).unwrap());
    });
    let answered = leg(|u| u.answered_at = Some(Utc.timestamp_opt(20, 0).unwrap()));
    let hangup = leg(|u| {
        u.ended_at = Some(Utc.timestamp_opt(30, 0).unwrap());
        u.hangup_cause = Some("normal_clearing".into());
    });
    // Out of order and repeated: the row ends the same.
    for u in [&hangup, &answered, &hangup, &initiated, &answered] {
        store.apply_leg_event(u).await.unwrap();
    }
    let legs = store.call_legs("s9").await.unwrap();
    assert_eq!(legs.len(), 1);
    let l = &legs[0];
    assert_eq!((l.initiated_at, l.answered_at, l.ended_at), (t(10), t(20), t(30)));
    assert_eq!(
        (l.direction.as_deref(), l.hangup_cause.as_deref()),
        (Some("incoming"), Some("normal_clearing"))
    );
}

async fn ticks_fire_once_and_purge(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    let tick = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
    let job = NewJob::now(Envelope::new(Job::PurgeWebhookEventsV1 { before: 1 }, "tick"));
    assert!(store.enqueue_tick("s", tick, &job).await.unwrap());
    assert!(!store.enqueue_tick("s", tick, &job).await.unwrap());
    assert!(store.enqueue_tick("other", tick, &job).await.unwrap());
    store.accept_webhooks(&[webhook("old", 100), webhook("new", 10_000)]).await.unwrap();
    assert_eq!(store.purge_webhooks(Utc.timestamp_opt(5_000, 0).unwrap()).await.unwrap(), 1);
    assert!(store.webhook("old").await.unwrap().is_none());
    assert!(store.webhook("new").await.unwrap().is_some());
}

/// Postgres builds the processing job of a webhook in SQL; it must be exactly the envelope the
/// Rust side builds (the workers decode it, and retries derive their keys from it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_built_webhook_jobs_match_the_rust_envelope() {
    let db = TestDb::new(Engine::Postgres).await;
    let store = db.open().await.store();
    let mut with_session = webhook("j1", 1);
    with_session.call_session_id = Some("sess-\"quoted\"".into());
    let mut without = webhook("j2", 2);
    without.call_session_id = None;
    store.accept_webhooks(&[with_session, without]).await.unwrap();
    let pool = db.pg().await;
    let rows: Vec<(Vec<u8>, Option<String>, i32)> =
        sqlx::query_as("SELECT job, idempotency_key, max_attempts FROM apalis.jobs ORDER BY idempotency_key")
            .fetch_all(&pool)
            .await
            .unwrap();
    let expected = [
        fleet_store::webhook_jobs::process_job("j1", Some("sess-\"quoted\"".into())),
        fleet_store::webhook_jobs::process_job("j2", None),
    ];
    assert_eq!(rows.len(), 2);
    for ((payload, key, max), want) in rows.iter().zip(&expected) {
        let got: Envelope = serde_json::from_slice(payload).unwrap();
        assert_eq!(&got, &want.envelope);
        assert_eq!(key.as_deref(), want.unique_key.as_deref());
        assert_eq!(*max, fleet_store::APALIS_MAX_ATTEMPTS);
    }
}
