//! FCM send: validation over HTTP, scripted outcomes, latency, delivery and the observer.

use std::time::Duration;

use serde_json::{Value, json};

use super::{call_message, start};
use crate::push::{Outcome, Provider, Script};

#[tokio::test]
async fn success_delivers_once_and_notifies_observers() {
    let h = start().await;
    let mut events = h.sim.subscribe();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    h.sim.observe(tx);
    let called = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = called.clone();
    h.sim.on_delivered(move |p| sink.lock().unwrap().push(p.token.clone()));
    let token = h.access_token().await;

    let r = h.fcm_send(&token, &call_message("tok-1")).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let name = body["name"].as_str().unwrap();
    assert!(name.starts_with("projects/callfleet-sim/messages/0:"), "{name}");

    let seen = events.recv().await.unwrap();
    assert_eq!(seen.provider, Provider::Fcm);
    assert_eq!(seen.token, "tok-1");
    assert_eq!(seen.data["call_id"], "c_01JZ8Q4M2V3K");
    assert_eq!(seen.message_id, name);
    assert_eq!(rx.recv().await.unwrap().message_id, name);
    // The callback ran before the response was written.
    assert_eq!(*called.lock().unwrap(), ["tok-1"]);

    let delivered = h.sim.delivered("tok-1");
    assert_eq!(delivered.len(), 1);
    let attempts = h.sim.attempts(Provider::Fcm, "tok-1");
    assert_eq!(attempts.len(), 1);
    assert!(attempts[0].reply.delivered);
    assert_eq!(attempts[0].body["message"]["android"]["priority"], "high");
    assert!(attempts[0].headers["authorization"].starts_with("Bearer ya29."));
}

