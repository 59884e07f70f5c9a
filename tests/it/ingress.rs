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
    // The ingress reads its own clock seconds after `now` was taken (a slow CI run); the exact
    // ±300 s edges are unit-tested against a fixed clock (`domain/src/signature/tests.rs`), so
    // here the cases keep a margin of 30 s from the edge on both sides.
    let margin = fleet_domain::signature::TOLERANCE_SECS;
    let old = (now - margin - 30).to_string();
    let future = (now + margin + 30).to_string();
    let edge = (now - margin + 30).to_string();
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
        ("inside the window", Some(edge.clone()), Some(sign(&edge, &body)), body.clone(), 200, "duplicate"),
        ("missing signature", Some(ts.clone()), None, body.clone(), 401, "missing_signature"),
        ("empty signature", Some(ts.clone()), Some(String::new()), body.clone(), 401, "missing_signature"),
        ("missing timestamp", None, Some(sign(&ts, &body)), body.clone(), 401, "missing_timestamp"),
        ("too old", Some(old.clone()), Some(sign(&old, &body)), body.clone(), 401, "stale_timestamp"),
        (
            "too far ahead",
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
        let res = fleet.deliver(&body).await;
        // Refused before its body was read to the end: the server closes the connection, and says
        // so, or the client's next request on it would fail (IncompleteMessage) instead.
        let closes = res.headers().get("connection").is_some_and(|v| v == "close");
        let got = status_and_reason(res).await;
        assert_eq!(got, (status, reason.to_owned()), "{}", &body[..body.len().min(60)]);
        assert_eq!(closes, status == 413, "connection: close only when the body was left unread");
    }
    // Bytes that are not UTF-8 inside a string the head parser skips: refused, never stored with
    // replacement characters (which would differ from the signed bytes).
    let mut latin1 = br#"{"data":{"id":"latin1","event_type":"call.hangup","payload":{"from":"Jos"#.to_vec();
    latin1.extend_from_slice(b"\xe9\"}}}");
    let (ts, sig) = webhook::sign_bytes_now(&latin1);
    let headers = [("telnyx-timestamp", ts), ("telnyx-signature-ed25519", sig)];
    let got = status_and_reason(fleet.post("/webhooks/telnyx", &headers, latin1).await).await;
    assert_eq!(got, (400, "malformed_json".to_owned()));
    assert_eq!(fleet.pending_jobs(Pool::Webhooks).await, 0);
    assert!(fleet.store.webhook("big").await.unwrap().is_none());
    assert!(fleet.store.webhook("latin1").await.unwrap().is_none());

    // A field read only for tracing in an odd shape (`meta.attempt` as a string) is no reason to
    // refuse a signed delivery: before, it got 400 on every retry and was never stored.
    let mut odd: serde_json::Value =
        serde_json::from_str(&webhook::event("odd-attempt", "call.hangup", "v3:o", "so")).unwrap();
    odd["meta"]["attempt"] = "2".into();
    let odd = odd.to_string();
    assert_eq!(status_and_reason(fleet.deliver(&odd).await).await, (200, "accepted".into()));
    let stored = fleet.store.webhook("odd-attempt").await.unwrap().unwrap();
    assert_eq!(stored.body, odd, "stored exactly as signed");

    // An unknown event type is stored and acknowledged, then ignored by the workers.
    let unknown = webhook::event("unknown-1", "call.future.thing", "v3:u", "su");
    assert_eq!(status_and_reason(fleet.deliver(&unknown).await).await, (200, "accepted".into()));
    fleet.start_workers(&[Pool::Webhooks]);
    fleet.drain().await;
    let stored = fleet.store.webhook("unknown-1").await.unwrap().unwrap();
    assert_eq!(stored.outcome.as_deref(), Some("ignored"));
    assert_eq!(fleet.pending_jobs(Pool::Webhooks).await, 0);
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

/// Postgres restarts (connections cut, new ones refused): the ingress answers 503, never 2xx —
/// after the first failure at once — and recovers by itself when Postgres is back; nothing
/// answered 503 was stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingress_answers_503_while_postgres_is_down() {
    answers_503_while_postgres_is_gone(false).await;
}

/// The same across a network partition: connections to Postgres open and nothing answers, so the
/// first delivery waits out the connection timeout (2 s) and the next ones are refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingress_answers_503_at_once_while_postgres_is_unreachable() {
    answers_503_while_postgres_is_gone(true).await;
}

