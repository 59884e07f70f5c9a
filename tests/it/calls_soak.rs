//! A soak of the call engine against the simulator: many inbound calls to users with 3–10 phones,
//! random answer times (ties included), webhooks duplicated and reordered at random. Afterwards
//! every call ended with exactly one bridge or one voicemail, no phone was left ringing (the
//! simulator's anomalies are empty) and no app event was received twice.
//!
//! Two shapes: on the virtual clock with the fleet in this process (both engines), and with real
//! `callfleet worker` processes on the real clock, one of them SIGKILLed mid-run (Postgres).
//!
//! `CALLFLEET_SOAK_CALLS` sets the number of calls (default 12, a CI-sized run; the acceptance
//! run of issue 11 uses 1000). The random choices are seeded, so a failure reproduces (up to the
//! real clock's timing in the process soak).

use std::collections::HashMap;
use std::time::Duration;

use fleet_domain::call::CallState;
use fleet_sim::{DeliveryKnobs, RingBehaviour};
use fleet_store::{Engine, OrgSettings};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::on_both;
use crate::support::calls::{CallEnv, Phone};

on_both! {
    many_calls_end_with_one_bridge_or_voicemail => many_calls_end_with_one_bridge_or_voicemail_postgres, many_calls_end_with_one_bridge_or_voicemail_sqlite;
}

