//! What the call races need from the simulator (issue 10, item 5): the constant API latency, one
//! delivery lane per leg, per-call device behaviours, the race anomalies, the merged per-call timeline
//! and the app-event receiver.

use std::time::{Duration, Instant};

use fleet_sim::openapi_check::OpenApi;
use serde_json::{Value, json};

use crate::support::Env;

/// `GET`/`PUT`/`POST` on the control API: (status, JSON or null), checking that the route is documented
/// in `/sim/openapi.json` and that a JSON answer matches its schema.
pub(crate) async fn control(
    env: &Env,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let base = env.sim.base_url().to_owned();
    let doc: Value =
        env.http.get(format!("{base}/sim/openapi.json")).send().await.unwrap().json().await.unwrap();
    let api = OpenApi::new(doc);
    let mut req = env.http.request(method.clone(), format!("{base}{path}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let json_answer = res
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
    let text = res.text().await.unwrap();
    let v = if json_answer && !text.is_empty() { serde_json::from_str(&text).unwrap() } else { Value::Null };
    let bare = path.split('?').next().unwrap();
    assert!(api.operation(method.as_str(), bare).is_some(), "{method} {bare} is not documented");
    if json_answer && status < 300 {
        let r = api.check_response(method.as_str(), bare, status, "application/json", &v);
        assert!(r.is_ok(), "{method} {bare} {status}: {r:?}\n{v}");
    }
    (status, v)
}

#[tokio::test]
async fn every_api_answer_is_held_for_the_constant_latency() {
    let env = Env::start(|c| c.api_latency = Duration::from_millis(120)).await;
    let t = Instant::now();
    env.dial("+13125550150", json!({})).await;
    assert!(t.elapsed() >= Duration::from_millis(120), "answered after {:?}", t.elapsed());
    let t = Instant::now();
    let (status, _) = env.get("/calls/nope").await;
    assert_eq!(status, 422, "an unknown call_control_id");
    assert!(t.elapsed() >= Duration::from_millis(120), "errors are late too");
    assert_eq!(env.sim.requests()[0].operation, "dial", "the command was applied on arrival");

    let (s, v) = control(&env, reqwest::Method::GET, "/sim/api-latency", None).await;
    assert_eq!((s, v), (200, json!({"ms": 120})));
    let (s, _) = control(&env, reqwest::Method::PUT, "/sim/api-latency", Some(json!({"ms": 0}))).await;
    assert_eq!(s, 204);
    assert_eq!(env.sim.api_latency(), Duration::ZERO);
    let (s, _) = control(&env, reqwest::Method::PUT, "/sim/api-latency", Some(json!({"ms": "x"}))).await;
    assert_eq!(s, 400);
}

#[test]
fn the_cli_sets_the_api_latency() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: fleet_sim::SimArgs,
    }
    let cli = Cli::try_parse_from([
        "sim",
        "--listen",
        "127.0.0.1:0",
        "--webhook-url",
        "http://127.0.0.1:9/webhooks/telnyx",
        "--api-latency-ms",
        "50",
    ])
    .unwrap();
    assert_eq!(cli.sim.to_config().api_latency, Duration::from_millis(50));
}

/// A webhook receiver that holds every `call.answered` until `want` of them are being received at once
/// (or `limit` passed), and reports, per answer, whether it saw the others arrive while it was held.
struct Rendezvous {
    url: String,
    met: std::sync::Arc<std::sync::Mutex<Vec<bool>>>,
}

