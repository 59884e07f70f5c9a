//! Call Control: the inbound → sim-ring → bridge → hangup path, errors, command_id, rate limit.

use std::time::Duration;

use fleet_sim::{Caller, CallerScript, CredentialRef, DevicePlatform, DeviceScript, RingBehaviour};
use serde_json::json;

use crate::support::{CONN, Env, code};

const NUMBER: &str = "+13125550199";
const CALLER: &str = "+13125550101";

async fn credential(env: &Env, name: &str) -> String {
    let (s, v) =
        env.post("/telephony_credentials", json!({"connection_id": "cred-conn", "name": name})).await;
    assert_eq!(s, 201, "{v}");
    v["data"]["sip_username"].as_str().unwrap().to_owned()
}

fn device(id: &str, name: &str, online: bool, on_ring: RingBehaviour) -> DeviceScript {
    DeviceScript {
        id: id.to_owned(),
        platform: DevicePlatform::Android,
        push_token: Some(format!("token-{id}")),
        credential: CredentialRef::Name(name.to_owned()),
        online,
        register_after_push: None,
        on_ring,
    }
}

fn pstn_call(at_ms: u64, hangup_after_ms: Option<u64>) -> CallerScript {
    CallerScript {
        from: Caller::Pstn(CALLER.to_owned()),
        to: NUMBER.to_owned(),
        at: Duration::from_millis(at_ms),
        hangup_after: hangup_after_ms.map(Duration::from_millis),
    }
}

#[tokio::test]
async fn inbound_call_rings_device_bridges_and_hangs_up() {
    let env = Env::start(|_| {}).await;
    env.sim.add_number(NUMBER);
    let user = credential(&env, "alice-phone").await;
    env.sim
        .add_device(device(
            "alice",
            "alice-phone",
            true,
            RingBehaviour::Answer { after: Duration::from_secs(1) },
        ))
        .unwrap();
    let placed = env.sim.place_call(pstn_call(0, Some(30_000))).unwrap();
    env.sim.settle().await;

    let a = placed.call_control_id.clone();
    let init = env.rx.of(&a, "call.initiated");
    assert_eq!(init.len(), 1);
    let p = init[0].payload();
    assert_eq!(p["direction"], "incoming");
    assert_eq!(p["state"], "parked");
    assert_eq!(p["from"], CALLER);
    assert_eq!(p["to"], NUMBER);
    assert_eq!(p["calling_party_type"], "pstn");
    assert!(p["client_state"].is_null());
    assert!(init[0].signature_ok, "signature must verify with the printed key");
    assert_eq!(fleet_sim::public_key_for_seed(1), env.sim.public_key_base64());
    assert_eq!(init[0].body["meta"]["attempt"], 1);
    assert_eq!(init[0].body["meta"]["delivered_to"], env.rx.url.as_str());
    assert_eq!(init[0].body["data"]["record_type"], "event");

    env.act(&a, "answer", json!({"client_state": "YQ=="})).await;
    let b = env.dial(&format!("sip:{user}@sip.telnyx.com"), json!({"link_to": a, "timeout_secs": 30})).await;
    env.sim.settle().await;
    assert_eq!(env.rx.types_for(&a), ["call.initiated", "call.answered"]);
    assert_eq!(env.rx.of(&a, "call.answered")[0].payload()["client_state"], "YQ==");
    let b_init = env.rx.of(&b, "call.initiated");
    assert_eq!(b_init[0].payload()["direction"], "outgoing");
    assert_eq!(
        b_init[0].payload()["call_session_id"],
        placed.call_session_id.as_str(),
        "link_to shares the session"
    );

    env.advance_ms(1_000).await;
    assert_eq!(env.rx.types_for(&b), ["call.initiated", "call.answered"]);
    env.act(&a, "bridge", json!({"call_control_id": b})).await;
    env.sim.settle().await;
    assert_eq!(env.rx.of(&a, "call.bridged").len(), 1);
    assert_eq!(env.rx.of(&b, "call.bridged").len(), 1);

    env.advance_ms(29_000).await;
    let ha = env.rx.of(&a, "call.hangup");
    let hb = env.rx.of(&b, "call.hangup");
    assert_eq!((ha.len(), hb.len()), (1, 1));
    assert_eq!(ha[0].payload()["hangup_cause"], "normal_clearing");
    assert_eq!(ha[0].payload()["hangup_source"], "caller");
    assert_eq!(ha[0].payload()["sip_hangup_cause"], "200");
    assert!(ha[0].payload()["call_quality_stats"].is_object());
    assert_eq!(hb[0].payload()["hangup_cause"], "normal_clearing");
    assert_eq!(hb[0].payload()["hangup_source"], "caller");
    assert!(env.sim.anomalies().is_empty(), "{:?}", env.sim.anomalies());

    let (s, v) = env.get(&format!("/calls/{a}")).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["is_alive"], false);
    assert_eq!(v["data"]["call_duration"], 30);
    crate::conformance::assert_conforms(&env);
}

