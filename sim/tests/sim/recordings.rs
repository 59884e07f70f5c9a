//! Recordings after the event: URL expiry, `GET /v2/recordings/{id}` re-signing, and the transcription stub
//! (`POST /v2/ai/audio/transcriptions`) with its validation and faults. Manual clock throughout.

use std::time::Duration;

use fleet_sim::{Caller, CallerScript, Fault, recording_bytes, transcript_of};
use serde_json::{Value, json};

use crate::support::{Env, code, multipart};

const NUMBER: &str = "+13125550199";

/// A recording the simulator saved: its id, leg, the event's URL and when it was saved (sim ms).
pub struct Saved {
    pub id: String,
    pub ccid: String,
    pub url: String,
    pub saved_at_ms: u64,
}

/// Answers a scripted inbound call, records it for 2 s in `format`/`channels`, stops, and returns the
/// `call.recording.saved` facts.
pub async fn saved_recording(env: &Env, format: &str, channels: &str) -> Saved {
    env.sim.add_number(NUMBER);
    let script = CallerScript {
        from: Caller::Pstn("+13125550101".into()),
        to: NUMBER.into(),
        at: Duration::ZERO,
        hangup_after: None,
    };
    let ccid = env.sim.place_call(script).unwrap().call_control_id;
    env.sim.settle().await;
    env.act(&ccid, "answer", json!({})).await;
    env.act(&ccid, "record_start", json!({"format": format, "channels": channels})).await;
    env.advance_ms(2_000).await;
    env.act(&ccid, "record_stop", json!({})).await;
    let saved_at_ms = env.sim.now().as_millis() as u64;
    env.sim.settle().await;
    let saved = env.rx.of(&ccid, "call.recording.saved");
    assert_eq!(saved.len(), 1);
    let p = saved[0].payload();
    Saved {
        id: p["recording_id"].as_str().unwrap().to_owned(),
        url: p["recording_urls"][format].as_str().unwrap().to_owned(),
        ccid,
        saved_at_ms,
    }
}

async fn download(env: &Env, url: &str) -> (u16, Vec<u8>) {
    let res = env.http.get(url).send().await.unwrap();
    (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
}

fn query_param<'a>(url: &'a str, name: &str) -> &'a str {
    let q = url.split_once('?').unwrap().1;
    q.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')).unwrap()
}

/// `X-Amz-Date` for sim time `ms` (the test epoch is 2026-01-01T00:00:00Z).
fn amz_date(env: &Env, ms: u64) -> String {
    let epoch = env.sim.config().epoch.unwrap();
    (epoch + chrono::Duration::milliseconds(ms as i64)).format("%Y%m%dT%H%M%SZ").to_string()
}

#[tokio::test]
async fn an_expired_recording_url_is_re_signed_by_the_recordings_api() {
    let env = Env::start(|_| {}).await;
    let rec = saved_recording(&env, "wav", "single").await;
    let expected = recording_bytes("wav", "single");
    assert_eq!(download(&env, &rec.url).await, (200, expected.clone()));
    assert_eq!(query_param(&rec.url, "X-Amz-Date"), amz_date(&env, rec.saved_at_ms));

    // Re-signing while the event's URL is still valid leaves that URL working.
    env.advance_ms(300_000).await;
    let (status, early) = env.get(&format!("/recordings/{}", rec.id)).await;
    assert_eq!(status, 200, "{early}");
    assert_eq!(download(&env, &rec.url).await.0, 200);

    env.advance_ms(301_000).await; // 601 s after the save
    let (status, body) = download(&env, &rec.url).await;
    assert_eq!(status, 403);
    assert!(String::from_utf8(body).unwrap().contains("Request has expired"));

    let issued_at = env.sim.now().as_millis() as u64;
    let (status, v) = env.get(&format!("/recordings/{}", rec.id)).await;
    assert_eq!(status, 200, "{v}");
    let d = &v["data"];
    assert_eq!(d["id"], rec.id);
    assert_eq!(d["call_control_id"], rec.ccid);
    assert_eq!(d["record_type"], "recording");
    assert_eq!(d["status"], "completed");
    assert_eq!(d["source"], "call");
    assert_eq!(d["channels"], "single");
    assert_eq!(d["duration_millis"], 2_000);
    assert_eq!(d["from"], "+13125550101");
    assert_eq!(d["to"], NUMBER);
    assert_eq!(d["initiated_by"], "StartCallRecordingAPI");
    let call = env.sim.call(&rec.ccid).unwrap();
    assert_eq!(d["call_session_id"], call.call_session_id);
    assert_eq!(d["call_leg_id"], call.call_leg_id);
    let urls = d["download_urls"].as_object().unwrap();
    assert_eq!(urls.keys().collect::<Vec<_>>(), ["wav"], "only the recording's format");
    let fresh = urls["wav"].as_str().unwrap().to_owned();
    assert_ne!(fresh, rec.url);
    assert_eq!(query_param(&fresh, "X-Amz-Date"), amz_date(&env, issued_at));
    assert_eq!(query_param(&fresh, "X-Amz-Expires"), "600");
    assert_eq!(download(&env, &fresh).await, (200, expected.clone()));
    assert_eq!(download(&env, &rec.url).await.0, 403, "the old URL stays expired");

    // The signature covers the date and the lifetime; an unknown signature is refused.
    let moved = fresh.replace(query_param(&fresh, "X-Amz-Date"), &amz_date(&env, issued_at + 600_000));
    let longer = fresh.replace("X-Amz-Expires=600", "X-Amz-Expires=6000");
    let forged = fresh.replace(query_param(&fresh, "X-Amz-Signature"), &"0".repeat(64));
    for url in [moved, longer, forged] {
        let (status, body) = download(&env, &url).await;
        assert_eq!(status, 403, "{url}");
        assert!(String::from_utf8(body).unwrap().contains("SignatureDoesNotMatch"));
    }

    // The fresh URL has its own 600 s.
    env.advance_ms(600_000).await;
    assert_eq!(download(&env, &fresh).await.0, 200);
    env.advance_ms(1).await;
    assert_eq!(download(&env, &fresh).await.0, 403);

    let gets: Vec<_> = env.sim.requests().into_iter().filter(|r| r.operation == "recording_get").collect();
    assert_eq!(gets.len(), 2);
    assert!(gets.iter().all(|r| r.target.as_deref() == Some(rec.id.as_str()) && r.status == 200));
    crate::conformance::assert_conforms(&env);
}