impl Rendezvous {
    async fn start(cancel: &tokio_util::sync::CancellationToken, want: usize, limit: Duration) -> Self {
        use std::sync::{Arc, Mutex};

        use axum::body::Bytes;
        use tokio::sync::watch;

        let (count_tx, count_rx) = watch::channel(0usize);
        let count_tx = Arc::new(count_tx);
        let met = Arc::new(Mutex::new(Vec::new()));
        let (m, c_rx) = (met.clone(), count_rx.clone());
        let app = axum::Router::new().route(
            "/webhooks/telnyx",
            axum::routing::post(move |b: Bytes| {
                let (count_tx, mut count_rx, met) = (count_tx.clone(), c_rx.clone(), m.clone());
                async move {
                    let v: Value = serde_json::from_slice(&b).unwrap();
                    if v["data"]["event_type"] == "call.answered" {
                        count_tx.send_modify(|n| *n += 1);
                        let ok = tokio::time::timeout(limit, count_rx.wait_for(|n| *n >= want)).await.is_ok();
                        met.lock().unwrap().push(ok);
                    }
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/telnyx", listener.local_addr().unwrap());
        let token = cancel.clone();
        tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned()).await.unwrap();
        });
        drop(count_rx);
        Self { url, met }
    }
}

/// Two legs of one call answered in the same millisecond: with one lane per leg both `call.answered` are
/// in flight together; with one lane per session the second waits for the first to be answered.
async fn two_answers(scope: fleet_sim::LaneScope) -> Vec<bool> {
    let cancel = tokio_util::sync::CancellationToken::new();
    let rv = Rendezvous::start(&cancel, 2, Duration::from_millis(1_500)).await;
    let url = rv.url.clone();
    let env = Env::start(|c| {
        c.webhook_url = url;
        c.delivery.lane_scope = scope;
    })
    .await;
    env.sim.add_number("+13125550199");
    for n in ["+13125550150", "+13125550151"] {
        env.sim
            .set_pstn_behaviour(n, fleet_sim::RingBehaviour::Answer { after: Duration::from_millis(1_000) });
    }
    let a = env
        .sim
        .place_call(fleet_sim::CallerScript {
            from: fleet_sim::Caller::Pstn("+13125550101".into()),
            to: "+13125550199".into(),
            at: Duration::ZERO,
            hangup_after: None,
        })
        .unwrap()
        .call_control_id;
    env.sim.settle().await;
    let b1 = env.dial("+13125550150", json!({"link_to": a})).await;
    let b2 = env.dial("+13125550151", json!({"link_to": a})).await;
    env.advance_ms(1_000).await;
    let answered: Vec<_> = env
        .sim
        .webhooks()
        .into_iter()
        .filter(|w| w.event_type == "call.answered")
        .map(|w| (w.at_ms, w.call_control_id.unwrap()))
        .collect();
    assert_eq!(answered, [(1_000, b1), (1_000, b2)]);
    cancel.cancel();
    rv.met.lock().unwrap().clone()
}

#[tokio::test]
async fn each_leg_has_its_own_delivery_lane_so_two_answers_arrive_together() {
    assert_eq!(two_answers(fleet_sim::LaneScope::Leg).await, [true, true]);
}

#[tokio::test]
async fn one_lane_per_session_serialises_a_calls_legs() {
    assert_eq!(two_answers(fleet_sim::LaneScope::Session).await, [false, true]);
}

// ---- per-call device behaviours and the race anomalies ----

use fleet_sim::{
    Caller, CallerScript, CredentialRef, DeliveredPush, DeviceBehaviour, DevicePlatform, DeviceScript,
    PlacedCall, PushPlatform, RingBehaviour,
};

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Adds an online device `id` with its own credential and push token `tok-<id>`; returns its SIP URI.
pub(crate) async fn device(env: &Env, id: &str, on_ring: RingBehaviour) -> String {
    let (_, v) = env.post("/telephony_credentials", json!({"connection_id": "cred-conn", "name": id})).await;
    let user = v["data"]["sip_username"].as_str().unwrap().to_owned();
    env.sim
        .add_device(DeviceScript {
            id: id.into(),
            platform: DevicePlatform::Ios,
            push_token: Some(format!("tok-{id}")),
            credential: CredentialRef::SipUsername(user.clone()),
            online: true,
            register_after_push: None,
            on_ring,
        })
        .unwrap();
    format!("sip:{user}@sip.telnyx.com")
}

pub(crate) async fn inbound(env: &Env) -> PlacedCall {
    env.sim.add_number("+13125550199");
    let placed = env
        .sim
        .place_call(CallerScript {
            from: Caller::Pstn("+13125550101".into()),
            to: "+13125550199".into(),
            at: Duration::ZERO,
            hangup_after: None,
        })
        .unwrap();
    env.sim.settle().await;
    placed
}

pub(crate) fn push(env: &Env, device: &str, kind: &str, session: &str) {
    env.sim.push_delivered(DeliveredPush {
        platform: PushPlatform::Apns,
        token: format!("tok-{device}"),
        data: json!({"type": kind, "call_session_id": session}),
    });
}

pub(crate) fn hangup_cause(env: &Env, ccid: &str) -> Option<String> {
    env.sim.call(ccid).unwrap().hangup_cause
}

fn anomaly_kinds(env: &Env) -> Vec<(String, String)> {
    env.sim.anomalies().into_iter().map(|a| (a.kind, a.call_control_id.unwrap_or_default())).collect()
}

#[tokio::test]
async fn per_call_behaviours_win_over_the_devices_own() {
    let env = Env::start(|_| {}).await;
    let d1 = device(&env, "d1", RingBehaviour::Answer { after: ms(500) }).await;
    let d2 = device(&env, "d2", RingBehaviour::Answer { after: ms(500) }).await;
    let first = inbound(&env).await;
    let s = &first.call_session_id;
    env.sim
        .set_call_device_behaviour(
            s,
            "d1",
            DeviceBehaviour {
                on_ring: Some(RingBehaviour::Decline { after: ms(100) }),
                ..Default::default()
            },
        )
        .unwrap();
    let path = format!("/sim/calls/{s}/devices/d2/behaviour");
    let busy = json!({"on_ring": {"kind": "busy", "after_ms": 200}});
    assert_eq!(control(&env, reqwest::Method::PUT, &path, Some(busy)).await.0, 204);
    let nobody = format!("/sim/calls/{s}/devices/nobody/behaviour");
    assert_eq!(control(&env, reqwest::Method::PUT, &nobody, Some(json!({}))).await.0, 404);
    let link = json!({"link_to": first.call_control_id});
    let (l1, l2) = (env.dial(&d1, link.clone()).await, env.dial(&d2, link).await);
    env.advance_ms(500).await;
    assert_eq!(hangup_cause(&env, &l1).as_deref(), Some("call_rejected"));
    assert_eq!(hangup_cause(&env, &l2).as_deref(), Some("user_busy"));

    // Another call: the devices' own behaviours, one of them changed for every later call.
    let (s, _) = control(
        &env,
        reqwest::Method::PUT,
        "/sim/devices/d2/behaviour",
        Some(json!({"on_ring": {"kind": "answer", "after_ms": 50}})),
    )
    .await;
    assert_eq!(s, 204);
    let second = inbound(&env).await;
    let link = json!({"link_to": second.call_control_id});
    let (l1, l2) = (env.dial(&d1, link.clone()).await, env.dial(&d2, link).await);
    env.advance_ms(50).await;
    assert_eq!(env.sim.call(&l2).unwrap().state, fleet_sim::LegState::Answered);
    assert_eq!(env.sim.call(&l1).unwrap().state, fleet_sim::LegState::Ringing);
    env.advance_ms(450).await;
    assert_eq!(env.sim.call(&l1).unwrap().state, fleet_sim::LegState::Answered);
}

#[tokio::test]
async fn a_device_unregisters_mid_ring_and_another_registers_late_for_one_call() {
    let env = Env::start(|_| {}).await;
    let gone = device(&env, "gone", RingBehaviour::UnregisterAfter { after: ms(300) }).await;
    let late = device(&env, "late", RingBehaviour::Answer { after: ms(200) }).await;
    let call = inbound(&env).await;
    let s = call.call_session_id.clone();
    let body = json!({"register_after_push_ms": 1_500});
    let path = format!("/sim/calls/{s}/devices/late/behaviour");
    assert_eq!(control(&env, reqwest::Method::PUT, &path, Some(body)).await.0, 204);
    assert_eq!(env.sim.device_registered("late"), Some(false));

    let link = json!({"link_to": call.call_control_id});
    let l_gone = env.dial(&gone, link.clone()).await;
    let l_late = env.dial(&late, link.clone()).await;
    push(&env, "late", "call_ended", "another-call");
    push(&env, "late", "incoming_call", &s);
    env.advance_ms(300).await;
    let h = env.rx.of(&l_gone, "call.hangup");
    assert_eq!(h[0].payload()["sip_hangup_cause"], "480", "unregistered mid-ring");
    assert_eq!(env.sim.device_registered("gone"), Some(false));
    assert_eq!(
        env.rx.of(&l_late, "call.hangup")[0].payload()["sip_hangup_cause"],
        "480",
        "not registered yet"
    );
    env.advance_ms(1_199).await;
    assert_eq!(env.sim.device_registered("late"), Some(false));
    env.advance_ms(1).await;
    assert_eq!(env.sim.device_registered("late"), Some(true), "1.5 s after the call's push");
    let retry = env.dial(&late, link).await;
    env.advance_ms(200).await;
    assert_eq!(env.rx.types_for(&retry), ["call.initiated", "call.answered"]);
    let pushes = env.sim.pushes();
    assert_eq!(pushes.len(), 2);
    assert_eq!(pushes[1].device_id.as_deref(), Some("late"));
    assert_eq!(pushes[1].push_type.as_deref(), Some("incoming_call"));
    assert_eq!(pushes[1].call_session_id.as_deref(), Some(s.as_str()));
}

/// Plays a fleet's part in a three-device simultaneous ring: `a` answers, and the fleet bridges it
/// and hangs up the legs in `hang_up` (and pushes `call_ended` to the devices in `ended_push`).
pub(crate) async fn sim_ring(env: &Env, hang_up: &[usize], ended_push: &[&str]) -> (PlacedCall, Vec<String>) {
    let a = device(env, "a", RingBehaviour::Answer { after: ms(1_000) }).await;
    let b = device(env, "b", RingBehaviour::Never).await;
    let c = device(env, "c", RingBehaviour::IgnoreHangup).await;
    let call = inbound(env).await;
    let s = call.call_session_id.clone();
    let link = json!({"link_to": call.call_control_id});
    let mut legs = Vec::new();
    for (uri, d) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        push(env, d, "incoming_call", &s);
        legs.push(env.dial(uri, link.clone()).await);
    }
    env.advance_ms(1_000).await;
    env.act(&call.call_control_id, "answer", json!({})).await;
    env.act(&call.call_control_id, "bridge", json!({"call_control_id": legs[0]})).await;
    for &i in hang_up {
        env.act(&legs[i], "hangup", json!({})).await;
    }
    for d in ended_push {
        push(env, d, "call_ended", &s);
    }
    (call, legs)
}

