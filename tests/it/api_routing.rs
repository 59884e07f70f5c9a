//! The app API for routing, on both engines: organizations with voicemail settings, multi-org
//! users with dnd, numbers, blocked callers, call status and the active call — happy paths,
//! idempotent PUTs, every validation reason (each checked to change nothing), 404s, the token,
//! and an OpenAPI document that lists every route the router serves. Every answer of every test
//! is checked against that document (status, content type, schema).

use chrono::{Duration, SecondsFormat, Utc};
use fleet_domain::call::{
    Call, CallDirection, CallSetup, CallState, DEFAULT_GREETING, EndReason, Leg, LegId, LegState,
    VoicemailSettings,
};
use fleet_sim::openapi_check::OpenApi;
use fleet_store::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both;
use crate::support::{Fleet, TestDb};

on_both! {
    organizations_carry_voicemail_settings => api_organizations_carry_voicemail_settings_postgres, api_organizations_carry_voicemail_settings_sqlite;
    users_belong_to_several_orgs => api_users_belong_to_several_orgs_postgres, api_users_belong_to_several_orgs_sqlite;
    numbers_are_validated_and_stored => api_numbers_are_validated_and_stored_postgres, api_numbers_are_validated_and_stored_sqlite;
    blocked_numbers_per_org => api_blocked_numbers_per_org_postgres, api_blocked_numbers_per_org_sqlite;
    call_status_and_active_call => api_call_status_and_active_call_postgres, api_call_status_and_active_call_sqlite;
    every_route_needs_the_token_but_the_document => api_every_route_needs_the_token_but_the_document_postgres, api_every_route_needs_the_token_but_the_document_sqlite;
}

const TOKEN: &str = "routing-api-token";

/// The fleet's API, with the OpenAPI document it serves: every answer is checked against it.
struct Api {
    fleet: Fleet,
    doc: OpenApi,
}

impl Api {
    async fn start(engine: Engine) -> Self {
        let fleet = Fleet::start_on(TestDb::new(engine).await, &[("CALLFLEET_API_TOKEN", TOKEN)]).await;
        let doc = fleet.http.get(fleet.url("/v1/openapi.json")).send().await.unwrap().text().await.unwrap();
        Self { fleet, doc: OpenApi::from_json(&doc).unwrap() }
    }

    /// Sends a request with the token; `body` is sent as is (so malformed JSON can be sent too).
    /// Panics if the answer's status or body is not as documented, or if an accepted request
    /// body does not fit its documented schema.
    async fn raw(&self, method: Method, path: &str, body: Option<&str>) -> (u16, Value) {
        let mut req = self.fleet.http.request(method.clone(), self.fleet.url(path)).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_owned());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let content_type =
            res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let text = res.text().await.unwrap();
        let answer = serde_json::from_str(&text).unwrap_or(Value::Null);
        let m = method.as_str();
        if let Err(v) = self.doc.check_response(m, path, status, &content_type, &answer) {
            panic!("{m} {path} answered {status} {answer} not as documented: {v:?}");
        }
        let sent = body.and_then(|b| serde_json::from_str::<Value>(b).ok());
        if (200..300).contains(&status) && sent.is_some() {
            if let Err(v) = self.doc.check_request(m, path, None, sent.as_ref()) {
                panic!("{m} {path} accepted {sent:?} that its schema refuses: {v:?}");
            }
        }
        (status, answer)
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.raw(Method::PUT, path, Some(&body.to_string())).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.raw(Method::GET, path, None).await
    }

    async fn delete(&self, path: &str) -> u16 {
        self.raw(Method::DELETE, path, None).await.0
    }

    /// Asserts a refusal: its status and `error` reason.
    async fn refused(&self, path: &str, body: Value, status: u16, reason: &str) {
        let (s, v) = self.put(path, body.clone()).await;
        assert_eq!((s, v["error"].as_str()), (status, Some(reason)), "PUT {path} {body}: {v}");
    }
}