#[tokio::test]
async fn caller_cancel_ends_the_parked_call_with_originator_cancel() {
    let env = Env::start(|_| {}).await;
    env.sim.add_number(NUMBER);
    let placed = env.sim.place_call(pstn_call(500, Some(3_000))).unwrap();
    env.sim.settle().await;
    assert!(env.rx.got().is_empty(), "the call starts at 500 ms");
    env.advance_ms(3_500).await;
    let h = env.rx.of(&placed.call_control_id, "call.hangup");
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].payload()["hangup_cause"], "originator_cancel");
    assert_eq!(h[0].payload()["hangup_source"], "caller");
    assert_eq!(h[0].payload()["sip_hangup_cause"], "487");
    assert!(h[0].payload().get("call_quality_stats").is_none());
    crate::conformance::assert_conforms(&env);
}

#[tokio::test]
async fn errors_have_telnyx_codes() {
    let env = Env::start(|_| {}).await;
    env.sim.add_number(NUMBER);
    let placed = env.sim.place_call(pstn_call(0, None)).unwrap();
    env.sim.settle().await;
    let a = &placed.call_control_id;

    let unauth = env.http.post(env.url("/calls")).json(&json!({})).send().await.unwrap();
    assert_eq!(unauth.status(), 401);
    let wrong = env.http.post(env.url("/calls")).bearer_auth("other").json(&json!({})).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(code(&wrong.json().await.unwrap()), "10009");

    let (s, v) = env.post("/calls/v3:nope/actions/hangup", json!({})).await;
    assert_eq!((s, code(&v)), (422, "90015"));
    let (s, v) =
        env.post(&format!("/calls/{a}/actions/speak"), json!({"payload": "hi", "voice": "female"})).await;
    assert_eq!((s, code(&v)), (422, "90034"));
    let (s, v) = env
        .post(&format!("/calls/{a}/actions/record_start"), json!({"format": "wav", "channels": "single"}))
        .await;
    assert_eq!((s, code(&v)), (422, "90034"));
    let (s, v) = env.post(&format!("/calls/{a}/actions/reject"), json!({"cause": "NOPE"})).await;
    assert_eq!((s, code(&v)), (422, "10032"));
    env.act(a, "reject", json!({"cause": "USER_BUSY"})).await;
    let (s, v) = env.post(&format!("/calls/{a}/actions/hangup"), json!({})).await;
    assert_eq!((s, code(&v)), (422, "90018"));
    env.sim.settle().await;
    let h = env.rx.of(a, "call.hangup");
    assert_eq!(h[0].payload()["hangup_cause"], "user_busy");

    let (s, v) = env.post("/calls", json!({"connection_id": CONN, "from": "+13125550100"})).await;
    assert_eq!((s, code(&v)), (422, "10004"));
    assert_eq!(v["errors"][0]["source"]["pointer"], "/to");
    let (s, v) =
        env.post("/calls", json!({"connection_id": CONN, "from": "+13125550100", "to": "12345"})).await;
    assert_eq!((s, code(&v)), (422, "10016"));
    let (s, v) = env
        .post(
            "/calls",
            json!({"connection_id": CONN, "from": "+13125550100", "to": "+13125550111", "timeout_secs": 2}),
        )
        .await;
    assert_eq!((s, code(&v)), (422, "10033"));
    let raw = env.http.post(env.url("/calls")).bearer_auth(&env.key).body("{nope").send().await.unwrap();
    assert_eq!(raw.status(), 400);
    let (s, v) = env.get("/nothing/here").await;
    assert_eq!((s, code(&v)), (404, "10005"));
    crate::conformance::assert_conforms(&env);
}

