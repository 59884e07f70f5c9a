//! A worker SIGKILLed in the middle of a call decision (Postgres, real processes): killed before
//! the transition commits, nothing of the decision exists; once it has committed, its follow-up
//! jobs exist even though that worker is gone, and another process runs them.

use chrono::Utc;
use fleet_domain::call::{
    Call, CallDirection, CallInput, CallSetup, CallState, LegId, Platform, RingDevice, Route,
    VoicemailSettings, step,
};
use fleet_domain::client_state::{ClientState, ClientStateKey, LegKind};
use fleet_domain::sealing::Keyring;
use fleet_sim::{SimConfig, Simulator};
use fleet_store::{Engine, NewWebhook, Source};

use crate::support::{TestDb, eventually, process, webhook};

const SECRET: &str = "k1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// A call ringing one device whose leg `v3:leg-d1` was dialed (stored directly: the decision under
/// test is the answer).
fn ringing_call(session: &str) -> Call {
    let now = Utc::now();
    let call = Call::new(
        CallSetup {
            id: session.into(),
            direction: CallDirection::Inbound,
            placed_by: None,
            org_id: "o1".into(),
            user_id: Some("u1".into()),
            parent_call_control_id: "v3:parent".into(),
            from: "+13125550101".into(),
            to: "+13125550199".into(),
            caller_name: None,
            org_name: None,
            voicemail: VoicemailSettings::default(),
        },
        now,
    );
    let device = RingDevice {
        device_id: "d1".into(),
        platform: Platform::Android,
        push: false,
        sip_target: Some("sip:d1@sip.telnyx.com".into()),
    };
    let routed =
        step(&call, &CallInput::Routed(Route::Ring { devices: vec![device], ring_timeout_secs: 30 }), now);
    let dialed = CallInput::DialAccepted { leg: LegId::new("d1", 1), call_control_id: "v3:leg-d1".into() };
    step(&routed.next.unwrap(), &dialed, now).next.unwrap()
}

