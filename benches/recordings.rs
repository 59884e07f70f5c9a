//! The recordings pipeline under a burst: how many recordings per minute go end to end (Telnyx's
//! URL → object store → transcript), how long a `call.recording.saved` waits for its stored copy,
//! and how long a hangup waits for its `call.log` event — against the simulator on its real clock
//! with a constant Telnyx API latency (every `/v2` answer, transcription and fresh-URL requests
//! included), through the fleet as built (in this process: ingress + every worker pool,
//! PostgreSQL, copies on the local filesystem).
//!
//!   cargo bench --bench recordings                        # bursts of 10 (baseline) and 100 calls
//!   BENCH_BURSTS=10,50,100 BENCH_LATENCY_MS=200 cargo bench --bench recordings
//!
//! Per burst of n calls: n users, each with one Android phone that answers 500 ms after it rings;
//! the n calls start within one second and the callers all hang up 10 s after calling, so the n
//! recordings are saved at once. Measured per call: the `call.recording.saved` webhook at the
//! ingress → the recording's row (`stored_at`, written after the upload) — the goal is p99 ≤ 30 s
//! at n = 100; the caller's `call.hangup` at the ingress → the `call.log` event at the app's
//! receiver (the simulator) — goal p99 ≤ 5 s; and per burst, recordings transcribed per minute
//! (the first saved webhook → the last transcript). The smallest burst is the baseline the others
//! are compared with (ratios), measured in the same run.

// Shared with the other call benches; not every helper is used here.
#[allow(dead_code)]
#[path = "support/call_fleet.rs"]
mod call_fleet;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use call_fleet::{CallFleet, ms, stats};
use chrono::{DateTime, Utc};
use fleet_sim::{Caller, CallerScript, RingBehaviour};
use fleet_store::TranscriptStatus;

/// Knobs the fleet reads from the process environment only, with this bench's defaults.
const DEFAULTS: [(&str, &str); 2] =
    [("CALLFLEET_TELNYX_CALLS_RATE_LIMIT", "100000"), ("CALLFLEET_TELNYX_HOUSEKEEPING_RATE_LIMIT", "1000")];

fn main() {
    call_fleet::main_with(&DEFAULTS, bench);
}

fn number_of(u: usize) -> String {
    format!("+1312557{u:04}")
}

struct Burst {
    n: usize,
    saved_to_stored: Option<call_fleet::Stats>,
    hangup_to_log: Option<call_fleet::Stats>,
    stored: usize,
    transcribed: usize,
    per_minute: f64,
}

