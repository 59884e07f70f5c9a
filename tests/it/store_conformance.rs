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
    a_retry_waits_for_a_concurrent_writer => a_retry_waits_for_a_concurrent_writer_postgres,
        a_retry_waits_for_a_concurrent_writer_sqlite;
    dead_jobs_are_shown_and_discarded => dead_jobs_are_shown_and_discarded_postgres,
        dead_jobs_are_shown_and_discarded_sqlite;
    a_purge_cut_short_keeps_the_batches_it_committed => a_purge_cut_short_keeps_the_batches_it_committed_postgres,
        a_purge_cut_short_keeps_the_batches_it_committed_sqlite;
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
        trace_parent: None,
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
    let mut other = webhook("d", 400);
    other.call_session_id = Some("s-other".into());
    store.accept_webhooks(&[other]).await.unwrap();
    let session = ReplaySelector::Session("s".into());
    let picked: Vec<String> =
        store.select_webhooks(&session).await.unwrap().into_iter().map(|t| t.event_id).collect();
    assert_eq!(picked, vec!["a", "b", "c"], "one session's events, in the order received");
    let ids = ReplaySelector::Ids(vec!["c".into(), "a".into(), "zz".into()]);
    let picked: Vec<String> =
        store.select_webhooks(&ids).await.unwrap().into_iter().map(|t| t.event_id).collect();
    assert_eq!(picked, vec!["a", "c"]);
    store.finish_webhook("a", "ignored", None).await.unwrap();
    assert_eq!(store.webhook("a").await.unwrap().unwrap().outcome.as_deref(), Some("ignored"));
    // With a leg fact, the leg row and the mark commit together.
    let leg = LegUpdate {
        call_control_id: "v3:finish".into(),
        call_session_id: Some("s-finish".into()),
        ..LegUpdate::default()
    };
    store.finish_webhook("b", "processed", Some(&leg)).await.unwrap();
    assert_eq!(store.webhook("b").await.unwrap().unwrap().outcome.as_deref(), Some("processed"));
    assert_eq!(store.call_legs("s-finish").await.unwrap().len(), 1);
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
    // More old events than one purge statement deletes (the purge goes in bounded batches).
    let many: Vec<NewWebhook> = (0..4_500).map(|i| webhook(&format!("old-{i}"), 200 + i)).collect();
    for chunk in many.chunks(500) {
        store.accept_webhooks(chunk).await.unwrap();
    }
    let old_tick = Utc.timestamp_opt(1_000, 0).unwrap();
    assert!(store.enqueue_tick("s", old_tick, &job).await.unwrap());
    assert_eq!(store.purge_webhooks(Utc.timestamp_opt(5_000, 0).unwrap()).await.unwrap(), 4_501);
    assert!(store.webhook("old").await.unwrap().is_none());
    assert!(store.webhook("old-4499").await.unwrap().is_none());
    assert!(store.webhook("new").await.unwrap().is_some());
    // Schedule ticks past retention go too (the table was never pruned); a pruned tick is old
    // enough that no scheduler fires it again (they fire only the latest one on start).
    let ticks = db.count("SELECT count(*) FROM schedule_ticks").await;
    assert_eq!(ticks, 2, "the two 2027 ticks stay, the old one is gone");
}

/// The retention purge deletes in statements of a bounded size, each committed on its own: when
/// one fails (here a trigger refuses to delete the newest old event), what the batches before it
/// deleted stays deleted, and the retry only has the rest to do. Before, one DELETE of every old
/// row held the write lock for all of them (on SQLite the ingress answered 503 meanwhile) and a
/// failure undid it all (checked: this test then fails, nothing deleted).
async fn a_purge_cut_short_keeps_the_batches_it_committed(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    let old: Vec<NewWebhook> = (0..4_500).map(|i| webhook(&format!("old-{i}"), 200 + i)).collect();
    for chunk in old.chunks(500) {
        store.accept_webhooks(chunk).await.unwrap();
    }
    match engine {
        Engine::Postgres => {
            db.exec(
                "CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'this test refuses to delete old-4499'; END $$",
            )
            .await;
            db.exec(
                "CREATE TRIGGER refuse_delete BEFORE DELETE ON webhook_events FOR EACH ROW \
                 WHEN (OLD.event_id = 'old-4499') EXECUTE FUNCTION refuse_delete()",
            )
            .await;
        }
        Engine::Sqlite => {
            db.exec(
                "CREATE TRIGGER refuse_delete BEFORE DELETE ON webhook_events \
                 WHEN OLD.event_id = 'old-4499' BEGIN SELECT RAISE(ABORT, 'this test refuses'); END",
            )
            .await;
        }
    }
    let cutoff = Utc.timestamp_opt(5_000, 0).unwrap();
    assert!(store.purge_webhooks(cutoff).await.is_err(), "the refused delete fails the purge");
    let left = db.count("SELECT count(*) FROM webhook_events").await;
    assert!(left < 4_500, "the batches before the failure stay deleted ({left} of 4500 left)");
    assert!(store.webhook("old-4499").await.unwrap().is_some());
    db.exec(match engine {
        Engine::Postgres => "DROP TRIGGER refuse_delete ON webhook_events",
        Engine::Sqlite => "DROP TRIGGER refuse_delete",
    })
    .await;
    assert_eq!(store.purge_webhooks(cutoff).await.unwrap(), left as u64, "the retry deletes the rest");
}