#[tokio::test]
async fn validation_errors_have_fcms_shape_and_consume_no_script_step() {
    let h = start().await;
    let token = h.access_token().await;
    h.sim.script(Provider::Fcm, "tok-v", [Outcome::Status(503)]);

    let mut bad = call_message("tok-v");
    bad["message"]["data"]["attempt"] = json!(12);
    let r = h.fcm_send(&token, &bad).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(body["error"]["message"], "Invalid value at 'message.data[0].value' (TYPE_STRING), 12");
    assert_eq!(body["error"]["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest");

    let cases = [
        json!({"message": {"token": "tok-v", "data": {"from": "x"}}}),
        json!({"message": {"token": "tok-v", "android": {"priority": "urgent"}}}),
        json!({"message": {"token": "tok-v", "android": {"ttl": "30"}}}),
        json!({"message": {"token": "tok-v", "data": {"k": "x".repeat(4096)}}}),
        json!({"message": {"token": "tok-v", "notifcation": {}}}),
        json!({"message": {"data": {"a": "b"}}}),
    ];
    for c in &cases {
        assert_eq!(h.fcm_send(&token, c).await.status(), 400, "{c}");
    }
    let r = h.fcm_send(&token, &json!({"message": {"token": "bad token!"}})).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["details"][0]["errorCode"], "INVALID_ARGUMENT");
    assert_eq!(body["error"]["message"], "The registration token is not a valid FCM registration token");

    // Non-JSON body.
    let r = h
        .http
        .post(format!("{}/v1/projects/callfleet-sim/messages:send", h.base))
        .bearer_auth(&token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Another project.
    let r = h
        .http
        .post(format!("{}/v1/projects/other-project/messages:send", h.base))
        .bearer_auth(&token)
        .json(&call_message("tok-v"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");

    // The scripted 503 is still first in line.
    assert_eq!(h.fcm_send(&token, &call_message("tok-v")).await.status(), 503);
    assert!(h.sim.delivered("tok-v").is_empty());
}

#[tokio::test]
async fn scripted_outcomes_on_the_wire() {
    let h = start().await;
    let token = h.access_token().await;
    let send = |t: &'static str| {
        let h = &h;
        let token = token.clone();
        async move {
            let r = h.fcm_send(&token, &call_message(t)).await;
            let status = r.status().as_u16();
            let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            (status, retry_after, r.json::<Value>().await.unwrap())
        }
    };

    // 503 then success: delivered exactly once.
    h.sim.script(Provider::Fcm, "t-503", [Outcome::Status(503), Outcome::Ok]);
    let (s, _, b) = send("t-503").await;
    assert_eq!((s, b["error"]["status"].as_str()), (503, Some("UNAVAILABLE")));
    assert_eq!(b["error"]["details"][0]["errorCode"], "UNAVAILABLE");
    assert_eq!(send("t-503").await.0, 200);
    assert_eq!(h.sim.delivered("t-503").len(), 1);
    assert_eq!(h.sim.attempts(Provider::Fcm, "t-503").len(), 2);

    // 429 with Retry-After.
    h.sim.script(Provider::Fcm, "t-429", [Outcome::RetryAfter(429, Duration::from_secs(3))]);
    let (s, ra, b) = send("t-429").await;
    assert_eq!((s, ra.as_deref()), (429, Some("3")));
    assert_eq!(b["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(b["error"]["details"][0]["errorCode"], "QUOTA_EXCEEDED");
    assert_eq!(h.sim.attempts(Provider::Fcm, "t-429")[0].reply.retry_after_secs, Some(3));

    // UNREGISTERED: the exact reported body.
    h.sim.script(Provider::Fcm, "t-gone", Script::always(Outcome::Unregistered));
    let (s, _, b) = send("t-gone").await;
    assert_eq!(s, 404);
    let want: Value = serde_json::from_str(
        r#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND",
        "details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#,
    )
    .unwrap();
    assert_eq!(b, want);
    assert_eq!(send("t-gone").await.0, 404);

    // 500 forever.
    h.sim.script(Provider::Fcm, "t-500", Script::always(Outcome::Status(500)));
    for _ in 0..3 {
        let (s, _, b) = send("t-500").await;
        assert_eq!((s, b["error"]["status"].as_str()), (500, Some("INTERNAL")));
    }

    // Invalid token and an explicit errorCode.
    h.sim.script(
        Provider::Fcm,
        "t-bad",
        [Outcome::BadDeviceToken, Outcome::Reason(403, "SENDER_ID_MISMATCH".into())],
    );
    let (s, _, b) = send("t-bad").await;
    assert_eq!((s, b["error"]["details"][0]["errorCode"].as_str()), (400, Some("INVALID_ARGUMENT")));
    let (s, _, b) = send("t-bad").await;
    assert_eq!((s, b["error"]["details"][0]["errorCode"].as_str()), (403, Some("SENDER_ID_MISMATCH")));

    // Project-level quota: Google's generic 429 without an FcmError detail.
    h.sim.script(Provider::Fcm, "t-quota", [Outcome::Reason(429, String::new())]);
    let (s, _, b) = send("t-quota").await;
    assert_eq!((s, b["error"]["status"].as_str()), (429, Some("RESOURCE_EXHAUSTED")));
    assert_eq!(b["error"]["details"][0]["@type"], "type.googleapis.com/google.rpc.ErrorInfo");

    for t in ["t-429", "t-gone", "t-500", "t-bad", "t-quota"] {
        assert!(h.sim.delivered(t).is_empty(), "{t}");
    }
    // validate_only answers the fake id, delivers nothing and keeps the script.
    h.sim.script(Provider::Fcm, "t-dry", [Outcome::Status(500)]);
    let mut dry = call_message("t-dry");
    dry["validate_only"] = json!(true);
    let r = h.fcm_send(&token, &dry).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["name"], "projects/callfleet-sim/messages/fake_message_id");
    assert_eq!(send("t-dry").await.0, 500);
}

#[tokio::test(start_paused = true)]
async fn latency_runs_on_tokio_time_and_delivery_follows_it() {
    let h = start().await;
    let token = h.access_token().await;
    h.sim.script(Provider::Fcm, "t-slow", Script::default().latency(Duration::from_millis(50)));
    h.sim.set_default_latency(Duration::from_millis(5));

    let started = tokio::time::Instant::now();
    assert_eq!(h.fcm_send(&token, &call_message("t-slow")).await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(50));
    let arrived = h.sim.attempts(Provider::Fcm, "t-slow")[0].at;
    let delivered = h.sim.delivered("t-slow")[0].at;
    assert_eq!(delivered - arrived, Duration::from_millis(50));

    assert_eq!(h.fcm_send(&token, &call_message("t-default")).await.status(), 200);
    let arrived = h.sim.attempts(Provider::Fcm, "t-default")[0].at;
    assert_eq!(h.sim.delivered("t-default")[0].at - arrived, Duration::from_millis(5));
}

#[tokio::test(start_paused = true)]
async fn hang_holds_the_request_until_the_client_gives_up() {
    let h = start().await;
    let token = h.access_token().await;
    h.sim.script(Provider::Fcm, "t-hang", [Outcome::Hang]);
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let started = tokio::time::Instant::now();
    let err = client
        .post(format!("{}/v1/projects/callfleet-sim/messages:send", h.base))
        .bearer_auth(&token)
        .json(&call_message("t-hang"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(10));
    let attempts = h.sim.attempts(Provider::Fcm, "t-hang");
    assert_eq!(attempts[0].reply.status, None);
    assert!(h.sim.delivered("t-hang").is_empty());
    // The next request gets the default outcome.
    assert_eq!(h.fcm_send(&token, &call_message("t-hang")).await.status(), 200);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_gives_up_during_latency_does_not_undeliver() {
    let h = start().await;
    let token = h.access_token().await;
    let mut events = h.sim.subscribe();
    h.sim.script(Provider::Fcm, "t-late", Script::default().latency(Duration::from_secs(5)));
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(1)).build().unwrap();
    let err = client
        .post(format!("{}/v1/projects/callfleet-sim/messages:send", h.base))
        .bearer_auth(&token)
        .json(&call_message("t-late"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    let pushed = events.recv().await.unwrap();
    assert_eq!(pushed.token, "t-late");
    assert_eq!(pushed.at - h.sim.attempts(Provider::Fcm, "t-late")[0].at, Duration::from_secs(5));
}
