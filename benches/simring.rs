//! Simultaneous ring: `call.initiated` at the ingress → the last leg's dial at the simulator, for
//! N = 1, 5, 10, 25 devices, through the fleet as built (in this process: ingress + every worker
//! pool, PostgreSQL), beside the same N dial requests sent one after another in the same run; and
//! the winning leg's `call.answered` at the ingress → every other leg's hangup at the simulator.
//!
//!   cargo bench --bench simring                       # 10 calls per N, ~2 min
//!   BENCH_CALLS=20 cargo bench --bench simring
//!   CALLFLEET_TELNYX_CALLS_RATE_LIMIT=200 cargo bench --bench simring   # live-call budget raised
//!
//! The simulator runs on its real clock and holds every Telnyx API answer 50 ms (set after the
//! devices' credentials are provisioned). Per N: one user with N registered Android devices;
//! device 0 answers 300 ms after its leg rings, the others ring on; the caller hangs up after 1 s.
//! Calls run one at a time; the simulator's dials-per-second account limit is off. The fleet's Telnyx settings are its defaults unless the environment of
//! this command says otherwise (they are read from the process environment).
//!
//! Timing points (one host, one system clock): "at the ingress" is the `received_at` the ingress
//! stamps on the stored `webhook_events` row (its wall clock when the request arrived); "at the
//! simulator" is the sim time at which the simulator applied the request (`RecordedRequest.at_ms`,
//! whole milliseconds, before the 50 ms answer hold) mapped to the wall clock. The sequential
//! baseline, after each fleet call is quiet, replays that call's N recorded dial bodies (fresh
//! `command_id`s, `to` = an unregistered SIP user so nothing rings) one request after another,
//! from a clock read before the first to the last one's arrival at the simulator.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fleet_domain::credentials::CredentialStatus;
use fleet_domain::routing::{Mode, NumberConfig, OutsideHours};
use fleet_jobs::Pool;
use fleet_sim::{
    Caller, CallerScript, CredentialRef, DevicePlatform, DeviceScript, RingBehaviour, SimConfig, SimHandle,
    Simulator,
};
use fleet_store::{Db, DeviceRegistration, Organization, Store, User};
use tokio_util::sync::CancellationToken;

const LATENCY: Duration = Duration::from_millis(50);
const SIZES: [usize; 4] = [1, 5, 10, 25];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(bench());
}

struct Stats {
    n: usize,
    p50: f64,
    p99: f64,
}

