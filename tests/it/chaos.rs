//! Chaos: inbound calls against the simulator while the fleet's processes are SIGKILLed and
//! restarted (ingress, both workers, the scheduler), PostgreSQL "restarts" (every connection of
//! the processes cut and refused for 2 s, through a proxy) or is cut off by a partition (every
//! connection cut, new ones open and get no answer, 2 s), and Redis goes away (refused, 3 s).
//! Afterwards: every call ended with one bridge or one voicemail, no phone left ringing (still
//! ringing 8 s after its call was answered or ended: a fault holds decisions up for its length),
//! each app event emitted once, every acknowledged webhook processed, no dead job.
//!
//! The topology: the simulator delivers to an ingress *process* and fails over (after two failed
//! attempts, as Telnyx does) to the ingress in this process, which stays up: while the process
//! is down, deliveries go to the failover URL. Two `callfleet worker --pool all` processes and a
//! `callfleet scheduler` process, all on Postgres and Redis through the proxies.
//!
//! `CALLFLEET_CHAOS_CALLS` (default 12, CI-sized) and `CALLFLEET_CHAOS_GAP_MS` (mean gap between
//! calls, 150); partitions only with `CALLFLEET_CHAOS_PARTITIONS=on`; the acceptance report in
//! docs/benchmarks.md uses more, beside the same run with
//! `CALLFLEET_CHAOS_FAULTS=off` as its baseline. Seeded: the same calls,
//! phones and order of faults each run (their timing is the real clock's).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fleet_sim::DeliveryKnobs;
use fleet_store::Engine;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use crate::calls_soak::{assert_every_call_settled_once, place_calls, users_with_phones, wait_until_quiet};
use crate::support::calls::CallEnv;
use crate::support::proxy::Proxy;
use crate::support::{eventually, process};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Fault {
    KillIngress,
    KillWorker(usize),
    KillScheduler,
    PostgresRestart,
    PostgresPartition,
    RedisDown,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_survive_kills_and_outages_postgres() {
    let calls: usize = std::env::var("CALLFLEET_CHAOS_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let gap_ms: u64 =
        std::env::var("CALLFLEET_CHAOS_GAP_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let ingress_addr = format!("127.0.0.1:{}", process::free_port());
    let knobs = [
        ("CALLFLEET_ORPHAN_AFTER_SECS", "12"),
        ("CALLFLEET_WORKER_CONCURRENCY", "32"),
        ("CALLFLEET_TELNYX_CALLS_RATE_LIMIT", "5000"),
        ("CALLFLEET_TELNYX_HOUSEKEEPING_RATE_LIMIT", "1000"),
    ];
    let primary = format!("http://{ingress_addr}/webhooks/telnyx");
    let primary = primary.as_str();
    let env = CallEnv::start_for_processes(Engine::Postgres, &knobs, |c| {
        c.dial_limit = None;
        // A leg may ring on through a fault: a 2 s Postgres restart plus the reconnect holds every
        // decision up. "Left ringing" here means still ringing 8 s after its call was answered or
        // ended (the simulator's default grace is 2 s, which a fault-free run meets).
        c.anomaly_grace = Duration::from_secs(8);
        // The in-process ingress (always up) becomes the failover URL.
        c.failover_url = Some(c.webhook_url.clone());
        c.webhook_url = primary.to_owned();
    })
    .await;
    let pg = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let redis = Proxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let db_url = env.fleet.test_db.url.replace("127.0.0.1:5432", &pg.addr.to_string());
    assert_ne!(db_url, env.fleet.test_db.url, "the processes reach Postgres through the proxy");
    let redis_url = format!("redis://{}", redis.addr);
    let mut vars: Vec<(&str, &str)> = env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vars.push(("CALLFLEET_REDIS_URL", &redis_url));
    let prefix = format!("chaos-{}", ulid::Ulid::generate());
    vars.push(("CALLFLEET_REDIS_PREFIX", &prefix));
    let spawn = |args: &[&str], listen: Option<&str>| {
        let mut env = vars.clone();
        if let Some(addr) = listen {
            env.push(("CALLFLEET_LISTEN", addr));
        }
        process::spawn(&db_url, args, &env)
    };
    let mut ingress = spawn(&["ingress"], Some(&ingress_addr));
    let mut workers = [spawn(&["worker", "--pool", "all"], None), spawn(&["worker", "--pool", "all"], None)];
    let mut scheduler = spawn(&["scheduler"], None);

    let mut rng = SmallRng::seed_from_u64(14);
    let numbers = users_with_phones(&env, calls.div_ceil(4).max(1), 8, &mut rng).await;
    env.sim.set_delivery(DeliveryKnobs {
        duplicate_rate: 0.1,
        reorder_rate: 0.1,
        jitter: Duration::from_millis(30),
        ..DeliveryKnobs::default()
    });
    let placed = place_calls(&env, &numbers, calls, gap_ms, Duration::from_millis(500), "556", &mut rng);

    // Faults every 3 s from the first call until the last one has rung, every kind at least
    // once, in a seeded order.
    let last = placed.iter().map(|p| p.starts_at).max().unwrap() + Duration::from_secs(4);
    let mut kinds = vec![
        Fault::KillWorker(0),
        Fault::PostgresRestart,
        Fault::KillIngress,
        Fault::RedisDown,
        Fault::KillWorker(1),
        Fault::KillScheduler,
    ];
    // `CALLFLEET_CHAOS_PARTITIONS=on` adds network partitions from Postgres. Not in CI yet: with
    // them the phones ring seconds later (docs/benchmarks.md, chaos report) and in 1 of 7
    // 200-call runs a device went undismissed past the 8 s grace.
    if std::env::var("CALLFLEET_CHAOS_PARTITIONS").is_ok_and(|v| v == "on") {
        kinds.insert(3, Fault::PostgresPartition);
    }
    let mut plan: Vec<Fault> = kinds.clone();
    plan.shuffle(&mut rng);
    let mut injected: HashMap<Fault, usize> = HashMap::new();
    let mut next = placed[0].starts_at;
    let mut i = 0;
    // `CALLFLEET_CHAOS_FAULTS=off`: the same run without a fault (the baseline of the report).
    let faults = std::env::var("CALLFLEET_CHAOS_FAULTS").map_or(true, |v| v != "off");
    if !faults {
        eventually(600, "the last call to ring", || async { (env.sim.now() >= last).then_some(()) }).await;
    }
    while faults && (i < kinds.len() || env.sim.now() < last) {
        eventually(600, "the next fault's moment", || async { (env.sim.now() >= next).then_some(()) }).await;
        let fault = plan[i % plan.len()];
        eprintln!("chaos: {fault:?} at {:?}", env.sim.now());
        match fault {
            Fault::KillIngress => {
                process::kill9(&mut ingress).await;
                tokio::time::sleep(Duration::from_millis(800)).await;
                ingress = spawn(&["ingress"], Some(&ingress_addr));
            }
            Fault::KillWorker(w) => {
                process::kill9(&mut workers[w]).await;
                workers[w] = spawn(&["worker", "--pool", "all"], None);
            }
            Fault::KillScheduler => {
                process::kill9(&mut scheduler).await;
                scheduler = spawn(&["scheduler"], None);
            }
            Fault::PostgresRestart => {
                pg.cut();
                tokio::time::sleep(Duration::from_secs(2)).await;
                pg.restore();
            }
            Fault::PostgresPartition => {
                pg.go_silent();
                tokio::time::sleep(Duration::from_secs(2)).await;
                pg.restore();
            }
            Fault::RedisDown => {
                redis.cut();
                tokio::time::sleep(Duration::from_secs(3)).await;
                redis.restore();
            }
        }
        *injected.entry(fault).or_default() += 1;
        i += 1;
        next += Duration::from_secs(3);
    }
    let started = Instant::now();
    wait_until_quiet(&env, &placed, Duration::from_secs(180) + Duration::from_millis(gap_ms * calls as u64))
        .await;
    let (outcomes, redelivered) = assert_every_call_settled_once(&env, &placed).await;
    let db = &env.fleet.test_db;
    let unprocessed = db.count("SELECT count(*) FROM webhook_events WHERE processed_at IS NULL").await;
    let stored = db.count("SELECT count(*) FROM webhook_events").await;
    assert_eq!(unprocessed, 0, "every acknowledged webhook was processed");
    let sent = env.sim.webhooks();
    let failed_over = sent.iter().filter(|w| w.failover).count();
    // Where delivery time went: attempts refused (503 while the ingress's database was cut),
    // transport errors (the ingress process down), and each event's wait from its first attempt
    // to the attempt that was accepted.
    let refused =
        sent.iter().filter(|w| matches!(w.outcome, fleet_sim::DeliveryOutcome::Rejected { .. })).count();
    let errors =
        sent.iter().filter(|w| matches!(w.outcome, fleet_sim::DeliveryOutcome::Error { .. })).count();
    let mut first: HashMap<&str, u64> = HashMap::new();
    let mut accepted: HashMap<&str, u64> = HashMap::new();
    for w in &sent {
        let t = first.entry(w.event_id.as_str()).or_insert(w.at_ms);
        *t = (*t).min(w.at_ms);
        if matches!(w.outcome, fleet_sim::DeliveryOutcome::Delivered { .. }) {
            let a = accepted.entry(w.event_id.as_str()).or_insert(w.at_ms);
            *a = (*a).min(w.at_ms);
        }
    }
    let mut retry_wait: Vec<u64> = accepted.iter().map(|(id, at)| at - first[id]).collect();
    retry_wait.sort_unstable();
    let delayed = retry_wait.iter().filter(|w| **w > 0).count();
    // How late the phones started ringing under the faults: the call's first dial after its
    // `call.initiated` (the fleet's whole path: delivery, ingress, routing, the dial).
    let dials = env.requests("dial");
    let mut onset: Vec<u64> = placed
        .iter()
        .filter_map(|p| {
            let first = dials
                .iter()
                .filter(|d| d.body["link_to"] == p.call_control_id.as_str())
                .map(|d| d.at_ms)
                .min()?;
            Some(first.saturating_sub(p.starts_at.as_millis() as u64))
        })
        .collect();
    onset.sort_unstable();
    let pick = |q: f64| onset.get(((onset.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
    // The onset in two: the caller's call.initiated until an ingress accepted it (delivery), and
    // from there to the first dial (the fleet).
    let (mut delivery, mut fleet): (Vec<u64>, Vec<u64>) = placed
        .iter()
        .filter_map(|p| {
            let accepted = sent
                .iter()
                .filter(|w| {
                    w.event_type == "call.initiated"
                        && w.call_control_id.as_deref() == Some(&p.call_control_id)
                })
                .filter(|w| matches!(w.outcome, fleet_sim::DeliveryOutcome::Delivered { .. }))
                .map(|w| w.at_ms)
                .min()?;
            let dial = dials
                .iter()
                .filter(|d| d.body["link_to"] == p.call_control_id.as_str())
                .map(|d| d.at_ms)
                .min()?;
            let start = p.starts_at.as_millis() as u64;
            Some((accepted.saturating_sub(start), dial.saturating_sub(accepted)))
        })
        .unzip();
    delivery.sort_unstable();
    fleet.sort_unstable();
    let quantiles = |v: &[u64]| {
        let q = |q: f64| v.get(((v.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
        format!("{} / {} / {}", q(0.5), q(0.9), q(1.0))
    };
    eprintln!(
        "chaos: ring onset split, p50 / p90 / max ms: delivery (initiated → accepted by an ingress) {}, \
         fleet (accepted → first dial) {}",
        quantiles(&delivery),
        quantiles(&fleet)
    );
    eprintln!(
        "chaos: {calls} calls {outcomes:?}; faults {injected:?}; {stored} webhooks stored, all processed \
         ({failed_over} delivery attempts to the failover ingress); app events redelivered {redelivered}; \
         quiet {:?} after the last fault; ring onset (call.initiated → first dial) p50 {} ms, p90 {} ms, max {} ms; \
         delivery attempts refused {refused}, transport errors {errors}; events accepted only after a retry {delayed} \
         of {} (longest wait {} ms)",
        started.elapsed(),
        pick(0.5),
        pick(0.9),
        pick(1.0),
        retry_wait.len(),
        retry_wait.last().copied().unwrap_or(0)
    );
    for child in workers.iter_mut().chain([&mut ingress, &mut scheduler]) {
        process::kill9(child).await;
    }
}
