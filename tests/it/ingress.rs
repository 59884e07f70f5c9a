//! The ingress over HTTP: the signature table, input errors, duplicates and failover, and 503
//! while the store is away.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE};
use fleet_jobs::Pool;

use crate::on_both;
use crate::support::{Engine, Fleet, TestDb, eventually, proxy::Proxy, webhook};

on_both! {
    signature_table => signature_table_postgres, signature_table_sqlite;
    bad_input_changes_nothing => bad_input_changes_nothing_postgres, bad_input_changes_nothing_sqlite;
    duplicates_and_failover_enqueue_once => duplicates_and_failover_enqueue_once_postgres, duplicates_and_failover_enqueue_once_sqlite;
}

async fn status_and_reason(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let reason =
        body.get("error").or_else(|| body.get("status")).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    (status, reason)
}

/// Every trap of the reference signature scheme, end to end through HTTP.
async fn signature_table(engine: Engine) {
    let fleet = Fleet::start(engine).await;
    let body = webhook::event("sig-ok", "call.initiated", "v3:a", "s1");
    let now = chrono::Utc::now().timestamp();
    let sign =
        |ts: &str, body: &str| fleet_domain::signature::sign(&webhook::signing_key(), ts, body.as_bytes());
    let raw_sig = |ts: &str, body: &str| {
        let sig = sign(ts, body);
        base64::engine::general_purpose::STANDARD.decode(sig).unwrap()
    };
    let ts = now.to_string();
    let old = (now - 301).to_string();
    let future = (now + 301).to_string();
    let edge = (now - 299).to_string();
    let millis = (now * 1000).to_string();
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&body).unwrap()).unwrap();
    let other_key =
        fleet_domain::signature::sign(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]), &ts, body.as_bytes());
    let dotted = {
        let mut msg = format!("{ts}.").into_bytes();
        msg.extend_from_slice(body.as_bytes());
        base64::engine::general_purpose::STANDARD
            .encode(ed25519_dalek::Signer::sign(&webhook::signing_key(), &msg).to_bytes())
    };
    // (name, timestamp header, signature header, body sent, expected status, expected reason)
    type Case<'a> = (&'a str, Option<String>, Option<String>, String, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("genuine", Some(ts.clone()), Some(sign(&ts, &body)), body.clone(), 200, "accepted"),
        ("299 s old", Some(edge.clone()), Some(sign(&edge, &body)), body.clone(), 200, "duplicate"),
        ("missing signature", Some(ts.clone()), None, body.clone(), 401, "missing_signature"),
        ("empty signature", Some(ts.clone()), Some(String::new()), body.clone(), 401, "missing_signature"),
        ("missing timestamp", None, Some(sign(&ts, &body)), body.clone(), 401, "missing_timestamp"),
        ("301 s old", Some(old.clone()), Some(sign(&old, &body)), body.clone(), 401, "stale_timestamp"),
        (
            "301 s ahead",
            Some(future.clone()),
            Some(sign(&future, &body)),
            body.clone(),
            401,
            "stale_timestamp",
        ),
        (
            "milliseconds",
            Some(millis.clone()),
            Some(sign(&millis, &body)),
            body.clone(),
            401,
            "stale_timestamp",
        ),
        (
            "not a number",
            Some("abc".into()),
            Some(sign("abc", &body)),
            body.clone(),
            401,
            "invalid_timestamp",
        ),
        ("re-serialised body", Some(ts.clone()), Some(sign(&ts, &body)), pretty, 401, "signature_mismatch"),
        (
            "trailing newline",
            Some(ts.clone()),
            Some(sign(&ts, &body)),
            format!("{body}\n"),
            401,
            "signature_mismatch",
        ),
        ("dot separator", Some(ts.clone()), Some(dotted), body.clone(), 401, "signature_mismatch"),
        ("other account", Some(ts.clone()), Some(other_key), body.clone(), 401, "signature_mismatch"),
        (
            "unpadded",
            Some(ts.clone()),
            Some(STANDARD_NO_PAD.encode(raw_sig(&ts, &body))),
            body.clone(),
            401,
            "malformed_signature",
        ),
        (
            "truncated",
            Some(ts.clone()),
            Some(sign(&ts, &body)[..80].to_owned()),
            body.clone(),
            401,
            "malformed_signature",
        ),
    ];
    for (name, ts, sig, sent, status, reason) in cases {
        let mut headers = Vec::new();
        if let Some(ts) = ts {
            headers.push(("telnyx-timestamp", ts));
        }
        if let Some(sig) = sig {
            headers.push(("telnyx-signature-ed25519", sig));
        }
        let got = status_and_reason(fleet.post("/webhooks/telnyx", &headers, sent.into_bytes()).await).await;
        assert_eq!(got, (status, reason.to_owned()), "case {name}");
    }
    // URL-safe base64 differs from standard only when the signature has '+' or '/'; find such a body.
    let (body, sig) = (0..64)
        .map(|i| webhook::event(&format!("urlsafe-{i}"), "call.initiated", "v3:a", "s1"))
        .map(|b| {
            let raw = raw_sig(&ts, &b);
            (b, URL_SAFE.encode(raw))
        })
        .find(|(_, sig)| sig.contains('-') || sig.contains('_'))
        .unwrap();
    let headers = [("telnyx-timestamp", ts.clone()), ("telnyx-signature-ed25519", sig)];
    let got = status_and_reason(fleet.post("/webhooks/telnyx", &headers, body.into_bytes()).await).await;
    assert_eq!(got, (401, "malformed_signature".to_owned()), "case url-safe");
    assert_eq!(fleet.pending_jobs(Pool::Webhooks).await, 1, "only the genuine delivery was enqueued");
}