/// An operator's dead-job retry reads the dead row, then writes. While another connection holds
/// a write on that row, the retry waits for it and then succeeds — it never fails with "database
/// is locked" (SQLite's answer to a deferred transaction whose read went stale under a writer).
async fn a_retry_waits_for_a_concurrent_writer(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    let job = NewJob::now(Envelope::new(Job::PurgeWebhookEventsV1 { before: 1 }, "dead"));
    store.enqueue(&[job]).await.unwrap();
    let jobs = db.jobs_table();
    db.exec(&format!("UPDATE {jobs} SET status = 'Killed'")).await;
    let id = store.dead_jobs(None, 10).await.unwrap().remove(0).id;

    let touch = sqlx::AssertSqlSafe(format!("UPDATE {jobs} SET attempts = attempts WHERE id = '{id}'"));
    let retried = |store: std::sync::Arc<dyn fleet_store::Store>, id: String| {
        tokio::spawn(async move { store.retry_dead_job(&id).await })
    };
    let outcome = match engine {
        Engine::Postgres => {
            let pool = db.pg().await;
            let mut writer = pool.begin().await.unwrap();
            sqlx::query(touch).execute(&mut *writer).await.unwrap();
            let retry = retried(store.clone(), id.clone());
            // Only gives the retry time to run into the writer; the outcome does not depend on it.
            tokio::time::sleep(Duration::from_millis(200)).await;
            writer.commit().await.unwrap();
            retry.await.unwrap()
        }
        Engine::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            let mut writer = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
            sqlx::query(touch).execute(&mut *writer).await.unwrap();
            let retry = retried(store.clone(), id.clone());
            tokio::time::sleep(Duration::from_millis(200)).await;
            writer.commit().await.unwrap();
            retry.await.unwrap()
        }
    };
    assert!(outcome.expect("the retry waits instead of failing"), "the dead job was found");
    assert!(store.dead_jobs(None, 10).await.unwrap().is_empty());
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
        fleet_store::webhook_jobs::process_job("j1", Some("sess-\"quoted\"".into()), None),
        fleet_store::webhook_jobs::process_job("j2", None, None),
    ];
    assert_eq!(rows.len(), 2);
    for ((payload, key, max), want) in rows.iter().zip(&expected) {
        let got: Envelope = serde_json::from_slice(payload).unwrap();
        assert_eq!(&got, &want.envelope);
        assert_eq!(key.as_deref(), want.unique_key.as_deref());
        assert_eq!(*max, fleet_store::APALIS_MAX_ATTEMPTS);
    }
}

on_both! {
    credential_rows_follow_their_lifecycle => credential_rows_follow_their_lifecycle_postgres, credential_rows_follow_their_lifecycle_sqlite;
}