#[tokio::test]
async fn a_clean_simultaneous_ring_leaves_no_anomaly() {
    let env = Env::start(|_| {}).await;
    let (call, _) = sim_ring(&env, &[1, 2], &["b", "c"]).await;
    env.advance_ms(10_000).await;
    env.sim.remote_hangup(&call.call_control_id).unwrap();
    env.advance_ms(10_000).await;
    assert_eq!(control(&env, reqwest::Method::GET, "/sim/anomalies", None).await, (200, json!([])));
}

#[tokio::test]
async fn a_leg_left_ringing_after_the_answer_is_an_anomaly() {
    let env = Env::start(|_| {}).await;
    let (call, legs) = sim_ring(&env, &[2], &["c"]).await;
    env.advance_ms(1_999).await;
    assert!(env.sim.anomalies().is_empty(), "the fleet still has time");
    env.advance_ms(1).await;
    assert_eq!(anomaly_kinds(&env), [("leg_still_ringing".to_owned(), legs[1].clone())]);
    let a = &env.sim.anomalies()[0];
    assert_eq!(a.call_session_id.as_deref(), Some(call.call_session_id.as_str()));
    assert!(a.detail.ends_with("after its call was answered"), "{}", a.detail);
    // The caller hangs up and b is still not dismissed: once more for the end (a leg is flagged once),
    // and b's device was never dismissed.
    env.sim.remote_hangup(&call.call_control_id).unwrap();
    env.advance_ms(2_000).await;
    let kinds: Vec<_> = env.sim.anomalies().into_iter().map(|a| a.kind).collect();
    assert_eq!(kinds, ["leg_still_ringing", "device_not_dismissed"]);
    assert!(
        env.sim.anomalies()[1].detail.starts_with("device b got an incoming_call push and a ringing SIP leg")
    );
}

