//! Sustained inbound calls per second, and where the fleet saturates: open-loop call arrivals at
//! fixed rates against the simulator (50 ms Telnyx API latency, real clock), through the fleet as
//! built (in this process: ingress + every worker pool, PostgreSQL).
//!
//!   cargo bench --bench call_rate                         # 2, 5, 10, 20, 40 calls/s, 10 s each
//!   BENCH_RATES=10,30 BENCH_SECS=20 cargo bench --bench call_rate
//!
//! Per call: a user with 5 registered Android phones; phone 0 answers 1 s after its leg rings,
//! the others ring on until the answer dismisses them; the caller hangs up 3 s after calling. Per
//! rate, the calls are scripted in the simulator up front (arrival i at i / rate), users taken
//! round robin (150 users, so no user is called twice at once up to 40 calls/s). Measured per
//! call, as in `benches/simring.rs` (see `support/call_fleet.rs` for the timing points):
//! `call.initiated` at the ingress → the last of its 5 dials at the simulator, and the winner's
//! `call.answered` at the ingress → the last other leg's hangup at the simulator; per rate, the
//! oldest ready job's age across pools (sampled every 200 ms) — the backlog that says the fleet
//! fell behind — and the call transitions and compare-and-set conflicts.
//!
//! The fleet's live-call Telnyx budget is raised to 100,000 commands/s unless this command's
//! environment sets `CALLFLEET_TELNYX_CALLS_RATE_LIMIT`: the default 15/s would cap the fleet near
//! one call per second and measure the budget, not the fleet. (Likewise the credential budget,
//! for the set-up's 750 credentials.)

#[path = "support/call_fleet.rs"]
mod call_fleet;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use call_fleet::{CallFleet, counter, ms, stats};
use fleet_domain::call::CallState;
use fleet_sim::{Caller, CallerScript, RingBehaviour};

const USERS: usize = 150;
const PHONES: usize = 5;
const LATENCY: Duration = Duration::from_millis(50);

/// Knobs the fleet reads from the process environment only, with this bench's defaults.
const DEFAULTS: [(&str, &str); 2] =
    [("CALLFLEET_TELNYX_CALLS_RATE_LIMIT", "100000"), ("CALLFLEET_TELNYX_HOUSEKEEPING_RATE_LIMIT", "1000")];

fn main() {
    call_fleet::main_with(&DEFAULTS, bench);
}

fn number_of(u: usize) -> String {
    format!("+1312556{u:04}")
}