async fn bench() {
    let bursts: Vec<usize> = std::env::var("BENCH_BURSTS")
        .unwrap_or_else(|_| "10,100".into())
        .split(',')
        .map(|n| n.trim().parse().expect("BENCH_BURSTS: calls per burst, comma-separated"))
        .collect();
    let latency_ms: u64 = std::env::var("BENCH_LATENCY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let copies = std::env::temp_dir().join(format!("cf_bench_recordings_{}", std::process::id()));
    let url = format!("file://{}", copies.display());
    let fleet = CallFleet::start("recordings", &[("CALLFLEET_RECORDINGS_URL", url.as_str())]).await;
    let users = bursts.iter().copied().max().unwrap_or(0);
    let mut phones = Vec::new();
    for u in 0..users {
        let user = format!("u{u}");
        fleet.user_with_number(&user, &number_of(u)).await;
        phones.push((format!("d{u}"), user, RingBehaviour::Answer { after: Duration::from_millis(500) }));
    }
    fleet.phones(&phones).await;
    fleet.sim.set_api_latency(Duration::from_millis(latency_ms));
    eprintln!("Telnyx API latency {latency_ms} ms; bursts {bursts:?}");

    let mut results = Vec::new();
    for n in bursts {
        results.push(burst(&fleet, n).await);
    }
    println!(
        "| calls in the burst | stored | transcribed | saved → stored p50 / p99 ms | hangup → call.log p50 / p99 ms | recordings / min (end to end) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let show = |s: &Option<call_fleet::Stats>| {
        s.as_ref().map_or("—".to_owned(), |s| format!("{:.0} / {:.0}", s.p50, s.p99))
    };
    for r in &results {
        println!(
            "| {} | {} | {} | {} | {} | {:.0} |",
            r.n,
            r.stored,
            r.transcribed,
            show(&r.saved_to_stored),
            show(&r.hangup_to_log),
            r.per_minute
        );
    }
    if let (Some(base), Some(last)) = (results.first(), results.last()) {
        let ratio = |a: &Option<call_fleet::Stats>, b: &Option<call_fleet::Stats>| match (a, b) {
            (Some(a), Some(b)) if b.p99 > 0.0 => format!("{:.2}", a.p99 / b.p99),
            _ => "—".into(),
        };
        println!(
            "\nratios, burst of {} against {}: saved → stored p99 ×{}, hangup → call.log p99 ×{}, recordings/min ×{:.2}",
            last.n,
            base.n,
            ratio(&last.saved_to_stored, &base.saved_to_stored),
            ratio(&last.hangup_to_log, &base.hangup_to_log),
            last.per_minute / base.per_minute.max(f64::MIN_POSITIVE),
        );
    }
    println!("simulator anomalies: {}", fleet.sim.anomalies().len());
    fleet.finish().await;
    let _ = std::fs::remove_dir_all(&copies);
}

async fn burst(fleet: &CallFleet, n: usize) -> Burst {
    let (store, sim) = (&fleet.store, &fleet.sim);
    sim.clear_logs();
    let mut placed = Vec::with_capacity(n);
    for i in 0..n {
        let script = CallerScript {
            from: Caller::Pstn(format!("+1773556{:04}", i % 10_000)),
            to: number_of(i),
            at: Duration::from_millis(100 + (i * 1000 / n.max(1)) as u64),
            hangup_after: Some(Duration::from_secs(10)),
        };
        placed.push(sim.place_call(script).unwrap());
    }
    // Until every recording is transcribed (or three minutes passed).
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut rows = HashMap::new();
    while rows.len() < n && Instant::now() < deadline {
        for p in &placed {
            if rows.contains_key(p.call_session_id.as_str()) {
                continue;
            }
            let recs = store.call_recordings(&p.call_session_id).await.unwrap();
            if let Some(r) = recs.into_iter().find(|r| r.transcript_status != TranscriptStatus::Pending) {
                rows.insert(p.call_session_id.as_str(), r);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Let the last call.log events arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let wall = fleet.wall();
    let received: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT call_session_id, event_type, received_at FROM webhook_events
          WHERE event_type IN ('call.recording.saved', 'call.hangup') AND call_session_id IS NOT NULL",
    )
    .fetch_all(&fleet.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(s, t, at): (Option<String>, String, DateTime<Utc>)| (s.unwrap_or_default(), t, at))
    .collect();
    let first = |session: &str, kind: &str| {
        received.iter().filter(|(s, t, _)| s == session && t == kind).map(|(_, _, at)| *at).min()
    };
    let events = sim.app_events();
    let (mut saved_to_stored, mut hangup_to_log) = (Vec::new(), Vec::new());
    let mut span: (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (None, None);
    for p in &placed {
        let session = p.call_session_id.as_str();
        if let (Some(rec), Some(saved)) = (rows.get(session), first(session, "call.recording.saved")) {
            saved_to_stored.push(ms(rec.stored_at - saved));
            span.0 = Some(span.0.map_or(saved, |s| s.min(saved)));
            if let Some(done) = rec.transcribed_at {
                span.1 = Some(span.1.map_or(done, |e| e.max(done)));
            }
        }
        let logged = events
            .iter()
            .filter(|e| {
                e.event_type.as_deref() == Some("call.log") && e.call_session_id.as_deref() == Some(session)
            })
            .map(|e| e.at_ms)
            .min();
        if let (Some(at), Some(hangup)) = (logged, first(session, "call.hangup")) {
            hangup_to_log.push(ms(wall(at) - hangup));
        }
    }
    let transcribed = rows.values().filter(|r| r.transcript_status == TranscriptStatus::Done).count();
    let per_minute = match span {
        (Some(a), Some(b)) if b > a => transcribed as f64 * 60_000.0 / ms(b - a),
        _ => 0.0,
    };
    Burst {
        n,
        saved_to_stored: stats(saved_to_stored),
        hangup_to_log: stats(hangup_to_log),
        stored: rows.len(),
        transcribed,
        per_minute,
    }
}
