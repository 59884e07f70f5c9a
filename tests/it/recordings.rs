//! The recording pipeline end to end, against the simulator: a connected call is recorded (dual
//! channel), its `call.recording.saved` becomes a checksummed copy in the object store and a
//! transcript — once, whatever is duplicated, late or failing.

use std::time::Duration;

use fleet_jobs::Pool;
use fleet_sim::{DeliveryKnobs, Fault, RingBehaviour};
use fleet_store::{Engine, OrgSettings, Recording, TranscriptStatus};
use sha2::Digest;

use crate::calls::{CALLER, NUMBER, answer_after, assert_no_anomaly};
use crate::on_both;
use crate::support::calls::CallEnv;

on_both! {
    a_connected_call_is_recorded_copied_and_transcribed_once => a_connected_call_is_recorded_copied_and_transcribed_once_postgres, a_connected_call_is_recorded_copied_and_transcribed_once_sqlite;
    a_copy_that_starts_after_its_url_expired_fetches_a_fresh_one => a_copy_that_starts_after_its_url_expired_fetches_a_fresh_one_postgres, a_copy_that_starts_after_its_url_expired_fetches_a_fresh_one_sqlite;
}

const TOKEN: &str = "recordings-test-token";

/// SHA-256 in lowercase hex, computed here rather than by the code under test.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Org `o1`, user `u1` and [`NUMBER`] ringing `u1`, the pools `held_back` not running.
async fn env(engine: Engine, held_back: &[Pool]) -> CallEnv {
    env_with(engine, &[], held_back).await
}

async fn env_with(engine: Engine, extra: &[(&str, &str)], held_back: &[Pool]) -> CallEnv {
    let mut all = vec![("CALLFLEET_API_TOKEN", TOKEN)];
    all.extend_from_slice(extra);
    let env = CallEnv::start_without(engine, &all, held_back).await;
    env.org("o1", OrgSettings::default()).await;
    env.user("u1", &["o1"], false).await;
    env.number(NUMBER, "o1", Some("u1"), 30).await;
    env
}

/// The call's one recording, checked against the simulator's bytes (and its copy in a local
/// object store).
async fn the_stored_recording(env: &CallEnv, session: &str, channels: &str) -> Recording {
    let rec = the_recording_row(env, session, channels).await;
    let dir = env.fleet.recordings_dir().expect("a file:// recordings URL");
    let copy = std::fs::read(dir.join(&rec.object_key)).expect("the copy is in the object store");
    assert_eq!(copy, fleet_sim::recording_bytes("mp3", channels), "the copy holds the recording's bytes");
    rec
}

async fn the_recording_row(env: &CallEnv, session: &str, channels: &str) -> Recording {
    let recordings = env.store().call_recordings(session).await.unwrap();
    assert_eq!(recordings.len(), 1, "{recordings:#?}");
    let rec = recordings.into_iter().next().unwrap();
    let expected = fleet_sim::recording_bytes("mp3", channels);
    assert_eq!((rec.format.as_str(), rec.channels.as_str()), ("mp3", channels));
    assert_eq!(rec.sha256, sha256_hex(&expected), "the checksum is the simulator's file's");
    assert_eq!(rec.size_bytes, expected.len() as i64);
    assert!(rec.object_key.starts_with("recordings/o1/"), "{}", rec.object_key);
    rec
}

/// A call answered by a phone, talked over for `talk`, then hung up by the caller.
async fn answered_call(env: &CallEnv, talk: Duration) -> fleet_sim::PlacedCall {
    env.phone("android-1", "u1", "o1", "android", true, answer_after(1_000)).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(3) + talk).await;
    env.sim.remote_hangup(&placed.call_control_id).unwrap();
    placed
}

