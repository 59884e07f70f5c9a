//! Ingress benchmark: webhooks acknowledged per second and ack latency at fixed offered loads,
//! durable (Postgres, SQLite) beside a verify-only handler (the ceiling), all in one run.
//!
//!   cargo bench --bench ingress            # full run (~4 min)
//!   BENCH_SECS=2 cargo bench --bench ingress
//!   BENCH_RATES=4000,6000,8000 cargo bench --bench ingress
//!
//! Open-loop load: requests are scheduled at the offered rate and latency is measured from the
//! scheduled send time, so a stall shows up as latency instead of slowing the sender (no
//! coordinated omission). Bodies are signed before the clock starts. The load generator shares
//! the machine (2 cores) with the server; every variant pays the same cost, so the ratios hold.
//!
//! Each durable step also says where its acks' time went, from the ingress's own histograms
//! recorded in this process: the whole ack inside the server (`callfleet_webhook_ack_seconds`),
//! the wait for a writer (`callfleet_webhook_queue_seconds`) and the batch's transaction
//! (`callfleet_webhook_commit_seconds`, per batch). Histograms give bucket bounds, not exact
//! quantiles: "≤ 20" means the quantile fell in the bucket ending at 20 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use fleet_domain::signature::{WebhookVerifier, public_key_base64, sign};
use fleet_domain::webhook::parse_head;
use tokio::net::TcpListener;

/// Offered rates, unless `BENCH_RATES` (comma-separated) says otherwise.
const RATES: [u64; 6] = [500, 1_000, 2_000, 4_000, 6_000, 8_000];
const SATURATION_CONCURRENCY: usize = 64;

struct Target {
    name: &'static str,
    url: String,
}

struct Run {
    cpu: Cpu,
    offered: Option<u64>,
    sent: usize,
    ok: usize,
    rps: f64,
    p50: Duration,
    p99: Duration,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    fleet_platform::metrics::install();
    let secs: u64 = std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let rates: Vec<u64> = match std::env::var("BENCH_RATES") {
        Ok(list) => list.split(',').map(|r| r.trim().parse().expect("BENCH_RATES: integers")).collect(),
        Err(_) => RATES.to_vec(),
    };
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let pg_admin = std::env::var("CALLFLEET_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pg_name = format!("cf_bench_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&pg_admin).await.expect("Postgres at CALLFLEET_TEST_PG");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{pg_name}\""))).execute(&admin).await.unwrap();
    let pg_url = format!("{}/{pg_name}", pg_admin.rsplit_once('/').unwrap().0);
    let dir = std::env::temp_dir().join(format!("callfleet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite_url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());

    let targets = vec![
        Target { name: "verify-only (ceiling)", url: serve(verify_only(&key)).await },
        Target { name: "durable, PostgreSQL", url: serve(durable(&pg_url, &key).await).await },
        Target { name: "durable, SQLite", url: serve(durable(&sqlite_url, &key).await).await },
    ];
    let http = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(512).build().unwrap();
    let mut counter = 0usize;
    let mut report = String::new();
    let mut ceilings = Vec::new();
    for target in &targets {
        // Start each variant from the same Postgres state: no checkpoint pending from the last one.
        let _ = sqlx::query("CHECKPOINT").execute(&admin).await;
        report.push_str(&format!("\n### {}\n\n| offered /s | sent | 2xx | acked /s | p50 ms | p99 ms | Postgres checkpoints ended in the step | in the server p50 / p99 ms | waiting for a writer | the batch's transaction |\n|---|---|---|---|---|---|---|---|---|---|\n", target.name));
        let before = checkpoints(&admin).await;
        let buckets = split_buckets();
        let saturated = saturate(&http, target, &key, &mut counter, secs).await;
        let saturated_split = split_between(&buckets, &split_buckets());
        let saturated_checkpoints = checkpoints(&admin).await - before;
        ceilings.push((target.name, saturated.rps, saturated.cpu, saturated.ok));
        for &rate in &rates {
            let before = checkpoints(&admin).await;
            let buckets = split_buckets();
            let run = open_loop(&http, target, &key, &mut counter, rate, secs).await;
            let split = split_between(&buckets, &split_buckets());
            report.push_str(&row(&run, checkpoints(&admin).await - before, &split));
        }
        report.push_str(&row(&saturated, saturated_checkpoints, &saturated_split));
    }
    let ceiling = ceilings[0].1;
    report.push_str("\n### Saturation throughput against the verify-only ceiling\n\n| variant | acked /s | ratio | CPU µs per ack: callfleet + load generator | CPU µs per ack: postgres |\n|---|---|---|---|---|\n");
    for (name, rps, cpu, acked) in &ceilings {
        let per = |s: f64| s * 1e6 / (*acked).max(1) as f64;
        report.push_str(&format!(
            "| {name} | {rps:.0} | {:.2} | {:.0} | {:.0} |\n",
            rps / ceiling,
            per(cpu.own),
            per(cpu.postgres)
        ));
    }
    println!("{report}");
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{pg_name}\" WITH (FORCE)")))
        .execute(&admin)
        .await;
    let _ = std::fs::remove_dir_all(dir);
}