async fn bad_input_changes_nothing(engine: Engine) {
    let fleet = Fleet::start(engine).await;
    let cases: Vec<(String, u16, &str)> = vec![
        ("{not json".into(), 400, "malformed_json"),
        ("[1,2]".into(), 400, "malformed_json"),
        (r#"{"data":{"event_type":"call.hangup"}}"#.into(), 400, "invalid_envelope"),
        (r#"{"data":{"id":"","event_type":"call.hangup"}}"#.into(), 400, "invalid_envelope"),
        (
            format!(r#"{{"data":{{"id":"big","event_type":"x","pad":"{}"}}}}"#, "x".repeat(70_000)),
            413,
            "body_too_large",
        ),
    ];
    for (body, status, reason) in cases {
        let got = status_and_reason(fleet.deliver(&body).await).await;
        assert_eq!(got, (status, reason.to_owned()), "{}", &body[..body.len().min(60)]);
    }
    assert_eq!(fleet.pending_jobs(Pool::Webhooks).await, 0);
    assert!(fleet.store.webhook("big").await.unwrap().is_none());

    // An unknown event type is stored and acknowledged, then ignored by the workers.
    let unknown = webhook::event("unknown-1", "call.future.thing", "v3:u", "su");
    assert_eq!(status_and_reason(fleet.deliver(&unknown).await).await, (200, "accepted".into()));
    fleet.start_workers(&[Pool::Webhooks]);
    fleet.drain().await;
    let stored = fleet.store.webhook("unknown-1").await.unwrap().unwrap();
    assert_eq!(stored.outcome.as_deref(), Some("ignored"));
}

async fn duplicates_and_failover_enqueue_once(engine: Engine) {
    let fleet = Fleet::start(engine).await;
    let body = webhook::event("dup-1", "call.answered", "v3:d", "sd");
    let mut retried: serde_json::Value = serde_json::from_str(&body).unwrap();
    retried["meta"]["attempt"] = 2.into();
    let retried = retried.to_string();
    let sends = (0..12).map(|i| {
        let (path, body) = match i % 3 {
            0 => ("/webhooks/telnyx", body.clone()),
            1 => ("/webhooks/telnyx/failover", body.clone()),
            _ => ("/webhooks/telnyx", retried.clone()),
        };
        let fleet = &fleet;
        async move { status_and_reason(fleet.deliver_to(path, &body).await).await }
    });
    let results = futures::future::join_all(sends).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    assert_eq!(results.iter().filter(|(_, r)| r == "accepted").count(), 1, "{results:?}");
    assert_eq!(fleet.pending_jobs(Pool::Webhooks).await, 1);
    // A failover-only first delivery is stored once too.
    let fo = webhook::event("dup-2", "call.hangup", "v3:d", "sd");
    assert_eq!(
        status_and_reason(fleet.deliver_to("/webhooks/telnyx/failover", &fo).await).await.1,
        "accepted"
    );
    assert_eq!(status_and_reason(fleet.deliver(&fo).await).await.1, "duplicate");
    assert_eq!(fleet.store.webhook("dup-2").await.unwrap().unwrap().source, "failover");
    assert_eq!(fleet.pending_jobs(Pool::Webhooks).await, 2);
}

/// Postgres goes away (its connections are cut): the ingress answers 503, never 2xx, and
/// recovers by itself when Postgres is back; nothing answered 503 was stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingress_answers_503_while_postgres_is_down() {
    let test_db = TestDb::new(Engine::Postgres).await;
    let target: std::net::SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let proxy = Proxy::start(target).await;
    let proxied_url = test_db.url.replace("127.0.0.1:5432", &proxy.addr.to_string());
    let direct_url = test_db.url.clone();
    let mut test_db = test_db;
    test_db.url = proxied_url;
    let fleet = Fleet::start_on(test_db, &[]).await;
    let direct = fleet_store::Db::open(&direct_url).await.unwrap().store();

    assert_eq!(
        status_and_reason(fleet.deliver(&webhook::event("pg-1", "call.initiated", "v3:p", "sp")).await)
            .await
            .0,
        200
    );
    assert_eq!(status_and_reason(fleet.http.get(fleet.url("/readyz")).send().await.unwrap()).await.0, 200);

    proxy.cut();
    let down = webhook::event("pg-2", "call.initiated", "v3:p", "sp");
    let (status, reason) = status_and_reason(fleet.deliver(&down).await).await;
    assert_eq!((status, reason.as_str()), (503, "store_unavailable"));
    let ready = fleet.http.get(fleet.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let body = ready.text().await.unwrap();
    assert!(body.contains("store_unavailable"), "{body}");
    // Our own sentence, never the driver's (no addresses, pool or connection internals).
    for leak in ["127.0.0.1", "pool", "connection", "timed out", "error communicating"] {
        assert!(!body.to_lowercase().contains(leak), "readiness leaks {leak:?}: {body}");
    }
    assert!(direct.webhook("pg-2").await.unwrap().is_none(), "a 503 stored nothing");

    proxy.restore();
    eventually(30, "the ingress to recover", || {
        let fleet = &fleet;
        let down = down.clone();
        async move { (fleet.deliver(&down).await.status().as_u16() == 200).then_some(()) }
    })
    .await;
    assert!(direct.webhook("pg-2").await.unwrap().is_some());
    assert_eq!(status_and_reason(fleet.http.get(fleet.url("/readyz")).send().await.unwrap()).await.0, 200);
}