/// Registration, failure and retry, the dialable query, rotation swap, deregistration, departed
/// org-level credentials — the store's side of the credential lifecycle, without Telnyx.
async fn credential_rows_follow_their_lifecycle(engine: Engine) {
    use fleet_domain::credentials::CredentialStatus as S;
    use fleet_store::{
        DeviceRegistration, OrgCredential, Organization, ProvisionedCredential, StoreError, User,
    };

    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    assert!(
        store
            .upsert_organization(&Organization { id: "o".into(), name: None, ..Organization::default() })
            .await
            .unwrap()
    );
    assert!(
        !store
            .upsert_organization(&Organization {
                id: "o".into(),
                name: Some("O".into()),
                ..Organization::default()
            })
            .await
            .unwrap()
    );
    let missing_org = store
        .upsert_user(&User { id: "u".into(), org_id: "nope".into(), name: None, ..User::default() })
        .await;
    assert!(matches!(missing_org, Err(StoreError::Invalid(_))));
    assert_eq!(db.count("SELECT count(*) FROM users").await, 0, "nothing changed");
    assert!(
        store
            .upsert_user(&User { id: "u".into(), org_id: "o".into(), name: None, ..User::default() })
            .await
            .unwrap()
    );
    let reg = |device: &str| DeviceRegistration {
        id: device.into(),
        user_id: "u".into(),
        org_id: "o".into(),
        platform: "android".into(),
        push_token: Some("fcm".into()),
        voip_token: None,
        app_version: None,
        name: None,
    };
    let first = store.register_device(&reg("d1")).await.unwrap();
    assert!(first.created);
    assert_eq!((first.credential.status, first.credential.generation), (S::Provisioning, 1));
    let again = store.register_device(&reg("d1")).await.unwrap();
    assert_eq!((again.created, again.credential.id.as_str()), (false, first.credential.id.as_str()));
    let jobs =
        db.count(&format!("SELECT count(*) FROM {} WHERE job_type = 'credentials'", db.jobs_table())).await;
    assert_eq!(jobs, 1, "one provisioning job for one row");

    // Failed → re-registration retries under a new generation (a second job).
    assert!(store.fail_credential(&first.credential.id, "boom").await.unwrap());
    let retried = store.register_device(&reg("d1")).await.unwrap();
    assert_eq!((retried.credential.status, retried.credential.generation), (S::Provisioning, 2));
    let jobs =
        db.count(&format!("SELECT count(*) FROM {} WHERE job_type = 'credentials'", db.jobs_table())).await;
    assert_eq!(jobs, 2);

    let now = Utc::now();
    let provisioned = |tid: &str, expires: chrono::DateTime<Utc>| ProvisionedCredential {
        telnyx_id: tid.into(),
        sip_username: format!("gencred-{tid}"),
        sip_password_sealed: Some("v1:k:sealed".into()),
        expires_at: expires,
    };
    assert!(
        store.dialable_credentials("u", "o", now).await.unwrap().is_empty(),
        "provisioning is not dialable"
    );
    assert!(
        store
            .activate_credential(&first.credential.id, &provisioned("t1", now + chrono::Duration::hours(1)))
            .await
            .unwrap()
    );
    assert!(
        !store.activate_credential(&first.credential.id, &provisioned("t1", now)).await.unwrap(),
        "only once"
    );
    let dial = store.dialable_credentials("u", "o", now).await.unwrap();
    assert_eq!(dial.iter().map(|d| d.sip_username.as_str()).collect::<Vec<_>>(), vec!["gencred-t1"]);
    assert!(
        store.dialable_credentials("u", "o", now + chrono::Duration::hours(2)).await.unwrap().is_empty(),
        "expired"
    );
    assert!(store.dialable_credentials("u", "other-org", now).await.unwrap().is_empty());

    // The re-seal's page of passwords not under the current key, and its compare-and-set.
    let due = store.sealed_passwords_to_reseal("v2:k2:", "", 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].telnyx_id.as_str(), due[0].sealed.as_str()), ("t1", "v1:k:sealed"));
    assert!(store.sealed_passwords_to_reseal("v2:k2:", &due[0].id, 10).await.unwrap().is_empty(), "paged");
    assert!(
        !store.replace_sealed_password(&due[0].id, "v1:k:other", "v2:k2:x").await.unwrap(),
        "changed meanwhile"
    );
    assert!(store.replace_sealed_password(&due[0].id, "v1:k:sealed", "v2:k2:x").await.unwrap());
    assert!(store.sealed_passwords_to_reseal("v2:k2:", "", 10).await.unwrap().is_empty(), "all under k2");
    assert_eq!(store.sealed_passwords_to_reseal("v2:k3:", "", 10).await.unwrap().len(), 1);

    // Rotation swap keeps exactly one dialable credential.
    assert!(
        store
            .swap_credential(
                &first.credential.id,
                "new-row",
                &provisioned("t2", now + chrono::Duration::days(30))
            )
            .await
            .unwrap()
    );
    assert!(!store.swap_credential(&first.credential.id, "newer", &provisioned("t3", now)).await.unwrap());
    let dial = store.dialable_credentials("u", "o", now).await.unwrap();
    assert_eq!(dial.iter().map(|d| d.credential_id.as_str()).collect::<Vec<_>>(), vec!["new-row"]);
    assert_eq!(store.credential(&first.credential.id).await.unwrap().unwrap().status, S::Deleting);
    let known = store.known_telnyx_ids(&["t1".into(), "t2".into(), "zz".into()]).await.unwrap();
    assert_eq!(known.len(), 2);
    let to_rotate = store.credentials_to_rotate(now, now + chrono::Duration::days(31), 10).await.unwrap();
    assert_eq!(to_rotate, vec!["new-row".to_string()]);
    let stale = store.expired_credentials(now, now + chrono::Duration::hours(1), 10).await.unwrap();
    assert_eq!(stale.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), vec![first.credential.id.as_str()]);

    // Deregistration: the device goes, its row is marked and its deletion enqueued; twice is fine.
    assert!(store.deregister_device("d1").await.unwrap());
    assert!(!store.deregister_device("d1").await.unwrap());
    assert!(store.device("d1").await.unwrap().is_none());
    assert!(store.dialable_credentials("u", "o", now).await.unwrap().is_empty());
    assert_eq!(store.credential("new-row").await.unwrap().unwrap().status, S::Deleting);
    assert_eq!(
        store.delete_credential_rows(&["new-row".into(), first.credential.id.clone()]).await.unwrap(),
        2
    );

    // Org-level credentials of users who left.
    let web = |id: &str, user: &str| OrgCredential {
        id: id.into(),
        user_id: user.into(),
        org_id: "o".into(),
        telnyx_id: format!("tw-{id}"),
        sip_username: format!("gw-{id}"),
        expires_at: None,
    };
    store.upsert_org_credential(&web("w1", "u")).await.unwrap();
    store.upsert_org_credential(&web("w2", "ghost")).await.unwrap();
    let departed: Vec<String> =
        store.departed_org_credentials(10).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(departed, vec!["w2"]);
    store
        .upsert_organization(&Organization { id: "o2".into(), name: None, ..Organization::default() })
        .await
        .unwrap();
    store
        .upsert_user(&User { id: "u".into(), org_id: "o2".into(), name: None, ..User::default() })
        .await
        .unwrap();
    assert_eq!(store.departed_org_credentials(10).await.unwrap().len(), 2, "u left o");
    assert_eq!(store.delete_org_credentials(&["w1".into(), "w2".into()]).await.unwrap(), 2);
}