/// The leg's `call.answered`, with our sealed client_state.
fn answered(session: &str) -> NewWebhook {
    let key = ClientStateKey::derive(Keyring::parse(SECRET).unwrap().oldest_key_bytes());
    let state =
        ClientState::new(LegKind::Ring, session, Some("d1/1".into())).with_org("o1").with_device("d1");
    let mut body: serde_json::Value =
        serde_json::from_str(&webhook::event("ans-1", "call.answered", "v3:leg-d1", session)).unwrap();
    body["data"]["payload"]["client_state"] = serde_json::Value::String(state.seal(&key));
    body["data"]["payload"]["direction"] = "outgoing".into();
    NewWebhook {
        event_id: "ans-1".into(),
        event_type: "call.answered".into(),
        call_session_id: Some(session.into()),
        source: Source::Primary,
        attempt: Some(1),
        body: body.to_string(),
        received_at: Utc::now(),
        trace_parent: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sigkilled_decision_commits_whole_or_not_at_all() {
    let db = TestDb::new(Engine::Postgres).await;
    let store = db.open().await.store();
    let session = "s-crash";
    store.create_call(&ringing_call(session), &[]).await.unwrap();
    let legs_jobs = "SELECT count(*) FROM apalis.jobs WHERE job_type = 'legs'";
    assert_eq!(db.count(legs_jobs).await, 0);

    // The decision stalls inside its transaction (a trigger sleeps on the call's update): the
    // worker is killed there. (Postgres notices a vanished client during a sleep only when it
    // checks the connection: every 100 ms here.)
    db.exec(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET client_connection_check_interval = %L',
                                    current_database(), '100ms'); END $$;
         CREATE FUNCTION stall() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(60); RETURN NEW; END; $$ LANGUAGE plpgsql;
         CREATE TRIGGER stall BEFORE UPDATE ON calls FOR EACH ROW EXECUTE FUNCTION stall();",
    )
    .await;
    store.accept_webhooks(&[answered(session)]).await.unwrap();
    let env = [("CALLFLEET_SECRET_KEY", SECRET)];
    let mut worker = process::spawn(&db.url, &["worker", "--pool", "webhooks"], &env);
    let stalled =
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'UPDATE calls%' AND wait_event = 'PgSleep'";
    eventually(30, "the decision to stall inside its transaction", || async {
        (db.count(stalled).await > 0).then_some(())
    })
    .await;
    process::kill9(&mut worker).await;
    eventually(30, "the killed worker's transaction to be rolled back", || async {
        (db.count(stalled).await == 0).then_some(())
    })
    .await;
    assert_eq!(db.count(legs_jobs).await, 0, "killed before the commit: none of its jobs exist");
    assert_eq!(store.call(session).await.unwrap().unwrap().state, CallState::Ringing, "nor its state");

    // Without the stall, another process decides (the killed worker's job returns after the
    // orphan window) and is killed as soon as the decision committed: its follow-ups are there.
    db.exec("DROP TRIGGER stall ON calls").await;
    let mut worker = process::spawn(&db.url, &["worker", "--pool", "webhooks"], &env);
    eventually(60, "the answer decided by another worker", || async {
        (store.call(session).await.ok()??.state == CallState::Answered).then_some(())
    })
    .await;
    process::kill9(&mut worker).await;
    let follow_ups = db.count(legs_jobs).await;
    assert!(follow_ups >= 2, "answer and bridge committed with the decision ({follow_ups})");

    // A `legs` worker elsewhere runs them against Telnyx (the simulator).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stop = fleet_platform::shutdown::CancellationToken::new();
    let sim = Simulator::start(SimConfig::new("http://127.0.0.1:9/webhooks/telnyx"), listener, stop.clone())
        .await
        .unwrap();
    let base = sim.telnyx_api_base();
    let telnyx =
        [("CALLFLEET_SECRET_KEY", SECRET), ("TELNYX_API_KEY", "k"), ("TELNYX_API_BASE", base.as_str())];
    let mut legs = process::spawn(&db.url, &["worker", "--pool", "legs"], &telnyx);
    eventually(60, "the follow-up commands sent by another process", || async {
        let ops: Vec<String> = sim.requests().into_iter().map(|r| r.operation).collect();
        // (The simulator never saw this parent, so after the answer it refuses the rest.)
        ops.iter().any(|o| o == "answer").then_some(())
    })
    .await;
    process::kill9(&mut legs).await;
    stop.cancel();
}

/// Issue 11: a worker SIGKILLed between "winner decided" and "other legs hung up". Process A
/// decides the answer and sends the hangups of the two other legs, which the simulator holds
/// without applying them (a Telnyx that has not answered yet); A is killed there, its hangup
/// jobs `Running` under its name. Process B finishes them: with apalis's orphan window set to an
/// hour, only the liveness rescue (`fleet_store::liveness`) can return them to the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_after_the_winner_was_decided_is_finished_by_another() {
    use std::time::{Duration, Instant};

    use fleet_sim::{Fault, RingBehaviour};
    use fleet_store::OrgSettings;

    use crate::support::calls::CallEnv;

    let slow = [("CALLFLEET_ORPHAN_AFTER_SECS", "3600"), ("CALLFLEET_TELNYX_CALLS_TIMEOUT_MS", "60000")];
    let env = CallEnv::start_for_processes(Engine::Postgres, &slow, |_| {}).await;
    let vars: Vec<(&str, &str)> = env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let db_url = env.fleet.test_db.url.clone();
    let mut a = process::spawn(&db_url, &["worker", "--pool", "all"], &vars);

    env.org("o1", OrgSettings::default()).await;
    env.user("u1", &["o1"], false).await;
    env.number("+13125550199", "o1", Some("u1"), 30).await;
    let answer = RingBehaviour::Answer { after: Duration::from_millis(500) };
    env.phone("d1", "u1", "o1", "android", true, answer).await;
    env.phone("d2", "u1", "o1", "android", true, RingBehaviour::Never).await;
    env.phone("d3", "u1", "o1", "ios", true, RingBehaviour::Never).await;
    let hangups = |status: u16| env.requests("hangup").into_iter().filter(move |r| r.status == status);
    env.sim.inject(Fault::ApiTimeout {
        operation: Some("hangup".into()),
        delay: Duration::from_secs(60),
        apply: false,
        count: 2,
    });

    let placed = env.call_from("+17735550101", "+13125550199");
    eventually(60, "A to send both hangups, held by Telnyx", || async {
        (hangups(503).count() == 2).then_some(())
    })
    .await;
    let session = placed.call_session_id.clone();
    assert_eq!(env.call(&session).await.state, CallState::Answered, "the winner was decided");

    let mut b = process::spawn(&db_url, &["worker", "--pool", "all"], &vars);
    let locks = format!(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = {} AND objsubid = 2
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        fleet_store::liveness::PROCESS_LOCK_CLASS
    );
    let db = &env.fleet.test_db;
    eventually(30, "B to hold its process lock", || async { (db.count(&locks).await == 2).then_some(()) })
        .await;

    process::kill9(&mut a).await;
    let killed = Instant::now();
    eventually(30, "B to hang up the two other legs", || async { (hangups(200).count() >= 2).then_some(()) })
        .await;
    let took = killed.elapsed();
    eprintln!("killed → other legs hung up by another process: {took:?}");
    let held: Vec<String> = hangups(503).filter_map(|r| r.target).collect();
    for ccid in &held {
        let leg = env.sim.call(ccid).expect("a leg the simulator knows");
        assert_eq!(leg.state, fleet_sim::LegState::Ended, "leg {ccid} still rings");
    }
    // Well inside an orphan window of an hour: nothing but the liveness rescue returned them.
    assert!(took < Duration::from_secs(30));
    process::kill9(&mut b).await;
}