fn row(run: &Run, checkpoints: i64, split: &str) -> String {
    let offered = run.offered.map_or("closed loop, 64 in flight".to_owned(), |r| r.to_string());
    format!(
        "| {offered} | {} | {} | {:.0} | {:.2} | {:.2} | {checkpoints} | {split} |\n",
        run.sent,
        run.ok,
        run.rps,
        run.p50.as_secs_f64() * 1e3,
        run.p99.as_secs_f64() * 1e3
    )
}

/// The ingress histograms an ack's time is split into (see the header).
const SPLIT: [&str; 3] =
    ["callfleet_webhook_ack_seconds", "callfleet_webhook_queue_seconds", "callfleet_webhook_commit_seconds"];

/// Cumulative bucket counts (upper bound in seconds, count) of each of [`SPLIT`], as rendered.
fn split_buckets() -> Vec<Vec<(f64, f64)>> {
    let text = fleet_platform::metrics::render();
    SPLIT
        .iter()
        .map(|name| {
            let prefix = format!("{name}_bucket{{");
            text.lines()
                .filter(|l| l.starts_with(&prefix))
                .filter_map(|l| {
                    let le = l.split("le=\"").nth(1)?.split('"').next()?;
                    let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                    Some((le, l.rsplit(' ').next()?.parse().ok()?))
                })
                .collect()
        })
        .collect()
}