async fn organizations_carry_voicemail_settings(engine: Engine) {
    let api = Api::start(engine).await;
    let (s, v) = api.put("/v1/organizations/acme", json!({"name": "Acme"})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v,
        json!({"id": "acme", "name": "Acme", "voicemail_greeting": DEFAULT_GREETING, "voicemail_voice": null,
               "voicemail_language": null, "voicemail_max_secs": 120, "ai_agent_sip_uri": null})
    );
    let full = json!({"name": "Acme", "voicemail_greeting": "Acme here, leave a message.",
        "voicemail_voice": "female", "voicemail_language": "en-US", "voicemail_max_secs": 300,
        "ai_agent_sip_uri": "sip:agent@ai.example.com"});
    let (s, v) = api.put("/v1/organizations/acme", full.clone()).await;
    assert_eq!(s, 200);
    let mut expected = full.clone();
    expected["id"] = json!("acme");
    assert_eq!(v, expected);
    assert_eq!(api.put("/v1/organizations/acme", full.clone()).await, (200, expected), "idempotent");
    let stored = api.fleet.store.organization("acme").await.unwrap().unwrap();
    assert_eq!(stored.settings.voicemail_max_secs, Some(300));
    assert_eq!(stored.settings.ai_agent_sip_uri.as_deref(), Some("sip:agent@ai.example.com"));

    let org = "/v1/organizations/acme";
    for (body, reason) in [
        (json!({"voicemail_max_secs": 9}), "voicemail_max_secs_out_of_range"),
        (json!({"voicemail_max_secs": 601}), "voicemail_max_secs_out_of_range"),
        (json!({"voicemail_max_secs": -1}), "voicemail_max_secs_out_of_range"),
        (json!({"ai_agent_sip_uri": "https://ai.example.com"}), "invalid_sip_uri"),
        (json!({"voicemail_greeting": "  "}), "invalid_field"),
        (json!({"voicemail_greeting": "x".repeat(3001)}), "invalid_field"),
        (json!({"name": "n".repeat(257)}), "invalid_field"),
        (json!({"voicemail_max_secs": "120"}), "invalid_body"),
        (json!({"greeting": "hi"}), "invalid_body"),
    ] {
        api.refused(org, body, 400, reason).await;
    }
    let (s, v) = api.raw(Method::PUT, org, Some("{\"name\": ")).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_body")));
    assert_eq!(api.fleet.store.organization("acme").await.unwrap().unwrap(), stored, "nothing changed");
    api.refused("/v1/organizations/bad%20id", json!({}), 400, "invalid_id").await;

    // A PUT replaces the whole resource: settings left out go back to the defaults.
    let (_, v) = api.put(org, json!({"voicemail_max_secs": 10})).await;
    assert_eq!(
        (v["voicemail_greeting"].as_str(), v["voicemail_max_secs"].as_u64()),
        (Some(DEFAULT_GREETING), Some(10))
    );
    assert!(v["ai_agent_sip_uri"].is_null() && v["name"].is_null());
}

