//! A recordings worker SIGKILLed between the download and the upload, with real processes: the
//! S3-compatible store (moto) is frozen before the caller hangs up, so the worker that copies the
//! recording downloads it from the simulator and then cannot finish the upload; it is killed
//! there. With the store thawed, a replacement worker copies it: one object with the simulator's
//! bytes, one row, one transcript, one call log — nothing lost, nothing twice.

use fleet_domain::call::CallState;
use fleet_store::{Engine, OrgSettings, TranscriptStatus};

use crate::calls::{CALLER, NUMBER, answer_after};
use crate::recordings::sha256_hex;
use crate::support::calls::CallEnv;
use crate::support::s3::S3Server;
use crate::support::{eventually, process};

/// Every pool but `recordings`: the call path, events, credentials, maintenance.
const OTHER_POOLS: &str = "webhooks,legs,simring-retries,push,events,credentials,maintenance";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recordings_worker_killed_between_download_and_upload_loses_nothing() {
    let s3 = S3Server::start("calls").await;
    let settings = s3.fleet_env("calls", "crash");
    let extra: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let env = CallEnv::start_for_processes(Engine::Postgres, &extra, |_| {}).await;
    let vars: Vec<(&str, &str)> = env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let db_url = env.fleet.test_db.url.clone();
    let mut others = process::spawn(&db_url, &["worker", "--pool", OTHER_POOLS], &vars);
    let mut copier = process::spawn(&db_url, &["worker", "--pool", "recordings"], &vars);
    env.org("o1", OrgSettings::default()).await;
    env.user("u1", &["o1"], false).await;
    env.number(NUMBER, "o1", Some("u1"), 30).await;
    env.phone("android-1", "u1", "o1", "android", true, answer_after(500)).await;

    let placed = env.call_from(CALLER, NUMBER);
    let session = placed.call_session_id.clone();
    eventually(60, "the call to be answered and recorded", || async {
        let call = env.store().call(&session).await.ok()??;
        let recording = env.requests("record_start").iter().any(|r| r.status == 200);
        (call.state == CallState::Answered && recording).then_some(())
    })
    .await;
    s3.pause();
    env.sim.remote_hangup(&placed.call_control_id).unwrap();
    eventually(60, "the copy's download", || async {
        (!env.sim.recording_downloads().is_empty()).then_some(())
    })
    .await;
    // The worker holds the bytes; the frozen store cannot take them. Killed there.
    process::kill9(&mut copier).await;
    assert!(env.store().call_recordings(&session).await.unwrap().is_empty(), "nothing was recorded yet");
    s3.resume();
    let mut replacement = process::spawn(&db_url, &["worker", "--pool", "recordings"], &vars);

    let rec = eventually(120, "the recording stored and transcribed", || async {
        let recs = env.store().call_recordings(&session).await.ok()?;
        recs.into_iter().find(|r| r.transcript_status == TranscriptStatus::Done)
    })
    .await;
    let expected = fleet_sim::recording_bytes("mp3", "dual");
    assert_eq!(rec.sha256, sha256_hex(&expected));
    let copy =
        s3.get("calls", &format!("crash/{}", rec.object_key)).await.expect("the object is in the bucket");
    assert_eq!(copy, expected, "the object holds the recording's bytes");
    assert_eq!(env.store().call_recordings(&session).await.unwrap().len(), 1, "one row");
    let downloads = env.sim.recording_downloads();
    assert_eq!(downloads.len(), 2, "by the killed worker, then again: {downloads:#?}");
    assert_eq!(env.requests("transcription").len(), 1, "transcribed once");
    let (log, _) = env.store().call_log(&session).await.unwrap().expect("logged");
    assert_eq!(log.status.as_str(), "answered");
    eventually(30, "call.log and its two updates", || async {
        let updates = env.events("call.log.updated", &session);
        (env.events("call.log", &session).len() == 1 && updates.len() == 2).then_some(())
    })
    .await;
    process::kill9(&mut replacement).await;
    process::kill9(&mut others).await;
}
