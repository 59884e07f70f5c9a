//! Push delivery: 1,000 devices each rung with an `incoming_call` push, the simulated FCM and
//! APNs answering after 50 ms, through the push pool (PostgreSQL and SQLite, two concurrency
//! settings) against the same 1,000 requests sent one after another in the same run.
//!
//!   cargo bench --bench push
//!
//! Half the devices are Android (FCM), half iOS (APNs VoIP over HTTP/2). The fleet's 1,000 jobs
//! are enqueued in one batch at t0 (1,000 calls ringing at once); a push counts as sent when the
//! simulated provider delivers it (after its latency). Enqueue-to-sent is measured per push from
//! t0; the sequential baseline measures the same way (all requested at t0, sent in turn). The
//! providers' rate limits are raised to 10,000/s so that they do not cap the measurement.

use std::time::{Duration, Instant};

use fleet_domain::push::{PushMessage, route};
use fleet_jobs::Pool;
use fleet_push::PushGateway;
use fleet_sim::{SimConfig, SimHandle, Simulator};
use fleet_store::push::push_job;
use fleet_store::{DeviceRegistration, Organization, User};
use tokio_util::sync::CancellationToken;

const DEVICES: usize = 1_000;
const LATENCY: Duration = Duration::from_millis(50);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(bench());
}

struct Run {
    label: String,
    wall: Duration,
    p50: Duration,
    p99: Duration,
}

impl Run {
    fn row(&self, baseline: &Run) {
        println!(
            "| {} | {:.2} s | {:.0} | {:.0} ms | {:.0} ms | {:.1}× |",
            self.label,
            self.wall.as_secs_f64(),
            DEVICES as f64 / self.wall.as_secs_f64(),
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0,
            baseline.wall.as_secs_f64() / self.wall.as_secs_f64(),
        );
    }
}

async fn bench() {
    let cancel = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim =
        Simulator::start(SimConfig::new("http://127.0.0.1:9/webhooks/telnyx"), listener, cancel.clone())
            .await
            .unwrap();
    sim.push().set_default_latency(LATENCY);
    let key_path = std::env::temp_dir().join(format!("cf-bench-apns-{}.p8", std::process::id()));
    let push_env = sim.push_env(&key_path, "com.example.phone").unwrap();

    let admin_url = std::env::var("CALLFLEET_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = sqlx::PgPool::connect(&admin_url).await.expect("Postgres");

    let baseline = sequential(&push_env).await;
    println!("| run | wall time | pushes/s | p50 enqueue→sent | p99 enqueue→sent | speed-up vs sequential |");
    println!("|---|---|---|---|---|---|");
    baseline.row(&baseline);
    for concurrency in [32usize, 128] {
        for engine in ["PostgreSQL", "SQLite"] {
            let name = format!("cf_bench_push_{}_{concurrency}", std::process::id());
            let dir = std::env::temp_dir().join(&name);
            let url = if engine == "PostgreSQL" {
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&admin)
                    .await
                    .unwrap();
                format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0)
            } else {
                std::fs::create_dir_all(&dir).unwrap();
                format!("sqlite://{}?mode=rwc", dir.join("p.db").display())
            };
            let run = fleet(
                &sim,
                &push_env,
                &url,
                concurrency,
                format!("push pool, {engine}, concurrency {concurrency}"),
            )
            .await;
            run.row(&baseline);
            if engine == "PostgreSQL" {
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await;
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
    let _ = std::fs::remove_file(&key_path);
    cancel.cancel();
}

/// The fleet's configuration: the simulator's push settings, provider limits raised out of the way.
fn config(push_env: &[(&str, String)], url: &str, concurrency: usize) -> fleet_platform::Config {
    fleet_platform::Config::from_lookup(|k| match k {
        "CALLFLEET_DATABASE_URL" => Some(url.to_owned()),
        "CALLFLEET_WORKER_CONCURRENCY" => Some(concurrency.to_string()),
        "CALLFLEET_FCM_RATE_LIMIT" | "CALLFLEET_APNS_RATE_LIMIT" => Some("10000".into()),
        _ => push_env.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone()),
    })
    .unwrap()
}

/// Device `i`: even ones Android, odd ones iOS; tokens unique per run (`tag`).
fn device(i: usize, tag: &str) -> DeviceRegistration {
    let android = i % 2 == 0;
    DeviceRegistration {
        id: format!("d-{i}"),
        user_id: "u1".into(),
        org_id: "org-1".into(),
        platform: if android { "android" } else { "ios" }.into(),
        push_token: android.then(|| format!("fcm-{tag}-{i}")),
        voip_token: (!android).then(|| voip_token(&format!("{tag}-{i}"))),
        app_version: None,
        name: None,
    }
}

/// A 64-hex-digit APNs token derived from `seed` (APNs tokens are hex).
fn voip_token(seed: &str) -> String {
    let hex: String = seed.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0>64}")
}

