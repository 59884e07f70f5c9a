//! `recordings` pool: a saved recording becomes a checksummed copy in the object store, then a
//! transcript kept with it.
//!
//! ```text
//! call.recording.saved ─▶ (webhooks pool) store_recording.v1, key recording:<id>  (a repeat: once)
//!   store_recording ─▶ row exists? done (a re-run after the commit)
//!                   ─▶ URL: the event's while it has ≥ 60 s left, else GET /recordings/{id} (fresh)
//!                   ─▶ download (403 expired → once more with a fresh URL) → SHA-256
//!                   ─▶ put recordings/<org>/<session>/<id>.<ext> (same key every run)
//!                   ─▶ ONE transaction: recordings row (transcript pending) + transcribe_recording.v1
//!   transcribe_recording ─▶ transcript settled? done
//!                        ─▶ read the copy back, check its SHA-256 ─▶ POST /audio/transcriptions
//!                        ─▶ transcript done | failed (a refusal; the job is also dead, retryable)
//!   stored / transcribed ─▶ call.log.updated (once the call is logged), voicemail.received
//!                           (a voicemail's message, its transcript settled): `super::call_log`
//! call.recording.error ─▶ (webhooks pool) recording_failures row, once per event
//! ```
//!
//! Failure behaviour. Every step may run twice: a worker killed between the upload and the
//! commit leaves an object without a row, which the next attempt overwrites with the same bytes
//! under the same key before committing. Downloads, uploads and transcriptions that fail for a
//! passing reason back off through persisted jobs; what fails for good ends in the dead set, from
//! which an operator's retry runs the step again. Only recordings of calls the fleet stored, or
//! that a browser asked it to record, are copied (a recording of a foreign session is ignored
//! like its other events).

use chrono::{DateTime, Utc};
use fleet_domain::event::{CallEvent, EventKind};
use fleet_domain::recording::{AudioFormat, SavedRecording, UrlChoice};
use fleet_domain::retry::Failure;
use fleet_jobs::{recording_envelope, transcription_envelope};
use fleet_recordings::{Downloaded, MediaError};
use fleet_store::{NewJob, Recording, Transcript, TranscriptStatus};

use crate::{JobError, Runtime};

impl From<MediaError> for JobError {
    fn from(e: MediaError) -> Self {
        let failure = match &e {
            MediaError::Permanent { .. } => Failure::Permanent,
            MediaError::Retryable { retry_after, .. } => Failure::Retryable { retry_after: *retry_after },
            MediaError::Expired | MediaError::Storage { .. } => Failure::Retryable { retry_after: None },
        };
        let message = match &e {
            // Which store operation, and the store's own words (a path or a bucket, no secret).
            MediaError::Storage { source, .. } => format!("{e}: {source}"),
            _ => e.to_string(),
        };
        Self { failure, message }
    }
}

/// Whether `event` belongs to the recording pipeline.
pub(crate) fn is_recording_event(event: &CallEvent) -> bool {
    matches!(event.kind, EventKind::CallRecordingSaved | EventKind::CallRecordingError)
}

/// The org of a recording event's call: the stored call's, else (a direct call whose other
/// events never reached us) the org of the browser's request to record it.
async fn org_of(runtime: &Runtime, event: &CallEvent, session: &str) -> Result<Option<String>, JobError> {
    if let Some(call) = runtime.store.call(session).await? {
        return Ok(Some(call.org_id));
    }
    let Some(ccid) = event.payload.call_control_id.as_deref() else { return Ok(None) };
    Ok(runtime.store.recording_request(ccid).await?.map(|r| r.org_id))
}

/// A recording event of a stored call: enqueue the copy, or keep the failure. Returns whether
/// the event concerned a call of ours.
pub(crate) async fn on_event(
    runtime: &Runtime,
    event: &CallEvent,
    received_at: DateTime<Utc>,
) -> Result<bool, JobError> {
    let Some(session) = event.call_session_id() else { return Ok(false) };
    let Some(org_id) = org_of(runtime, event, session).await? else { return Ok(false) };
    if event.kind == EventKind::CallRecordingError {
        let reason = event.payload.reason.as_deref().unwrap_or("unknown");
        if runtime.store.record_recording_failure(&event.id, session, reason).await? {
            metrics::counter!("callfleet_recordings_total", "outcome" => "telnyx_error").increment(1);
            tracing::warn!(reason, "Telnyx reported a failed recording.");
        }
        return Ok(true);
    }
    let saved = SavedRecording::from_event(event, received_at)
        .map_err(|e| JobError::permanent(format!("event {}: {e}", event.id)))?;
    let recording_id = saved.recording_id.clone();
    runtime.store.enqueue(&[NewJob::once(recording_envelope(&org_id, saved))]).await?;
    tracing::info!(recording_id, "Recording saved by Telnyx; copy enqueued.");
    Ok(true)
}