async fn a_connected_call_is_recorded_copied_and_transcribed_once(engine: Engine) {
    let env = env(engine, &[]).await;
    // Every webhook twice, the recording's included.
    env.sim.set_delivery(DeliveryKnobs { duplicate_rate: 1.0, ..env.sim.delivery() });
    let placed = answered_call(&env, Duration::from_secs(20)).await;
    env.run_for(Duration::from_secs(30)).await;

    let starts = env.requests("record_start");
    assert_eq!(starts.len(), 1, "{starts:#?}");
    assert_eq!(starts[0].body["channels"], "dual");
    assert_eq!(starts[0].target.as_deref(), Some(placed.call_control_id.as_str()), "on the caller's leg");
    let saved = env.sim.webhooks().into_iter().filter(|w| w.event_type == "call.recording.saved").count();
    assert!(saved >= 2, "the saved event was delivered twice ({saved})");

    let rec = the_stored_recording(&env, &placed.call_session_id, "dual").await;
    assert_eq!(rec.transcript_status, TranscriptStatus::Done, "{rec:#?}");
    let expected = fleet_sim::transcript_of(&fleet_sim::recording_bytes("mp3", "dual"));
    assert_eq!(rec.transcript.as_deref(), Some(expected.as_str()));
    assert_eq!(env.requests("transcription").len(), 1, "transcribed once");
    assert!(rec.duration_ms.is_some_and(|ms| ms >= 19_000), "{rec:#?}");

    // The app sees it on the call.
    let view = env.fleet.api_json(&format!("/v1/calls/{}", placed.call_session_id), TOKEN).await;
    let shown = &view["recordings"][0];
    assert_eq!(shown["recording_id"], rec.id.as_str(), "{view:#}");
    assert_eq!(shown["transcript"], expected.as_str());
    assert_eq!(shown["sha256"], rec.sha256.as_str());
    assert!(view["recording_errors"].as_array().is_some_and(Vec::is_empty));
    assert_eq!(view["log"]["status"], "answered", "{view:#}");
    assert_eq!(view["log"]["billing"]["kind"], "human");

    // One call log and one ledger entry, however often the hangup arrived; the app heard of the
    // log, then of its recording stored and transcribed, each once.
    let (log, entry) = env.store().call_log(&placed.call_session_id).await.unwrap().expect("logged");
    assert_eq!((log.status.as_str(), log.device_id.as_deref()), ("answered", Some("android-1")));
    assert!((20..=22).contains(&entry.billable_secs), "{entry:#?}");
    assert_eq!(entry.billed_minutes, 1);
    let logged = env.events("call.log", &placed.call_session_id);
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert_eq!(logged[0].body["data"]["billing"]["billable_secs"], entry.billable_secs);
    let updates = env.events("call.log.updated", &placed.call_session_id);
    assert_eq!(updates.len(), 2, "stored, then transcribed: {updates:#?}");
    assert!(updates.iter().all(|e| e.duplicates == 0), "{updates:#?}");
    // (Events are delivered concurrently: the two may arrive in either order.)
    assert!(
        updates.iter().any(|e| e.body["data"]["recordings"][0]["transcript"] == expected.as_str()),
        "one update carries the transcript: {updates:#?}"
    );
    assert_no_anomaly(&env);
}

async fn a_copy_that_starts_after_its_url_expired_fetches_a_fresh_one(engine: Engine) {
    let env = env(engine, &[Pool::Recordings]).await;
    let placed = answered_call(&env, Duration::from_secs(5)).await;
    // The recordings pool is backed up for eleven minutes: the event's URL is dead by then.
    env.run_for(Duration::from_secs(11 * 60)).await;
    assert!(env.store().call_recordings(&placed.call_session_id).await.unwrap().is_empty());
    env.fleet.start_workers(&[Pool::Recordings]);
    env.run_for(Duration::from_secs(30)).await;

    let rec = the_stored_recording(&env, &placed.call_session_id, "dual").await;
    assert_eq!(env.requests("recording_get").len(), 1, "one fresh URL asked for");
    assert_eq!(rec.transcript_status, TranscriptStatus::Done);
    assert_no_anomaly(&env);
}

#[tokio::test]
async fn a_transcription_that_fails_twice_is_retried_until_done() {
    let env = env(Engine::Postgres, &[]).await;
    env.sim.inject(Fault::TranscriptionError { status: 503, count: 2 });
    let placed = answered_call(&env, Duration::from_secs(5)).await;
    env.run_for(Duration::from_secs(120)).await;

    let rec = the_stored_recording(&env, &placed.call_session_id, "dual").await;
    assert_eq!(rec.transcript_status, TranscriptStatus::Done, "{rec:#?}");
    assert_eq!(env.requests("transcription").len(), 3, "two refusals, then the transcript");
    assert_no_anomaly(&env);
}