/// "p50 / p99" of each histogram over the samples recorded between two [`split_buckets`], as the
/// bound in ms of the bucket each quantile fell in; "—" where nothing was recorded.
fn split_between(before: &[Vec<(f64, f64)>], after: &[Vec<(f64, f64)>]) -> String {
    let quantile = |b: &[(f64, f64)], a: &[(f64, f64)], q: f64| {
        let count = |v: &[(f64, f64)], i: usize| v.get(i).map_or(0.0, |x| x.1);
        let total = count(a, a.len().saturating_sub(1)) - count(b, b.len().saturating_sub(1));
        if total <= 0.0 {
            return "—".to_owned();
        }
        let i = (0..a.len()).find(|&i| count(a, i) - count(b, i) >= q * total).unwrap_or(a.len() - 1);
        match a[i].0 {
            le if le.is_finite() => format!("≤ {}", le * 1e3),
            _ => "> 10000".to_owned(),
        }
    };
    (0..SPLIT.len())
        .map(|k| {
            let (b, a) = (before.get(k).map_or(&[][..], |v| v), &after[k]);
            format!("{} / {}", quantile(b, a, 0.5), quantile(b, a, 0.99))
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Checkpoints the Postgres server has finished so far (timed and requested; the counters move
/// when one ends): a checkpoint inside a step can make its p99 (flushes slow down, and the writes
/// after it carry whole pages), so each step says how many ended while it ran.
async fn checkpoints(admin: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
        .fetch_one(admin)
        .await
        .unwrap_or(0)
}

async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/webhooks/telnyx")
}

/// The same verification and parsing as the ingress, and nothing else.
fn verify_only(key: &ed25519_dalek::SigningKey) -> Router {
    let verifier = Arc::new(WebhookVerifier::from_base64(&public_key_base64(key)).unwrap());
    Router::new().route(
        "/webhooks/telnyx",
        post(move |headers: HeaderMap, body: Bytes| {
            let verifier = verifier.clone();
            async move {
                let h = |n| headers.get(n).and_then(|v| v.to_str().ok());
                let now = chrono::Utc::now().timestamp();
                if verifier.verify(h("telnyx-timestamp"), h("telnyx-signature-ed25519"), &body, now).is_err()
                {
                    return StatusCode::UNAUTHORIZED;
                }
                match parse_head(&body) {
                    Ok(_) => StatusCode::OK,
                    Err(_) => StatusCode::BAD_REQUEST,
                }
            }
        }),
    )
}

async fn durable(url: &str, key: &ed25519_dalek::SigningKey) -> Router {
    let db = fleet_store::Db::open(url).await.unwrap();
    db.migrate().await.unwrap();
    let config = fleet_platform::Config::from_lookup(|k| match k {
        "CALLFLEET_DATABASE_URL" => Some(url.to_owned()),
        "TELNYX_PUBLIC_KEY" => Some(public_key_base64(key)),
        _ => None,
    })
    .unwrap();
    fleet_ingress::router(fleet_ingress::IngressState::new(&config, db.store()).unwrap())
}

fn signed_request(key: &ed25519_dalek::SigningKey, n: usize) -> (String, String, String) {
    let body = format!(
        r#"{{"data":{{"event_type":"call.initiated","id":"bench-{n}-{}","occurred_at":"2026-11-23T03:30:00.076316Z","payload":{{"call_control_id":"v3:bench-{n}","call_leg_id":"l-{n}","call_session_id":"s-{n}","client_state":null,"direction":"incoming","from":"+13125550101","to":"+13125550199","state":"parked"}},"record_type":"event"}},"meta":{{"attempt":1,"delivered_to":"http://127.0.0.1/webhooks/telnyx"}}}}"#,
        std::process::id()
    );
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = sign(key, &ts, body.as_bytes());
    (body, ts, sig)
}

fn prepare(
    key: &ed25519_dalek::SigningKey,
    counter: &mut usize,
    count: usize,
) -> Vec<(String, String, String)> {
    let out = (0..count).map(|i| signed_request(key, *counter + i)).collect();
    *counter += count;
    out
}

async fn send(http: &reqwest::Client, url: &str, req: (String, String, String)) -> bool {
    let (body, ts, sig) = req;
    match http
        .post(url)
        .header("telnyx-timestamp", ts)
        .header("telnyx-signature-ed25519", sig)
        .body(body)
        .send()
        .await
    {
        Ok(resp) => resp.status().is_success(),
        Err(_) => false,
    }
}

async fn open_loop(
    http: &reqwest::Client,
    target: &Target,
    key: &ed25519_dalek::SigningKey,
    counter: &mut usize,
    rate: u64,
    secs: u64,
) -> Run {
    let total = (rate * secs) as usize;
    let requests = prepare(key, counter, total);
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for (i, req) in requests.into_iter().enumerate() {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (http, url) = (http.clone(), target.url.clone());
        tasks.push(tokio::spawn(async move {
            let ok = send(&http, &url, req).await;
            (ok, due.elapsed())
        }));
    }
    finish(Some(rate), tasks, start).await
}

async fn saturate(
    http: &reqwest::Client,
    target: &Target,
    key: &ed25519_dalek::SigningKey,
    counter: &mut usize,
    secs: u64,
) -> Run {
    let requests = Arc::new(std::sync::Mutex::new(prepare(key, counter, 40_000 * secs as usize)));
    let cpu_before = Cpu::now();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..SATURATION_CONCURRENCY)
        .map(|_| {
            let (http, url, requests) = (http.clone(), target.url.clone(), requests.clone());
            tokio::spawn(async move {
                let mut results = Vec::new();
                while Instant::now() < deadline {
                    let Some(req) = requests.lock().unwrap().pop() else { break };
                    let sent = Instant::now();
                    let ok = send(&http, &url, req).await;
                    results.push((ok, sent.elapsed()));
                }
                results
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    let mut run = summarize(None, all, elapsed);
    run.cpu = Cpu::now().minus(&cpu_before);
    run
}

/// CPU seconds used by this process (server + load generator) and by every `postgres` process.
#[derive(Debug, Default, Clone, Copy)]
struct Cpu {
    own: f64,
    postgres: f64,
}

impl Cpu {
    fn now() -> Self {
        let mut cpu = Cpu { own: ticks("/proc/self/stat").map_or(0.0, |(_, t)| t), postgres: 0.0 };
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                if let Some((comm, t)) = ticks(&format!("{}/stat", entry.path().display())) {
                    if comm == "postgres" {
                        cpu.postgres += t;
                    }
                }
            }
        }
        cpu
    }

    fn minus(&self, before: &Cpu) -> Cpu {
        Cpu { own: self.own - before.own, postgres: self.postgres - before.postgres }
    }
}

/// (command name, user + system CPU seconds) of one /proc/<pid>/stat.
fn ticks(path: &str) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((comm, (utime + stime) / 100.0))
}

async fn finish(
    offered: Option<u64>,
    tasks: Vec<tokio::task::JoinHandle<(bool, Duration)>>,
    start: Instant,
) -> Run {
    let mut all = Vec::with_capacity(tasks.len());
    for t in tasks {
        all.push(t.await.unwrap());
    }
    summarize(offered, all, start.elapsed())
}

fn summarize(offered: Option<u64>, results: Vec<(bool, Duration)>, elapsed: Duration) -> Run {
    let ok = results.iter().filter(|(ok, _)| *ok).count();
    let mut lat: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Run {
        cpu: Cpu::default(),
        offered,
        sent: results.len(),
        ok,
        rps: ok as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
    }
}
