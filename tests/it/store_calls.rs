//! Conformance of the call engine's store on both engines: routing rows, memberships, calls
//! changed only by compare-and-set transitions with their jobs, and millisecond delayed jobs.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use fleet_domain::call::{Call, CallDirection, CallSetup, CallState, VoicemailSettings};
use fleet_domain::routing::{Mode, NumberConfig, OutsideHours};
use fleet_jobs::{Envelope, Job, Pool};
use fleet_store::{DeviceRegistration, Engine, NewJob, OrgSettings, Organization, StoreError, User};

use crate::on_both;
use crate::support::{TestClock, TestDb};

on_both! {
    routing_rows_and_memberships => routing_rows_and_memberships_postgres, routing_rows_and_memberships_sqlite;
    transitions_commit_with_their_jobs => transitions_commit_with_their_jobs_postgres, transitions_commit_with_their_jobs_sqlite;
    concurrent_transitions_have_one_winner => concurrent_transitions_have_one_winner_postgres, concurrent_transitions_have_one_winner_sqlite;
    delayed_jobs_wait_until_due => delayed_jobs_wait_until_due_postgres, delayed_jobs_wait_until_due_sqlite;
}

fn number(org: &str, user: Option<&str>) -> NumberConfig {
    NumberConfig {
        org_id: org.into(),
        user_id: user.map(Into::into),
        mode: Mode::Ring,
        ring_timeout_secs: 30,
        schedule: None,
        outside_hours: OutsideHours::Voicemail,
    }
}