async fn users_belong_to_several_orgs(engine: Engine) {
    let api = Api::start(engine).await;
    for o in ["a", "b"] {
        assert_eq!(api.put(&format!("/v1/organizations/{o}"), json!({})).await.0, 201);
    }
    let (s, v) = api.put("/v1/users/u1", json!({"org_id": "a", "name": "Ann"})).await;
    assert_eq!(
        (s, v),
        (201, json!({"id": "u1", "org_id": "a", "org_ids": ["a"], "name": "Ann", "dnd": false}))
    );
    let (s, v) = api.put("/v1/users/u1", json!({"org_ids": ["a", "b", "a"], "dnd": true})).await;
    assert_eq!(
        (s, v),
        (200, json!({"id": "u1", "org_id": "a", "org_ids": ["a", "b"], "name": null, "dnd": true}))
    );
    let body = json!({"org_id": "b", "org_ids": ["a", "b"], "dnd": true});
    let expected = json!({"id": "u1", "org_id": "b", "org_ids": ["b", "a"], "name": null, "dnd": true});
    assert_eq!(api.put("/v1/users/u1", body.clone()).await, (200, expected.clone()));
    assert_eq!(api.put("/v1/users/u1", body).await, (200, expected), "idempotent");
    let stored = api.fleet.store.user("u1").await.unwrap().unwrap();
    assert_eq!((stored.org_id.as_str(), stored.dnd), ("b", true));
    let mut memberships = stored.memberships();
    memberships.sort();
    assert_eq!(memberships, ["a", "b"]);

    for (body, status, reason) in [
        (json!({"org_id": "c", "org_ids": ["a", "b"]}), 400, "invalid_field"),
        (json!({"org_ids": []}), 400, "invalid_field"),
        (json!({"name": "no org"}), 400, "invalid_field"),
        (json!({"org_ids": ["a", "bad id"]}), 400, "invalid_id"),
        (json!({"org_id": "a", "dnd": "yes"}), 400, "invalid_body"),
        (json!({"org_id": "a", "role": "admin"}), 400, "invalid_body"),
        (json!({"org_ids": ["a", "nowhere"]}), 422, "invalid_reference"),
        (json!({"org_id": "a", "name": "n".repeat(257)}), 400, "invalid_field"),
    ] {
        api.refused("/v1/users/u1", body, status, reason).await;
    }
    assert_eq!(api.fleet.store.user("u1").await.unwrap().unwrap(), stored, "nothing changed");
    api.refused("/v1/users/u2", json!({"org_id": "nowhere"}), 422, "invalid_reference").await;
    assert!(api.fleet.store.user("u2").await.unwrap().is_none(), "a refused create leaves no row");
}