#[tokio::test]
async fn a_device_that_ignores_the_hangup_needs_its_call_ended_push() {
    let env = Env::start(|_| {}).await;
    let (call, legs) = sim_ring(&env, &[1, 2], &["b"]).await;
    env.sim.settle().await;
    assert_eq!(hangup_cause(&env, &legs[2]).as_deref(), Some("originator_cancel"), "the leg ended at Telnyx");
    env.sim.remote_hangup(&call.call_control_id).unwrap();
    env.advance_ms(2_000).await;
    let anomalies = env.sim.anomalies();
    assert_eq!(anomalies.len(), 1, "{anomalies:?}");
    assert_eq!(anomalies[0].kind, "device_not_dismissed");
    assert_eq!(anomalies[0].call_control_id.as_deref(), Some(legs[2].as_str()));
    assert!(anomalies[0].detail.starts_with("device c "), "{}", anomalies[0].detail);
}

#[tokio::test]
async fn a_push_only_device_and_a_late_leg_are_checked_too() {
    let env = Env::start(|_| {}).await;
    let late = device(&env, "late", RingBehaviour::Never).await;
    let call = inbound(&env).await;
    let s = call.call_session_id.clone();
    // A device only pushed (its SIP registration never came), and a token the simulator has no device for.
    push(&env, "late", "incoming_call", &s);
    push(&env, "web", "incoming_call", &s);
    push(&env, "web", "call_ended", &s);
    env.sim.remote_hangup(&call.call_control_id).unwrap();
    env.advance_ms(100).await;
    // A leg dialed after the call ended (a dial answered after the decision) and never hung up.
    let leg = env.dial(&late, json!({"link_to": call.call_control_id})).await;
    env.advance_ms(2_000).await;
    let got: Vec<_> = env.sim.anomalies().into_iter().map(|a| (a.kind, a.call_control_id)).collect();
    let late_leg = Some(leg);
    assert_eq!(
        got,
        [("device_not_dismissed".to_owned(), late_leg.clone()), ("leg_still_ringing".to_owned(), late_leg)]
    );
    assert!(
        env.sim.anomalies()[0]
            .detail
            .starts_with("device late got an incoming_call push and a ringing SIP leg")
    );
}
