//! What arrives at the fleet is not always what it should be: calls in another organization,
//! forged `client_state`, duplicated / failed-over / reordered webhooks, and a bridge that fails.

use std::time::Duration;

use base64::Engine as _;
use fleet_domain::call::{CallState, EndReason};
use fleet_sim::{DeliveryKnobs, Fault, LegDirection, LegState, RingBehaviour};
use fleet_store::{Engine, OrgSettings};
use serde_json::json;

use crate::calls::{
    CALLER, NUMBER, answer_after, assert_events_once, assert_no_anomaly, env_with_user, leg_ccid, sim_leg,
};
use crate::on_both;
use crate::support::calls::CallEnv;

on_both! {
    a_call_to_a_second_org_rings_a_device_of_the_first => a_call_to_a_second_org_rings_a_device_of_the_first_postgres, a_call_to_a_second_org_rings_a_device_of_the_first_sqlite;
    a_forged_client_state_on_an_answer_changes_nothing => a_forged_client_state_on_an_answer_changes_nothing_postgres, a_forged_client_state_on_an_answer_changes_nothing_sqlite;
    duplicated_webhooks_have_one_effect => duplicated_webhooks_have_one_effect_postgres, duplicated_webhooks_have_one_effect_sqlite;
    failed_over_webhooks_have_one_effect => failed_over_webhooks_have_one_effect_postgres, failed_over_webhooks_have_one_effect_sqlite;
    reordered_webhooks_have_one_effect => reordered_webhooks_have_one_effect_postgres, reordered_webhooks_have_one_effect_sqlite;
    a_bridge_failing_twice_is_retried => a_bridge_failing_twice_is_retried_postgres, a_bridge_failing_twice_is_retried_sqlite;
    a_bridge_failing_for_good_ends_both_sides => a_bridge_failing_for_good_ends_both_sides_postgres, a_bridge_failing_for_good_ends_both_sides_sqlite;
}

const SECOND_NUMBER: &str = "+13125550200";

async fn a_call_to_a_second_org_rings_a_device_of_the_first(engine: Engine) {
    let env = CallEnv::start(engine).await;
    env.org("o1", OrgSettings::default()).await;
    env.org("o2", OrgSettings::default()).await;
    env.user("u1", &["o1", "o2"], false).await;
    env.number(SECOND_NUMBER, "o2", Some("u1"), 30).await;
    env.phone("android-1", "u1", "o1", "android", true, answer_after(1_500)).await;
    let placed = env.call_from(CALLER, SECOND_NUMBER);
    env.run_for(Duration::from_secs(5)).await;

    let session = &placed.call_session_id;
    let call = env.call(session).await;
    assert_eq!(call.org_id, "o2");
    assert_eq!(call.state, CallState::Answered, "{call:#?}");
    assert_eq!(call.answered_by_device_id(), Some("android-1"));
    assert_eq!(env.requests("dial").len(), 1);
    assert_eq!(env.requests("bridge").len(), 1);
    let incoming: Vec<_> =
        env.sim.pushes().into_iter().filter(|p| p.push_type.as_deref() == Some("incoming_call")).collect();
    assert_eq!(incoming.len(), 1, "{incoming:#?}");
    let data = serde_json::to_string(&incoming[0].data).unwrap();
    assert!(data.contains("\"o2\""), "the push carries the call's org: {data}");
    assert!(!data.contains("\"o1\""), "and not the device's: {data}");
    for event in ["call.incoming", "call.answered"] {
        let got = env.events(event, session);
        assert_eq!(got.len(), 1, "{event}: {got:#?}");
        assert_eq!(got[0].body["data"]["org_id"], "o2", "{event}");
    }
    assert_no_anomaly(&env);
}

/// Our sealed form with the right fields and a MAC made up by someone without the fleet's key.
fn forged_client_state(session: &str, device: &str) -> String {
    let forged = json!({
        "v": 2, "kind": "ring", "org": "o1", "call": session,
        "leg": format!("{device}/1"), "device": device,
        "mac": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    });
    base64::engine::general_purpose::STANDARD.encode(forged.to_string())
}

async fn a_forged_client_state_on_an_answer_changes_nothing(engine: Engine) {
    let env = env_with_user(engine).await;
    env.phone("android-1", "u1", "o1", "android", true, RingBehaviour::Never).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(2)).await;
    let session = &placed.call_session_id;
    let leg = leg_ccid(&env.call(session).await, "android-1");
    assert_eq!(sim_leg(&env, &leg).state, LegState::Ringing);

    // Whoever controls the leg (a WebRTC client can) swaps its client_state for a forgery, then
    // answers: Telnyx signs the resulting `call.answered` like any other.
    let url = format!("{}/calls/{leg}/actions/client_state_update", env.sim.telnyx_api_base());
    let status = reqwest::Client::new()
        .put(url)
        .bearer_auth("test-telnyx-key")
        .json(&json!({ "client_state": forged_client_state(session, "android-1") }))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    env.sim.remote_answer(&leg).unwrap();
    env.run_for(Duration::from_secs(2)).await;

    let answered = env
        .sim
        .webhooks()
        .into_iter()
        .any(|w| w.event_type == "call.answered" && w.call_control_id.as_deref() == Some(leg.as_str()));
    assert!(answered, "the forged answer was delivered");
    let call = env.call(session).await;
    assert_eq!(call.state, CallState::Ringing, "{call:#?}");
    assert_eq!(call.winner, None);
    assert!(env.requests("bridge").is_empty());
    assert_eq!(commands(&env, "answer"), 0, "the caller is not answered");
    assert!(env.events("call.answered", session).is_empty());

    // The caller gives up: the forged leg is hung up like any other.
    env.sim.remote_hangup(&placed.call_control_id).unwrap();
    env.run_for(Duration::from_secs(5)).await;
    let call = env.call(session).await;
    assert_eq!(call.end_reason, Some(EndReason::CallerCancelled), "{call:#?}");
    assert_eq!(sim_leg(&env, &leg).state, LegState::Ended);
}

