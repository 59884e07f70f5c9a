//! Simultaneous ring: `call.initiated` at the ingress → the last leg's dial at the simulator, for
//! N = 1, 5, 10, 25 devices, through the fleet as built (in this process: ingress + every worker
//! pool, PostgreSQL), beside the same N dial requests sent one after another in the same run; and
//! the winning leg's `call.answered` at the ingress → every other leg's hangup at the simulator,
//! and → the last of those hangups and of the call's `call_ended` pushes (the devices dismissed).
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

#[path = "support/call_fleet.rs"]
mod call_fleet;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use call_fleet::{CallFleet, counter, ms, stats};
use chrono::Utc;
use fleet_sim::{Caller, CallerScript, RingBehaviour};
use fleet_store::Store;

const LATENCY: Duration = Duration::from_millis(50);
const SIZES: [usize; 4] = [1, 5, 10, 25];

fn main() {
    call_fleet::main_with(&[], bench);
}

async fn bench() {
    let calls: usize = std::env::var("BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let fleet_env = CallFleet::start("simring", &[]).await;
    let (store, sim) = (fleet_env.store.clone(), fleet_env.sim.clone());

    // Set-up (not timed): per N a user, a number and N registered devices.
    for n in SIZES {
        let user = format!("u{n}");
        fleet_env.user_with_number(&user, &number_of(n)).await;
        let phones: Vec<_> = (0..n)
            .map(|i| {
                let on_ring = if i == 0 {
                    RingBehaviour::Answer { after: Duration::from_millis(300) }
                } else {
                    RingBehaviour::Never
                };
                (format!("d{n}-{i}"), user.clone(), on_ring)
            })
            .collect();
        fleet_env.phones(&phones).await;
    }
    sim.set_api_latency(LATENCY);
    let wall = fleet_env.wall();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    println!(
        "| N | calls | fleet p50 ms | fleet p99 ms | sequential p50 ms | sequential p99 ms | p50 ratio | answered → other legs hung up p50 / p99 ms | … and every call_ended push p50 / p99 ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut counted_before = (0, 0);
    for n in SIZES {
        let (mut fleet, mut seq, mut cleanup, mut dismissed) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut stages: [Vec<f64>; 6] = Default::default();
        let mut dismiss_stages: [Vec<f64>; 7] = Default::default();
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
            let initiated_at = fleet_env.received_at(&initiated.event_id).await;
            let dials: Vec<_> = requests
                .iter()
                .filter(|r| {
                    r.operation == "dial" && r.body.get("link_to").and_then(|v| v.as_str()) == Some(&parent)
                })
                .collect();
            assert_eq!(dials.len(), n, "call {k}: {} dials for {n} devices", dials.len());
            let last_dial = dials.iter().map(|r| r.at_ms).max().unwrap();
            fleet.push(ms(wall(last_dial) - initiated_at));
            if let Some(at) = fleet_env.dial_stages(&initiated.event_id, &placed.call_session_id).await {
                for (i, t) in at.into_iter().enumerate() {
                    stages[i].push(t);
                }
                stages[5].push(ms(wall(last_dial) - initiated_at));
            }

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
                let answered_at = fleet_env.received_at(&answered.event_id).await;
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
                // … and every `call_ended` push of the call (the Android devices rung for it)
                // delivered at the simulator.
                let ended: Vec<u64> = sim
                    .pushes()
                    .iter()
                    .filter(|p| {
                        p.push_type.as_deref() == Some("call_ended")
                            && p.call_session_id.as_deref() == Some(&placed.call_session_id)
                    })
                    .map(|p| p.at_ms)
                    .collect();
                if ended.len() < n - 1 {
                    eprintln!(
                        "call {k} (N = {n}): {} call_ended pushes for {} other devices",
                        ended.len(),
                        n - 1
                    );
                }
                if let Some(last) = others.iter().chain(&ended).max() {
                    dismissed.push(ms(wall(*last) - answered_at));
                }
                if let (Some(at), Some(last)) = (
                    fleet_env.dismiss_stages(&answered.event_id, &placed.call_session_id).await,
                    ended.iter().max(),
                ) {
                    for (i, t) in at.into_iter().enumerate() {
                        dismiss_stages[i].push(t);
                    }
                    dismiss_stages[6].push(ms(wall(*last) - answered_at));
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
        let p50 = |v: &[f64]| stats(v.to_vec()).map_or(f64::NAN, |s| s.p50);
        eprintln!(
            "N = {n} stages, p50 ms after the ingress: webhook job start {:.1}, done {:.1}; dials enqueued {:.1} \
             (their transaction's start); first dial job start {:.1}, last {:.1}; last dial at the simulator {:.1}",
            p50(&stages[0]),
            p50(&stages[1]),
            p50(&stages[2]),
            p50(&stages[3]),
            p50(&stages[4]),
            p50(&stages[5])
        );
        if n > 1 {
            let s = &dismiss_stages;
            eprintln!(
                "N = {n} dismissal stages, p50 ms after the answer at the ingress: webhook job start {:.1}, done {:.1}; \
                 call_ended pushes enqueued {:.1}; first push job start {:.1}, last {:.1}, last done {:.1}; \
                 last call_ended at the simulator {:.1}",
                p50(&s[0]),
                p50(&s[1]),
                p50(&s[2]),
                p50(&s[3]),
                p50(&s[4]),
                p50(&s[5]),
                p50(&s[6])
            );
        }
        let c = stats(cleanup).map_or("—".to_owned(), |c| {
            format!("{:.1} / {:.1} ({} calls, {unhung} legs not hung up)", c.p50, c.p99, c.n)
        });
        let d = stats(dismissed).map_or("—".to_owned(), |d| format!("{:.1} / {:.1}", d.p50, d.p99));
        println!(
            "| {n} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1}× | {c} | {d} |",
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
    fleet_env.finish().await;
}

fn number_of(n: usize) -> String {
    format!("+1312555{n:04}")
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