async fn answers_503_while_postgres_is_gone(partition: bool) {
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

    if partition {
        proxy.go_silent()
    } else {
        proxy.cut()
    }
    let down = webhook::event("pg-2", "call.initiated", "v3:p", "sp");
    let started = std::time::Instant::now();
    let (status, reason) = status_and_reason(fleet.deliver(&down).await).await;
    let first = started.elapsed();
    assert_eq!((status, reason.as_str()), (503, "store_unavailable"));
    // Later deliveries get their 503 at once instead of each waiting out the connection timeout.
    // (One of them may be the probe the gate lets through every 250 ms; the next is refused.)
    let mut refused_at_once = None;
    for n in 0..3 {
        let started = std::time::Instant::now();
        let r = fleet.deliver(&webhook::event(&format!("pg-fast-{n}"), "call.initiated", "v3:p", "sp")).await;
        assert_eq!(r.status().as_u16(), 503);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "store_unavailable");
        if body["detail"].as_str().is_some_and(|d| d.contains("refused at once")) {
            refused_at_once = Some(started.elapsed());
            break;
        }
    }
    let refused_in =
        refused_at_once.expect("a delivery after the first failure was refused without asking the store");
    eprintln!("partition {partition}: first 503 after {first:?}, the next refused in {refused_in:?}");
    let ready = fleet.http.get(fleet.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let body = ready.text().await.unwrap();
    assert!(body.contains("store_unavailable"), "{body}");
    // Our own sentence, never the driver's (no addresses, pool or connection internals).
    for leak in ["127.0.0.1", "pool", "connection", "timed out", "error communicating"] {
        assert!(!body.to_lowercase().contains(leak), "readiness leaks {leak:?}: {body}");
    }
    for id in ["pg-2", "pg-fast-0", "pg-fast-1", "pg-fast-2"] {
        assert!(direct.webhook(id).await.unwrap().is_none(), "a 503 stored nothing ({id})");
    }

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

/// `TELNYX_PUBLIC_KEY` with two keys (a rotation): a delivery signed by either is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn during_a_key_rotation_both_keys_are_trusted() {
    let old = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let keys = format!("{}, {}", fleet_domain::signature::public_key_base64(&old), webhook::public_key());
    let fleet = Fleet::start_on(TestDb::new(Engine::Sqlite).await, &[("TELNYX_PUBLIC_KEY", &keys)]).await;
    let new_body = webhook::event("rot-new", "call.initiated", "v3:a", "s1");
    assert_eq!(status_and_reason(fleet.deliver(&new_body).await).await, (200, "accepted".into()));
    let old_body = webhook::event("rot-old", "call.initiated", "v3:a", "s1");
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = fleet_domain::signature::sign(&old, &ts, old_body.as_bytes());
    let headers = [("telnyx-timestamp", ts), ("telnyx-signature-ed25519", sig)];
    let got = status_and_reason(fleet.post("/webhooks/telnyx", &headers, old_body.into_bytes()).await).await;
    assert_eq!(got, (200, "accepted".into()));
}

/// 2,000 connections that send half a request head and stall (slowloris) neither stop valid
/// webhooks from being acknowledged nor stay open: past the header timeout the server closes
/// them (before, they stayed open for ever and held graceful shutdown open too).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_clients_are_cut_off_and_do_not_stop_webhooks() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let fleet =
        Fleet::start_on(TestDb::new(Engine::Sqlite).await, &[("CALLFLEET_HTTP_HEADER_TIMEOUT_SECS", "2")])
            .await;
    let mut slow = Vec::new();
    for _ in 0..2_000 {
        let mut conn = tokio::net::TcpStream::connect(fleet.addr).await.unwrap();
        conn.write_all(b"POST /webhooks/telnyx HTTP/1.1\r\nHost: callfleet\r\nContent-Le").await.unwrap();
        slow.push(conn);
    }
    for i in 0..10 {
        let body = webhook::event(&format!("beside-slow-{i}"), "call.initiated", "v3:a", "s1");
        assert_eq!(status_and_reason(fleet.deliver(&body).await).await, (200, "accepted".into()));
    }
    let closed = futures::future::join_all(slow.iter_mut().map(|conn| async move {
        let mut buf = [0u8; 512];
        // EOF (or a reset) once the server gives up on the head; a timeout means still open.
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(30), conn.read(&mut buf)).await,
            Ok(Ok(_) | Err(_))
        )
    }))
    .await;
    assert_eq!(closed.iter().filter(|c| **c).count(), 2_000, "every stalled connection was closed");
}