on_both! {
    push_rows_and_the_rest_of_the_port => push_rows_and_the_rest_of_the_port_postgres, push_rows_and_the_rest_of_the_port_sqlite;
}

/// The methods the cases above leave out: readiness, the engine, marking rows `deleting`, the
/// devices a push fans out to, delivery records, token pruning and their purge.
async fn push_rows_and_the_rest_of_the_port(engine: Engine) {
    use fleet_domain::credentials::CredentialStatus as S;
    use fleet_domain::push::Provider;
    use fleet_store::{DeviceRegistration, Organization, User};

    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    assert_eq!(store.engine(), engine);
    store.ping().await.unwrap();
    for org in ["o", "o2"] {
        store
            .upsert_organization(&Organization { id: org.into(), name: None, ..Organization::default() })
            .await
            .unwrap();
    }
    store
        .upsert_user(&User { id: "u".into(), org_id: "o".into(), name: None, ..User::default() })
        .await
        .unwrap();
    let reg = |device: &str, platform: &str| DeviceRegistration {
        id: device.into(),
        user_id: "u".into(),
        org_id: "o".into(),
        platform: platform.into(),
        push_token: (platform == "android").then(|| format!("fcm-{device}")),
        voip_token: (platform == "ios").then(|| format!("voip-{device}")),
        app_version: Some("1.2".into()),
        name: Some(format!("phone {device}")),
    };
    let a = store.register_device(&reg("a", "android")).await.unwrap();
    store.register_device(&reg("b", "ios")).await.unwrap();
    let devices = store.user_devices("u", "o").await.unwrap();
    assert_eq!(devices, vec![reg("a", "android"), reg("b", "ios")], "every field, ordered by id");
    assert!(store.user_devices("u", "o2").await.unwrap().is_empty(), "org-scoped");
    assert_eq!(store.device_registration("b").await.unwrap(), Some(reg("b", "ios")), "every field");
    assert_eq!(store.device_registration("nope").await.unwrap(), None);

    store.mark_credentials_deleting(&[a.credential.id.clone(), "no-such-row".into()]).await.unwrap();
    assert_eq!(store.credential(&a.credential.id).await.unwrap().unwrap().status, S::Deleting);
    store.mark_credentials_deleting(&[]).await.unwrap();

    assert!(!store.push_delivered("k1").await.unwrap());
    // The delivery commits with what it causes (its call's input); a repeat records nothing
    // more and its job is the same work (one unique key).
    let feedback = || {
        let input = fleet_domain::call::CallInput::IncomingPushDelivered { device_id: "a".into() };
        let job = Job::CallInputV1 { call_session_id: "s1".into(), input };
        vec![NewJob::once(Envelope::new(job, "pushed:k1"))]
    };
    store.record_push_delivery("k1", "a", Provider::Fcm, &feedback()).await.unwrap();
    store.record_push_delivery("k1", "a", Provider::Fcm, &feedback()).await.unwrap();
    assert!(store.push_delivered("k1").await.unwrap());
    assert_eq!(db.count("SELECT count(*) FROM push_deliveries").await, 1, "recorded once");
    let stats = store.queue_stats().await.unwrap();
    assert_eq!(stats.iter().find(|s| s.pool == "webhooks").unwrap().ready, 1, "its call's input, once");

    // A stale token is kept; the current one is cleared, once.
    assert!(!store.prune_push_token("a", Provider::Fcm, "fcm-old").await.unwrap());
    assert!(store.prune_push_token("a", Provider::Fcm, "fcm-a").await.unwrap());
    assert!(!store.prune_push_token("a", Provider::Fcm, "fcm-a").await.unwrap());
    assert!(!store.prune_push_token("b", Provider::Fcm, "voip-b").await.unwrap(), "wrong provider");
    assert!(store.prune_push_token("b", Provider::Apns, "voip-b").await.unwrap());
    let after = store.device("b").await.unwrap().unwrap().registration;
    assert_eq!((after.voip_token, after.app_version.as_deref()), (None, Some("1.2")));

    let later = Utc::now() + chrono::Duration::hours(1);
    assert_eq!(store.purge_push_deliveries(Utc::now() - chrono::Duration::hours(1)).await.unwrap(), 0);
    assert_eq!(store.purge_push_deliveries(later).await.unwrap(), 1);
    assert!(!store.push_delivered("k1").await.unwrap());
}