/// `store_recording.v1`.
pub(super) async fn store(runtime: &Runtime, org_id: &str, saved: &SavedRecording) -> Result<(), JobError> {
    if let Some(stored) = runtime.store.recording(&saved.recording_id).await? {
        tracing::info!(recording_id = saved.recording_id, "Recording already stored.");
        return super::call_log::announce(runtime, &stored, "stored").await;
    }
    let got = download(runtime, saved).await?;
    let key = saved.object_key(org_id);
    runtime.archive.put(&key, got.bytes.clone()).await?;
    let recording = Recording {
        id: saved.recording_id.clone(),
        call_session_id: saved.call_session_id.clone(),
        org_id: org_id.to_owned(),
        format: saved.format.as_str().to_owned(),
        channels: saved.channels.as_str().to_owned(),
        object_key: key,
        sha256: got.sha256.clone(),
        size_bytes: i64::try_from(got.bytes.len()).unwrap_or(i64::MAX),
        duration_ms: saved.duration_ms(),
        started_at: saved.started_at,
        ended_at: saved.ended_at,
        saved_at: saved.saved_at,
        stored_at: runtime.store.now(),
        transcript_status: TranscriptStatus::Pending,
        transcript: None,
        transcript_error: None,
        transcribed_at: None,
    };
    let transcribe = NewJob::once(transcription_envelope(&saved.recording_id, &saved.call_session_id));
    if runtime.store.store_recording(&recording, &[transcribe]).await? {
        let lag = (runtime.store.now() - saved.saved_at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("callfleet_recording_store_seconds").record(lag);
        metrics::counter!("callfleet_recordings_total", "outcome" => "stored").increment(1);
        tracing::info!(
            recording_id = saved.recording_id,
            bytes = got.bytes.len(),
            sha256 = got.sha256,
            "Recording copied to the object store."
        );
    }
    super::call_log::announce(runtime, &recording, "stored").await
}

/// The recording's bytes: from the event's URL while it is young enough, else (or when S3 says
/// it expired anyway) from a fresh URL.
async fn download(runtime: &Runtime, saved: &SavedRecording) -> Result<Downloaded, JobError> {
    if let UrlChoice::FromEvent(url) = saved.url_choice(runtime.store.now()) {
        match runtime.downloader.download(&url).await {
            Err(MediaError::Expired) => {
                tracing::info!(
                    recording_id = saved.recording_id,
                    "The event's URL has expired; asking for a fresh one."
                );
            }
            got => return Ok(got?),
        }
    }
    let fresh = fresh_url(runtime, saved).await?;
    metrics::counter!("callfleet_recording_url_refreshes_total").increment(1);
    Ok(runtime.downloader.download(&fresh).await?)
}

async fn fresh_url(runtime: &Runtime, saved: &SavedRecording) -> Result<String, JobError> {
    let info = runtime.telnyx()?.recording(&saved.recording_id).await?;
    let url = match saved.format {
        AudioFormat::Mp3 => info.download_urls.mp3,
        AudioFormat::Wav => info.download_urls.wav,
    };
    url.ok_or_else(|| JobError::retryable(format!("Telnyx gave no {} link", saved.format.as_str())))
}

/// `transcribe_recording.v1`.
pub(super) async fn transcribe(runtime: &Runtime, recording_id: &str) -> Result<(), JobError> {
    let Some(recording) = runtime.store.recording(recording_id).await? else {
        return Err(JobError::permanent(format!("recording {recording_id} is not stored")));
    };
    if recording.transcript_status == TranscriptStatus::Done {
        return super::call_log::announce(runtime, &recording, "transcribed").await;
    }
    let Some(transcriber) = &runtime.transcriber else {
        let why = "no transcription API key is configured (TRANSCRIPTION_API_KEY or TELNYX_API_KEY)";
        return settle(runtime, recording_id, Transcript::Failed(why.into())).await;
    };
    let bytes = runtime.archive.get(&recording.object_key).await?;
    if fleet_recordings::sha256_hex(&bytes) != recording.sha256 {
        let why = "the stored copy does not match its checksum";
        settle(runtime, recording_id, Transcript::Failed(why.into())).await?;
        return Err(JobError::permanent(why));
    }
    let format = AudioFormat::parse(&recording.format).unwrap_or(AudioFormat::Mp3);
    let file_name = format!("{recording_id}.{}", format.as_str());
    match transcriber.transcribe(bytes, &file_name, format.content_type()).await {
        Ok(text) => settle(runtime, recording_id, Transcript::Done(text)).await,
        Err(e @ MediaError::Permanent { .. }) => {
            settle(runtime, recording_id, Transcript::Failed(e.to_string())).await?;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Keeps the transcript's outcome and announces it (`call.log.updated`, `voicemail.received`).
async fn settle(runtime: &Runtime, recording_id: &str, outcome: Transcript) -> Result<(), JobError> {
    let label = match &outcome {
        Transcript::Done(_) => "done",
        Transcript::Failed(_) => "failed",
    };
    if runtime.store.finish_transcript(recording_id, &outcome).await? {
        metrics::counter!("callfleet_transcripts_total", "outcome" => label).increment(1);
    }
    match runtime.store.recording(recording_id).await? {
        Some(recording) => super::call_log::announce(runtime, &recording, "transcribed").await,
        None => Ok(()),
    }
}
