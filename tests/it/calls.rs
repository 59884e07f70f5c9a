//! The call engine end to end, against the simulator, on both engines: inbound routing,
//! simultaneous ring, first answer wins, nobody left ringing, and the races around them.

use std::time::Duration;

use fleet_domain::call::{Call, CallState, EndReason};
use fleet_sim::{CallView, LegState, RingBehaviour};
use fleet_store::{Engine, OrgSettings};

use crate::on_both;
use crate::support::calls::CallEnv;

on_both! {
    two_phones_ring_one_answers_the_other_is_dismissed => two_phones_ring_one_answers_the_other_is_dismissed_postgres, two_phones_ring_one_answers_the_other_is_dismissed_sqlite;
    two_answers_within_a_millisecond_make_one_bridge => two_answers_within_a_millisecond_make_one_bridge_postgres, two_answers_within_a_millisecond_make_one_bridge_sqlite;
    a_decline_does_not_stop_the_others_and_the_answerer_wins => a_decline_does_not_stop_the_others_and_the_answerer_wins_postgres, a_decline_does_not_stop_the_others_and_the_answerer_wins_sqlite;
    caller_cancel_after_three_seconds_dismisses_everyone => caller_cancel_after_three_seconds_dismisses_everyone_postgres, caller_cancel_after_three_seconds_dismisses_everyone_sqlite;
}

pub(crate) const NUMBER: &str = "+13125550100";
pub(crate) const CALLER: &str = "+13125559876";

pub(crate) fn answer_after(ms: u64) -> RingBehaviour {
    RingBehaviour::Answer { after: Duration::from_millis(ms) }
}

pub(crate) async fn env_with_user(engine: Engine) -> CallEnv {
    env_with_timeout(engine, 30).await
}

/// A fleet with org `o1`, user `u1` and [`NUMBER`] ringing `u1` for `ring_timeout_secs`.
pub(crate) async fn env_with_timeout(engine: Engine, ring_timeout_secs: u32) -> CallEnv {
    let env = CallEnv::start(engine).await;
    env.org("o1", OrgSettings::default()).await;
    env.user("u1", &["o1"], false).await;
    env.number(NUMBER, "o1", Some("u1"), ring_timeout_secs).await;
    env
}

/// The `call_control_id` of the stored leg of `device` (its last attempt).
pub(crate) fn leg_ccid(call: &Call, device: &str) -> String {
    call.legs
        .iter()
        .rev()
        .find(|l| l.id.device_id == device)
        .and_then(|l| l.call_control_id.clone())
        .unwrap_or_else(|| panic!("a leg of {device} with a known id: {call:#?}"))
}

/// The simulator's view of one leg.
pub(crate) fn sim_leg(env: &CallEnv, ccid: &str) -> CallView {
    env.sim.call(ccid).unwrap_or_else(|| panic!("the simulator knows leg {ccid}"))
}

/// Nobody is left ringing and the simulator saw no race anomaly (undismissed device, leg
/// ringing after the decision, double bridge, abandoned webhook…).
pub(crate) fn assert_no_anomaly(env: &CallEnv) {
    let ringing: Vec<_> = env.sim.calls().into_iter().filter(|c| c.state == LegState::Ringing).collect();
    assert!(ringing.is_empty(), "legs still ringing: {ringing:#?}");
    let anomalies = env.sim.anomalies();
    assert!(
        anomalies.is_empty(),
        "{anomalies:#?}\npushes of those calls: {:#?}",
        pushes_of_anomalous_calls(env)
    );
}

/// Each call the simulator saw an anomaly in, with the pushes its devices got (sim ms, type,
/// device): what a failing anomaly assertion shows.
pub(crate) fn pushes_of_anomalous_calls(env: &CallEnv) -> Vec<(String, Vec<String>)> {
    let sessions: std::collections::BTreeSet<String> =
        env.sim.anomalies().into_iter().filter_map(|a| a.call_session_id).collect();
    let pushes = env.sim.pushes();
    sessions
        .into_iter()
        .map(|session| {
            let got = pushes
                .iter()
                .filter(|p| p.call_session_id.as_deref() == Some(session.as_str()))
                .map(|p| format!("{} {:?} {:?}", p.at_ms, p.push_type, p.device_id))
                .collect();
            (session, got)
        })
        .collect()
}

