//! Carrier-simulator load: 500 concurrent inbound calls ringing 10 device legs each, through the
//! simulator's HTTP API and its signed webhooks, as the fleet drives it.
//!
//!   cargo bench --bench sim
//!
//! The same scenario runs twice in one process: webhooks to a counting stub (what the simulator
//! alone sustains) and to callfleet's real ingress storing every event durably in PostgreSQL.
//! The simulator is not the bottleneck when the first run is clearly faster than the second.
//! Manual sim clock (ring times are simulated), real HTTP on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use fleet_sim::{
    Caller, CallerScript, ClockMode, CredentialRef, DevicePlatform, DeviceScript, RingBehaviour, SimConfig,
    Simulator,
};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const CALLS: usize = 500;
const LEGS: usize = 10;
const PAR: usize = 64;
const KEY: &str = "bench-key";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(bench());
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> Value {
        let resp =
            self.http.post(format!("{}{path}", self.base)).bearer_auth(KEY).json(&body).send().await.unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }
}

async fn bench() {
    println!("| receiver | phase | wall time | work | rate |");
    println!("|---|---|---|---|---|");
    // 1. A counting stub: the simulator alone.
    let counter = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/webhooks/telnyx",
        post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/telnyx", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    scenario("counting stub", url, |_| {}).await;

    // 2. callfleet's ingress on PostgreSQL: every webhook verified, stored and enqueued.
    let admin_url = std::env::var("CALLFLEET_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("cf_bench_sim_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&admin_url).await.expect("Postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&admin).await.unwrap();
    let db_url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let db = fleet_store::Db::open(&db_url).await.unwrap();
    db.migrate().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/telnyx", listener.local_addr().unwrap());
    let store = db.store();
    scenario("callfleet ingress, PostgreSQL", url, move |public_key| {
        let config = fleet_platform::Config::from_lookup(|k| match k {
            "CALLFLEET_DATABASE_URL" => Some(db_url.clone()),
            "TELNYX_PUBLIC_KEY" => Some(public_key.to_owned()),
            _ => None,
        })
        .unwrap();
        let app = fleet_ingress::router(fleet_ingress::IngressState::new(&config, store.clone()).unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
    })
    .await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events")
        .fetch_one(
            &sqlx::PgPool::connect(&format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0))
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    println!("\nevents stored durably by the ingress: {stored}");
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
        .execute(&admin)
        .await;
}

/// Runs the 500 × 10 scenario with webhooks to `hook_url`; `serve` starts the receiver once the
/// simulator's public key is known.
async fn scenario(receiver: &str, hook_url: String, serve: impl FnOnce(&str)) {
    let cancel = CancellationToken::new();
    let mut config = SimConfig::new(hook_url);
    config.clock = ClockMode::Manual;
    config.api_key = Some(KEY.into());
    config.dial_limit = None;
    config.seed = 11;
    let sim =
        Simulator::start(config, tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(), cancel.clone())
            .await
            .unwrap();
    serve(&sim.public_key_base64());
    sim.add_number("+13125550199");
    let api =
        &Api { http: reqwest::Client::builder().no_proxy().build().unwrap(), base: sim.telnyx_api_base() };

    let t0 = Instant::now();
    let users: Vec<String> = futures::stream::iter(0..CALLS * LEGS)
        .map(|i| async move {
            let v = api
                .post("/telephony_credentials", json!({"connection_id": "c", "name": format!("dev-{i}")}))
                .await;
            v["data"]["sip_username"].as_str().unwrap().to_owned()
        })
        .buffered(PAR)
        .collect()
        .await;
    for (i, user) in users.iter().enumerate() {
        sim.add_device(DeviceScript {
            id: format!("d{i}"),
            platform: DevicePlatform::Android,
            push_token: None,
            credential: CredentialRef::SipUsername(user.clone()),
            online: true,
            register_after_push: None,
            on_ring: RingBehaviour::Answer { after: Duration::from_millis(1_000 + (i % LEGS) as u64 * 100) },
        })
        .unwrap();
    }
    let setup = t0.elapsed();

    let t1 = Instant::now();
    let calls: Vec<String> = (0..CALLS)
        .map(|i| {
            let script = CallerScript {
                from: Caller::Pstn(format!("+1312{i:07}")),
                to: "+13125550199".into(),
                at: Duration::ZERO,
                hangup_after: Some(Duration::from_secs(60)),
            };
            sim.place_call(script).unwrap().call_control_id
        })
        .collect();
    sim.settle().await;
    let legs: Vec<Vec<String>> = futures::stream::iter(calls.iter().enumerate())
        .map(|(i, parent)| {
            let users = &users;
            async move {
                api.post(&format!("/calls/{parent}/actions/answer"), json!({"command_id": format!("ans-{i}")})).await;
                let dials = (0..LEGS).map(|l| async move {
                    let to = format!("sip:{}@sip.telnyx.com", users[i * LEGS + l]);
                    let body = json!({"connection_id": "c", "to": to, "from": "+13125550100", "link_to": parent, "command_id": format!("dial-{i}-{l}")});
                    api.post("/calls", body).await["data"]["call_control_id"].as_str().unwrap().to_owned()
                });
                futures::future::join_all(dials).await
            }
        })
        .buffered(PAR)
        .collect()
        .await;
    sim.settle().await;
    sim.advance(Duration::from_millis(1_000)).await.unwrap();
    futures::stream::iter(calls.iter().zip(&legs))
        .map(|(parent, legs)| async move {
            api.post(&format!("/calls/{parent}/actions/bridge"), json!({"call_control_id": legs[0]})).await;
            for leg in &legs[1..] {
                api.post(&format!("/calls/{leg}/actions/hangup"), json!({})).await;
            }
        })
        .buffered(PAR)
        .collect::<Vec<_>>()
        .await;
    sim.advance(Duration::from_secs(60)).await.unwrap();
    sim.settle().await;
    let calls_phase = t1.elapsed();

    let requests = sim.requests().len();
    let hooks = sim.webhooks();
    let delivered =
        hooks.iter().filter(|h| matches!(h.outcome, fleet_sim::DeliveryOutcome::Delivered { .. })).count();
    println!(
        "| {receiver} | setup: {} credentials over the API | {:.2} s | {} requests | {:.0} requests/s |",
        CALLS * LEGS,
        setup.as_secs_f64(),
        CALLS * LEGS,
        (CALLS * LEGS) as f64 / setup.as_secs_f64()
    );
    println!(
        "| {receiver} | {CALLS} calls × {LEGS} legs: answer, dial, bridge, hang up | {:.2} s | {} API requests, {delivered} webhooks delivered ({} attempts), {} anomalies | {:.0} webhooks/s |",
        calls_phase.as_secs_f64(),
        requests.saturating_sub(CALLS * LEGS),
        hooks.len(),
        sim.anomalies().len(),
        delivered as f64 / calls_phase.as_secs_f64()
    );
    cancel.cancel();
}