#[tokio::test]
async fn command_id_makes_repeats_harmless() {
    let env = Env::start(|_| {}).await;
    let body =
        json!({"connection_id": CONN, "to": "+13125550111", "from": "+13125550100", "command_id": "dial-1"});
    let (_, first) = env.post("/calls", body.clone()).await;
    let (_, second) = env.post("/calls", body.clone()).await;
    assert_eq!(first, second, "a repeated dial answers the first call");
    let ccid = first["data"]["call_control_id"].as_str().unwrap().to_owned();
    env.act(&ccid, "hangup", json!({"command_id": "h-1"})).await;
    env.act(&ccid, "hangup", json!({"command_id": "h-1"})).await;
    env.sim.settle().await;
    assert_eq!(env.rx.of(&ccid, "call.hangup").len(), 1);
    assert_eq!(env.rx.of(&ccid, "call.initiated").len(), 1);
    let dedup: Vec<_> =
        env.sim.requests().into_iter().filter(|r| r.deduplicated).map(|r| r.operation).collect();
    assert_eq!(dedup, ["dial", "hangup"]);

    env.advance_ms(60_000).await;
    let (_, third) = env.post("/calls", body).await;
    assert_ne!(third["data"]["call_control_id"], first["data"]["call_control_id"], "the window is 60 s");
    crate::conformance::assert_conforms(&env);
}

#[tokio::test]
async fn dials_above_150_per_5_seconds_get_429() {
    let env = Env::start(|_| {}).await;
    let body = json!({"connection_id": CONN, "to": "+13125550111", "from": "+13125550100"});
    for _ in 0..150 {
        assert_eq!(env.post("/calls", body.clone()).await.0, 200);
    }
    let (s, v) = env.post("/calls", body.clone()).await;
    assert_eq!((s, code(&v)), (429, "90103"));
    env.advance_ms(5_000).await;
    assert_eq!(env.post("/calls", body).await.0, 200);
    crate::conformance::assert_conforms(&env);
}

#[tokio::test]
async fn legs_to_missing_unregistered_or_silent_devices_end_with_the_right_cause() {
    let env = Env::start(|_| {}).await;
    let ghost = env.dial("sip:gencrednobody@sip.telnyx.com", json!({})).await;
    let offline_user = credential(&env, "offline").await;
    env.sim
        .add_device(device("off", "offline", false, RingBehaviour::Answer { after: Duration::ZERO }))
        .unwrap();
    let offline = env.dial(&format!("sip:{offline_user}@sip.telnyx.com"), json!({})).await;
    let silent_user = credential(&env, "silent").await;
    env.sim.add_device(device("silent", "silent", true, RingBehaviour::Never)).unwrap();
    let silent = env.dial(&format!("sip:{silent_user}@sip.telnyx.com"), json!({"timeout_secs": 10})).await;
    let busy_user = credential(&env, "busy").await;
    env.sim
        .add_device(device(
            "busy",
            "busy",
            true,
            RingBehaviour::Decline { after: Duration::from_millis(300) },
        ))
        .unwrap();
    let busy = env.dial(&format!("sip:{busy_user}@sip.telnyx.com"), json!({})).await;

    env.advance_ms(10_000).await;
    let cause =
        |c: &str| env.rx.of(c, "call.hangup")[0].payload()["hangup_cause"].as_str().unwrap().to_owned();
    assert_eq!(cause(&ghost), "not_found");
    assert_eq!(cause(&offline), "unspecified");
    assert_eq!(cause(&silent), "timeout");
    assert_eq!(cause(&busy), "call_rejected");
    let t = env.rx.of(&silent, "call.hangup");
    assert_eq!(t[0].payload()["hangup_source"], "unknown");
    crate::conformance::assert_conforms(&env);
}