/// No app event was received twice (same `webhook-id`), and each (type, call) came once —
/// except `call.log.updated`, which comes once per recording and stage (stored, transcribed).
pub(crate) fn assert_events_once(env: &CallEnv) {
    let events = env.sim.app_events();
    assert!(events.iter().all(|e| e.duplicates == 0), "an event delivered twice: {events:#?}");
    let mut seen = std::collections::BTreeSet::new();
    for e in events.iter().filter(|e| once_per_call(e.event_type.as_deref())) {
        assert!(seen.insert((e.event_type.clone(), e.call_session_id.clone())), "{e:#?} twice");
    }
}

/// Whether an app event type comes at most once per call.
pub(crate) fn once_per_call(event_type: Option<&str>) -> bool {
    event_type != Some("call.log.updated")
}

async fn two_phones_ring_one_answers_the_other_is_dismissed(engine: Engine) {
    let env = env_with_user(engine).await;
    env.phone("android-1", "u1", "o1", "android", true, answer_after(1_500)).await;
    env.phone("ios-1", "u1", "o1", "ios", true, RingBehaviour::Never).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(5)).await;

    let call = env.call(&placed.call_session_id).await;
    assert_eq!(call.state, CallState::Answered, "{call:#?}");
    assert_eq!(call.answered_by_device_id(), Some("android-1"));
    assert_eq!(env.requests("dial").len(), 2, "both phones dialed");
    assert_eq!(env.requests("bridge").len(), 1, "one bridge");
    assert_eq!(env.events("call.answered", &placed.call_session_id).len(), 1);
    assert_eq!(env.events("call.incoming", &placed.call_session_id).len(), 1);
    let ios_leg = call.legs.iter().find(|l| l.id.device_id == "ios-1").unwrap();
    assert_eq!(ios_leg.hangup_reason, Some(EndReason::AnsweredElsewhere));

    // The caller hangs up after a while: the answering phone's leg is ended too.
    env.sim.remote_hangup(&placed.call_control_id).unwrap();
    env.run_for(Duration::from_secs(3)).await;
    let call = env.call(&placed.call_session_id).await;
    assert_eq!(call.state, CallState::Ended, "{call:#?}");
    assert_eq!(env.events("call.ended", &placed.call_session_id).len(), 1);
    assert!(env.sim.anomalies().is_empty(), "{:#?}", env.sim.anomalies());
}

async fn two_answers_within_a_millisecond_make_one_bridge(engine: Engine) {
    let env = env_with_user(engine).await;
    env.phone("android-1", "u1", "o1", "android", true, answer_after(1_000)).await;
    env.phone("android-2", "u1", "o1", "android", true, answer_after(1_000)).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(5)).await;

    let session = &placed.call_session_id;
    let call = env.call(session).await;
    assert_eq!(call.state, CallState::Answered, "{call:#?}");
    let winner = call.answered_by_device_id().expect("a winner").to_owned();
    let loser = if winner == "android-1" { "android-2" } else { "android-1" };
    let bridges = env.requests("bridge");
    assert_eq!(bridges.len(), 1, "one bridge: {bridges:#?}");
    assert_eq!(bridges[0].target.as_deref(), Some(placed.call_control_id.as_str()));
    assert_eq!(
        bridges[0].body["call_control_id"],
        leg_ccid(&call, &winner).as_str(),
        "bridged with the winner"
    );
    let loser_leg = sim_leg(&env, &leg_ccid(&call, loser));
    assert_eq!(loser_leg.state, LegState::Ended, "the late answer is hung up: {loser_leg:#?}");
    assert_eq!(loser_leg.bridged_with, None);
    assert_eq!(sim_leg(&env, &leg_ccid(&call, &winner)).state, LegState::Answered);
    let stored_loser = call.legs.iter().find(|l| l.id.device_id == loser).unwrap();
    assert_eq!(stored_loser.hangup_reason, Some(EndReason::AnsweredElsewhere));
    let answered = env.events("call.answered", session);
    assert_eq!(answered.len(), 1, "{answered:#?}");
    assert_eq!(answered[0].body["data"]["device_id"], winner.as_str());
    assert_events_once(&env);
    assert_no_anomaly(&env);
}

