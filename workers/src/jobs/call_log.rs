//! `log_call.v1`: an ended call's call log line and billing ledger entry, written once with its
//! `call.log` app event; and the follow-up events a recording owes its call.
//!
//! The log and the entry are pure functions of the ended call (`fleet_domain::call::settle`),
//! committed in one transaction with the event's job, once per session: a re-run, a duplicated
//! hangup or a replay finds the session logged and writes nothing. `call.log` carries the
//! recordings already stored; each recording that is stored or transcribed later sends
//! `call.log.updated` (with the whole log again), and a voicemail's message, once its transcript
//! settled, `voicemail.received`. Every event id derives from what it announces, so asking
//! twice (a re-run after a crash between a commit and the enqueue) sends it once.
//!
//! A recording and its call's log race: the copy may commit while `log_call` is between reading
//! the recordings and its own commit, and the copy's announcement then finds no log. So every
//! run of `log_call` (first or repeated) ends by announcing every recording the call has by now,
//! under the same keys: each recording gets its `stored` and `transcribed` updates exactly once
//! whichever side came first.

use fleet_domain::call::{Call, CallLog, LedgerEntry, settle};
use fleet_jobs::{AppEventMessage, event_envelope};
use fleet_store::{NewJob, Recording, TranscriptStatus};
use serde_json::{Value, json};

use crate::calls::outbox::event_id;
use crate::{JobError, Runtime};

/// `log_call.v1`.
pub(super) async fn log_call(runtime: &Runtime, session: &str) -> Result<(), JobError> {
    let Some(call) = runtime.store.call(session).await? else {
        return Err(JobError::permanent(format!("call {session} does not exist")));
    };
    let Some((log, entry)) = settle(&call) else {
        return Err(JobError::permanent(format!("call {session} has not ended")));
    };
    let recordings = runtime.store.call_recordings(session).await?;
    let event =
        message(runtime, &format!("{session}:call.log"), "call.log", log_data(&log, &entry, &recordings));
    if runtime.store.log_call(&log, &entry, &[NewJob::once(event_envelope(event))]).await? {
        let lag = (runtime.store.now() - log.ended_at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("callfleet_call_log_seconds").record(lag);
        metrics::counter!("callfleet_call_logs_total", "status" => log.status.as_str()).increment(1);
        tracing::info!(
            status = log.status.as_str(),
            billable_secs = entry.billable_secs,
            kind = entry.kind.as_str(),
            "Call logged and billed."
        );
    }
    // The catch-up: every recording the call has by now, against the log just written (one
    // read of the recordings and one enqueue for all of them).
    let recordings = runtime.store.call_recordings(session).await?;
    let logged = Some((log, entry));
    let mut jobs = Vec::new();
    for recording in &recordings {
        jobs.extend(owed(runtime, &logged, &recordings, Some(&call), recording, "stored"));
        if recording.transcript_status != TranscriptStatus::Pending {
            jobs.extend(owed(runtime, &logged, &recordings, Some(&call), recording, "transcribed"));
        }
    }
    enqueue(runtime, &jobs).await
}

/// The events `recording` owes its call at `stage` (`stored`, `transcribed`): `call.log.updated`
/// once the call is logged, and `voicemail.received` for a voicemail's message whose transcript
/// settled. Enqueued under ids derived from the recording and stage, so asking again is harmless.
pub(super) async fn announce(runtime: &Runtime, recording: &Recording, stage: &str) -> Result<(), JobError> {
    let session = recording.call_session_id.as_str();
    let logged = runtime.store.call_log(session).await?;
    let recordings = match &logged {
        Some(_) => runtime.store.call_recordings(session).await?,
        None => Vec::new(),
    };
    let call = match recording.transcript_status {
        TranscriptStatus::Pending => None,
        _ => runtime.store.call(session).await?,
    };
    let jobs = owed(runtime, &logged, &recordings, call.as_ref(), recording, stage);
    enqueue(runtime, &jobs).await
}

/// [`announce`]'s events, from what was read: the call's log (if logged) with its recordings, and
/// the call itself (needed only once the transcript settled).
fn owed(
    runtime: &Runtime,
    logged: &Option<(CallLog, LedgerEntry)>,
    recordings: &[Recording],
    call: Option<&Call>,
    recording: &Recording,
    stage: &str,
) -> Vec<NewJob> {
    let session = recording.call_session_id.as_str();
    let mut jobs = Vec::new();
    if let Some((log, entry)) = logged {
        let key = format!("{session}:call.log.updated:{}:{stage}", recording.id);
        let data = log_data(log, entry, recordings);
        jobs.push(NewJob::once(event_envelope(message(runtime, &key, "call.log.updated", data))));
    }
    let settled = recording.transcript_status != TranscriptStatus::Pending;
    if settled && let Some(call) = call.filter(|c| is_voicemail(c)) {
        let key = format!("{session}:voicemail.received:{}", recording.id);
        let data = voicemail_data(call, recording);
        jobs.push(NewJob::once(event_envelope(message(runtime, &key, "voicemail.received", data))));
    }
    jobs
}

async fn enqueue(runtime: &Runtime, jobs: &[NewJob]) -> Result<(), JobError> {
    if !jobs.is_empty() {
        runtime.store.enqueue(jobs).await?;
    }
    Ok(())
}

fn is_voicemail(call: &Call) -> bool {
    call.has_emitted("voicemail:greeting")
}

fn message(runtime: &Runtime, key: &str, event_type: &str, data: Value) -> AppEventMessage {
    AppEventMessage {
        id: event_id(key),
        event_type: event_type.to_owned(),
        occurred_at_ms: runtime.store.now().timestamp_millis(),
        data,
    }
}

/// A recording as events show it.
fn recording_ref(r: &Recording) -> Value {
    json!({
        "recording_id": r.id,
        "format": r.format,
        "channels": r.channels,
        "duration_ms": r.duration_ms,
        "sha256": r.sha256,
        "transcript_status": r.transcript_status,
        "transcript": r.transcript,
    })
}

/// `call.log` / `call.log.updated` data: the log line, its billing, its recordings.
fn log_data(log: &CallLog, entry: &LedgerEntry, recordings: &[Recording]) -> Value {
    let mut data = serde_json::to_value(log).unwrap_or_else(|_| json!({}));
    if let Some(obj) = data.as_object_mut() {
        obj.insert("status".into(), json!(log.status.as_str()));
        obj.insert(
            "billing".into(),
            json!({
                "kind": entry.kind.as_str(),
                "billable_secs": entry.billable_secs,
                "billed_minutes": entry.billed_minutes,
            }),
        );
        obj.insert("recordings".into(), recordings.iter().map(recording_ref).collect());
    }
    data
}

fn voicemail_data(call: &Call, recording: &Recording) -> Value {
    json!({
        "call_session_id": call.id,
        "org_id": call.org_id,
        "user_id": call.user_id,
        "from": call.from,
        "to": call.to,
        "caller_name": call.caller_name,
        "recording": recording_ref(recording),
    })
}