/// One dead job is shown with its payload and error; a discarded one leaves the dead set for
/// good (and is not retried), an id that is not dead changes nothing.
async fn dead_jobs_are_shown_and_discarded(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    let job = |n: i64| NewJob::now(Envelope::new(Job::PurgeWebhookEventsV1 { before: n }, format!("d{n}")));
    store.enqueue(&[job(1), job(2)]).await.unwrap();
    let jobs = db.jobs_table();
    // Killed by a handler 60 s ago (apalis's times: TIMESTAMPTZ on Postgres, Unix seconds on SQLite).
    let killed_at = Utc::now() - chrono::Duration::seconds(60);
    let lock_at = match engine {
        Engine::Postgres => format!("'{}'", killed_at.to_rfc3339()),
        Engine::Sqlite => killed_at.timestamp().to_string(),
    };
    db.exec(&format!(
        "UPDATE {jobs} SET status = 'Killed', lock_at = {lock_at}, last_result = '{{\"Err\":\"boom\"}}'"
    ))
    .await;
    let dead = store.dead_jobs(None, 10).await.unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].last_error.as_deref(), Some("boom"));
    let died = dead[0].died_at.expect("when it died");
    assert!((died - killed_at).num_seconds().abs() <= 1, "died at {died}, killed at {killed_at}");
    let one = store.dead_job(&dead[0].id).await.unwrap().expect("a dead job by id");
    assert_eq!((one.id.as_str(), one.pool.as_str()), (dead[0].id.as_str(), "maintenance"));
    assert_eq!(one.payload, dead[0].payload);
    assert!(store.dead_job("01ARZ3NDEKTSV4RRFFQ69G5FAV").await.unwrap().is_none());

    assert!(store.discard_dead_job(&dead[0].id).await.unwrap());
    assert!(!store.discard_dead_job(&dead[0].id).await.unwrap(), "discarded once");
    assert!(store.dead_job(&dead[0].id).await.unwrap().is_none());
    assert!(!store.retry_dead_job(&dead[0].id).await.unwrap(), "a discarded job is not retried");
    let closed = format!("SELECT CAST(last_result AS TEXT) FROM {jobs} WHERE id = '{}'", dead[0].id);
    assert!(db.strings(&closed).await[0].contains("discarded by an operator"));
    let stats = store.queue_stats().await.unwrap();
    let m = stats.iter().find(|s| s.pool == Pool::Maintenance.as_str()).unwrap();
    assert_eq!((m.ready, m.dead), (0, 1));

    // The retention purge takes the closed row (its `done_at` is the queue's clock), not the dead one.
    store.purge_webhooks(Utc::now() + chrono::Duration::hours(1)).await.unwrap();
    assert_eq!(db.count(&format!("SELECT count(*) FROM {jobs} WHERE id = '{}'", dead[0].id)).await, 0);
    assert_eq!(store.dead_jobs(None, 10).await.unwrap().len(), 1, "the dead job stays until it is retried");
    assert!(store.retry_dead_job(&dead[1].id).await.unwrap());
    let m = store
        .queue_stats()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.pool == Pool::Maintenance.as_str())
        .unwrap();
    assert_eq!((m.ready, m.dead), (1, 0), "retried: a new first attempt, the dead row closed");
}