#[tokio::test]
async fn voicemail_goes_through_the_same_pipeline_and_a_failed_recording_is_shown() {
    let env = env(Engine::Sqlite, &[]).await;
    env.phone("android-1", "u1", "o1", "android", true, RingBehaviour::Never).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(40)).await; // the ring times out: voicemail
    env.run_for(Duration::from_secs(15)).await; // the message
    env.sim.remote_hangup(&placed.call_control_id).unwrap();
    env.run_for(Duration::from_secs(30)).await;
    let rec = the_stored_recording(&env, &placed.call_session_id, "single").await;
    assert_eq!(rec.transcript_status, TranscriptStatus::Done);
    let received = env.events("voicemail.received", &placed.call_session_id);
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_eq!(received[0].body["data"]["recording"]["transcript"], rec.transcript.as_deref().unwrap());
    let (log, _) = env.store().call_log(&placed.call_session_id).await.unwrap().expect("logged");
    assert_eq!(log.status.as_str(), "voicemail");

    // A second call whose recording Telnyx fails: the failure is kept and shown.
    env.sim.inject(Fault::RecordingError { count: 1 });
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(50)).await;
    env.sim.remote_hangup(&placed.call_control_id).unwrap();
    env.run_for(Duration::from_secs(30)).await;
    assert!(env.store().call_recordings(&placed.call_session_id).await.unwrap().is_empty());
    let failures = env.store().recording_failures(&placed.call_session_id).await.unwrap();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(failures[0].reason, "Internal server error");
    assert_no_anomaly(&env);
}

#[tokio::test]
async fn copies_go_to_an_s3_compatible_store() {
    let s3 = crate::support::s3::S3Server::start("calls").await;
    let settings = s3.fleet_env("calls", "fleet-a");
    let extra: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let env = env_with(Engine::Postgres, &extra, &[]).await;
    let placed = answered_call(&env, Duration::from_secs(5)).await;
    env.run_for(Duration::from_secs(30)).await;

    let rec = the_recording_row(&env, &placed.call_session_id, "dual").await;
    let copy =
        s3.get("calls", &format!("fleet-a/{}", rec.object_key)).await.expect("the object is in the bucket");
    assert_eq!(copy, fleet_sim::recording_bytes("mp3", "dual"));
    assert_eq!(rec.transcript_status, TranscriptStatus::Done, "transcribed from the copy read back from S3");
    assert_no_anomaly(&env);
}

#[tokio::test]
async fn a_rejected_call_is_logged_and_bills_nothing() {
    let env = env(Engine::Sqlite, &[]).await;
    env.store().block_number("o1", CALLER).await.unwrap();
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(5)).await;
    let (log, entry) = env.store().call_log(&placed.call_session_id).await.unwrap().expect("logged");
    assert_eq!((log.status.as_str(), log.end_reason.as_str()), ("rejected", "blocked"));
    assert_eq!((entry.billable_secs, entry.billed_minutes), (0, 0));
    assert_eq!(env.events("call.log", &placed.call_session_id).len(), 1);
    assert!(env.requests("record_start").is_empty());
}

#[tokio::test]
async fn recordings_past_retention_are_deleted_with_their_copies() {
    let env = env_with(Engine::Postgres, &[("CALLFLEET_RECORDING_RETENTION_DAYS", "1")], &[]).await;
    let placed = answered_call(&env, Duration::from_secs(5)).await;
    env.run_for(Duration::from_secs(30)).await;
    let rec = the_stored_recording(&env, &placed.call_session_id, "dual").await;
    let copy = env.fleet.recordings_dir().unwrap().join(&rec.object_key);

    let schedules = fleet_scheduler::default_schedules(&env.fleet.config).unwrap();
    let retention = schedules.iter().find(|s| s.name == "recording-retention").expect("the schedule");
    // A tick within the day keeps it; the first tick two days on deletes it.
    let soon = retention.previous_tick(rec.stored_at + chrono::Duration::hours(20)).unwrap();
    assert!(fleet_scheduler::fire(env.store().as_ref(), retention, soon).await.unwrap());
    env.run_for(Duration::from_secs(5)).await;
    assert!(copy.exists() && env.store().recording(&rec.id).await.unwrap().is_some(), "kept within a day");
    let later = retention.previous_tick(rec.stored_at + chrono::Duration::days(2)).unwrap();
    assert!(fleet_scheduler::fire(env.store().as_ref(), retention, later).await.unwrap());
    env.run_for(Duration::from_secs(5)).await;
    assert!(!copy.exists(), "the copy is deleted");
    assert!(env.store().recording(&rec.id).await.unwrap().is_none(), "and its row, transcript included");
    assert!(env.store().call_recordings(&placed.call_session_id).await.unwrap().is_empty());
}