fn stats(mut ms: Vec<f64>) -> Option<Stats> {
    if ms.is_empty() {
        return None;
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    Some(Stats { n: ms.len(), p50: at(0.50), p99: at(0.99) })
}

fn ms(d: chrono::Duration) -> f64 {
    d.num_microseconds().unwrap() as f64 / 1000.0
}

async fn bench() {
    let calls: usize = std::env::var("BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let admin_url = std::env::var("CALLFLEET_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = sqlx::PgPool::connect(&admin_url).await.expect("Postgres");
    let name = format!("cf_bench_simring_{}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&admin).await.unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let keys = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&keys).unwrap();

    let stop = CancellationToken::new();
    let ingress = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook_url = format!("http://{}/webhooks/telnyx", ingress.local_addr().unwrap());
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut sim_config = SimConfig::new(webhook_url);
    // The simulator's 30 dials/s account limit would reject the sequential replay right after a
    // fleet call of 25; this bench measures latency, not the account limit.
    sim_config.dial_limit = None;
    let sim = Simulator::start(sim_config, sim_listener, stop.clone()).await.unwrap();
    let mut vars: Vec<(&str, String)> = vec![
        ("CALLFLEET_DATABASE_URL", url.clone()),
        ("CALLFLEET_LISTEN", "127.0.0.1:0".into()),
        ("TELNYX_PUBLIC_KEY", sim.public_key_base64()),
        ("TELNYX_API_KEY", "bench-telnyx-key".into()),
        ("TELNYX_API_BASE", sim.telnyx_api_base()),
        ("TELNYX_CONNECTION_ID", sim.config().connection_id.clone()),
        ("TELNYX_CREDENTIAL_CONNECTION_ID", "cred-conn-1".into()),
        ("CALLFLEET_SECRET_KEY", format!("k1:{}", secret_key())),
        ("CALLFLEET_EVENTS_URL", sim.events_url()),
        ("CALLFLEET_EVENTS_SECRET", sim.events_secret().to_owned()),
    ];
    vars.extend(sim.push_env(&keys.join("apns.p8"), "com.example.phone").unwrap());
    let config = fleet_platform::Config::from_lookup(|k| {
        vars.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone()).or_else(|| std::env::var(k).ok())
    })
    .unwrap();
    let db = Db::open(&url).await.unwrap();
    db.migrate().await.unwrap();
    let store = db.store();
    let Db::Postgres(pg) = &db else { unreachable!() };
    let pool = pg.pool().clone();
    let (c, s, t) = (config.clone(), store.clone(), stop.clone());
    tokio::spawn(async move { fleet_ingress::run(&c, s, ingress, t).await });
    let (c, d, t) = (config.clone(), db.clone(), stop.clone());
    tokio::spawn(async move { fleet_workers::run(&c, &d, &Pool::ALL, t).await });

    // Set-up (not timed): one org; per N a user, a number and N registered devices.
    store
        .upsert_organization(&Organization {
            id: "org-1".into(),
            name: Some("Acme".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    for n in SIZES {
        let user = format!("u{n}");
        store
            .upsert_user(&User {
                id: user.clone(),
                org_id: "org-1".into(),
                org_ids: vec!["org-1".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        let number = number_of(n);
        let ring = NumberConfig {
            org_id: "org-1".into(),
            user_id: Some(user.clone()),
            mode: Mode::Ring,
            ring_timeout_secs: 30,
            schedule: None,
            outside_hours: OutsideHours::Voicemail,
        };
        store.put_number(&number, &ring).await.unwrap();
        sim.add_number(&number);
        for i in 0..n {
            phone(&store, &sim, &format!("d{n}-{i}"), &user, i == 0).await;
        }
    }
    sim.set_api_latency(LATENCY);
    let offset = sim.now_utc() - chrono::Duration::from_std(sim.now()).unwrap();
    let wall = |at_ms: u64| offset + chrono::Duration::milliseconds(at_ms as i64);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    println!(
        "| N | calls | fleet p50 ms | fleet p99 ms | sequential p50 ms | sequential p99 ms | p50 ratio | answered → other legs hung up p50 / p99 ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut counted_before = (0, 0);
    for n in SIZES {
        let (mut fleet, mut seq, mut cleanup) = (Vec::new(), Vec::new(), Vec::new());
        let mut unhung = 0usize;
        for k in 0..calls {
            sim.clear_logs();
            let placed = sim
                .place_call(CallerScript {
                    from: Caller::Pstn("+13125550101".into()),
                    to: number_of(n),
                    at: Duration::ZERO,
                    hangup_after: Some(Duration::from_secs(1)),
                })
                .unwrap();
            let parent = placed.call_control_id.clone();
            wait_ended(&store, &placed.call_session_id).await;
            tokio::time::sleep(Duration::from_millis(300)).await;

            let hooks = sim.webhooks();
            let requests = sim.requests();
            let initiated = hooks
                .iter()
                .find(|w| w.event_type == "call.initiated" && w.call_control_id.as_deref() == Some(&parent))
                .expect("call.initiated sent");
            let initiated_at = received_at(&pool, &initiated.event_id).await;
            let dials: Vec<_> = requests
                .iter()
                .filter(|r| {
                    r.operation == "dial" && r.body.get("link_to").and_then(|v| v.as_str()) == Some(&parent)
                })
                .collect();
            assert_eq!(dials.len(), n, "call {k}: {} dials for {n} devices", dials.len());
            let last_dial = dials.iter().map(|r| r.at_ms).max().unwrap();
            fleet.push(ms(wall(last_dial) - initiated_at));

            // Winner → every other leg hung up.
            let legs: Vec<String> = dials
                .iter()
                .filter_map(|r| {
                    r.response.pointer("/data/call_control_id").and_then(|v| v.as_str()).map(str::to_owned)
                })
                .collect();
            if n > 1
                && let Some(answered) = hooks.iter().find(|w| {
                    w.event_type == "call.answered"
                        && w.call_control_id.as_ref().is_some_and(|c| legs.contains(c))
                })
            {
                let winner = answered.call_control_id.clone().unwrap();
                let answered_at = received_at(&pool, &answered.event_id).await;
                let mut first_hangup: HashMap<&str, u64> = HashMap::new();
                for r in requests.iter().filter(|r| r.operation == "hangup") {
                    if let Some(t) = r.target.as_deref() {
                        first_hangup.entry(t).or_insert(r.at_ms);
                    }
                }
                let mut others = Vec::new();
                for c in legs.iter().filter(|c| **c != winner) {
                    match first_hangup.get(c.as_str()) {
                        Some(at) => others.push(*at),
                        None => {
                            // Reported, not hidden: a leg the fleet never hung up.
                            unhung += 1;
                            eprintln!(
                                "call {k} (N = {n}): leg {c} not hung up by the fleet: {:?}",
                                sim.call(c)
                            );
                        }
                    }
                }
                if let Some(last) = others.iter().max() {
                    cleanup.push(ms(wall(*last) - answered_at));
                }
            }

            // The same N dial requests, one after another.
            let bodies: Vec<serde_json::Value> = dials
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let mut b = r.body.clone();
                    b["command_id"] = format!("bench-seq-{n}-{k}-{i}").into();
                    b["to"] = "sip:bench-nobody@sip.telnyx.com".into();
                    b
                })
                .collect();
            let t0 = Utc::now();
            for b in &bodies {
                let res = http
                    .post(format!("{}/calls", sim.telnyx_api_base()))
                    .bearer_auth("bench-telnyx-key")
                    .json(b)
                    .send()
                    .await
                    .unwrap();
                let _ = res.bytes().await;
            }
            let last = sim
                .requests()
                .iter()
                .filter(|r| {
                    r.operation == "dial"
                        && r.body["command_id"]
                            .as_str()
                            .is_some_and(|c| c.starts_with(&format!("bench-seq-{n}-{k}-")))
                })
                .map(|r| r.at_ms)
                .max()
                .unwrap();
            seq.push(ms(wall(last) - t0));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let (f, s) = (stats(fleet).unwrap(), stats(seq).unwrap());
        let counted = (
            counter("callfleet_call_transitions_total"),
            counter("callfleet_call_transition_conflicts_total"),
        );
        let (transitions, conflicts) = (counted.0 - counted_before.0, counted.1 - counted_before.1);
        counted_before = counted;
        eprintln!(
            "N = {n}: {transitions} call transitions, {conflicts} compare-and-set conflicts in {calls} calls"
        );
        let c = stats(cleanup).map_or("—".to_owned(), |c| {
            format!("{:.1} / {:.1} ({} calls, {unhung} legs not hung up)", c.p50, c.p99, c.n)
        });
        println!(
            "| {n} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1}× | {c} |",
            f.n,
            f.p50,
            f.p99,
            s.p50,
            s.p99,
            s.p50 / f.p50.max(0.001)
        );
    }
    let anomalies = sim.anomalies();
    println!("\nsimulator anomalies: {}", anomalies.len());
    stop.cancel();
    drop(db);
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
        .execute(&admin)
        .await;
    let _ = std::fs::remove_dir_all(&keys);
}

fn number_of(n: usize) -> String {
    format!("+1312555{n:04}")
}

/// A registered Android phone: stored, its credential provisioned by the fleet on the simulator.
async fn phone(store: &std::sync::Arc<dyn Store>, sim: &SimHandle, id: &str, user: &str, answers: bool) {
    let token = format!("tok-{id}");
    let reg = DeviceRegistration {
        id: id.into(),
        user_id: user.into(),
        org_id: "org-1".into(),
        platform: "android".into(),
        push_token: Some(token.clone()),
        voip_token: None,
        app_version: None,
        name: None,
    };
    store.register_device(&reg).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let sip = loop {
        if let Some(cred) = store.device(id).await.unwrap().and_then(|d| d.credential)
            && cred.status == CredentialStatus::Active
            && let Some(sip) = cred.sip_username
        {
            break sip;
        }
        assert!(Instant::now() < deadline, "credential of {id} not provisioned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    sim.add_device(DeviceScript {
        id: id.into(),
        platform: DevicePlatform::Android,
        push_token: Some(token),
        credential: CredentialRef::SipUsername(sip),
        online: true,
        register_after_push: None,
        on_ring: if answers {
            RingBehaviour::Answer { after: Duration::from_millis(300) }
        } else {
            RingBehaviour::Never
        },
    })
    .unwrap();
}

async fn wait_ended(store: &std::sync::Arc<dyn Store>, session: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(call)) = store.call(session).await
            && call.ended_at.is_some()
        {
            return;
        }
        assert!(Instant::now() < deadline, "call {session} did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn received_at(pool: &sqlx::PgPool, event_id: &str) -> DateTime<Utc> {
    for _ in 0..100 {
        if let Some(at) = sqlx::query_scalar("SELECT received_at FROM webhook_events WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(pool)
            .await
            .unwrap()
        {
            return at;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("event {event_id} not stored");
}

fn secret_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}

/// The sum of a counter's series in this process's metrics (every label set).
fn counter(name: &str) -> u64 {
    fleet_platform::metrics::render()
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
