//! Conformance: every request the simulator handled and every answer it gave, in a scenario that touches
//! every operation and the error cases, is checked against Telnyx's OpenAPI document (not our structs);
//! so is every webhook it sent.
//!
//! Rules: an answer must always match the document (status, content type, body schema, `default` for
//! statuses an operation does not list). A request the simulator accepted (2xx) must be valid per the
//! document; deliberately invalid requests must have been refused. Webhooks are checked with one documented
//! relaxation: `client_state` may be `null` (real Telnyx deliveries carry `"client_state": null`; the spec
//! types it as a string).
//!
//! `GET /v2/recordings/{id}` and `POST /v2/ai/audio/transcriptions` are not in the shared subset; they are
//! checked against `openapi/telnyx-recordings-ai.subset.json`, a mechanical extract of the same `spec3.yml`
//! (see [`spec`]). For the multipart transcription request the logged text fields are checked against
//! `AudioTranscriptionRequest` (the file part is not part of the instance); only its 200 and 422 answers
//! are documented, so its other statuses are skipped (see `TRANSCRIPTION_DOCUMENTED`).

use std::time::Duration;

use fleet_sim::openapi_check::OpenApi;
use fleet_sim::{
    Caller, CallerScript, CredentialRef, DevicePlatform, DeviceScript, DialLimit, Fault, RingBehaviour,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{CONN, Env};

/// Telnyx's document as the simulator serves it: the Call Control + credentials subset, plus the recordings
/// and transcription operations (`telnyx-recordings-ai.subset.json`, extracted from the same `spec3.yml`
/// by `openapi/extract_subset.py`), merged; a component both define must be identical.
pub fn spec() -> OpenApi {
    let mut doc: Value = serde_json::from_str(include_str!("../../openapi/telnyx-call-control.subset.json"))
        .expect("subset parses");
    let extra: Value = serde_json::from_str(include_str!("../../openapi/telnyx-recordings-ai.subset.json"))
        .expect("recordings/AI subset parses");
    merge_into(&mut doc["paths"], &extra["paths"], "paths");
    for (kind, entries) in extra["components"].as_object().expect("components") {
        merge_into(&mut doc["components"][kind], entries, kind);
    }
    OpenApi::new(doc).with_lenient_nulls(&["client_state"])
}

fn merge_into(into: &mut Value, from: &Value, what: &str) {
    if into.is_null() {
        *into = json!({});
    }
    let into = into.as_object_mut().expect("an object");
    for (k, v) in from.as_object().expect("an object") {
        match into.get(k) {
            Some(old) => assert_eq!(old, v, "{what}/{k} differs between the two subsets"),
            None => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Statuses the spec lists for the transcription operation. Its 401 (Telnyx's `errors` shape, like every
/// `/v2` route), body errors (400/413) and injected failures are the simulator's choice and cannot be
/// checked: the operation documents neither those statuses nor a `default`.
const TRANSCRIPTION_DOCUMENTED: &[u16] = &[200, 422];

/// Checks every logged exchange and webhook of `env`; returns how many exchanges were checked.
pub fn assert_conforms(env: &Env) -> usize {
    let api = spec();
    let requests = env.sim.requests();
    for r in &requests {
        if r.operation == "transcription" && !TRANSCRIPTION_DOCUMENTED.contains(&r.status) {
            continue;
        }
        let resp = api.check_response(&r.method, &r.path, r.status, &r.content_type, &r.response);
        assert!(
            resp.is_ok(),
            "answer to {} {} ({}) breaks the spec: {:?}\n{}",
            r.method,
            r.path,
            r.status,
            resp,
            r.response
        );
        let body = (!r.body.is_null()).then_some(&r.body);
        let req = api.check_request(&r.method, &r.path, r.query.as_deref(), body);
        if (200..300).contains(&r.status) {
            assert!(
                req.is_ok(),
                "accepted request {} {} breaks the spec: {:?}\n{}",
                r.method,
                r.path,
                req,
                r.body
            );
        }
    }
    for w in env.sim.webhooks() {
        let res = api.check_webhook(&w.json());
        assert!(res.is_ok(), "webhook {} breaks the spec: {:?}\n{}", w.event_type, res, w.json());
    }
    requests.len()
}

async fn raw(env: &Env, method: Method, path: &str, body: &str) -> u16 {
    let req = env.http.request(method, env.url(path)).bearer_auth(&env.key).body(body.to_owned());
    req.header("content-type", "application/json").send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn every_exchange_of_a_full_scenario_matches_the_telnyx_spec() {
    let env =
        Env::start(|c| c.dial_limit = Some(DialLimit { max_dials: 8, window: Duration::from_secs(5) })).await;
    let sent_invalid: &[(&str, Value)] = &[
        ("/calls", json!({"connection_id": CONN, "from": "+13125550100"})),
        ("/calls", json!({"connection_id": CONN, "from": "+13125550100", "to": 42})),
        ("/telephony_credentials", json!({"name": "no connection", "tag": 7})),
    ];

    // Credentials.
    let (_, c) = env
        .post(
            "/telephony_credentials",
            json!({"connection_id": "9", "name": "dev-a", "tag": "org-1",
                                                             "expires_at": "2026-02-01T00:00:00Z"}),
        )
        .await;
    let cred_id = c["data"]["id"].as_str().unwrap().to_owned();
    let user = c["data"]["sip_username"].as_str().unwrap().to_owned();
    env.get("/telephony_credentials?filter[tag]=org-1&filter[status]=active&page[number]=1&page[size]=10")
        .await;
    env.get(
        "/telephony_credentials?filter[sip_username]=nobody&filter[name]=x&filter[resource_id]=connection:9",
    )
    .await;
    env.get("/telephony_credentials?page[size]=0").await;
    env.get(&format!("/telephony_credentials/{cred_id}")).await;
    env.get("/telephony_credentials/unknown").await;
    env.send(Method::PATCH, &format!("/telephony_credentials/{cred_id}"), Some(json!({"tag": "org-2"})))
        .await;
    env.send(Method::PATCH, "/telephony_credentials/unknown", Some(json!({"tag": "org-2"}))).await;
    env.send(Method::POST, &format!("/telephony_credentials/{cred_id}/token"), None).await;
    env.send(Method::POST, "/telephony_credentials/unknown/token", None).await;
    let (_, c2) = env.post("/telephony_credentials", json!({"connection_id": "9"})).await;
    env.send(Method::DELETE, &format!("/telephony_credentials/{}", c2["data"]["id"].as_str().unwrap()), None)
        .await;
    env.send(Method::DELETE, "/telephony_credentials/unknown", None).await;
    for (path, body) in sent_invalid {
        env.post(path, body.clone()).await;
    }
    env.http.get(env.url("/telephony_credentials")).send().await.unwrap();

    // Calls.
    env.sim.add_number("+13125550199");
    env.sim
        .add_device(DeviceScript {
            id: "d".into(),
            platform: DevicePlatform::Ios,
            push_token: None,
            credential: CredentialRef::SipUsername(user.clone()),
            online: true,
            register_after_push: None,
            on_ring: RingBehaviour::Answer { after: Duration::from_millis(500) },
        })
        .unwrap();
    let script = |hangup| CallerScript {
        from: Caller::Pstn("+13125550101".into()),
        to: "+13125550199".into(),
        at: Duration::ZERO,
        hangup_after: hangup,
    };
    let a = env.sim.place_call(script(None)).unwrap().call_control_id;
    let r = env.sim.place_call(script(None)).unwrap().call_control_id;
    env.sim.settle().await;
    env.act(&a, "answer", json!({"client_state": "YQ==", "command_id": "c1", "record": "record-from-answer", "record_format": "wav"})).await;
    env.act(&r, "reject", json!({"cause": "CALL_REJECTED"})).await;
    let b = env
        .dial(
            &format!("sip:{user}@sip.telnyx.com"),
            json!({"link_to": a, "client_state": "Yg==", "timeout_secs": 20,
                                                             "command_id": "d1", "bridge_on_answer": false}),
        )
        .await;
    env.dial("+13125550150", json!({"to": ["+13125550150", "+13125550151"], "record": "record-from-answer"}))
        .await;
    env.post(
        "/calls",
        json!({"connection_id": CONN, "from": "+13125550100", "to": "+13125550150", "command_id": "d1"}),
    )
    .await;
    env.get(&format!("/calls/{b}")).await;
    env.get("/calls/v3:unknown").await;
    env.advance_ms(500).await;
    env.act(&a, "bridge", json!({"call_control_id": b, "park_after_unbridge": "self"})).await;
    env.act(&a, "speak", json!({"payload": "hello", "voice": "female", "language": "en-US"})).await;
    env.act(&b, "record_start", json!({"format": "mp3", "channels": "single"})).await;
    env.act(&b, "record_stop", json!({})).await;
    env.send(
        Method::PUT,
        &format!("/calls/{a}/actions/client_state_update"),
        Some(json!({"client_state": "Yw=="})),
    )
    .await;
    env.inject(Fault::ApiError { operation: Some("bridge".into()), status: 500, code: None, count: 1 });
    env.post(&format!("/calls/{a}/actions/bridge"), json!({"call_control_id": b})).await;
    env.inject(Fault::ApiError { operation: None, status: 503, code: None, count: 1 });
    env.get(&format!("/calls/{a}")).await;
    env.act(&b, "hangup", json!({"command_id": "h1"})).await;
    env.post(&format!("/calls/{b}/actions/hangup"), json!({})).await;
    // `a` had park_after_unbridge: it stays up and can be transferred.
    env.act(&a, "transfer", json!({"to": "+13125550160", "timeout_secs": 30})).await;
    env.advance_ms(5_000).await;
    env.post(&format!("/calls/{a}/actions/speak"), json!({"payload": "x"})).await;
    raw(&env, Method::POST, &format!("/calls/{a}/actions/hangup"), "{not json").await;
    env.http.post(env.url("/calls")).json(&json!({})).send().await.unwrap();
    for _ in 0..9 {
        env.post("/calls", json!({"connection_id": CONN, "from": "+13125550100", "to": "+13125550170"}))
            .await;
    }
    env.advance_ms(20_000).await;
    env.act(&a, "hangup", json!({})).await;
    env.sim.settle().await;

    // Recordings API (after the event URLs expired) and transcription.
    env.advance_ms(601_000).await;
    let saved = env.sim.webhooks().into_iter().find(|w| w.event_type == "call.recording.saved").unwrap();
    let rec_id = saved.payload()["recording_id"].as_str().unwrap().to_owned();
    env.get(&format!("/recordings/{rec_id}")).await;
    env.get("/recordings/unknown").await;
    env.http.get(env.url(&format!("/recordings/{rec_id}"))).send().await.unwrap();
    env.inject(Fault::ApiError {
        operation: Some("recording_get".into()),
        status: 503,
        code: None,
        count: 1,
    });
    env.get(&format!("/recordings/{rec_id}")).await;
    let audio = fleet_sim::recording_bytes("mp3", "single");
    let distil = ("model", "distil-whisper/distil-large-v2");
    env.transcribe(&[distil], Some(&audio)).await;
    let verbose =
        [("model", "openai/whisper-large-v3-turbo"), ("language", "en"), ("response_format", "verbose_json")];
    env.transcribe(&verbose, Some(&audio)).await;
    env.transcribe(&[("response_format", "json")], Some(&audio)).await;
    env.transcribe(&[("model", "gpt-4"), ("response_format", "srt")], None).await;
    env.inject(Fault::TranscriptionError { status: 500, count: 1 });
    env.transcribe(&[distil], Some(&audio)).await;
    let ops: std::collections::BTreeMap<(String, u16), usize> =
        env.sim.requests().iter().fold(Default::default(), |mut m, r| {
            *m.entry((r.operation.clone(), r.status)).or_default() += 1;
            m
        });
    for (op, status, n) in [
        ("recording_get", 200, 1),
        ("recording_get", 404, 1),
        ("recording_get", 401, 1),
        ("recording_get", 503, 1),
    ]
    .into_iter()
    .chain([("transcription", 200, 2), ("transcription", 422, 2), ("transcription", 500, 1)])
    {
        assert_eq!(ops.get(&(op.to_owned(), status)), Some(&n), "{op} {status}: {ops:?}");
    }

    let statuses: std::collections::BTreeSet<u16> = env.sim.requests().iter().map(|r| r.status).collect();
    for s in [200, 201, 400, 401, 404, 422, 429, 500, 503] {
        assert!(statuses.contains(&s), "the scenario should exercise status {s}: {statuses:?}");
    }
    let types: std::collections::BTreeSet<String> =
        env.sim.webhooks().into_iter().map(|w| w.event_type).collect();
    for t in [
        "call.initiated",
        "call.answered",
        "call.bridged",
        "call.hangup",
        "call.speak.started",
        "call.speak.ended",
        "call.recording.saved",
    ] {
        assert!(types.contains(t), "missing {t}: {types:?}");
    }
    let checked = assert_conforms(&env);
    assert!(checked > 40, "{checked}");

    // The deliberately invalid requests are invalid per the spec, and were refused.
    let api = spec();
    for (path, body) in sent_invalid {
        assert!(api.check_request("POST", &format!("/v2{path}"), None, Some(body)).is_err(), "{path} {body}");
    }
    let refused = env
        .sim
        .requests()
        .iter()
        .filter(|r| sent_invalid.iter().any(|(_, b)| *b == r.body))
        .all(|r| r.status >= 400);
    assert!(refused);
    // The refused transcription forms are invalid per AudioTranscriptionRequest too.
    for r in env.sim.requests().iter().filter(|r| r.operation == "transcription" && r.status == 422) {
        assert!(api.check_request(&r.method, &r.path, None, Some(&r.body)).is_err(), "{}", r.body);
    }
}

#[tokio::test]
async fn the_validator_catches_a_broken_answer() {
    let env = Env::start(|_| {}).await;
    env.dial("+13125550150", json!({})).await;
    let api = spec();
    let r = &env.sim.requests()[0];
    let mut broken = r.response.clone();
    broken["data"].as_object_mut().unwrap().remove("call_leg_id");
    assert!(api.check_response("POST", "/v2/calls", 200, "application/json", &broken).is_err());
    broken["data"]["call_leg_id"] = json!(7);
    assert!(api.check_response("POST", "/v2/calls", 200, "application/json", &broken).is_err());
    let mut hook = env.sim.webhooks()[0].json();
    hook["data"]["payload"]["direction"] = json!("sideways");
    assert!(api.check_webhook(&hook).is_err());
}

#[tokio::test]
async fn the_validator_catches_broken_recording_and_transcription_answers() {
    let env = Env::start(|_| {}).await;
    let rec = crate::recordings::saved_recording(&env, "wav", "single").await;
    let (status, good) = env.get(&format!("/recordings/{}", rec.id)).await;
    assert_eq!(status, 200, "{good}");
    let api = spec();
    let path = format!("/v2/recordings/{}", rec.id);
    assert_eq!(api.check_response("GET", &path, 200, "application/json", &good), Ok(()));
    for (pointer, bad) in [
        ("/data/status", json!("done")),
        ("/data/download_urls/wav", json!(7)),
        ("/data/source", json!("leg")),
    ] {
        let mut broken = good.clone();
        *broken.pointer_mut(pointer).unwrap() = bad;
        assert!(api.check_response("GET", &path, 200, "application/json", &broken).is_err(), "{pointer}");
    }
    let t = "/v2/ai/audio/transcriptions";
    assert!(api.check_response("POST", t, 200, "application/json", &json!({"text": "x"})).is_ok());
    assert!(api.check_response("POST", t, 200, "application/json", &json!({"duration": 1.0})).is_err());
    let detail = json!({"detail": [{"loc": ["body", "model"], "msg": "Field required", "type": "missing"}]});
    assert!(api.check_response("POST", t, 422, "application/json", &detail).is_ok());
    let not_fastapi = json!({"detail": [{"loc": ["body", "model"]}]});
    assert!(api.check_response("POST", t, 422, "application/json", &not_fastapi).is_err());
    assert!(api.check_response("POST", t, 503, "application/json", &json!({"detail": "x"})).is_err());
    assert!(api.check_request("POST", t, None, Some(&json!({"model": "deepgram/nova-3"}))).is_ok());
    assert!(api.check_request("POST", t, None, Some(&json!({"model": "whisper-1"}))).is_err());
}
