//! When nobody answers over SIP right away: voicemail, devices woken by pushes, late
//! registrations, and calls that go on for hours.

use std::time::Duration;

use fleet_domain::call::{CallState, EndReason};
use fleet_sim::{DeviceBehaviour, LegDirection, LegState, RingBehaviour};
use fleet_store::{Engine, OrgSettings};

use crate::calls::{
    CALLER, NUMBER, answer_after, assert_events_once, assert_no_anomaly, env_with_timeout, env_with_user,
    leg_ccid, sim_leg,
};
use crate::on_both;
use crate::support::calls::CallEnv;

on_both! {
    no_devices_goes_to_voicemail => no_devices_goes_to_voicemail_postgres, no_devices_goes_to_voicemail_sqlite;
    offline_devices_are_pushed_redialed_then_voicemail => offline_devices_are_pushed_redialed_then_voicemail_postgres, offline_devices_are_pushed_redialed_then_voicemail_sqlite;
    a_device_registering_after_its_push_can_still_win => a_device_registering_after_its_push_can_still_win_postgres, a_device_registering_after_its_push_can_still_win_sqlite;
    a_three_hour_call_still_ends_both_sides => a_three_hour_call_still_ends_both_sides_postgres, a_three_hour_call_still_ends_both_sides_sqlite;
    a_caller_gone_when_voicemail_answers_ends_the_call => a_caller_gone_when_voicemail_answers_ends_the_call_postgres, a_caller_gone_when_voicemail_answers_ends_the_call_sqlite;
}

/// The caller hangs up just as voicemail answers: Telnyx refuses the answer with `90018`. That is
/// news for the call (it ends, once), not a failure for an operator (no dead job), and nothing
/// else is sent to the gone leg.
async fn a_caller_gone_when_voicemail_answers_ends_the_call(engine: Engine) {
    let env = CallEnv::start(engine).await;
    env.org("o1", OrgSettings::default()).await;
    env.user("u1", &["o1"], false).await;
    env.number(NUMBER, "o1", Some("u1"), 30).await;
    env.sim.inject(fleet_sim::Fault::ApiError {
        operation: Some("answer".into()),
        status: 422,
        code: Some("90018".into()),
        count: 1_000,
    });
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(10)).await;

    let session = &placed.call_session_id;
    let call = env.call(session).await;
    assert_eq!(call.state, CallState::Ended, "{call:#?}");
    assert!(env.store().dead_jobs(None, 10).await.unwrap().is_empty(), "no dead job");
    assert!(env.requests("speak").is_empty() && env.requests("record_start").is_empty());
    assert_eq!(env.events("call.ended", session).len(), 1);
}

const GREETING: &str = "You reached Acme. Leave a message.";

/// The voicemail sequence on the caller's leg: answered, the greeting spoken, and only after it
/// ended a one-channel recording of at most `max_secs`.
fn assert_voicemail(env: &CallEnv, parent: &str, greeting: &str, max_secs: u32) {
    let on_parent = |op: &str| -> Vec<_> {
        env.requests(op).into_iter().filter(|r| r.target.as_deref() == Some(parent)).collect()
    };
    let answers: std::collections::BTreeSet<String> =
        on_parent("answer").iter().map(|r| r.body["command_id"].to_string()).collect();
    assert_eq!(answers.len(), 1, "the caller is answered once (repeats carry its command_id)");
    let speak = on_parent("speak");
    assert_eq!(speak.len(), 1, "{speak:#?}");
    assert_eq!(speak[0].body["payload"], greeting);
    let record = on_parent("record_start");
    assert_eq!(record.len(), 1, "{record:#?}");
    assert_eq!(record[0].body["channels"], "single");
    assert_eq!(record[0].body["max_length"], max_secs);
    let speak_ended = env
        .sim
        .webhooks()
        .into_iter()
        .find(|w| w.event_type == "call.speak.ended" && w.call_control_id.as_deref() == Some(parent))
        .expect("the greeting ended");
    assert!(record[0].seq > speak_ended.seq, "recording starts after the greeting ended");
}

async fn no_devices_goes_to_voicemail(engine: Engine) {
    let env = CallEnv::start(engine).await;
    let settings = OrgSettings {
        voicemail_greeting: Some(GREETING.into()),
        voicemail_max_secs: Some(45),
        ..OrgSettings::default()
    };
    env.org("o1", settings).await;
    env.user("u1", &["o1"], false).await;
    env.number(NUMBER, "o1", Some("u1"), 30).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(10)).await;

    let session = &placed.call_session_id;
    let call = env.call(session).await;
    assert_eq!(call.state, CallState::Voicemail, "{call:#?}");
    assert_eq!(call.end_reason, Some(EndReason::NoDevices));
    assert!(env.requests("dial").is_empty());
    assert_voicemail(&env, &placed.call_control_id, GREETING, 45);
    assert_eq!(env.events("voicemail.started", session).len(), 1);
    assert_eq!(env.events("voicemail.started", session)[0].body["data"]["reason"], "no_devices");
    assert_no_anomaly(&env);
}

/// The virtual times (ms) at which `device` was dialed, in order.
fn dial_times(env: &CallEnv, sip: &str) -> Vec<u64> {
    env.requests("dial").into_iter().filter(|r| r.body["to"] == sip).map(|r| r.at_ms).collect()
}

