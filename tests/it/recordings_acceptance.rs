//! Issue 15's acceptance run on the virtual clock: 100 recorded calls → 100 objects with the
//! simulator's checksums, 100 transcripts, 100 ledger entries and 100 call logs, while every
//! webhook is delivered twice and some out of order (a `call.recording.saved` before its call's
//! hangup), the transcription API fails the first two requests, and the recordings pool is
//! backed up past the URLs' ten minutes (every copy needs a fresh URL). The SIGKILL between
//! download and upload is `recordings_crash` (it needs processes).

use std::time::Duration;

use fleet_jobs::Pool;
use fleet_sim::{Caller, CallerScript, DeliveryKnobs, Fault, RingBehaviour};
use fleet_store::{Engine, OrgSettings, TranscriptStatus};

use crate::recordings::sha256_hex;
use crate::support::calls::{CallEnv, Phone};

const CALLS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_recorded_calls_leave_a_hundred_copies_transcripts_and_logs() {
    let env = CallEnv::start_without(Engine::Postgres, &[], &[Pool::Recordings]).await;
    env.org("o1", OrgSettings::default()).await;
    let mut phones = Vec::new();
    let mut numbers = Vec::new();
    for u in 0..CALLS {
        let (user, number) = (format!("u{u}"), format!("+1312558{u:04}"));
        env.user(&user, &["o1"], false).await;
        env.number(&number, "o1", Some(&user), 30).await;
        let on_ring = RingBehaviour::Answer { after: Duration::from_millis(500 + 10 * u as u64) };
        phones.push(Phone {
            id: format!("{user}-p"),
            user,
            org: "o1".into(),
            platform: "android",
            online: true,
            on_ring,
        });
        numbers.push(number);
    }
    env.phones(phones).await;
    env.sim.set_delivery(DeliveryKnobs {
        duplicate_rate: 1.0,
        reorder_rate: 0.3,
        jitter: Duration::from_millis(40),
        ..DeliveryKnobs::default()
    });
    env.sim.inject(Fault::TranscriptionError { status: 503, count: 2 });
    let placed: Vec<_> = numbers
        .iter()
        .enumerate()
        .map(|(i, number)| {
            let script = CallerScript {
                from: Caller::Pstn(format!("+1773557{i:04}")),
                to: number.clone(),
                at: Duration::from_millis(50 * i as u64),
                hangup_after: Some(Duration::from_secs(8)),
            };
            env.sim.place_call(script).unwrap()
        })
        .collect();
    env.run_for(Duration::from_secs(30)).await;
    // Every call ended and was logged; no copy yet: the recordings pool is backed up 11 minutes.
    for p in &placed {
        assert!(
            env.store().call_log(&p.call_session_id).await.unwrap().is_some(),
            "{} logged",
            p.call_session_id
        );
    }
    env.run_for(Duration::from_secs(11 * 60)).await;
    env.fleet.start_workers(&[Pool::Recordings]);
    env.run_for(Duration::from_secs(5 * 60)).await;

    let expected = sha256_hex(&fleet_sim::recording_bytes("mp3", "dual"));
    let mut copies = std::collections::HashSet::new();
    for p in &placed {
        let recordings = env.store().call_recordings(&p.call_session_id).await.unwrap();
        assert_eq!(recordings.len(), 1, "{}: {recordings:#?}", p.call_session_id);
        let rec = &recordings[0];
        assert_eq!((rec.sha256.as_str(), rec.transcript_status), (expected.as_str(), TranscriptStatus::Done));
        let copy = std::fs::read(env.fleet.recordings_dir().unwrap().join(&rec.object_key)).unwrap();
        assert_eq!(sha256_hex(&copy), expected, "the object's bytes");
        copies.insert(rec.object_key.clone());
        let (log, entry) = env.store().call_log(&p.call_session_id).await.unwrap().unwrap();
        assert_eq!(log.status.as_str(), "answered", "{log:#?}");
        assert!(entry.billable_secs > 0 && entry.billed_minutes == 1, "{entry:#?}");
        assert_eq!(env.events("call.log", &p.call_session_id).len(), 1);
        assert_eq!(env.events("call.log.updated", &p.call_session_id).len(), 2, "stored, then transcribed");
    }
    assert_eq!(copies.len(), CALLS, "one object per call");
    let hooks = env.sim.webhooks();
    let saved = hooks.iter().filter(|w| w.event_type == "call.recording.saved").count();
    assert!(saved >= 2 * CALLS, "every saved event delivered at least twice ({saved})");
    // Out of order: some saved events reached the fleet before their call's (caller's) hangup.
    let first = |ccid: &str, kind: &str| {
        hooks
            .iter()
            .filter(|w| w.event_type == kind && w.call_control_id.as_deref() == Some(ccid))
            .map(|w| w.seq)
            .min()
    };
    let early = placed
        .iter()
        .filter(|p| {
            let ccid = p.call_control_id.as_str();
            matches!((first(ccid, "call.recording.saved"), first(ccid, "call.hangup")), (Some(s), Some(h)) if s < h)
        })
        .count();
    assert!(early > 0, "no saved event came before its hangup; the reordering did not happen");
    eprintln!("{early} of {CALLS} recordings were announced before their call's hangup");
    assert_eq!(env.requests("recording_get").len(), CALLS, "a fresh URL for every late copy");
    assert_eq!(env.requests("transcription").len(), CALLS + 2, "two refusals, then one transcript each");
    assert!(env.sim.app_events().iter().all(|e| e.duplicates == 0), "no app event delivered twice");
}
