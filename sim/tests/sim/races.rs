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
