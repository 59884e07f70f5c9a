//! Direct WebRTC calls (a browser dialing the PSTN on its own, not through callfleet's routing),
//! against the simulator: followed and logged from their webhooks; recorded when the browser
//! asks `POST /v1/calls/{call_control_id}/recording`, also when it asks before callfleet has seen
//! the call and before the call is answered; refused clearly (and nothing kept) for an unknown,
//! ended or callfleet-routed call and for bad input.

use std::time::Duration;

use fleet_jobs::Pool;
use fleet_sim::{Caller, CallerScript, PlacedCall, RingBehaviour};
use fleet_store::{Engine, OrgSettings, RequestStatus, TranscriptStatus};
use serde_json::{Value, json};

use crate::calls::{CALLER, NUMBER, answer_after, assert_no_anomaly};
use crate::on_both;
use crate::recordings::sha256_hex;
use crate::support::calls::CallEnv;

on_both! {
    a_direct_call_asked_for_before_it_is_seen_or_answered_is_recorded_and_logged => a_direct_call_asked_for_before_it_is_seen_or_answered_is_recorded_and_logged_postgres, a_direct_call_asked_for_before_it_is_seen_or_answered_is_recorded_and_logged_sqlite;
}

const TOKEN: &str = "direct-recordings-test-token";
/// The PSTN number the browser dials.
const CALLEE: &str = "+13125557777";

async fn env(engine: Engine, held_back: &[Pool]) -> CallEnv {
    let env = CallEnv::start_without(engine, &[("CALLFLEET_API_TOKEN", TOKEN)], held_back).await;
    env.org("o1", OrgSettings::default()).await;
    env.user("u1", &["o1"], false).await;
    env.number(NUMBER, "o1", Some("u1"), 30).await;
    env.phone("web-1", "u1", "o1", "web", true, RingBehaviour::Never).await;
    env
}

/// The browser of `web-1` dials [`CALLEE`], who answers `answer_ms` later; the browser hangs
/// up `hangup_ms` after the start.
fn direct_call(env: &CallEnv, answer_ms: u64, hangup_ms: u64) -> PlacedCall {
    env.sim.set_pstn_behaviour(CALLEE, answer_after(answer_ms));
    env.sim
        .place_call(CallerScript {
            from: Caller::Webrtc("web-1".into()),
            to: CALLEE.into(),
            at: Duration::ZERO,
            hangup_after: Some(Duration::from_millis(hangup_ms)),
        })
        .unwrap()
}

/// The browser's SIP user, as it knows it from its login token.
async fn sip_user(env: &CallEnv) -> String {
    let device = env.store().device("web-1").await.unwrap().expect("the browser is registered");
    device.credential.and_then(|c| c.sip_username).expect("its credential is active")
}