async fn a_decline_does_not_stop_the_others_and_the_answerer_wins(engine: Engine) {
    let env = env_with_user(engine).await;
    let decline = RingBehaviour::Decline { after: Duration::from_millis(500) };
    env.phone("decliner", "u1", "o1", "android", true, decline).await;
    env.phone("answerer", "u1", "o1", "ios", true, answer_after(2_000)).await;
    env.phone("ringer", "u1", "o1", "android", true, RingBehaviour::Never).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(6)).await;

    let call = env.call(&placed.call_session_id).await;
    assert_eq!(call.state, CallState::Answered, "{call:#?}");
    assert_eq!(call.answered_by_device_id(), Some("answerer"));
    let bridges = env.requests("bridge");
    assert_eq!(bridges.len(), 1, "{bridges:#?}");
    assert_eq!(bridges[0].body["call_control_id"], leg_ccid(&call, "answerer").as_str());
    let ringer = call.legs.iter().find(|l| l.id.device_id == "ringer").unwrap();
    assert_eq!(ringer.hangup_reason, Some(EndReason::AnsweredElsewhere), "{call:#?}");
    assert_eq!(sim_leg(&env, &leg_ccid(&call, "ringer")).state, LegState::Ended);
    let decliner: Vec<_> = call.legs.iter().filter(|l| l.id.device_id == "decliner").collect();
    assert_eq!(decliner.len(), 1, "a decline is not redialed: {call:#?}");
    assert_eq!(decliner[0].hangup_cause.as_deref(), Some("call_rejected"));
    assert_eq!(env.events("call.answered", &placed.call_session_id).len(), 1);
    assert_no_anomaly(&env);
}

async fn caller_cancel_after_three_seconds_dismisses_everyone(engine: Engine) {
    let env = env_with_user(engine).await;
    env.phone("android-1", "u1", "o1", "android", true, RingBehaviour::Never).await;
    env.phone("ios-1", "u1", "o1", "ios", true, RingBehaviour::Never).await;
    // A device whose SIP CANCEL is lost: only its call_ended push can dismiss it.
    env.phone("android-deaf", "u1", "o1", "android", true, RingBehaviour::IgnoreHangup).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(3)).await;
    let session = &placed.call_session_id;
    assert_eq!(env.call(session).await.state, CallState::Ringing);

    env.sim.remote_hangup(&placed.call_control_id).unwrap();
    // Past the simulator's anomaly grace: undismissed devices and ringing legs are reported.
    env.run_for(Duration::from_secs(5)).await;

    let call = env.call(session).await;
    assert_eq!(call.state, CallState::Ended, "{call:#?}");
    assert_eq!(call.end_reason, Some(EndReason::CallerCancelled));
    assert_eq!(call.legs.len(), 3, "{call:#?}");
    for leg in &call.legs {
        assert_eq!(leg.hangup_reason, Some(EndReason::CallerCancelled), "{leg:#?}");
        let ccid = leg.call_control_id.as_deref().expect("known leg id");
        assert_eq!(sim_leg(&env, ccid).state, LegState::Ended, "{leg:#?}");
    }
    let ended: Vec<_> =
        env.sim.pushes().into_iter().filter(|p| p.push_type.as_deref() == Some("call_ended")).collect();
    for device in ["android-1", "android-deaf"] {
        assert!(ended.iter().any(|p| p.device_id.as_deref() == Some(device)), "{device}: {ended:#?}");
    }
    assert_eq!(env.events("call.missed", session).len(), 1);
    assert_eq!(env.events("call.answered", session).len(), 0);
    assert_events_once(&env);
    assert_no_anomaly(&env);
}
