//! What the call races need from the simulator (issue 10, item 5): the constant API latency, one
//! delivery lane per leg, per-call device behaviours, the race anomalies, the merged per-call timeline
//! and the app-event receiver.

use std::time::{Duration, Instant};

use fleet_sim::openapi_check::OpenApi;
use serde_json::{Value, json};

use crate::support::Env;

/// `GET`/`PUT`/`POST` on the control API: (status, JSON or null), checking that the route is documented
/// in `/sim/openapi.json` and that a JSON answer matches its schema.
pub async fn control(env: &Env, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
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
    let json_answer =
        res.headers().get("content-type").is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
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
        env.sim.set_pstn_behaviour(n, fleet_sim::RingBehaviour::Answer { after: Duration::from_millis(1_000) });
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
    let met = rv.met.lock().unwrap().clone();
    met
}

#[tokio::test]
async fn each_leg_has_its_own_delivery_lane_so_two_answers_arrive_together() {
    assert_eq!(two_answers(fleet_sim::LaneScope::Leg).await, [true, true]);
}

#[tokio::test]
async fn one_lane_per_session_serialises_a_calls_legs() {
    assert_eq!(two_answers(fleet_sim::LaneScope::Session).await, [false, true]);
}