#[tokio::test]
async fn transfer_rings_the_target_and_bridges_on_answer() {
    let env = Env::start(|_| {}).await;
    env.sim.add_number(NUMBER);
    let placed = env.sim.place_call(pstn_call(0, None)).unwrap();
    env.sim.settle().await;
    let a = placed.call_control_id;
    env.act(&a, "transfer", json!({"to": "+13125550177", "target_leg_client_state": "Yg=="})).await;
    env.sim.settle().await;
    let b_init: Vec<_> =
        env.rx.got().into_iter().filter(|r| r.event_type() == "call.initiated" && r.ccid() != a).collect();
    assert_eq!(b_init.len(), 1);
    let b = b_init[0].ccid().to_owned();
    assert_eq!(b_init[0].payload()["client_state"], "Yg==");
    env.advance_ms(2_000).await;
    assert_eq!(env.rx.types_for(&b), ["call.initiated", "call.answered", "call.bridged"]);
    assert_eq!(env.rx.types_for(&a), ["call.initiated", "call.bridged"]);
    env.act(&b, "hangup", json!({})).await;
    env.sim.settle().await;
    assert_eq!(env.rx.of(&a, "call.hangup")[0].payload()["hangup_source"], "callee");
    crate::conformance::assert_conforms(&env);
}

#[tokio::test]
async fn speak_and_recording_lifecycle() {
    let env = Env::start(|_| {}).await;
    env.sim.add_number(NUMBER);
    let placed = env.sim.place_call(pstn_call(0, None)).unwrap();
    env.sim.settle().await;
    let a = placed.call_control_id;
    env.act(&a, "answer", json!({})).await;
    env.act(&a, "speak", json!({"payload": "Please leave a message", "voice": "female"})).await;
    env.act(&a, "record_start", json!({"format": "wav", "channels": "dual", "play_beep": true})).await;
    env.sim.settle().await;
    assert_eq!(env.rx.types_for(&a), ["call.initiated", "call.answered", "call.speak.started"]);
    env.advance_ms(5_000).await;
    assert_eq!(env.rx.of(&a, "call.speak.ended")[0].payload()["status"], "completed");
    env.sim.remote_hangup(&a).unwrap();
    env.sim.settle().await;
    let saved = env.rx.of(&a, "call.recording.saved");
    assert_eq!(saved.len(), 1);
    let p = saved[0].payload();
    assert_eq!((p["format"].as_str(), p["channels"].as_str()), (Some("wav"), Some("dual")));
    let url = p["recording_urls"]["wav"].as_str().unwrap().to_owned();
    assert!(url.contains("X-Amz-Expires=600"));

    let res = env.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let wav = res.bytes().await.unwrap();
    assert_eq!(&wav[0..4], b"RIFF");
    assert_eq!(&wav[8..12], b"WAVE");
    let with_auth = env.http.get(&url).bearer_auth("x").send().await.unwrap();
    assert_eq!(with_auth.status(), 400, "S3 refuses presigned URL + Authorization");
    let tampered = env.http.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0")).send().await.unwrap();
    assert_eq!(tampered.status(), 403);
    env.advance_ms(600_001).await;
    let expired = env.http.get(&url).send().await.unwrap();
    assert_eq!(expired.status(), 403);
    assert!(expired.text().await.unwrap().contains("Request has expired"));
    crate::conformance::assert_conforms(&env);
}