on_both! {
    recordings_are_kept_once_with_their_transcript => recordings_are_kept_once_with_their_transcript_postgres, recordings_are_kept_once_with_their_transcript_sqlite;
    recording_requests_are_kept_once_and_settled_once => recording_requests_are_kept_once_and_settled_once_postgres, recording_requests_are_kept_once_and_settled_once_sqlite;
}

async fn recordings_are_kept_once_with_their_transcript(engine: Engine) {
    use fleet_store::{Recording, Transcript, TranscriptStatus};
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    let at = |s| Utc.timestamp_opt(s, 0).unwrap();
    let rec = |id: &str, saved: i64| Recording {
        id: id.into(),
        call_session_id: "s1".into(),
        org_id: "o1".into(),
        format: "mp3".into(),
        channels: "dual".into(),
        object_key: format!("recordings/o1/s1/{id}.mp3"),
        sha256: "ab".repeat(32),
        size_bytes: 1234,
        duration_ms: Some(5_000),
        started_at: Some(at(saved - 5)),
        ended_at: None,
        saved_at: at(saved),
        stored_at: at(0),
        transcript_status: TranscriptStatus::Pending,
        transcript: None,
        transcript_error: None,
        transcribed_at: None,
    };
    let transcribe = |id: &str| NewJob::once(fleet_jobs::transcription_envelope(id, "s1"));
    assert!(store.store_recording(&rec("r2", 200), &[transcribe("r2")]).await.unwrap());
    assert!(store.store_recording(&rec("r1", 100), &[transcribe("r1")]).await.unwrap());
    // A second copy of r1 (a re-run after the commit) changes nothing and enqueues nothing.
    assert!(!store.store_recording(&rec("r1", 100), &[transcribe("r1")]).await.unwrap());
    let stats = store.queue_stats().await.unwrap();
    assert_eq!(stats.iter().find(|s| s.pool == "recordings").unwrap().ready, 2);

    let got = store.call_recordings("s1").await.unwrap();
    assert_eq!(got.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["r1", "r2"], "oldest first");
    let r1 = &got[0];
    assert_eq!((r1.size_bytes, r1.duration_ms, r1.ended_at), (1234, Some(5_000), None));
    assert_eq!(r1.started_at, Some(at(95)));
    assert!(store.call_recordings("s2").await.unwrap().is_empty());

    // failed → done (an operator's retry) → a repeat changes nothing.
    assert!(store.finish_transcript("r1", &Transcript::Failed("refused (400)".into())).await.unwrap());
    assert_eq!(store.recording("r1").await.unwrap().unwrap().transcript_status, TranscriptStatus::Failed);
    assert!(store.finish_transcript("r1", &Transcript::Done("hello".into())).await.unwrap());
    assert!(!store.finish_transcript("r1", &Transcript::Done("other".into())).await.unwrap());
    let r1 = store.recording("r1").await.unwrap().unwrap();
    assert_eq!((r1.transcript_status, r1.transcript.as_deref()), (TranscriptStatus::Done, Some("hello")));
    assert!(r1.transcribed_at.is_some());
    assert!(store.recording("nope").await.unwrap().is_none());

    // Retention (by the store's clock at the copy, not the recording's own times): bounded,
    // oldest first, then deleted by id.
    let (past, future) = (Utc::now() - chrono::Duration::hours(1), Utc::now() + chrono::Duration::hours(1));
    let old: Vec<String> =
        store.recordings_stored_before(future, 1).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(old.len(), 1, "bounded by the limit");
    assert!(store.recordings_stored_before(past, 10).await.unwrap().is_empty(), "none stored an hour ago");
    let both: Vec<String> =
        store.recordings_stored_before(future, 10).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(both.len(), 2);
    assert_eq!(store.delete_recordings(&both[..1]).await.unwrap(), 1);
    assert_eq!(store.delete_recordings(&[]).await.unwrap(), 0);
    assert_eq!(store.call_recordings("s1").await.unwrap().len(), 1);

    assert!(store.record_recording_failure("e1", "s1", "Internal server error").await.unwrap());
    assert!(!store.record_recording_failure("e1", "s1", "Internal server error").await.unwrap());
    let failures = store.recording_failures("s1").await.unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].reason, "Internal server error");
}