async fn numbers_are_validated_and_stored(engine: Engine) {
    let api = Api::start(engine).await;
    for o in ["acme", "other"] {
        api.put(&format!("/v1/organizations/{o}"), json!({})).await;
    }
    api.put("/v1/users/ann", json!({"org_id": "acme"})).await;
    api.put("/v1/users/bob", json!({"org_id": "other"})).await;
    let path = "/v1/numbers/+15551234567";
    let full = json!({"org_id": "acme", "user_id": "ann", "mode": "ring", "ring_timeout_secs": 20,
        "schedule": {"timezone": "America/Chicago",
                     "weekly": [{"days": ["mon", "tue"], "start": "09:00", "end": "17:00"},
                                {"days": ["fri"], "start": "22:00", "end": "06:00"}]},
        "outside_hours": "ai_agent"});
    let mut view = full.clone();
    view["e164"] = json!("+15551234567");
    assert_eq!(api.put(path, full.clone()).await, (201, view.clone()));
    assert_eq!(api.put(path, full.clone()).await, (200, view.clone()), "idempotent");
    assert_eq!(api.get(path).await, (200, view.clone()));
    assert_eq!(api.get("/v1/numbers/%2B15551234567").await, (200, view.clone()), "percent-encoded +");

    for (body, status, reason) in [
        (json!({"org_id": "acme", "ring_timeout_secs": 4}), 400, "ring_timeout_out_of_range"),
        (json!({"org_id": "acme", "ring_timeout_secs": 121}), 400, "ring_timeout_out_of_range"),
        (json!({"org_id": "acme", "ring_timeout_secs": -5}), 400, "ring_timeout_out_of_range"),
        (json!({"org_id": "acme", "mode": "fax"}), 400, "invalid_mode"),
        (json!({"org_id": "acme", "outside_hours": "ring"}), 400, "invalid_outside_hours"),
        (schedule("America/Chicagoo", &["mon"], "09:00", "17:00"), 400, "invalid_timezone"),
        (schedule("Mars/Olympus", &["mon"], "09:00", "17:00"), 400, "invalid_timezone"),
        (schedule("UTC", &["mon"], "9:00", "17:00"), 400, "invalid_time"),
        (schedule("UTC", &["mon"], "09:00", "24:01"), 400, "invalid_time"),
        (schedule("UTC", &["mon"], "24:00", "17:00"), 400, "invalid_time"),
        (schedule("UTC", &["mon"], "09:60", "17:00"), 400, "invalid_time"),
        (schedule("UTC", &["monday"], "09:00", "17:00"), 400, "invalid_day"),
        (schedule("UTC", &[], "09:00", "17:00"), 400, "empty_days"),
        (schedule("UTC", &["mon"], "09:00", "09:00"), 400, "empty_window"),
        (json!({"org_id": "acme", "schedule": {"timezone": "UTC"}}), 400, "invalid_body"),
        (json!({"user_id": "ann"}), 400, "invalid_body"),
        (json!({"org_id": "acme", "colour": "red"}), 400, "invalid_body"),
        (json!({"org_id": "bad id"}), 400, "invalid_id"),
        (json!({"org_id": "nowhere"}), 422, "invalid_reference"),
        (json!({"org_id": "acme", "user_id": "bob"}), 422, "invalid_reference"),
        (json!({"org_id": "acme", "user_id": "nobody"}), 422, "invalid_reference"),
    ] {
        api.refused(path, body, status, reason).await;
        assert_eq!(api.get(path).await, (200, view.clone()), "a refused PUT changes nothing");
    }
    let (s, v) = api.raw(Method::PUT, path, Some("not json")).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_body")));
    for bad in ["15551234567", "+0551234567", "+1", "+1555123456789012", "+1555abc"] {
        let p = format!("/v1/numbers/{bad}");
        api.refused(&p, json!({"org_id": "acme"}), 400, "invalid_e164").await;
        assert_eq!(api.get(&p).await.1["error"], "invalid_e164");
    }

    // Defaults: ring, 30 s, always open, voicemail outside hours, nobody receiving.
    let (s, v) = api.put("/v1/numbers/%2B15557654321", json!({"org_id": "other", "user_id": null})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v,
        json!({"e164": "+15557654321", "org_id": "other", "user_id": null, "mode": "ring",
               "ring_timeout_secs": 30, "schedule": null, "outside_hours": "voicemail"})
    );
    for mode in ["voicemail", "ai_agent", "ring"] {
        let (s, v) = api.put("/v1/numbers/+15557654321", json!({"org_id": "other", "mode": mode})).await;
        assert_eq!((s, v["mode"].as_str()), (200, Some(mode)));
    }

    assert_eq!(api.delete(path).await, 204);
    let (s, v) = api.get(path).await;
    assert_eq!((s, v["error"].as_str()), (404, Some("number_not_found")));
    assert_eq!(api.delete(path).await, 204, "deleting twice is fine");
    assert!(api.fleet.store.number("+15551234567").await.unwrap().is_none());
    assert!(api.fleet.store.number("+15557654321").await.unwrap().is_some());
}

fn schedule(tz: &str, days: &[&str], start: &str, end: &str) -> Value {
    json!({"org_id": "acme", "schedule": {"timezone": tz, "weekly": [{"days": days, "start": start, "end": end}]}})
}

async fn blocked_numbers_per_org(engine: Engine) {
    let api = Api::start(engine).await;
    api.put("/v1/organizations/acme", json!({})).await;
    api.put("/v1/organizations/other", json!({})).await;
    let path = "/v1/organizations/acme/blocked-numbers/+15550001111";
    let expected = json!({"org_id": "acme", "e164": "+15550001111", "blocked": true});
    assert_eq!(api.raw(Method::PUT, path, None).await, (201, expected.clone()));
    assert_eq!(api.put(path, json!({})).await, (200, expected.clone()), "idempotent");
    assert_eq!(
        api.raw(Method::PUT, "/v1/organizations/acme/blocked-numbers/%2B15550001111", None).await,
        (200, expected)
    );
    let store = &api.fleet.store;
    assert!(store.is_blocked("acme", "+15550001111").await.unwrap());
    assert!(!store.is_blocked("other", "+15550001111").await.unwrap(), "per organization");

    api.refused(path, json!({"reason": "spam"}), 400, "invalid_body").await;
    api.refused("/v1/organizations/acme/blocked-numbers/5550001111", json!({}), 400, "invalid_e164").await;
    api.refused(
        "/v1/organizations/nowhere/blocked-numbers/+15550002222",
        json!({}),
        422,
        "invalid_reference",
    )
    .await;
    assert!(!store.is_blocked("nowhere", "+15550002222").await.unwrap(), "nothing stored");

    assert_eq!(api.delete(path).await, 204);
    assert!(!store.is_blocked("acme", "+15550001111").await.unwrap());
    assert_eq!(api.delete(path).await, 204, "unblocking twice is fine");
    let (s, v) = api.raw(Method::DELETE, "/v1/organizations/acme/blocked-numbers/+1x", None).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_e164")));
}