async fn offline_devices_are_pushed_redialed_then_voicemail(engine: Engine) {
    let env = env_with_timeout(engine, 8).await;
    env.phone("android-1", "u1", "o1", "android", false, RingBehaviour::Never).await;
    env.phone("ios-1", "u1", "o1", "ios", false, RingBehaviour::Never).await;
    let placed = env.call_from(CALLER, NUMBER);
    // The ring (8 s), then the default greeting (about 5 s) and the recording.
    env.run_for(Duration::from_secs(20)).await;

    let session = &placed.call_session_id;
    let pushes = env.sim.pushes();
    for device in ["android-1", "ios-1"] {
        assert!(
            pushes.iter().any(|p| p.device_id.as_deref() == Some(device)
                && p.push_type.as_deref() == Some("incoming_call")
                && p.call_session_id.as_deref() == Some(session.as_str())),
            "{device} got its incoming_call: {pushes:#?}"
        );
    }
    let dialed: std::collections::BTreeSet<String> =
        env.requests("dial").iter().map(|r| r.body["to"].as_str().unwrap().to_owned()).collect();
    assert_eq!(dialed.len(), 2, "{dialed:?}");
    let ring_ends_ms = placed.starts_at.as_millis() as u64 + 8_000;
    for sip in &dialed {
        let times = dial_times(&env, sip);
        assert!(times.len() >= 3, "{sip} redialed through the ring: {times:?}");
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!((2_000..3_000).contains(&gap), "{sip} redialed about every 2 s: {times:?}");
        }
        assert!(times.iter().all(|t| *t < ring_ends_ms), "no dial after the ring: {times:?}");
    }
    let call = env.call(session).await;
    assert_eq!(call.state, CallState::Voicemail, "{call:#?}");
    assert_eq!(call.end_reason, Some(EndReason::NoAnswer));
    assert!(call.legs.iter().all(|l| !l.is_live()), "{call:#?}");
    assert_voicemail(&env, &placed.call_control_id, fleet_domain::call::DEFAULT_GREETING, 120);
    assert_eq!(env.events("voicemail.started", session).len(), 1);

    // The caller leaves a message and hangs up: the woken phones are dismissed.
    env.sim.remote_hangup(&placed.call_control_id).unwrap();
    env.run_for(Duration::from_secs(5)).await;
    assert_eq!(env.call(session).await.state, CallState::Ended);
    assert_events_once(&env);
    assert_no_anomaly(&env);
}

async fn a_device_registering_after_its_push_can_still_win(engine: Engine) {
    let env = env_with_user(engine).await;
    env.phone("sleeper", "u1", "o1", "ios", false, answer_after(500)).await;
    let late = DeviceBehaviour { on_ring: None, register_after_push: Some(Duration::from_millis(1_500)) };
    env.sim.set_device_behaviour("sleeper", late).unwrap();
    env.phone("desk", "u1", "o1", "android", true, RingBehaviour::Never).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(8)).await;

    let call = env.call(&placed.call_session_id).await;
    assert_eq!(call.state, CallState::Answered, "{call:#?}");
    assert_eq!(call.answered_by_device_id(), Some("sleeper"));
    let winner = call.winner.clone().unwrap();
    assert!(winner.attempt >= 2, "won on a redial after registering: {call:#?}");
    let bridges = env.requests("bridge");
    assert_eq!(bridges.len(), 1, "{bridges:#?}");
    assert_eq!(bridges[0].body["call_control_id"], leg_ccid(&call, "sleeper").as_str());
    let desk = call.legs.iter().find(|l| l.id.device_id == "desk").unwrap();
    assert_eq!(desk.hangup_reason, Some(EndReason::AnsweredElsewhere));
    assert_eq!(env.events("call.answered", &placed.call_session_id).len(), 1);
    assert_no_anomaly(&env);
}

async fn a_three_hour_call_still_ends_both_sides(engine: Engine) {
    let env = env_with_user(engine).await;
    env.phone("android-1", "u1", "o1", "android", true, answer_after(1_000)).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(5)).await;
    let session = &placed.call_session_id;
    let call = env.call(session).await;
    assert_eq!(call.state, CallState::Answered, "{call:#?}");
    assert!(call.bridged, "{call:#?}");

    env.run_for(Duration::from_secs(3 * 3600)).await;
    let call = env.call(session).await;
    assert_eq!(call.state, CallState::Answered, "still talking after 3 h: {call:#?}");
    // The phone hangs up: the caller's side is ended by the fleet.
    let device_leg = leg_ccid(&call, "android-1");
    env.sim.remote_hangup(&device_leg).unwrap();
    env.run_for(Duration::from_secs(5)).await;

    let call = env.call(session).await;
    assert_eq!(call.state, CallState::Ended, "{call:#?}");
    assert_eq!(call.end_reason, Some(EndReason::Completed));
    let parent = sim_leg(&env, &placed.call_control_id);
    assert_eq!(parent.state, LegState::Ended, "the caller's side ended: {parent:#?}");
    assert_eq!(parent.direction, LegDirection::Incoming);
    let ended = env.events("call.ended", session);
    assert_eq!(ended.len(), 1, "{ended:#?}");
    let duration = ended[0].body["data"]["duration_secs"].as_u64().unwrap();
    assert!((10_795..=10_815).contains(&duration), "duration ≈ 3 h: {duration}");
    assert_events_once(&env);
    assert_no_anomaly(&env);
}