async fn many_calls_end_with_one_bridge_or_voicemail(engine: Engine) {
    let calls: usize = std::env::var("CALLFLEET_SOAK_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let users = calls.div_ceil(4).max(1);
    let env = CallEnv::start(engine).await;
    let mut rng = SmallRng::seed_from_u64(11);
    let numbers = users_with_phones(&env, users, 20, &mut rng).await;
    env.sim.set_delivery(DeliveryKnobs {
        duplicate_rate: 0.2,
        reorder_rate: 0.2,
        jitter: Duration::from_millis(40),
        ..DeliveryKnobs::default()
    });
    let mut placed = Vec::new();
    for i in 0..calls {
        placed.push(env.call_from(&format!("+1773555{i:04}"), &numbers[i % numbers.len()]));
        env.run_for(Duration::from_millis(rng.gen_range(0..300))).await;
    }
    // Every call rings out (an answer or the 20 s ring timeout), then its caller hangs up.
    env.run_for(Duration::from_secs(25)).await;
    for p in &placed {
        let _ = env.sim.remote_hangup(&p.call_control_id);
    }
    env.run_for(Duration::from_secs(10)).await;

    let mut outcomes: HashMap<&str, usize> = HashMap::new();
    let bridges = env.requests("bridge");
    let voicemail_records = recordings_by_kind(&env).0;
    for p in &placed {
        let call = env.call(&p.call_session_id).await;
        assert_eq!(call.state, CallState::Ended, "{call:#?}");
        // Bridges asked (a retried bridge repeats its command_id; Telnyx acts once per id).
        let mut ids: Vec<String> = bridges
            .iter()
            .filter(|r| r.target.as_deref() == Some(p.call_control_id.as_str()))
            .map(|r| r.body["command_id"].to_string())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let parent_bridges = ids.len();
        let voicemail =
            voicemail_records.iter().any(|r| r.target.as_deref() == Some(p.call_control_id.as_str()));
        match (call.answered_by_device_id(), parent_bridges, voicemail) {
            (Some(_), 1, false) => *outcomes.entry("bridged").or_default() += 1,
            (None, 0, _) => *outcomes.entry("not bridged").or_default() += 1,
            other => panic!("call {} ended with {other:?}, bridges {:?}: {call:#?}", p.call_session_id, ids),
        }
    }
    assert_no_anomaly_beside_fleet_rows(&env).await;
    // One event of each type per call, each delivered once (the receiver counts repeats of a
    // `webhook-id` as duplicates).
    let mut per_call: HashMap<(Option<String>, Option<String>), usize> = HashMap::new();
    for e in env.sim.app_events() {
        assert_eq!(e.duplicates, 0, "{} delivered more than once", e.webhook_id);
        if crate::calls::once_per_call(e.event_type.as_deref()) {
            *per_call.entry((e.call_session_id.clone(), e.event_type.clone())).or_default() += 1;
        }
    }
    assert!(per_call.values().all(|n| *n == 1), "an event emitted twice: {per_call:?}");
    assert_eq!(
        per_call.keys().filter(|(_, t)| t.as_deref() == Some("call.ended")).count(),
        placed.len(),
        "one call.ended per call"
    );
    assert_eq!(
        per_call.keys().filter(|(_, t)| t.as_deref() == Some("call.log")).count(),
        placed.len(),
        "one call.log per call"
    );
    assert!(outcomes.get("bridged").copied().unwrap_or(0) > 0, "{outcomes:?}");
    assert_recorded_and_logged_once(&env, &placed).await;
}

/// Every recording Telnyx made (a `record_start` it accepted on the caller's leg) was copied once
/// with the simulator's bytes and transcribed, and every call has its log line and ledger entry.
async fn assert_recorded_and_logged_once(env: &CallEnv, placed: &[fleet_sim::PlacedCall]) {
    let sha = |channels: &str| crate::recordings::sha256_hex(&fleet_sim::recording_bytes("mp3", channels));
    let starts = env.requests("record_start");
    // A recording is saved as its call ends: with real processes the last copies and transcripts
    // may still be on their way when the calls have ended and the queues looked empty.
    let store = env.store().clone();
    let settled = || async {
        for p in placed {
            let recordings = store.call_recordings(&p.call_session_id).await.ok()?;
            let done =
                recordings.iter().all(|r| r.transcript_status != fleet_store::TranscriptStatus::Pending);
            let logged = store.call_log(&p.call_session_id).await.ok()?.is_some();
            if recordings.len() < acted_on(&starts, &p.call_control_id) || !done || !logged {
                return None;
            }
        }
        Some(())
    };
    crate::support::eventually(60, "every recording copied and transcribed, every call logged", settled)
        .await;
    let mut copied = 0;
    for p in placed {
        let recordings = env.store().call_recordings(&p.call_session_id).await.unwrap();
        assert_eq!(
            recordings.len(),
            acted_on(&starts, &p.call_control_id),
            "{}: {recordings:#?}",
            p.call_session_id
        );
        for r in &recordings {
            assert_eq!(r.sha256, sha(&r.channels), "{r:#?}");
            assert_eq!(r.transcript_status, fleet_store::TranscriptStatus::Done, "{r:#?}");
        }
        copied += recordings.len();
        let logged = env.store().call_log(&p.call_session_id).await.unwrap();
        assert!(logged.is_some(), "{} has no call log", p.call_session_id);
    }
    assert!(copied > 0, "some calls were recorded");
}

/// The soak with real processes, as the acceptance asks: two `callfleet worker --pool all`
/// processes on Postgres and the simulator on its real clock, calls scripted in the simulator
/// (arrival times, answers, the caller's hangup 16 s in: after an 8 s ring and a greeting), and one worker SIGKILLed while calls
/// ring and answer, the other while the recordings are copied; a replacement starts at once
/// each time. Every recording is then stored once and every call logged once. apalis's orphan window is the production 12 s,
/// so what the killed process held comes back through the liveness rescue. Afterwards: every
/// call ended with one bridge or one voicemail, no phone left ringing, each app event emitted
/// once (one `webhook-id` per call and type; a redelivery of the same id after the kill is a
/// retry, counted and printed).
///
/// `CALLFLEET_SOAK_CALLS` (default 12), `CALLFLEET_SOAK_GAP_MS` (mean gap between calls, 100).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_survive_a_worker_sigkill_postgres() {
    use std::time::Instant;

    use crate::support::{eventually, process};

    let calls: usize = std::env::var("CALLFLEET_SOAK_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let gap_ms: u64 = std::env::var("CALLFLEET_SOAK_GAP_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let knobs = [
        ("CALLFLEET_ORPHAN_AFTER_SECS", "12"),
        ("CALLFLEET_WORKER_CONCURRENCY", "32"),
        // The soak measures the fleet, not the default Telnyx budget (~1 call/s at 6 devices).
        ("CALLFLEET_TELNYX_CALLS_RATE_LIMIT", "5000"),
        ("CALLFLEET_TELNYX_HOUSEKEEPING_RATE_LIMIT", "1000"),
    ];
    // Nor Telnyx's dials-per-second limit.
    //
    // A leg may ring on for a while after its call was answered when the process that decided
    // held its hangup: the liveness rescue takes 0.8–1.0 s on a quiet machine and was measured at
    // 1.8 s on this 2-core machine under test load (the simulator's default 2 s grace then failed
    // about 1 run in 8, before this change too). 5 s here: the soak checks that another process
    // finishes the cleanup; the 2 s bound stays for every in-process test.
    let env = CallEnv::start_for_processes(Engine::Postgres, &knobs, |c| {
        c.dial_limit = None;
        c.anomaly_grace = Duration::from_secs(5);
    })
    .await;
    let vars: Vec<(&str, &str)> = env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let db_url = env.fleet.test_db.url.clone();
    let worker = || process::spawn(&db_url, &["worker", "--pool", "all"], &vars);
    let (mut a, mut b) = (worker(), worker());

    let mut rng = SmallRng::seed_from_u64(12);
    let numbers = users_with_phones(&env, calls.div_ceil(4).max(1), 8, &mut rng).await;
    env.sim.set_delivery(DeliveryKnobs {
        duplicate_rate: 0.2,
        reorder_rate: 0.2,
        jitter: Duration::from_millis(40),
        ..DeliveryKnobs::default()
    });
    // `CallerScript::at` counts from now.
    let placed = place_calls(&env, &numbers, calls, gap_ms, Duration::from_millis(200), "555", &mut rng);

    // Killed while the calls arrive, ring and answer.
    let kill_at = placed[calls * 2 / 5].starts_at + Duration::from_millis(1500);
    eventually(600, "the moment to kill a worker", || async { (env.sim.now() >= kill_at).then_some(()) })
        .await;
    process::kill9(&mut a).await;
    let killed = Instant::now();
    let mut replacement = worker();

    // Killed again while the callers hang up and their recordings are downloaded, stored and
    // transcribed (each caller hangs up 16 s in; Telnyx saves the recording then).
    let recordings_at = placed[calls / 2].starts_at + Duration::from_millis(16_300);
    eventually(600, "the moment to kill a second worker", || async {
        (env.sim.now() >= recordings_at).then_some(())
    })
    .await;
    process::kill9(&mut b).await;
    let mut second = worker();

    let deadline = Duration::from_secs(120) + Duration::from_millis(gap_ms * calls as u64);
    wait_until_quiet(&env, &placed, deadline).await;
    eprintln!("{calls} calls; the fleet went quiet {:?} after the first kill", killed.elapsed());
    let (outcomes, redelivered) = assert_every_call_settled_once(&env, &placed).await;
    eprintln!("outcomes {outcomes:?}; app events redelivered after the kills: {redelivered}");
    assert_recorded_and_logged_once(&env, &placed).await;
    process::kill9(&mut replacement).await;
    process::kill9(&mut second).await;
}

/// Waits until every placed call has ended (after the last caller's 16 s hangup) and no job is
/// ready, running or dead; panics after `within` with what is still open.
pub(crate) async fn wait_until_quiet(env: &CallEnv, placed: &[fleet_sim::PlacedCall], within: Duration) {
    use std::time::Instant;
    let last = placed.iter().map(|p| p.starts_at).max().unwrap();
    let store = env.store().clone();
    let quiet = || async {
        if env.sim.now() < last + Duration::from_secs(17) {
            return None;
        }
        for p in placed {
            if store.call(&p.call_session_id).await.ok()??.state != CallState::Ended {
                return None;
            }
        }
        // (Timers of ended calls may still wait — a voicemail's reconcile round — and will find
        // nothing to do.)
        let stats = store.queue_stats().await.ok()?;
        stats.iter().all(|s| s.ready == 0 && s.running == 0 && s.dead == 0).then_some(())
    };
    let deadline = Instant::now() + within;
    while quiet().await.is_none() {
        if Instant::now() > deadline {
            let mut open = Vec::new();
            for p in placed {
                let call = store.call(&p.call_session_id).await.unwrap();
                if call.as_ref().is_none_or(|c| c.state != CallState::Ended) {
                    open.push((p.call_session_id.clone(), call.map(|c| c.state)));
                }
            }
            let dead = store.dead_jobs(None, 20).await.unwrap();
            panic!(
                "the fleet never went quiet: {:#?}\nnot ended: {open:?}\ndead: {dead:#?}",
                store.queue_stats().await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every call ended with one bridge or one voicemail, no phone was left ringing, each app event
/// was emitted once (one `webhook-id` per call and type) and every call has its `call.ended`.
/// The outcomes by kind, and how many app events were redelivered (retries of the same id).
pub(crate) async fn assert_every_call_settled_once(
    env: &CallEnv,
    placed: &[fleet_sim::PlacedCall],
) -> (HashMap<&'static str, usize>, u64) {
    let bridges = env.requests("bridge");
    let (record_starts, call_records) = recordings_by_kind(env);
    let mut outcomes: HashMap<&'static str, usize> = HashMap::new();
    for p in placed {
        let call = env.call(&p.call_session_id).await;
        let bridged = acted_on(&bridges, &p.call_control_id);
        let records = acted_on(&record_starts, &p.call_control_id);
        assert!(acted_on(&call_records, &p.call_control_id) <= 1, "{} recorded twice", p.call_session_id);
        // Voicemail answered the caller (the caller may hang up during the greeting, before the
        // recording starts).
        let voicemail = call.winner.is_none() && call.answered_at.is_some();
        match (call.answered_by_device_id(), bridged, voicemail, records) {
            (Some(_), 1, false, 0) => *outcomes.entry("bridged").or_default() += 1,
            // A phone answered as the caller hung up (late ringing under faults): the bridge was
            // refused (422, the caller's leg gone) or never sent, and the phone's leg hung up.
            (Some(_), 0, false, 0) if call.parent_ended => {
                *outcomes.entry("answered as the caller hung up").or_default() += 1
            }
            // The caller gave up while the phones rang (late ringing under faults).
            (None, 0, false, 0)
                if call.end_reason == Some(fleet_domain::call::EndReason::CallerCancelled) =>
            {
                *outcomes.entry("caller hung up while ringing").or_default() += 1
            }
            (None, 0, true, 1) => *outcomes.entry("voicemail, recorded").or_default() += 1,
            (None, 0, true, 0) => {
                *outcomes.entry("voicemail, caller left during the greeting").or_default() += 1
            }
            other => panic!("call {} ended with {other:?}: {call:#?}", p.call_session_id),
        }
    }
    assert_no_anomaly_beside_fleet_rows(env).await;
    let mut per_call: HashMap<(Option<String>, Option<String>), Vec<String>> = HashMap::new();
    let mut redelivered = 0;
    for e in env.sim.app_events() {
        redelivered += e.duplicates as u64;
        if !crate::calls::once_per_call(e.event_type.as_deref()) {
            continue;
        }
        per_call
            .entry((e.call_session_id.clone(), e.event_type.clone()))
            .or_default()
            .push(e.webhook_id.clone());
    }
    assert!(per_call.values().all(|ids| ids.len() == 1), "an event emitted twice: {per_call:?}");
    let ended = per_call.keys().filter(|(_, t)| t.as_deref() == Some("call.ended")).count();
    assert_eq!(ended, placed.len(), "one call.ended per call");
    let logged = per_call.keys().filter(|(_, t)| t.as_deref() == Some("call.log")).count();
    assert_eq!(logged, placed.len(), "one call.log per call");
    (outcomes, redelivered)
}

/// How many distinct commands of `requests` Telnyx acted on for `leg`: accepted ones, counted
/// by command id (a command resent after a lost answer — a killed worker, a cut connection —
/// repeats its id, and Telnyx acts once per id).
/// The `record_start` requests: voicemail ones (one channel) and whole-call ones (dual).
fn recordings_by_kind(env: &CallEnv) -> (Vec<fleet_sim::RecordedRequest>, Vec<fleet_sim::RecordedRequest>) {
    env.requests("record_start").into_iter().partition(|r| r.body["channels"] == "single")
}

fn acted_on(requests: &[fleet_sim::RecordedRequest], leg: &str) -> usize {
    let mut ids: Vec<String> = requests
        .iter()
        .filter(|r| r.target.as_deref() == Some(leg) && r.status == 200)
        .map(|r| r.body["command_id"].to_string())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

/// Scripts `calls` PSTN calls from `+1773<prefix><i>` to `numbers` in turn, starting `start`
/// from now, `gap_ms` apart on average (uniform 0..2×); each caller hangs up 16 s in.
pub(crate) fn place_calls(
    env: &CallEnv,
    numbers: &[String],
    calls: usize,
    gap_ms: u64,
    start: Duration,
    prefix: &str,
    rng: &mut SmallRng,
) -> Vec<fleet_sim::PlacedCall> {
    use fleet_sim::{Caller, CallerScript};
    let mut at = start;
    (0..calls)
        .map(|i| {
            at += Duration::from_millis(rng.gen_range(0..=2 * gap_ms));
            let script = CallerScript {
                from: Caller::Pstn(format!("+1773{prefix}{i:04}")),
                to: numbers[i % numbers.len()].clone(),
                at,
                hangup_after: Some(Duration::from_secs(16)),
            };
            env.sim.place_call(script).unwrap()
        })
        .collect()
}

/// Users `u0…`, each with a number (ringing `ring_secs`) and 3–10 phones: most answer at a random
/// moment (ties on purpose: whole 100 ms steps), some never. A hundred users per organization:
/// Telnyx keeps at most 1,000 credentials under one tag, and the fleet tags them by organization.
/// The numbers.
pub(crate) async fn users_with_phones(
    env: &CallEnv,
    users: usize,
    ring_secs: u32,
    rng: &mut SmallRng,
) -> Vec<String> {
    let (mut numbers, mut phones) = (Vec::new(), Vec::new());
    for u in 0..users {
        let org = format!("o{}", u / 100);
        if u % 100 == 0 {
            env.org(&org, OrgSettings::default()).await;
        }
        let (user, number) = (format!("u{u}"), format!("+1312555{u:04}"));
        env.user(&user, &[&org], false).await;
        env.number(&number, &org, Some(&user), ring_secs).await;
        for d in 0..rng.gen_range(3..=10) {
            let on_ring = if rng.gen_bool(0.7) {
                RingBehaviour::Answer { after: Duration::from_millis(100 * rng.gen_range(5..=30)) }
            } else {
                RingBehaviour::Never
            };
            let platform = if d % 2 == 0 { "android" } else { "ios" };
            let (id, user) = (format!("{user}-p{d}"), user.clone());
            phones.push(Phone { id, user, org: org.clone(), platform, online: true, on_ring });
        }
        numbers.push(number);
    }
    env.phones(phones).await;
    numbers
}

/// No simulator anomaly (a device left ringing or undismissed); on failure, the pushes of the
/// calls concerned ([`crate::calls::pushes_of_anomalous_calls`]) beside the fleet's call rows.
/// (`calls::assert_no_anomaly` also fails on any leg still ringing at the moment of the check,
/// which these soaks do not assert.)
async fn assert_no_anomaly_beside_fleet_rows(env: &CallEnv) {
    let anomalies = env.sim.anomalies();
    if anomalies.is_empty() {
        return;
    }
    let mut story = String::new();
    for (session, pushes) in crate::calls::pushes_of_anomalous_calls(env) {
        let call = env.store().call(&session).await.ok().flatten();
        story.push_str(&format!("\n{session}: pushes {pushes:#?}\nfleet: {call:#?}\n"));
    }
    panic!("{anomalies:#?}{story}");
}