fn leg(device: &str, attempt: u32, ccid: Option<&str>, state: LegState, cause: Option<&str>) -> Leg {
    Leg {
        id: LegId::new(device, attempt),
        call_control_id: ccid.map(str::to_owned),
        state,
        hangup_cause: cause.map(str::to_owned),
        hangup_reason: None,
        dial_failed: false,
    }
}

fn new_call(id: &str, org: &str, user: Option<&str>, started: chrono::DateTime<Utc>) -> Call {
    Call::new(
        CallSetup {
            id: id.into(),
            direction: CallDirection::Inbound,
            placed_by: None,
            org_id: org.into(),
            user_id: user.map(str::to_owned),
            parent_call_control_id: format!("v3:parent-{id}"),
            from: "+15551110000".into(),
            to: "+15552220000".into(),
            caller_name: None,
            org_name: None,
            voicemail: VoicemailSettings::default(),
        },
        started,
    )
}

fn rfc3339(t: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    t.to_rfc3339_opts(SecondsFormat::Micros, true).parse().unwrap()
}

async fn call_status_and_active_call(engine: Engine) {
    let api = Api::start(engine).await;
    let store = &api.fleet.store;
    // Microsecond times, as both engines keep them.
    let t0 = rfc3339(Utc::now() - Duration::seconds(30));

    let mut ringing = new_call("sess-ring", "org-2", Some("ann"), t0);
    ringing.state = CallState::Ringing;
    ringing.legs = vec![
        leg("phone-1", 1, Some("v3:leg-1"), LegState::Ringing, None),
        leg("tab-1", 1, None, LegState::Dialing, None),
    ];
    assert!(store.create_call(&ringing, &[]).await.unwrap());
    let expected = json!({
        "call_session_id": "sess-ring", "org_id": "org-2", "user_id": "ann", "direction": "inbound",
        "from": "+15551110000", "to": "+15552220000", "state": "ringing", "end_reason": null,
        "answered_by_device_id": null, "started_at": t0.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "answered_at": null, "ended_at": null,
        "legs": [
            {"device_id": "phone-1", "call_control_id": "v3:leg-1", "state": "ringing", "hangup_cause": null},
            {"device_id": "tab-1", "call_control_id": null, "state": "dialing", "hangup_cause": null}
        ],
        "recordings": [], "recording_errors": [], "log": null
    });
    let (s, v) = api.get("/v1/calls/sess-ring").await;
    assert_eq!(s, 200);
    assert_eq!(normalise_times(v), normalise_times(expected.clone()));
    let (s, v) = api.get("/v1/users/ann/active-call").await;
    assert_eq!(s, 200);
    assert_eq!(normalise_times(v), normalise_times(expected));

    // Answered elsewhere, then ended: the polling phone learns who answered and why it stopped.
    let (t1, t2) = (t0 + Duration::seconds(5), t0 + Duration::seconds(65));
    let mut done = new_call("sess-done", "org-2", Some("bob"), t0);
    done.state = CallState::Ended;
    done.end_reason = Some(EndReason::Completed);
    done.winner = Some(LegId::new("phone-9", 1));
    done.answered_at = Some(t1);
    done.ended_at = Some(t2);
    done.legs = vec![
        leg("phone-9", 1, Some("v3:leg-9"), LegState::Ended, Some("normal_clearing")),
        leg("tab-9", 1, Some("v3:leg-10"), LegState::Ended, Some("originator_cancel")),
    ];
    assert!(store.create_call(&done, &[]).await.unwrap());
    let recording = fleet_store::Recording {
        id: "rec-1".into(),
        call_session_id: "sess-done".into(),
        org_id: "org-2".into(),
        format: "mp3".into(),
        channels: "dual".into(),
        object_key: "recordings/org-2/sess-done/rec-1.mp3".into(),
        sha256: "0f".repeat(32),
        size_bytes: 4_096,
        duration_ms: Some(60_000),
        started_at: Some(t1),
        ended_at: Some(t2),
        saved_at: t2,
        stored_at: t2,
        transcript_status: fleet_store::TranscriptStatus::Pending,
        transcript: None,
        transcript_error: None,
        transcribed_at: None,
    };
    assert!(store.store_recording(&recording, &[]).await.unwrap());
    store.finish_transcript("rec-1", &fleet_store::Transcript::Done("Hello there.".into())).await.unwrap();
    store.record_recording_failure("ev-err", "sess-done", "Internal server error").await.unwrap();
    let (s, v) = api.get("/v1/calls/sess-done").await;
    assert_eq!(s, 200);
    assert_eq!((v["state"].as_str(), v["end_reason"].as_str()), (Some("ended"), Some("completed")));
    assert_eq!(v["answered_by_device_id"], "phone-9");
    assert_eq!(time(&v["answered_at"]), t1);
    assert_eq!(time(&v["ended_at"]), t2);
    assert_eq!(
        v["legs"][1],
        json!({"device_id": "tab-9", "call_control_id": "v3:leg-10", "state": "ended", "hangup_cause": "originator_cancel"})
    );
    let shown = &v["recordings"][0];
    assert_eq!((shown["recording_id"].as_str(), shown["channels"].as_str()), (Some("rec-1"), Some("dual")));
    assert_eq!(
        (shown["transcript_status"].as_str(), shown["transcript"].as_str()),
        (Some("done"), Some("Hello there."))
    );
    assert_eq!((shown["size_bytes"].as_i64(), shown["duration_ms"].as_i64()), (Some(4_096), Some(60_000)));
    assert!(shown.get("object_key").is_none(), "where the fleet keeps it is its own business");
    assert_eq!(v["recording_errors"][0]["reason"], "Internal server error");

    // Only ended calls (or none, or no such user): no active call.
    for user in ["bob", "nobody"] {
        let (s, v) = api.get(&format!("/v1/users/{user}/active-call")).await;
        assert_eq!((s, v["error"].as_str()), (404, Some("no_active_call")), "{user}");
    }
    let (s, v) = api.get("/v1/calls/sess-unknown").await;
    assert_eq!((s, v["error"].as_str()), (404, Some("call_not_found")));
    let (s, v) = api.get("/v1/calls/bad%20id").await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_id")));

    // A user's newest live call wins.
    let mut newer = new_call("sess-new", "org-3", Some("ann"), t0 + Duration::seconds(10));
    newer.state = CallState::Voicemail;
    newer.end_reason = Some(EndReason::NoAnswer);
    assert!(store.create_call(&newer, &[]).await.unwrap());
    let (_, v) = api.get("/v1/users/ann/active-call").await;
    assert_eq!((v["call_session_id"].as_str(), v["state"].as_str()), (Some("sess-new"), Some("voicemail")));
    assert_eq!((v["org_id"].as_str(), v["end_reason"].as_str()), (Some("org-3"), Some("no_answer")));
}