#[tokio::test]
async fn recordings_api_errors_auth_and_faults() {
    let env = Env::start(|_| {}).await;
    let rec = saved_recording(&env, "mp3", "dual").await;
    let (status, v) = env.get("/recordings/3fa85f64-5717-4562-b3fc-2c963f66afa6").await;
    assert_eq!((status, code(&v)), (404, "10005"), "{v}");
    let unauth = env.http.get(env.url(&format!("/recordings/{}", rec.id))).send().await.unwrap();
    assert_eq!(unauth.status(), 401);
    env.inject(Fault::ApiError {
        operation: Some("recording_get".into()),
        status: 500,
        code: None,
        count: 1,
    });
    let (status, v) = env.get(&format!("/recordings/{}", rec.id)).await;
    assert_eq!((status, code(&v)), (500, "10007"), "{v}");
    let (status, v) = env.get(&format!("/recordings/{}", rec.id)).await;
    assert_eq!(status, 200, "{v}");
    let url = v["data"]["download_urls"]["mp3"].as_str().unwrap();
    assert!(v["data"]["download_urls"].get("wav").is_none());
    assert_eq!(download(&env, url).await, (200, recording_bytes("mp3", "dual")));
    let log: Vec<(u16, Option<String>)> = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.operation == "recording_get")
        .map(|r| (r.status, r.fault))
        .collect();
    assert_eq!(log, [(404, None), (401, None), (500, Some("api_error".into())), (200, None)]);
    crate::conformance::assert_conforms(&env);
}

#[tokio::test]
async fn transcription_answers_the_transcript_of_the_uploaded_bytes() {
    let env = Env::start(|_| {}).await;
    let audio = recording_bytes("wav", "dual");
    let (status, v) = env.transcribe(&[("model", "distil-whisper/distil-large-v2")], Some(&audio)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!({"text": transcript_of(&audio)}));
    assert!(transcript_of(&audio).starts_with(&format!("Simulated transcript of {} bytes", audio.len())));

    let fields = [("model", "deepgram/nova-3"), ("language", "en-US"), ("response_format", "verbose_json")];
    let (status, v) = env.transcribe(&fields, Some(&audio)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["text"], transcript_of(&audio));
    assert_eq!(v["duration"], 1.0);

    let log: Vec<_> = env.sim.requests().into_iter().filter(|r| r.operation == "transcription").collect();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].path, "/v2/ai/audio/transcriptions");
    assert_eq!(log[0].body, json!({"model": "distil-whisper/distil-large-v2"}));
    assert_eq!(log[1].body["language"], "en-US");
    let upload = log[0].upload.clone().unwrap();
    assert_eq!((upload.field.as_str(), upload.bytes), ("file", audio.len() as u64));
    assert_eq!(upload.filename.as_deref(), Some("recording.wav"));
    assert_eq!(upload.content_type.as_deref(), Some("audio/wav"));
    assert_eq!(upload.sha256.len(), 64);
    assert!(transcript_of(&audio).contains(&upload.sha256[..12]));
    crate::conformance::assert_conforms(&env);
}