async fn bench() {
    let rates: Vec<u32> = std::env::var("BENCH_RATES")
        .unwrap_or_else(|_| "2,5,10,20,40".into())
        .split(',')
        .map(|r| r.trim().parse().expect("BENCH_RATES: calls per second, comma-separated"))
        .collect();
    let secs: u64 = std::env::var("BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let fleet = CallFleet::start("call_rate", &[]).await;
    let (store, sim) = (fleet.store.clone(), fleet.sim.clone());

    let mut phones = Vec::new();
    for u in 0..USERS {
        let user = format!("u{u}");
        fleet.user_with_number(&user, &number_of(u)).await;
        for p in 0..PHONES {
            let on_ring = if p == 0 {
                RingBehaviour::Answer { after: Duration::from_secs(1) }
            } else {
                RingBehaviour::Never
            };
            phones.push((format!("d{u}-{p}"), user.clone(), on_ring));
        }
    }
    fleet.phones(&phones).await;
    sim.set_api_latency(LATENCY);
    let wall = fleet.wall();

    println!(
        "| offered calls/s | calls | ended | fan-out p50 / p99 ms | answered → other legs hung up p50 / p99 ms | oldest ready job, max s | transitions | conflicts |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut next_user = 0;
    for rate in rates {
        sim.clear_logs();
        let counted = (
            counter("callfleet_call_transitions_total"),
            counter("callfleet_call_transition_conflicts_total"),
        );
        let n = (u64::from(rate) * secs) as usize;
        // `CallerScript::at` counts from now.
        let start = Duration::from_millis(100);
        let mut placed = Vec::with_capacity(n);
        for i in 0..n {
            let at = start + Duration::from_secs_f64(i as f64 / f64::from(rate));
            let script = CallerScript {
                from: Caller::Pstn(format!("+1773555{:04}", i % 10_000)),
                to: number_of(next_user % USERS),
                at,
                hangup_after: Some(Duration::from_secs(3)),
            };
            next_user += 1;
            placed.push(sim.place_call(script).unwrap());
        }

        // The backlog, sampled while the calls run.
        let oldest_ms = Arc::new(AtomicU64::new(0));
        let sampling = {
            let (store, oldest_ms) = (store.clone(), oldest_ms.clone());
            tokio::spawn(async move {
                loop {
                    if let Ok(all) = store.queue_stats().await {
                        let age = all.iter().map(|s| s.oldest_ready_age_secs).fold(0.0, f64::max);
                        oldest_ms.fetch_max((age * 1000.0) as u64, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };
        let deadline = Instant::now() + Duration::from_secs(secs + 60);
        let mut ended = 0;
        for p in &placed {
            loop {
                let call = store.call(&p.call_session_id).await.unwrap();
                if call.is_some_and(|c| c.state == CallState::Ended) {
                    ended += 1;
                    break;
                }
                if Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        sampling.abort();
        tokio::time::sleep(Duration::from_millis(500)).await;

        let (hooks, requests) = (sim.webhooks(), sim.requests());
        let mut dials: HashMap<&str, Vec<&fleet_sim::RecordedRequest>> = HashMap::new();
        for r in requests.iter().filter(|r| r.operation == "dial") {
            if let Some(parent) = r.body.get("link_to").and_then(|v| v.as_str()) {
                dials.entry(parent).or_default().push(r);
            }
        }
        let mut first_hangup: HashMap<&str, u64> = HashMap::new();
        for r in requests.iter().filter(|r| r.operation == "hangup") {
            if let Some(t) = r.target.as_deref() {
                first_hangup.entry(t).or_insert(r.at_ms);
            }
        }
        let mut initiated_of: HashMap<&str, &str> = HashMap::new();
        let mut answered_of: HashMap<&str, &str> = HashMap::new();
        for w in &hooks {
            let (Some(ccid), id) = (w.call_control_id.as_deref(), w.event_id.as_str()) else { continue };
            match w.event_type.as_str() {
                "call.initiated" => {
                    initiated_of.entry(ccid).or_insert(id);
                }
                "call.answered" => {
                    answered_of.entry(ccid).or_insert(id);
                }
                _ => {}
            }
        }
        let (mut fan_out, mut cleanup) = (Vec::new(), Vec::new());
        for p in &placed {
            let Some(legs) = dials.get(p.call_control_id.as_str()) else { continue };
            if legs.len() == PHONES
                && let Some(event) = initiated_of.get(p.call_control_id.as_str())
            {
                let last = legs.iter().map(|r| r.at_ms).max().unwrap();
                fan_out.push(ms(wall(last) - fleet.received_at(event).await));
            }
            let ccids: Vec<&str> =
                legs.iter().filter_map(|r| r.response.pointer("/data/call_control_id")?.as_str()).collect();
            let Some((winner, event)) = ccids.iter().find_map(|c| Some((*c, *answered_of.get(c)?))) else {
                continue;
            };
            let others: Vec<u64> =
                ccids.iter().filter(|c| **c != winner).filter_map(|c| first_hangup.get(c).copied()).collect();
            if others.len() == PHONES - 1 {
                cleanup.push(ms(wall(*others.iter().max().unwrap()) - fleet.received_at(event).await));
            }
        }
        let show = |s: Option<call_fleet::Stats>| {
            s.map_or("—".to_owned(), |s| format!("{:.1} / {:.1} ({} calls)", s.p50, s.p99, s.n))
        };
        let transitions = counter("callfleet_call_transitions_total") - counted.0;
        let conflicts = counter("callfleet_call_transition_conflicts_total") - counted.1;
        println!(
            "| {rate} | {n} | {ended} | {} | {} | {:.2} | {transitions} | {conflicts} |",
            show(stats(fan_out)),
            show(stats(cleanup)),
            oldest_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        );
        // Let the last calls' tails (hangup webhooks, events) drain before the next rate.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!("\nsimulator anomalies: {}", sim.anomalies().len());
    fleet.finish().await;
}