/// How many distinct commands (`command_id`s) of `operation` the fleet sent.
fn commands(env: &CallEnv, operation: &str) -> usize {
    let ids: std::collections::BTreeSet<String> =
        env.requests(operation).iter().map(|r| r.body["command_id"].to_string()).collect();
    ids.len()
}

/// Two phones, one answers after 1.5 s and later hangs up, under `knobs`: one bridge, each
/// command and event once.
async fn one_effect_under(engine: Engine, knobs: DeliveryKnobs) -> CallEnv {
    let env = env_with_user(engine).await;
    env.sim.set_delivery(knobs);
    let talk = RingBehaviour::AnswerThenDrop {
        after: Duration::from_millis(1_500),
        drop_after: Duration::from_secs(20),
    };
    env.phone("android-1", "u1", "o1", "android", true, talk).await;
    env.phone("ios-1", "u1", "o1", "ios", true, RingBehaviour::Never).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(40)).await;

    let session = &placed.call_session_id;
    let call = env.call(session).await;
    assert_eq!(call.state, CallState::Ended, "{call:#?}");
    assert_eq!(call.end_reason, Some(EndReason::Completed));
    assert_eq!(call.answered_by_device_id(), Some("android-1"));
    assert_eq!(env.requests("bridge").len(), 1, "one bridge");
    assert_eq!(commands(&env, "answer"), 1, "the caller answered once (repeats carry its command_id)");
    assert_eq!(env.requests("dial").len(), 2, "each phone dialed once");
    let mut hung_up: Vec<_> = env.requests("hangup").into_iter().map(|r| r.target).collect();
    let all = hung_up.len();
    hung_up.sort();
    hung_up.dedup();
    assert_eq!(hung_up.len(), all, "each leg hung up once: {:#?}", env.requests("hangup"));
    for event in ["call.incoming", "call.answered", "call.ended"] {
        assert_eq!(env.events(event, session).len(), 1, "{event}");
    }
    assert_events_once(&env);
    assert_no_anomaly(&env);
    env
}

async fn duplicated_webhooks_have_one_effect(engine: Engine) {
    let knobs = DeliveryKnobs { duplicate_rate: 1.0, ..DeliveryKnobs::default() };
    let env = one_effect_under(engine, knobs).await;
    let webhooks = env.sim.webhooks();
    let ids: std::collections::BTreeSet<_> = webhooks.iter().map(|w| &w.event_id).collect();
    assert!(webhooks.len() >= 2 * ids.len(), "every event was delivered twice");
}

async fn failed_over_webhooks_have_one_effect(engine: Engine) {
    let knobs = DeliveryKnobs {
        drop_rate: 0.5,
        retry_delay: Duration::from_millis(200),
        failover_attempts: 20,
        ..DeliveryKnobs::default()
    };
    let env = one_effect_under(engine, knobs).await;
    assert!(env.sim.webhooks().iter().any(|w| w.failover), "some events came through the failover URL");
}

async fn reordered_webhooks_have_one_effect(engine: Engine) {
    let knobs = DeliveryKnobs {
        reorder_rate: 0.5,
        reorder_delay: Duration::from_millis(400),
        duplicate_rate: 0.3,
        ..DeliveryKnobs::default()
    };
    one_effect_under(engine, knobs).await;
}

async fn a_bridge_failing_twice_is_retried(engine: Engine) {
    let env = env_with_user(engine).await;
    env.sim.inject(Fault::ApiError { operation: Some("bridge".into()), status: 500, code: None, count: 2 });
    env.phone("android-1", "u1", "o1", "android", true, answer_after(1_000)).await;
    env.phone("ios-1", "u1", "o1", "ios", true, RingBehaviour::Never).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(10)).await;

    let call = env.call(&placed.call_session_id).await;
    assert_eq!(call.state, CallState::Answered, "{call:#?}");
    assert!(call.bridged, "bridged after two failures: {call:#?}");
    let bridges = env.requests("bridge");
    assert_eq!(bridges.len(), 3, "{bridges:#?}");
    let leg = sim_leg(&env, &leg_ccid(&call, "android-1"));
    assert_eq!(leg.bridged_with.as_deref(), Some(placed.call_control_id.as_str()));
    assert_no_anomaly(&env);
}

async fn a_bridge_failing_for_good_ends_both_sides(engine: Engine) {
    let env = env_with_user(engine).await;
    env.sim.inject(Fault::ApiError {
        operation: Some("bridge".into()),
        status: 500,
        code: None,
        count: 1_000,
    });
    env.phone("android-1", "u1", "o1", "android", true, answer_after(1_000)).await;
    env.phone("ios-1", "u1", "o1", "ios", true, RingBehaviour::Never).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(60)).await;

    let session = &placed.call_session_id;
    let call = env.call(session).await;
    assert_eq!(call.state, CallState::Ended, "{call:#?}");
    assert_eq!(call.end_reason, Some(EndReason::BridgeFailed));
    assert!(env.requests("bridge").len() >= 2, "retried before giving up");
    for view in env.sim.calls() {
        assert_eq!(view.state, LegState::Ended, "{view:#?} {:#?}", env.requests("hangup"));
        assert_eq!(view.bridged_with, None);
    }
    assert!(env.sim.calls().iter().any(|v| v.direction == LegDirection::Incoming));
    let ended = env.events("call.ended", session);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].body["data"]["reason"], "bridge_failed");
    assert_no_anomaly(&env);
}
