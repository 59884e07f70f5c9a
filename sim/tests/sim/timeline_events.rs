//! The merged per-call timeline (JSON and HTML) and the app-event receiver (issue 10, item 5).

use serde_json::json;

use crate::races::{control, sim_ring};
use crate::support::Env;

// ---- the merged per-call timeline ----

#[tokio::test]
async fn a_calls_timeline_merges_webhooks_commands_pushes_and_anomalies_in_order() {
    let env = Env::start(|_| {}).await;
    let (call, legs) = sim_ring(&env, &[2], &["c"]).await;
    env.advance_ms(2_000).await;
    let s = call.call_session_id.clone();
    let (status, t) = control(&env, reqwest::Method::GET, &format!("/sim/calls/{s}/timeline"), None).await;
    assert_eq!(status, 200);
    assert_eq!(t["call_session_id"], s);
    assert_eq!(t["legs"].as_array().unwrap().len(), 4);
    let entries = t["entries"].as_array().unwrap();
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    let times: Vec<u64> = entries.iter().map(|e| e["at_ms"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "times never go back: {times:?}");
    let summaries: Vec<String> = entries.iter().map(|e| e["summary"].as_str().unwrap().to_owned()).collect();
    let want = [
        "call.initiated attempt 1 → 200",
        "incoming_call push to a (APNs)",
        "dial → 200",
        "call.answered attempt 1 → 200",
        "answer → 200",
        "bridge → 200",
        "hangup → 200",
        "call_ended push to c (APNs)",
        "ANOMALY leg_still_ringing",
    ];
    let mut at = 0;
    for w in want {
        let found = summaries[at..].iter().position(|s| s.starts_with(w));
        at += found.unwrap_or_else(|| panic!("{w:?} missing after entry {at}: {summaries:#?}")) + 1;
    }
    let anomaly = entries.iter().find(|e| e["kind"] == "anomaly").unwrap();
    assert_eq!(anomaly["call_control_id"], legs[1].as_str());
    let kinds: std::collections::BTreeSet<&str> =
        entries.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), ["anomaly", "command", "push", "webhook"]);
    assert_eq!(t, serde_json::to_value(env.sim.call_timeline(&s).unwrap()).unwrap());

    let (status, index) = control(&env, reqwest::Method::GET, "/sim/sessions", None).await;
    assert_eq!(status, 200);
    assert_eq!(index[0]["call_session_id"], s);
    assert_eq!((index[0]["legs"].as_u64(), index[0]["anomalies"].as_u64()), (Some(4), Some(1)));
    let (status, _) = control(&env, reqwest::Method::GET, "/sim/calls/nope/timeline", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_timeline_pages_are_html_a_person_can_read() {
    let env = Env::start(|_| {}).await;
    let (call, _) = sim_ring(&env, &[1, 2], &["b", "c"]).await;
    let s = call.call_session_id.clone();
    let base = env.sim.base_url().to_owned();
    let get = |p: String| {
        let http = env.http.clone();
        async move {
            let res = http.get(p).send().await.unwrap();
            let ctype = res.headers()["content-type"].to_str().unwrap().to_owned();
            (res.status().as_u16(), ctype, res.text().await.unwrap())
        }
    };
    let (status, ctype, index) = get(format!("{base}/sim/timeline")).await;
    assert_eq!((status, ctype.starts_with("text/html")), (200, true));
    assert!(index.contains(&format!("href=\"/sim/timeline/{s}\"")), "{index}");
    let (status, _, page) = get(format!("{base}/sim/timeline/{s}")).await;
    assert_eq!(status, 200);
    for needle in
        ["<h2>Legs</h2>", "call.answered attempt 1 → 200", "bridge → 200", "incoming_call push to a"]
    {
        assert!(page.contains(needle), "{needle:?} not in the page");
    }
    assert!(page.contains("&quot;call_session_id&quot;"), "entry data is escaped");
    let (status, _, missing) = get(format!("{base}/sim/timeline/%3Cscript%3E")).await;
    assert_eq!(status, 404);
    assert!(missing.contains("&lt;script&gt;") && !missing.contains("<script>"));
    assert_eq!(control(&env, reqwest::Method::GET, "/sim/timeline", None).await.0, 200);
}

// ---- the app-event receiver ----

async fn send_event(env: &Env, id: &str, ts: i64, sig: Option<String>, body: &str) -> u16 {
    let mut req = env
        .http
        .post(env.sim.events_url())
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .body(body.to_owned());
    if let Some(s) = sig {
        req = req.header("webhook-signature", s);
    }
    req.send().await.unwrap().status().as_u16()
}

fn sign(env: &Env, id: &str, ts: i64, body: &str) -> Option<String> {
    Some(fleet_sim::app_events::signature(env.sim.events_secret(), id, ts, body.as_bytes()).unwrap())
}

#[tokio::test]
async fn app_events_are_verified_deduplicated_listed_and_put_on_the_calls_timeline() {
    let env = Env::start(|_| {}).await;
    let (call, _) = sim_ring(&env, &[1, 2], &["b", "c"]).await;
    let s = call.call_session_id.clone();
    let now = chrono::Utc::now().timestamp();
    let body = json!({"type": "call.answered", "timestamp": "2026-01-01T00:00:01Z",
                      "data": {"call_session_id": s, "device_id": "a"}})
    .to_string();

    env.sim.inject(fleet_sim::Fault::AppEventError { status: 503, count: 1 });
    assert_eq!(send_event(&env, "msg_1", now, sign(&env, "msg_1", now, &body), &body).await, 503);
    assert!(env.sim.app_events().is_empty(), "a refused delivery is not recorded");
    for _ in 0..3 {
        assert_eq!(send_event(&env, "msg_1", now, sign(&env, "msg_1", now, &body), &body).await, 204);
    }
    let events = env.sim.app_events();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].duplicates, events[0].event_type.as_deref()), (2, Some("call.answered")));
    assert_eq!(events[0].call_session_id.as_deref(), Some(s.as_str()));

    // Bad deliveries: 401, nothing recorded, each an anomaly.
    let forged = fleet_sim::app_events::signature("whsec_c2VjcmV0", "msg_2", now, body.as_bytes()).unwrap();
    assert_eq!(send_event(&env, "msg_2", now, Some(forged), &body).await, 401);
    assert_eq!(send_event(&env, "msg_3", now, None, &body).await, 401);
    let stale = now - 301;
    assert_eq!(send_event(&env, "msg_4", stale, sign(&env, "msg_4", stale, &body), &body).await, 401);
    let tampered = body.replace("\"a\"", "\"b\"");
    assert_eq!(send_event(&env, "msg_5", now, sign(&env, "msg_5", now, &body), &tampered).await, 401);
    assert_eq!(send_event(&env, "msg_6", now, sign(&env, "msg_6", now, "nope"), "nope").await, 400);
    let rejected = env.sim.anomalies().into_iter().filter(|a| a.kind == "app_event_rejected").count();
    assert_eq!(rejected, 4);

    let (status, listed) = control(&env, reqwest::Method::GET, "/sim/events", None).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["webhook_id"], "msg_1");
    let (_, info) = control(&env, reqwest::Method::GET, "/sim/info", None).await;
    assert_eq!(info["events_secret"], env.sim.events_secret());
    assert!(env.sim.events_secret().starts_with("whsec_"));
    let t = env.sim.call_timeline(&s).unwrap();
    let last = t.entries.last().unwrap();
    assert_eq!(last.kind, fleet_sim::EntryKind::AppEvent);
    assert_eq!(last.summary, "app event call.answered (+2 duplicates)");
}

#[tokio::test]
async fn a_configured_events_secret_is_used_and_a_bad_one_refuses_to_start() {
    let env = Env::start(|c| c.events_secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into())).await;
    assert_eq!(env.sim.events_secret(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let (now, body) = (chrono::Utc::now().timestamp(), r#"{"type":"call.missed","data":{}}"#);
    assert_eq!(send_event(&env, "m", now, sign(&env, "m", now, body), body).await, 204);

    let mut config = fleet_sim::SimConfig::new("http://127.0.0.1:9/webhooks/telnyx");
    config.events_secret = Some("whsec_not base64!".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let started =
        fleet_sim::Simulator::start(config, listener, tokio_util::sync::CancellationToken::new()).await;
    assert!(matches!(started, Err(fleet_sim::SimError::InvalidConfig(_))));
}