fn time(v: &Value) -> chrono::DateTime<Utc> {
    v.as_str().unwrap_or_else(|| panic!("not a time: {v}")).parse().unwrap()
}

/// Replaces RFC 3339 strings by their instant, so formatting differences do not matter.
fn normalise_times(mut v: Value) -> Value {
    for key in ["started_at", "answered_at", "ended_at"] {
        if let Some(s) = v[key].as_str() {
            let t: chrono::DateTime<Utc> = s.parse().unwrap();
            v[key] = json!(t.timestamp_micros());
        }
    }
    v
}

async fn every_route_needs_the_token_but_the_document(engine: Engine) {
    let api = Api::start(engine).await;
    let http = &api.fleet.http;
    let res = http.get(api.fleet.url("/v1/openapi.json")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200, "the document is public");
    let doc: Value = res.json().await.unwrap();

    // The router and the document come from the same declarations, so this list is what is
    // served; the loop below checks each entry is documented in full and really routed.
    let routes = fleet_ingress::api::routes();
    assert!(routes.len() >= 15, "{routes:?}");
    for (method, path) in &routes {
        let (method, path) = (method.as_str(), path.as_str());
        let op = &doc["paths"][path][method];
        assert!(
            op["summary"].is_string() && op["responses"].is_object(),
            "{method} {path} is not documented"
        );
        let concrete = path
            .replace("{e164}", "+15551234567")
            .replace("{id}", "x1")
            .replace("{call_session_id}", "s1")
            .replace("{call_control_id}", "c1");
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = if method == "put" { "{}" } else { "" };
        let send = |token: Option<&str>| {
            let mut req = http.request(m.clone(), api.fleet.url(&concrete)).body(body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send()
        };
        if path == "/v1/openapi.json" {
            continue;
        }
        assert!(op["responses"]["401"].is_object(), "{method} {path} documents its 401");
        let res = send(None).await.unwrap();
        assert_eq!(res.status().as_u16(), 401, "{method} {path} without a token");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "missing_token");
        let res = send(Some("wrong")).await.unwrap();
        assert_eq!(res.status().as_u16(), 401, "{method} {path} with a wrong token");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_token");
        let res = send(Some(TOKEN)).await.unwrap();
        assert!(
            ![401, 404, 405].contains(&res.status().as_u16()) || res_is_ours(res).await,
            "{method} {path} is routed"
        );
    }
    // What is served is the generated document, and it is valid OpenAPI (an outside validator:
    // PyPI openapi-spec-validator, which ./scripts/test.sh installs).
    assert_eq!(doc, serde_json::to_value(fleet_ingress::api::openapi()).unwrap());
    let file = std::env::temp_dir().join(format!("callfleet-openapi-{}.json", std::process::id()));
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new("openapi-spec-validator").arg(&file).output();
    let _ = std::fs::remove_file(&file);
    let out = out
        .unwrap_or_else(|e| panic!("openapi-spec-validator is needed ({e}); ./scripts/test.sh installs it"));
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the document is not valid OpenAPI: {said}");
    // Every schema reference resolves.
    let text = doc.to_string();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(doc["components"]["schemas"][name].is_object(), "dangling $ref {name}");
    }
    // The checker every other test relies on does refuse what is not documented.
    let shape =
        api.doc.check_response("GET", "/v1/calls/s1", 200, "application/json", &json!({"state": "x"}));
    assert!(shape.is_err(), "a wrong shape is caught");
    let status = api.doc.check_response("GET", "/v1/calls/s1", 418, "application/json", &json!({}));
    assert!(status.is_err(), "an undocumented status is caught");
    // Unknown routes and wrong methods answer in the same JSON error shape (before: empty bodies).
    for (method, path, status, reason) in [
        (Method::GET, "/v1/nothing-here", 404, "not_found"),
        (Method::GET, "/nowhere", 404, "not_found"),
        (Method::POST, "/v1/users/u1", 405, "method_not_allowed"),
        (Method::GET, "/webhooks/telnyx", 405, "method_not_allowed"),
    ] {
        let res = http.request(method.clone(), api.fleet.url(path)).bearer_auth(TOKEN).send().await.unwrap();
        let got = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!((got, body["error"].as_str()), (status, Some(reason)), "{method} {path}: {body}");
    }
}

/// A 404 from a handler carries a reason of its own (`device_not_found`, …), not the router's.
async fn res_is_ours(res: reqwest::Response) -> bool {
    res.status().as_u16() == 404
        && res.json::<Value>().await.is_ok_and(|v| v["error"].is_string() && v["error"] != "not_found")
}