async fn ask(env: &CallEnv, ccid: &str, body: Value) -> (u16, Value) {
    let res = env
        .fleet
        .http
        .post(env.fleet.url(&format!("/v1/calls/{ccid}/recording")))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn a_direct_call_asked_for_before_it_is_seen_or_answered_is_recorded_and_logged(engine: Engine) {
    // The webhooks pool is held back: callfleet has seen nothing of the call when it is asked.
    let env = env(engine, &[Pool::Webhooks]).await;
    let from = format!("sip:{}@sip.telnyx.com", sip_user(&env).await);
    let placed = direct_call(&env, 5_000, 25_000);
    env.run_for(Duration::from_secs(3)).await;
    let body = json!({"format": "mp3", "channels": "dual", "from": from, "to": CALLEE});
    let (status, request) = ask(&env, &placed.call_control_id, body.clone()).await;
    assert_eq!(status, 202, "{request}");
    assert_eq!((request["status"].as_str(), request["org_id"].as_str()), (Some("pending"), Some("o1")));
    let (again, repeat) = ask(&env, &placed.call_control_id, body).await;
    assert_eq!((again, repeat["status"].as_str()), (200, Some("pending")), "a repeat changes nothing");
    env.run_for(Duration::from_secs(1)).await;
    env.fleet.start_workers(&[Pool::Webhooks]);
    env.run_for(Duration::from_secs(50)).await;

    // Telnyx refused record_start until the answer, then accepted it once (one command id).
    let starts = env.requests("record_start");
    let accepted: Vec<_> = starts.iter().filter(|r| r.status == 200).collect();
    assert!(starts.iter().all(|r| r.target.as_deref() == Some(placed.call_control_id.as_str())));
    assert!(starts.iter().any(|r| r.status == 422), "asked before the answer: {starts:#?}");
    assert!(!accepted.is_empty() && accepted.iter().all(|r| r.at_ms >= 5_000), "{starts:#?}");
    let ids: std::collections::HashSet<_> = starts.iter().map(|r| r.body["command_id"].to_string()).collect();
    assert_eq!(ids.len(), 1, "every attempt is the same command: {starts:#?}");
    let request = env.store().recording_request(&placed.call_control_id).await.unwrap().unwrap();
    assert_eq!(request.status, RequestStatus::Started, "{request:#?}");

    // The recording went through the pipeline, under the browser's org.
    let recordings = env.store().call_recordings(&placed.call_session_id).await.unwrap();
    assert_eq!(recordings.len(), 1, "{recordings:#?}");
    let rec = &recordings[0];
    assert_eq!(rec.sha256, sha256_hex(&fleet_sim::recording_bytes("mp3", "dual")));
    assert!(rec.object_key.starts_with("recordings/o1/"), "{}", rec.object_key);
    assert_eq!(rec.transcript_status, TranscriptStatus::Done);

    // The call is logged from its webhooks: direct, answered by the far end, from the browser.
    let (log, entry) = env.store().call_log(&placed.call_session_id).await.unwrap().expect("logged");
    assert_eq!((log.direction.as_str(), log.status.as_str()), ("direct", "answered"), "{log:#?}");
    assert_eq!((log.device_id.as_deref(), log.user_id.as_deref()), (Some("web-1"), Some("u1")));
    assert!((19..=21).contains(&entry.billable_secs), "{entry:#?}");
    assert_eq!(env.events("call.log", &placed.call_session_id).len(), 1);
    let view = env.fleet.api_json(&format!("/v1/calls/{}", placed.call_session_id), TOKEN).await;
    assert_eq!(
        (view["direction"].as_str(), view["state"].as_str()),
        (Some("direct"), Some("ended")),
        "{view:#}"
    );
    assert_eq!(view["recordings"][0]["recording_id"], rec.id.as_str(), "{view:#}");
    assert_no_anomaly(&env);
}

#[tokio::test]
async fn refused_recording_requests_say_why_and_keep_nothing() {
    // Webhooks held back at first: callfleet knows the live call only through Telnyx.
    let env = env(Engine::Sqlite, &[Pool::Webhooks]).await;
    let from = format!("sip:{}@sip.telnyx.com", sip_user(&env).await);
    let ok_body = json!({"from": from, "to": CALLEE});

    // Bad input, or a caller none of ours: 400 / 422, nothing kept.
    let live = direct_call(&env, 60_000, 90_000);
    env.run_for(Duration::from_secs(1)).await;
    for (body, reason) in [
        (json!({"format": "ogg", "from": from, "to": CALLEE}), "invalid_field"),
        (json!({"channels": "stereo", "from": from, "to": CALLEE}), "invalid_field"),
        (json!({"from": "", "to": CALLEE}), "invalid_field"),
        (json!({"to": CALLEE}), "invalid_body"),
        (json!({"from": from, "to": CALLEE, "extra": 1}), "invalid_body"),
    ] {
        let (status, answer) = ask(&env, &live.call_control_id, body.clone()).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some(reason)), "{body}: {answer}");
    }
    let (status, answer) =
        ask(&env, &live.call_control_id, json!({"from": "+13125550000", "to": CALLEE})).await;
    assert_eq!((status, answer["error"].as_str()), (422, Some("unknown_party")), "{answer}");
    assert!(env.store().recording_request(&live.call_control_id).await.unwrap().is_none());

    // A call neither callfleet nor Telnyx knows: 404.
    let (status, answer) = ask(&env, "v3:no-such-call", ok_body.clone()).await;
    assert_eq!((status, answer["error"].as_str()), (404, Some("unknown_call")), "{answer}");
    env.fleet.start_workers(&[Pool::Webhooks]);

    // A direct call that already ended (and is logged, though never recorded): 409.
    let short = direct_call(&env, 1_000, 4_000);
    env.run_for(Duration::from_secs(8)).await;
    let (status, answer) = ask(&env, &short.call_control_id, ok_body.clone()).await;
    assert_eq!((status, answer["error"].as_str()), (409, Some("call_ended")), "{answer}");
    let (log, entry) = env.store().call_log(&short.call_session_id).await.unwrap().expect("logged");
    assert_eq!((log.direction.as_str(), log.status.as_str(), entry.billable_secs), ("direct", "answered", 3));

    // A call callfleet routed itself: recorded from its answer, not on request.
    env.phone("android-1", "u1", "o1", "android", true, answer_after(500)).await;
    let routed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(3)).await;
    let (status, answer) = ask(&env, &routed.call_control_id, ok_body).await;
    assert_eq!((status, answer["error"].as_str()), (409, Some("recorded_by_callfleet")), "{answer}");
    assert!(env.store().recording_request(&routed.call_control_id).await.unwrap().is_none());
    assert!(
        env.requests("record_start")
            .iter()
            .all(|r| r.target.as_deref() == Some(routed.call_control_id.as_str())),
        "only the routed call is recorded"
    );
}