#[tokio::test]
async fn transcription_validation_errors_are_422() {
    let env = Env::start(|_| {}).await;
    let audio = recording_bytes("mp3", "single");
    let (status, v) = env.transcribe(&[("language", "en")], Some(&audio)).await;
    assert_eq!(status, 422);
    assert_eq!(
        v,
        json!({"detail": [{"loc": ["body", "model"], "msg": "Field required", "type": "missing"}]})
    );

    let (status, v) = env.transcribe(&[("model", "whisper-1")], None).await;
    assert_eq!(status, 422);
    let locs: Vec<&Value> = v["detail"].as_array().unwrap().iter().map(|d| &d["loc"][1]).collect();
    assert_eq!(locs, ["model", "file"], "{v}");

    // A JSON body is no form at all: every required field is missing.
    let (status, v) = env.post("/ai/audio/transcriptions", json!({"model": "deepgram/nova-3"})).await;
    assert_eq!(status, 422);
    assert_eq!(v["detail"].as_array().unwrap().len(), 2, "{v}");

    // Unauthenticated: Telnyx's 401, before validation.
    let (ctype, body) = multipart(&[], None);
    let res = env
        .http
        .post(env.url("/ai/audio/transcriptions"))
        .header("content-type", ctype)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let statuses: Vec<u16> = env.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [422, 422, 422, 401]);
    assert!(env.sim.requests()[2].body.is_null(), "a non-multipart body is not logged as form fields");
    crate::conformance::assert_conforms(&env);
}

#[tokio::test]
async fn transcription_error_fault_fails_the_next_requests() {
    let env = Env::start(|_| {}).await;
    let audio = recording_bytes("wav", "single");
    let model = [("model", "openai/whisper-large-v3-turbo")];
    // Through the control API, in its JSON shape.
    let res = env
        .http
        .post(format!("{}/sim/faults", env.sim.base_url()))
        .json(&json!({"kind": "transcription_error", "status": 503, "count": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(env.sim.faults()[0].1, Fault::TranscriptionError { status: 503, count: 2 });

    // A request refused by validation does not consume it.
    assert_eq!(env.transcribe(&[], Some(&audio)).await.0, 422);
    for _ in 0..2 {
        assert_eq!(env.transcribe(&model, Some(&audio)).await, (503, json!({"detail": "Injected failure."})));
    }
    assert_eq!(env.transcribe(&model, Some(&audio)).await, (200, json!({"text": transcript_of(&audio)})));
    assert!(env.sim.faults().is_empty());
    let faults: Vec<Option<String>> = env.sim.requests().into_iter().map(|r| r.fault).collect();
    let tf = Some("transcription_error".to_owned());
    assert_eq!(faults, [None, tf.clone(), tf, None]);

    // The control API's own document describes the fault and the logged upload.
    let base = env.sim.base_url();
    let doc: Value =
        env.http.get(format!("{base}/sim/openapi.json")).send().await.unwrap().json().await.unwrap();
    let control = fleet_sim::openapi_check::OpenApi::new(doc);
    let fault = serde_json::to_value(Fault::TranscriptionError { status: 500, count: 1 }).unwrap();
    assert_eq!(fault, json!({"kind": "transcription_error", "status": 500, "count": 1}));
    assert_eq!(control.validate(&json!({"$ref": "#/components/schemas/Fault"}), &fault), []);
    let logged: Value =
        env.http.get(format!("{base}/sim/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(logged[3]["upload"]["bytes"], audio.len());
    let r = control.check_response("GET", "/sim/requests", 200, "application/json", &logged);
    assert!(r.is_ok(), "{r:?}");
}

#[tokio::test]
async fn api_faults_reach_transcription_only_when_they_name_it() {
    let env = Env::start(|_| {}).await;
    let audio = recording_bytes("wav", "single");
    let model = [("model", "distil-whisper/distil-large-v2")];
    env.inject(Fault::ApiError { operation: None, status: 500, code: None, count: 1 });
    assert_eq!(env.transcribe(&model, Some(&audio)).await.0, 200);
    assert_eq!(env.sim.faults().len(), 1, "an unnamed API fault is left for the Telnyx operations");
    env.sim.clear_faults();
    env.inject(Fault::ApiError {
        operation: Some("transcription".into()),
        status: 429,
        code: None,
        count: 1,
    });
    assert_eq!(env.transcribe(&model, Some(&audio)).await, (429, json!({"detail": "Injected failure."})));
    env.inject(Fault::ApiTimeout {
        operation: Some("transcription".into()),
        delay: Duration::ZERO,
        apply: false,
        count: 1,
    });
    assert_eq!(env.transcribe(&model, Some(&audio)).await.0, 503);
    assert_eq!(env.transcribe(&model, Some(&audio)).await.0, 200);
    let faults: Vec<Option<String>> = env.sim.requests().into_iter().map(|r| r.fault).collect();
    assert_eq!(faults, [None, Some("api_error".into()), Some("api_timeout".into()), None]);
}