fn ringing(i: usize, tag: &str) -> PushMessage {
    PushMessage::IncomingCall {
        call_session_id: format!("s-{tag}-{i}"),
        call_control_id: format!("v3:{tag}-{i}"),
        caller_number: "+13125550101".into(),
        caller_name: None,
        org_id: "org-1".into(),
        org_name: "Acme".into(),
        channel_number: "+13125550199".into(),
        ring_ends_at: chrono::Utc::now().timestamp() + 600,
    }
}

fn percentiles(t0: Instant, mut sent: Vec<Instant>, label: String) -> Run {
    sent.sort();
    let at = |q: f64| sent[((sent.len() as f64 * q).ceil() as usize).clamp(1, sent.len()) - 1] - t0;
    Run { label, wall: *sent.last().unwrap() - t0, p50: at(0.50), p99: at(0.99) }
}

/// The same 1,000 requests through the same gateway, one after another.
async fn sequential(push_env: &[(&str, String)]) -> Run {
    let dir = std::env::temp_dir().join(format!("cf-bench-push-seq-{}", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", dir.join("unused.db").display());
    let gateway = PushGateway::from_config(&config(push_env, &url, 1)).unwrap();
    let now = chrono::Utc::now().timestamp();
    let t0 = Instant::now();
    let mut sent = Vec::with_capacity(DEVICES);
    for i in 0..DEVICES {
        let d = device(i, "seq");
        let (provider, token) = route(&d.platform, d.push_token.as_deref(), d.voip_token.as_deref()).unwrap();
        let outcome = gateway.send(provider, &token, &ringing(i, "seq"), now).await;
        assert!(matches!(outcome, fleet_domain::push::ProviderOutcome::Delivered), "{outcome:?}");
        sent.push(Instant::now());
    }
    percentiles(t0, sent, "one after another (baseline)".into())
}

async fn fleet(
    sim: &SimHandle,
    push_env: &[(&str, String)],
    url: &str,
    concurrency: usize,
    label: String,
) -> Run {
    let db = fleet_store::Db::open(url).await.unwrap();
    db.migrate().await.unwrap();
    let store = db.store();
    store
        .upsert_organization(&Organization {
            id: "org-1".into(),
            name: Some("Acme".into()),
            ..Organization::default()
        })
        .await
        .unwrap();
    store
        .upsert_user(&User { id: "u1".into(), org_id: "org-1".into(), name: None, ..User::default() })
        .await
        .unwrap();
    let tag = format!("c{concurrency}{}", if url.starts_with("sqlite") { "s" } else { "p" });
    let devices: Vec<DeviceRegistration> = (0..DEVICES).map(|i| device(i, &tag)).collect();
    for d in &devices {
        store.register_device(d).await.unwrap();
    }
    let tokens: std::collections::HashSet<String> =
        devices.iter().filter_map(|d| d.push_token.clone().or_else(|| d.voip_token.clone())).collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    sim.push().observe(tx);

    let token = CancellationToken::new();
    let (c, d, t) = (config(push_env, url, concurrency), db.clone(), token.clone());
    let worker = tokio::spawn(async move { fleet_workers::run(&c, &d, &[Pool::Push], t).await });
    // Let the pool come up (and FCM's access token be fetched) before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let t0 = Instant::now();
    let requested = chrono::Utc::now().timestamp_millis();
    let jobs: Vec<_> =
        (0..DEVICES).map(|i| push_job(&format!("d-{i}"), &ringing(i, &tag), requested)).collect();
    store.enqueue(&jobs).await.unwrap();
    let mut sent = Vec::with_capacity(DEVICES);
    while sent.len() < DEVICES {
        let push =
            tokio::time::timeout(Duration::from_secs(120), rx.recv()).await.expect("pushes stalled").unwrap();
        if tokens.contains(&push.token) {
            sent.push(Instant::now());
        }
    }
    token.cancel();
    let _ = worker.await;
    percentiles(t0, sent, label)
}