async fn routing_rows_and_memberships(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    let settings = OrgSettings {
        voicemail_greeting: Some("Leave it at the tone".into()),
        voicemail_max_secs: Some(60),
        ai_agent_sip_uri: Some("sip:agent@example.com".into()),
        ..OrgSettings::default()
    };
    for id in ["a", "b"] {
        let org = Organization { id: id.into(), name: None, settings: settings.clone() };
        assert!(store.upsert_organization(&org).await.unwrap());
    }
    assert_eq!(store.organization("a").await.unwrap().unwrap().settings, settings);
    assert!(store.organization("zz").await.unwrap().is_none());

    // A user in two organizations; an unknown one refuses the whole write.
    let user = User {
        id: "u".into(),
        org_id: "a".into(),
        org_ids: vec!["a".into(), "b".into()],
        name: None,
        dnd: true,
    };
    assert!(store.upsert_user(&user).await.unwrap());
    let stored = store.user("u").await.unwrap().unwrap();
    assert_eq!((stored.org_ids.clone(), stored.dnd), (vec!["a".to_string(), "b".to_string()], true));
    let bad = User { org_ids: vec!["a".into(), "nope".into()], ..user.clone() };
    assert!(matches!(store.upsert_user(&bad).await, Err(StoreError::Invalid(_))));
    assert_eq!(store.user("u").await.unwrap().unwrap(), stored, "nothing changed");

    // Devices in either org ring; a device of an org the user left does not.
    let reg = |id: &str, org: &str| DeviceRegistration {
        id: id.into(),
        user_id: "u".into(),
        org_id: org.into(),
        platform: "ios".into(),
        push_token: None,
        voip_token: Some(format!("voip-{id}")),
        app_version: None,
        name: None,
    };
    store.register_device(&reg("d-a", "a")).await.unwrap();
    store.register_device(&reg("d-b", "b")).await.unwrap();
    let targets = store.ring_targets("u", Utc::now()).await.unwrap();
    assert_eq!(targets.iter().map(|t| t.device.id.as_str()).collect::<Vec<_>>(), vec!["d-a", "d-b"]);
    assert!(targets.iter().all(|t| t.sip_username.is_none()), "provisioning is not dialable");
    store.upsert_user(&User { org_ids: vec!["a".into()], ..user.clone() }).await.unwrap();
    let targets = store.ring_targets("u", Utc::now()).await.unwrap();
    assert_eq!(targets.iter().map(|t| t.device.id.as_str()).collect::<Vec<_>>(), vec!["d-a"]);

    // Numbers: created, replaced, refused for a user outside the org, deleted once.
    assert!(store.put_number("+15550001", &number("a", Some("u"))).await.unwrap());
    let mut voicemail = number("a", None);
    voicemail.mode = Mode::Voicemail;
    assert!(!store.put_number("+15550001", &voicemail).await.unwrap());
    assert_eq!(store.number("+15550001").await.unwrap(), Some(voicemail.clone()));
    assert!(matches!(
        store.put_number("+15550002", &number("b", Some("u"))).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(store.put_number("+15550002", &number("zz", None)).await, Err(StoreError::Invalid(_))));
    assert!(store.number("+15550002").await.unwrap().is_none(), "a refused number is not stored");
    assert!(store.delete_number("+15550001").await.unwrap());
    assert!(!store.delete_number("+15550001").await.unwrap());

    // Blocked callers are per organization.
    assert!(store.block_number("a", "+15559999").await.unwrap());
    assert!(!store.block_number("a", "+15559999").await.unwrap());
    assert!(store.is_blocked("a", "+15559999").await.unwrap());
    assert!(!store.is_blocked("b", "+15559999").await.unwrap());
    assert!(matches!(store.block_number("zz", "+1555").await, Err(StoreError::Invalid(_))));
    assert!(store.unblock_number("a", "+15559999").await.unwrap());
    assert!(!store.unblock_number("a", "+15559999").await.unwrap());
}

fn call(id: &str, user: &str) -> Call {
    Call::new(
        CallSetup {
            id: id.into(),
            direction: CallDirection::Inbound,
            placed_by: None,
            org_id: "o".into(),
            user_id: Some(user.into()),
            parent_call_control_id: format!("v3:parent-{id}"),
            from: "+15551110000".into(),
            to: "+15552220000".into(),
            caller_name: None,
            org_name: None,
            voicemail: VoicemailSettings::default(),
        },
        Utc::now(),
    )
}

fn marker_job(key: &str) -> NewJob {
    NewJob::once(Envelope::new(Job::PurgeWebhookEventsV1 { before: 1 }, key))
}

async fn transitions_commit_with_their_jobs(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    let first = call("s1", "u");
    assert!(store.create_call(&first, &[marker_job("created")]).await.unwrap());
    assert!(!store.create_call(&first, &[marker_job("created-twice")]).await.unwrap(), "the first wins");
    assert_eq!(store.call("s1").await.unwrap(), Some(first.clone()));
    assert_eq!(store.live_call_of_user("u").await.unwrap().map(|c| c.id), Some("s1".into()));

    let mut ringing = first.clone();
    ringing.state = CallState::Ringing;
    ringing.version = 1;
    assert!(store.transition_call(0, &ringing, &[marker_job("ring")]).await.unwrap());
    // Ringing: stuck only if it started before the cutoff (what the stuck-calls gauge counts).
    let started = first.started_at;
    assert_eq!(store.stuck_calls(started + chrono::Duration::seconds(1)).await.unwrap(), 1);
    assert_eq!(store.stuck_calls(started - chrono::Duration::seconds(1)).await.unwrap(), 0);
    // A stale decision (from version 0 again) writes nothing and enqueues nothing.
    let mut stale = first.clone();
    stale.state = CallState::Ended;
    stale.version = 1;
    assert!(!store.transition_call(0, &stale, &[marker_job("stale")]).await.unwrap());
    assert_eq!(store.call("s1").await.unwrap().unwrap().state, CallState::Ringing);

    let mut ended = ringing.clone();
    ended.state = CallState::Ended;
    ended.version = 2;
    assert!(store.transition_call(1, &ended, &[]).await.unwrap());
    assert!(store.live_call_of_user("u").await.unwrap().is_none(), "an ended call is not live");
    assert_eq!(
        store.stuck_calls(started + chrono::Duration::seconds(1)).await.unwrap(),
        0,
        "ended is not stuck"
    );

    let keys: Vec<String> = jobs_with_keys(&db).await;
    assert_eq!(keys, vec!["created#1", "ring#1"], "only the winners' jobs exist");
}

async fn jobs_with_keys(db: &TestDb) -> Vec<String> {
    let sql = format!(
        "SELECT idempotency_key FROM {} WHERE job_type = 'maintenance' ORDER BY idempotency_key",
        db.jobs_table()
    );
    db.strings(&sql).await
}

/// Two workers decide about one call at the same instant, 1,000 times: exactly one of them wins
/// each time, and only the winner's jobs exist.
async fn concurrent_transitions_have_one_winner(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    const ROUNDS: usize = 1_000;
    let mut current = call("race", "u");
    store.create_call(&current, &[]).await.unwrap();
    for round in 0..ROUNDS {
        let mut a = current.clone();
        a.version += 1;
        a.from = format!("a{round}");
        let mut b = current.clone();
        b.version += 1;
        b.from = format!("b{round}");
        let (sa, sb) = (store.clone(), store.clone());
        let v = current.version;
        let (ja, jb) = ([marker_job(&format!("a{round}"))], [marker_job(&format!("b{round}"))]);
        let (wa, wb) = tokio::join!(
            tokio::spawn(async move { sa.transition_call(v, &a, &ja).await.unwrap() }),
            tokio::spawn(async move { sb.transition_call(v, &b, &jb).await.unwrap() }),
        );
        let (wa, wb) = (wa.unwrap(), wb.unwrap());
        assert!(wa ^ wb, "round {round}: exactly one transition wins (a {wa}, b {wb})");
        current = store.call("race").await.unwrap().unwrap();
        assert_eq!(current.from, format!("{}{round}", if wa { "a" } else { "b" }));
    }
    let keys = jobs_with_keys(&db).await;
    assert_eq!(keys.len(), ROUNDS, "one job per round: the winner's");
}

async fn delayed_jobs_wait_until_due(engine: Engine) {
    let db = TestDb::new(engine).await;
    let clock = TestClock::at(Utc.timestamp_opt(1_900_000_000, 0).unwrap());
    let store = db.open().await.with_clock(clock.clock()).store();
    let pools = [Pool::Maintenance];
    let later = |key: &str, ms: u64| NewJob {
        envelope: Envelope::new(Job::PurgeWebhookEventsV1 { before: 1 }, key),
        delay: Duration::from_millis(ms),
        unique_key: Some(format!("{key}#1")),
    };
    assert_eq!(
        store.enqueue(&[later("t1", 1_500), later("t1", 1_500), later("t2", 250)]).await.unwrap(),
        vec![true, false, true]
    );
    let stats = store.queue_stats().await.unwrap();
    let m = stats.iter().find(|s| s.pool == "maintenance").unwrap();
    assert_eq!((m.ready, m.scheduled), (0, 2));
    let due = store.next_due_at(&pools).await.unwrap().unwrap();
    assert_eq!(due, store.now() + chrono::Duration::milliseconds(250), "millisecond due times");
    assert!(store.next_due_at(&[Pool::Push]).await.unwrap().is_none());

    assert_eq!(store.promote_due_jobs(&pools, 100).await.unwrap(), 0, "nothing is due yet");
    clock.advance(Duration::from_millis(249));
    assert_eq!(store.promote_due_jobs(&pools, 100).await.unwrap(), 0, "not even 1 ms early");
    clock.advance(Duration::from_millis(1));
    assert_eq!(store.promote_due_jobs(&[Pool::Push], 100).await.unwrap(), 0, "only the given pools");
    assert_eq!(store.promote_due_jobs(&pools, 100).await.unwrap(), 1);
    assert_eq!(jobs_with_keys(&db).await, vec!["t2#1"]);
    clock.advance(Duration::from_secs(5));
    assert_eq!(store.promote_due_jobs(&pools, 100).await.unwrap(), 1);
    assert_eq!(store.promote_due_jobs(&pools, 100).await.unwrap(), 0, "each job once");
    assert_eq!(jobs_with_keys(&db).await, vec!["t1#1", "t2#1"]);
    assert!(store.next_due_at(&pools).await.unwrap().is_none());
}
