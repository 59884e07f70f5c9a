//! Scripted devices woken by pushes, faults, anomalies, the control API and the CLI.

use std::time::Duration;

use clap::Parser;
use fleet_sim::openapi_check::OpenApi;
use fleet_sim::{
    Caller, CallerScript, CredentialRef, DeliveredPush, DevicePlatform, DeviceScript, Fault, PushPlatform,
    RingBehaviour, SimArgs,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{CONN, Env, code};

async fn cred(env: &Env, name: &str, extra: Value) -> (String, String) {
    let mut body = json!({"connection_id": "cred-conn", "name": name});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (_, v) = env.post("/telephony_credentials", body).await;
    (v["data"]["id"].as_str().unwrap().to_owned(), v["data"]["sip_username"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_push_wakes_an_offline_device_which_can_then_answer() {
    let env = Env::start(|_| {}).await;
    let (cred_id, user) = cred(&env, "bob-ios", json!({})).await;
    let res = env
        .http
        .post(env.url(&format!("/telephony_credentials/{cred_id}/token")))
        .bearer_auth(&env.key)
        .send()
        .await
        .unwrap();
    let jwt = res.text().await.unwrap();
    env.sim
        .add_device(DeviceScript {
            id: "bob".into(),
            platform: DevicePlatform::Ios,
            push_token: Some("apns-bob".into()),
            credential: CredentialRef::Token(jwt),
            online: false,
            register_after_push: Some(Duration::from_millis(1_500)),
            on_ring: RingBehaviour::Answer { after: Duration::from_millis(200) },
        })
        .unwrap();
    let uri = format!("sip:{user}@sip.telnyx.com");
    let first = env.dial(&uri, json!({})).await;
    env.sim.push_delivered(DeliveredPush {
        platform: PushPlatform::Apns,
        token: "apns-bob".into(),
        data: json!({}),
    });
    env.advance_ms(1_000).await;
    assert_eq!(env.rx.of(&first, "call.hangup")[0].payload()["sip_hangup_cause"], "480");
    assert_eq!(env.sim.device_registered("bob"), Some(false));
    env.advance_ms(500).await;
    assert_eq!(env.sim.device_registered("bob"), Some(true));
    let second = env.dial(&uri, json!({})).await;
    env.advance_ms(200).await;
    assert_eq!(env.rx.types_for(&second), ["call.initiated", "call.answered"]);
    crate::conformance::assert_conforms(&env);
}

#[tokio::test]
async fn dialing_an_expired_or_deleted_credential_is_an_anomaly() {
    let env = Env::start(|_| {}).await;
    let (_, expired) = cred(&env, "old", json!({"expires_at": "2026-01-01T00:00:01Z"})).await;
    let (gone_id, gone) = cred(&env, "gone", json!({})).await;
    env.send(reqwest::Method::DELETE, &format!("/telephony_credentials/{gone_id}"), None).await;
    env.advance_ms(2_000).await;
    env.dial(&format!("sip:{expired}@sip.telnyx.com"), json!({})).await;
    env.dial(&format!("sip:{gone}@sip.telnyx.com"), json!({})).await;
    let kinds: Vec<String> = env.sim.anomalies().into_iter().map(|a| a.kind).collect();
    assert_eq!(kinds, ["expired_credential_dialed", "deleted_credential_dialed"]);
}

#[tokio::test]
async fn bridging_a_leg_twice_is_reported_and_ends_the_first_partner() {
    let env = Env::start(|_| {}).await;
    env.sim.add_number("+13125550199");
    let a = env
        .sim
        .place_call(CallerScript {
            from: Caller::Pstn("+13125550101".into()),
            to: "+13125550199".into(),
            at: Duration::ZERO,
            hangup_after: None,
        })
        .unwrap()
        .call_control_id;
    env.sim.settle().await;
    env.act(&a, "answer", json!({})).await;
    let b1 = env.dial("+13125550150", json!({"link_to": a})).await;
    let b2 = env.dial("+13125550151", json!({"link_to": a})).await;
    env.advance_ms(2_000).await;
    env.act(&a, "bridge", json!({"call_control_id": b1})).await;
    let (s, v) = env
        .post(
            &format!("/calls/{a}/actions/bridge"),
            json!({"call_control_id": b2, "prevent_double_bridge": true}),
        )
        .await;
    assert_eq!(s, 200, "prevent_double_bridge looks at the target, which is free: {v}");
    env.sim.settle().await;
    assert_eq!(env.sim.anomalies()[0].kind, "double_bridge");
    assert_eq!(env.rx.of(&b1, "call.hangup").len(), 1);
    let (s, v) = env
        .post(
            &format!("/calls/{b1}/actions/bridge"),
            json!({"call_control_id": b2, "prevent_double_bridge": true}),
        )
        .await;
    assert_eq!((s, code(&v)), (422, "90018"));
}

#[tokio::test]
async fn injected_api_faults() {
    let env = Env::start(|_| {}).await;
    let ccid = env.dial("+13125550150", json!({})).await;
    env.inject(Fault::ApiError { operation: Some("hangup".into()), status: 500, code: None, count: 2 });
    for _ in 0..2 {
        let (s, v) = env.post(&format!("/calls/{ccid}/actions/hangup"), json!({})).await;
        assert_eq!((s, code(&v)), (500, "10007"));
    }
    env.inject(Fault::ApiError { operation: Some("dial".into()), status: 429, code: None, count: 1 });
    let (s, v) = env
        .post("/calls", json!({"connection_id": CONN, "to": "+13125550150", "from": "+13125550100"}))
        .await;
    assert_eq!((s, code(&v)), (429, "10011"));

    // A lost response: the command is applied, the answer comes late; the retry with the same command_id
    // is harmless.
    env.inject(Fault::ApiTimeout {
        operation: Some("hangup".into()),
        delay: Duration::from_millis(800),
        apply: true,
        count: 1,
    });
    let late = env
        .http
        .post(env.url(&format!("/calls/{ccid}/actions/hangup")))
        .bearer_auth(&env.key)
        .timeout(Duration::from_millis(100))
        .json(&json!({"command_id": "hang-1"}))
        .send()
        .await;
    assert!(late.is_err(), "the client gave up");
    env.act(&ccid, "hangup", json!({"command_id": "hang-1"})).await;
    env.sim.settle().await;
    assert_eq!(env.rx.of(&ccid, "call.hangup").len(), 1);
    let faults: Vec<_> = env.sim.requests().into_iter().filter_map(|r| r.fault).collect();
    assert_eq!(faults, ["api_error", "api_error", "api_error", "api_timeout"]);
    crate::conformance::assert_conforms(&env);
}

#[tokio::test]
async fn recording_faults() {
    let env = Env::start(|_| {}).await;
    env.sim.add_number("+13125550199");
    let script = CallerScript {
        from: Caller::Pstn("+13125550101".into()),
        to: "+13125550199".into(),
        at: Duration::ZERO,
        hangup_after: None,
    };
    let a = env.sim.place_call(script.clone()).unwrap().call_control_id;
    let b = env.sim.place_call(script).unwrap().call_control_id;
    env.sim.settle().await;
    env.inject(Fault::RecordingError { count: 1 });
    for c in [&a, &b] {
        env.act(c, "answer", json!({"record": "record-from-answer", "record_format": "mp3"})).await;
        env.act(c, "hangup", json!({})).await;
    }
    env.sim.settle().await;
    assert_eq!(env.rx.of(&a, "call.recording.error")[0].payload()["reason"], "Internal server error");
    let saved = env.rx.of(&b, "call.recording.saved");
    let url = saved[0].payload()["recording_urls"]["mp3"].as_str().unwrap().to_owned();
    env.inject(Fault::RecordingDownload { status: 503, count: 1 });
    assert_eq!(env.http.get(&url).send().await.unwrap().status(), 503);
    let ok = env.http.get(&url).send().await.unwrap();
    assert_eq!(ok.headers()["content-type"], "audio/mpeg");
    assert_eq!(ok.bytes().await.unwrap()[0], 0xFF);
    crate::conformance::assert_conforms(&env);
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn control_api_scripts_a_call_and_matches_its_own_openapi_document() {
    let env = Env::start(|_| {}).await;
    let base = env.sim.base_url().to_owned();
    let http = &env.http;
    let doc: Value = http.get(format!("{base}/sim/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in &all {
        assert!(doc.pointer(r.trim_start_matches('#')).is_some(), "dangling {r}");
    }
    let api = OpenApi::new(doc.clone());
    let check = |method: &str, path: &str, status: u16, body: &Value| {
        let r = api.check_response(method, path, status, "application/json", body);
        assert!(
            r.is_ok() || status == 204 || status == 201 && body.is_null(),
            "{method} {path} {status}: {r:?}"
        );
    };
    let call = |m: reqwest::Method, p: &str, b: Option<Value>| {
        let mut req = http.request(m.clone(), format!("{base}{p}"));
        if let Some(b) = b {
            req = req.json(&b);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            (m, status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
        }
    };
    let steps: Vec<(reqwest::Method, &str, Option<Value>, u16)> = vec![
        (reqwest::Method::GET, "/sim/info", None, 200),
        (reqwest::Method::POST, "/sim/numbers", Some(json!({"number": "+13125550199"})), 204),
        (
            reqwest::Method::POST,
            "/sim/pstn",
            Some(json!({"number": "+13125550150", "behaviour": {"kind": "busy", "after_ms": 100}})),
            204,
        ),
        (
            reqwest::Method::POST,
            "/sim/devices",
            Some(json!({"id": "d1", "platform": "android", "credential": {"name": "n"},
            "register_after_push_ms": 10, "push_token": "t1", "on_ring": {"kind": "answer", "after_ms": 0}})),
            201,
        ),
        (
            reqwest::Method::POST,
            "/sim/devices",
            Some(
                json!({"id": "d1", "platform": "android", "credential": {"name": "n"}, "on_ring": {"kind": "never"}}),
            ),
            409,
        ),
        (reqwest::Method::POST, "/sim/devices/nope/online", None, 404),
        (reqwest::Method::POST, "/sim/devices/d1/offline", None, 204),
        (
            reqwest::Method::POST,
            "/sim/push-delivered",
            Some(json!({"platform": "fcm", "token": "t1", "data": {}})),
            204,
        ),
        (
            reqwest::Method::POST,
            "/sim/calls",
            Some(
                json!({"from": {"pstn": "+13125550101"}, "to": "+13125550199", "at_ms": 100, "hangup_after_ms": 1000}),
            ),
            201,
        ),
        (
            reqwest::Method::POST,
            "/sim/calls",
            Some(json!({"from": {"pstn": "+13125550101"}, "to": "+19999999999"})),
            404,
        ),
        (reqwest::Method::POST, "/sim/calls", Some(json!({"nonsense": true})), 400),
        (reqwest::Method::POST, "/sim/clock/advance", Some(json!({"ms": 2000})), 200),
        (reqwest::Method::POST, "/sim/settle", None, 200),
        (reqwest::Method::GET, "/sim/calls", None, 200),
        (reqwest::Method::POST, "/sim/faults", Some(json!({"kind": "webhook_drop", "count": 1})), 201),
        (reqwest::Method::GET, "/sim/faults", None, 200),
        (reqwest::Method::DELETE, "/sim/faults", None, 204),
        (reqwest::Method::PUT, "/sim/delivery", Some(json!({"latency": 5})), 204),
        (reqwest::Method::GET, "/sim/delivery", None, 200),
        (reqwest::Method::GET, "/sim/credentials", None, 200),
        (reqwest::Method::GET, "/sim/requests", None, 200),
        (reqwest::Method::GET, "/sim/webhooks?since=1", None, 200),
        (reqwest::Method::GET, "/sim/anomalies", None, 200),
        (reqwest::Method::DELETE, "/sim/logs", None, 204),
    ];
    for (m, p, b, want) in steps {
        let (m, status, body) = call(m, p, b).await;
        assert_eq!(status, want, "{m} {p}: {body}");
        let path = p.split('?').next().unwrap();
        assert!(api.operation(m.as_str(), path).is_some(), "{m} {path} is not documented");
        {
            check(m.as_str(), path, status, &body);
        }
    }
    let calls = env.sim.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].hangup_cause.as_deref(), Some("originator_cancel"));
    assert_eq!(env.sim.device_registered("d1"), Some(true), "the push woke it");
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

#[tokio::test]
async fn cli_flags_parse_and_the_simulator_stops_on_cancel() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let cli = Cli::try_parse_from([
        "sim",
        "--listen",
        &listen,
        "--webhook-url",
        "http://127.0.0.1:9/webhooks/telnyx",
        "--seed",
        "42",
        "--api-key",
        "k",
        "--failover-url",
        "http://127.0.0.1:9/f",
        "--duplicate-rate",
        "0.1",
    ])
    .unwrap();
    let config = cli.sim.to_config();
    assert_eq!((config.seed, config.api_key.as_deref()), (42, Some("k")));
    assert_eq!(config.delivery.duplicate_rate, 0.1);
    assert!(Cli::try_parse_from(["sim", "--listen", "127.0.0.1:0"]).is_err(), "--webhook-url is required");
    let cancel = CancellationToken::new();
    let task = tokio::spawn(fleet_sim::run_cli(cli.sim, cancel.clone()));
    // Running: it answers on its port (so what stops below had really started).
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let info = format!("http://{listen}/sim/info");
    let mut up = false;
    for _ in 0..500 {
        if http.get(&info).send().await.is_ok_and(|r| r.status().is_success()) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(up, "the simulator answered on {listen}");
    cancel.cancel();
    task.await.unwrap().unwrap();
    // Stopped: the port no longer takes connections.
    assert!(tokio::net::TcpStream::connect(&listen).await.is_err(), "the listener is closed");
}

#[tokio::test]
async fn the_real_clock_fires_timers_by_itself() {
    let env = Env::start(|c| {
        c.clock = fleet_sim::ClockMode::Real;
        c.default_pstn = RingBehaviour::AnswerThenDrop {
            after: Duration::from_millis(50),
            drop_after: Duration::from_millis(50),
        };
    })
    .await;
    let ccid = env.dial("+13125550150", json!({})).await;
    let limit = Duration::from_secs(5);
    let hangup = env.rx.wait_for(limit, |r| r.ccid() == ccid && r.event_type() == "call.hangup").await;
    assert_eq!(hangup.payload()["hangup_source"], "callee");
    assert_eq!(env.rx.types_for(&ccid), ["call.initiated", "call.answered", "call.hangup"]);
    assert!(env.sim.now() >= Duration::from_millis(100));
    assert!(matches!(
        env.sim.advance(Duration::from_secs(1)).await,
        Err(fleet_sim::SimError::NotManualClock)
    ));
}

#[tokio::test]
async fn an_apns_push_through_the_push_simulator_wakes_the_device() {
    use base64::Engine;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::DecodePrivateKey;

    let env = Env::start(|_| {}).await;
    let (_, user) = cred(&env, "carol-ios", json!({})).await;
    let token = "a".repeat(64);
    env.sim
        .add_device(DeviceScript {
            id: "carol".into(),
            platform: DevicePlatform::Ios,
            push_token: Some(token.clone()),
            credential: CredentialRef::SipUsername(user),
            online: false,
            register_after_push: Some(Duration::from_millis(1_500)),
            on_ring: RingBehaviour::Never,
        })
        .unwrap();
    let key = env.sim.push().apns_key();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let signing = p256::ecdsa::SigningKey::from_pkcs8_pem(&key.private_key_pem).unwrap();
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "ES256", "kid": key.key_id}).to_string().as_bytes()),
        b64(json!({"iss": key.team_id, "iat": env.sim.push().now_unix()}).to_string().as_bytes())
    );
    let sig: p256::ecdsa::Signature = signing.sign(input.as_bytes());
    let jwt = format!("{input}.{}", b64(&sig.to_bytes()));
    let res = env
        .http
        .post(format!("{}/3/device/{token}", env.sim.base_url()))
        .header("authorization", format!("bearer {jwt}"))
        .header("apns-push-type", "voip")
        .header("apns-topic", "com.example.phone.voip")
        .body(json!({"type": "incoming_call"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    assert_eq!(env.sim.device_registered("carol"), Some(false));
    env.advance_ms(1_500).await;
    assert_eq!(env.sim.device_registered("carol"), Some(true));
}

#[tokio::test]
async fn bridge_on_answer_with_prevent_double_bridge_lets_only_the_first_answer_through() {
    let env = Env::start(|_| {}).await;
    env.sim.add_number("+13125550199");
    env.sim.set_pstn_behaviour("+13125550150", RingBehaviour::Answer { after: Duration::from_millis(1_000) });
    env.sim.set_pstn_behaviour("+13125550151", RingBehaviour::Answer { after: Duration::from_millis(1_001) });
    let script = CallerScript {
        from: Caller::Pstn("+13125550101".into()),
        to: "+13125550199".into(),
        at: Duration::ZERO,
        hangup_after: None,
    };
    let a = env.sim.place_call(script).unwrap().call_control_id;
    env.sim.settle().await;
    let opts =
        json!({"link_to": a, "bridge_on_answer": true, "prevent_double_bridge": true, "bridge_intent": true});
    let b1 = env.dial("+13125550150", opts.clone()).await;
    let b2 = env.dial("+13125550151", opts).await;
    env.advance_ms(1_001).await;
    assert_eq!(env.rx.types_for(&b1), ["call.initiated", "call.answered", "call.bridged"]);
    assert_eq!(env.rx.types_for(&b2), ["call.initiated", "call.answered", "call.hangup"]);
    assert_eq!(
        env.rx.of(&b1, "call.initiated")[0].payload()["from"],
        "+13125550101",
        "bridge_intent takes the linked from"
    );
    assert_eq!(env.sim.call(&a).unwrap().bridged_with.as_deref(), Some(b1.as_str()));
    assert!(env.sim.anomalies().is_empty());
}