/// A browser's recording request: kept once with its job, settled once; and the leg record of
/// one `call_control_id`.
async fn recording_requests_are_kept_once_and_settled_once(engine: Engine) {
    use fleet_store::{RecordingRequest, RequestStatus};
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    let request = RecordingRequest {
        call_control_id: "v3:direct".into(),
        org_id: "o1".into(),
        user_id: Some("u1".into()),
        device_id: None,
        from: "gencred1".into(),
        to: "+13125557777".into(),
        format: "wav".into(),
        channels: "single".into(),
        status: RequestStatus::Pending,
        detail: None,
        requested_at: Utc::now(),
        settled_at: None,
    };
    let job = || NewJob::once(fleet_jobs::direct_recording_envelope("v3:direct", Some("s1"), None));
    assert!(store.request_recording(&request, &[job()]).await.unwrap());
    assert!(!store.request_recording(&request, &[job()]).await.unwrap(), "a repeat keeps nothing more");
    let stats = store.queue_stats().await.unwrap();
    assert_eq!(stats.iter().find(|s| s.pool == "legs").unwrap().ready, 1, "one job");
    let got = store.recording_request("v3:direct").await.unwrap().unwrap();
    assert_eq!(
        (got.format.as_str(), got.channels.as_str(), got.status),
        ("wav", "single", RequestStatus::Pending)
    );
    assert_eq!((got.from.as_str(), got.user_id.as_deref(), got.settled_at), ("gencred1", Some("u1"), None));
    assert!(store.recording_request("v3:other").await.unwrap().is_none());

    assert!(
        store.settle_recording_request("v3:direct", RequestStatus::Started, Some("accepted")).await.unwrap()
    );
    assert!(
        !store.settle_recording_request("v3:direct", RequestStatus::Ended, None).await.unwrap(),
        "settled once"
    );
    let got = store.recording_request("v3:direct").await.unwrap().unwrap();
    assert_eq!((got.status, got.detail.as_deref()), (RequestStatus::Started, Some("accepted")));
    assert!(got.settled_at.is_some());

    assert!(store.call_leg("v3:direct").await.unwrap().is_none());
    let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let leg = LegUpdate {
        call_control_id: "v3:direct".into(),
        call_session_id: Some("s1".into()),
        direction: Some("outgoing".into()),
        answered_at: Some(at),
        ..LegUpdate::default()
    };
    store.apply_leg_event(&leg).await.unwrap();
    let got = store.call_leg("v3:direct").await.unwrap().unwrap();
    assert_eq!((got.call_session_id.as_deref(), got.direction.as_deref()), (Some("s1"), Some("outgoing")));
    assert_eq!((got.answered_at, got.ended_at), (Some(at), None));
}