/// Past `CALLFLEET_HTTP_MAX_IN_FLIGHT`, a request is answered 503 `overloaded` before its body
/// is read; a request whose body never finishes answers 408 at the request timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_in_flight_limit_requests_are_shed() {
    use tokio::io::AsyncReadExt as _;
    let limits = [("CALLFLEET_HTTP_MAX_IN_FLIGHT", "2"), ("CALLFLEET_HTTP_REQUEST_TIMEOUT_SECS", "10")];
    let fleet = Fleet::start_on(TestDb::new(Engine::Sqlite).await, &limits).await;
    let mut stalled = vec![stall(fleet.addr).await, stall(fleet.addr).await];
    // Connections are served by tasks in any order: a probe can take a slot before a stalled head
    // is read, and that stalled request is then the one shed. It is replaced until both stalled
    // requests hold the slots (10 s: a loaded machine gets there before they time out).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut probes = 0;
    let (id, shed) = loop {
        for conn in &mut stalled {
            if !matches!(conn.try_read(&mut [0u8; 64]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            {
                *conn = stall(fleet.addr).await;
            }
        }
        let id = format!("shed-{probes}");
        probes += 1;
        let body = webhook::event(&id, "call.initiated", "v3:a", "s1");
        let got = status_and_reason(fleet.deliver(&body).await).await;
        if got.0 == 503 {
            break (id, got);
        }
        assert!(tokio::time::Instant::now() < deadline, "no request was shed in 10 s ({probes} probes)");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(shed, (503, "overloaded".into()));
    assert!(fleet.store.webhook(&id).await.unwrap().is_none(), "nothing of a shed request is stored");
    for conn in &mut stalled {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), conn.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("request_timeout"), "{answer}");
        assert!(answer.contains("connection: close"), "the connection is closed after a timeout: {answer}");
    }
    let body = webhook::event("after-shedding", "call.initiated", "v3:a", "s1");
    assert_eq!(status_and_reason(fleet.deliver(&body).await).await, (200, "accepted".into()));
}

/// A connection that sent a webhook's head and the first bytes of a body that never finishes.
async fn stall(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = "POST /webhooks/telnyx HTTP/1.1\r\nHost: callfleet\r\nContent-Length: 1000\r\n\r\n{\"data\":";
    conn.write_all(head.as_bytes()).await.unwrap();
    conn
}

/// Clients that stall hold no shutdown open: with 500 connections stopped inside their request
/// head, 10 inside their body, and the header and request timeouts minutes away, the ingress
/// stops within its shutdown timeout (2 s here) of the stop signal. Graceful shutdown alone waits
/// for every open request to end, which a stalled one never does (checked: with the shutdown
/// timeout taken out, this test fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_clients_hold_no_shutdown_open() {
    use tokio::io::AsyncWriteExt as _;
    let test_db = TestDb::new(Engine::Sqlite).await;
    let late =
        [("CALLFLEET_HTTP_HEADER_TIMEOUT_SECS", "300"), ("CALLFLEET_HTTP_REQUEST_TIMEOUT_SECS", "600")];
    let config = crate::support::fleet::test_config(&test_db.url, &late);
    let store = test_db.open().await.store();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = fleet_platform::shutdown::CancellationToken::new();
    let served = tokio::spawn({
        let stop = stop.clone();
        async move { fleet_ingress::run(&config, store, listener, stop).await }
    });
    let mut stalled = Vec::new();
    for _ in 0..500 {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"POST /webhooks/telnyx HTTP/1.1\r\nHost: callfleet\r\nContent-Le").await.unwrap();
        stalled.push(conn);
    }
    for _ in 0..10 {
        stalled.push(stall(addr).await);
    }
    // Connections are accepted in order: once a later one is answered, the stalled ones are in.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let health = http.get(format!("http://{addr}/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    stop.cancel();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(30), served).await;
    assert!(stopped.is_ok(), "the ingress still served 30 s after the stop, held by stalled clients");
    drop(stalled);
}

/// Every answer carries a request id: the caller's when it sent one, else a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_carry_a_request_id() {
    let fleet = Fleet::start(Engine::Sqlite).await;
    let res = fleet.http.get(fleet.url("/healthz")).header("x-request-id", "req-abc").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-abc");
    let res = fleet.deliver(&webhook::event("rid-1", "call.initiated", "v3:a", "s1")).await;
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
}
