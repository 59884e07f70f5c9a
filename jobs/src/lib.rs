//! Job contracts: the shared language of producers (ingress, scheduler, API) and workers.
//!
//! A job is a versioned, `type`-tagged payload ([`Job`]) wrapped in an [`Envelope`] that carries
//! what every job needs whatever its kind: the attempt number (persisted backoff re-enqueues the
//! envelope with `attempt + 1`), the id of the first attempt (so retries of one piece of work share
//! one key), and the call session id for tracing. New shapes are new variants (`…V2`); a variant is
//! never edited in place once released, because old payloads may still sit in a queue.
//!
//! Each job kind belongs to one [`Pool`] (a queue that operators scale on its own) and has one
//! [`RetryPolicy`]. Nothing here knows about the queue backend.

mod pool;
pub mod trace;

use std::time::Duration;

use fleet_domain::call::{CallInput, Effect, Timer};
use fleet_domain::push::PushMessage;
use fleet_domain::recording::SavedRecording;
use fleet_domain::retry::RetryPolicy;
use serde::{Deserialize, Serialize};

pub use pool::{Pool, UnknownPool};

/// Every job kind callfleet runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Job {
    /// Process one stored Telnyx webhook event (by its Telnyx event id).
    #[serde(rename = "process_webhook.v1")]
    ProcessWebhookV1 { event_id: String },
    /// Delete stored webhook events received before `before` (Unix seconds).
    #[serde(rename = "purge_webhook_events.v1")]
    PurgeWebhookEventsV1 { before: i64 },
    /// Create the Telnyx credential of one stored credential row (or adopt one an earlier attempt
    /// created), then record it.
    #[serde(rename = "provision_credential.v1")]
    ProvisionCredentialV1 { credential_id: String },
    /// Delete one credential row's Telnyx credential, then the row (deregistration).
    #[serde(rename = "delete_credential.v1")]
    DeleteCredentialV1 { credential_id: String },
    /// Replace one active credential that nears expiry: create → store → delete old.
    #[serde(rename = "rotate_credential.v1")]
    RotateCredentialV1 { credential_id: String },
    /// Delete every credential past `expires_at` (Unix seconds of the tick) on Telnyx and in the store.
    #[serde(rename = "cleanup_expired_credentials.v1")]
    CleanupExpiredCredentialsV1 { now: i64 },
    /// Delete Telnyx credentials carrying one of our tags that the store does not know. A sweep
    /// too large for one attempt continues in a job of the same tick that starts `resume_at`
    /// credentials into the connection's listing (the ones the sweep kept so far; 0 at the tick).
    #[serde(rename = "sweep_orphan_credentials.v1")]
    SweepOrphanCredentialsV1 {
        now: i64,
        #[serde(default, skip_serializing_if = "is_zero")]
        resume_at: u64,
    },
    /// Delete org-level credentials of users who left the organization.
    #[serde(rename = "sweep_departed_credentials.v1")]
    SweepDepartedCredentialsV1 { now: i64 },
    /// Enqueue the rotation of every active credential that nears expiry.
    #[serde(rename = "rotate_expiring_credentials.v1")]
    RotateExpiringCredentialsV1 { now: i64 },
    /// Re-seal every stored secret not sealed by the current key (or in the unbound `v1:`
    /// format), so an operator can retire the old keys of `CALLFLEET_SECRET_KEY`.
    #[serde(rename = "reseal_secrets.v1")]
    ResealSecretsV1 { now: i64 },
    /// Deliver one push message to one device (FCM or APNs, by the device's platform and token
    /// at send time). `requested_at_ms` (Unix ms) is when the push was asked for: the delivery
    /// latency metric counts from it, across retries.
    #[serde(rename = "send_push.v1")]
    SendPushV1 { device_id: String, message: PushMessage, requested_at_ms: i64 },
    /// Perform one Telnyx effect of a call transition (dial, answer, bridge, hangup, reject, speak,
    /// record, transfer, status query). The effect's key is the source of the Telnyx `command_id`,
    /// so a retried attempt sends the same command and Telnyx ignores the repeat.
    #[serde(rename = "call_command.v1")]
    CallCommandV1 { call_session_id: String, effect: Effect },
    /// A timer a call scheduled for itself (ring timeout, redial, reconcile), due at `due_at_ms`.
    #[serde(rename = "call_timer.v1")]
    CallTimerV1 { call_session_id: String, timer: Timer, due_at_ms: i64 },
    /// Feed one input to a call's state machine: feedback from another pool (a delivered push)
    /// or the compensation of a call command that died.
    #[serde(rename = "call_input.v1")]
    CallInputV1 { call_session_id: String, input: CallInput },
    /// Reject an inbound call that has no call of ours (its number is not configured): nothing
    /// is stored about it, so the command carries what it needs.
    #[serde(rename = "reject_call.v1")]
    RejectCallV1 { call_session_id: String, call_control_id: String },
    /// Deliver one signed event to the app backend (Standard Webhooks, `CALLFLEET_EVENTS_URL`).
    #[serde(rename = "emit_event.v1")]
    EmitEventV1 { event: AppEventMessage },
    /// Copy one saved recording of a call of `org_id` into the fleet's object store (asking
    /// Telnyx for a fresh URL when the event's is too old), record it, and enqueue its
    /// transcription in the same transaction.
    #[serde(rename = "store_recording.v1")]
    StoreRecordingV1 { org_id: String, recording: SavedRecording },
    /// Transcribe one stored recording and keep the transcript with it.
    #[serde(rename = "transcribe_recording.v1")]
    TranscribeRecordingV1 { recording_id: String },
    /// Delete recordings (object and row, transcript included) stored before `before` (Unix
    /// seconds), in batches; a large backlog continues in a follow-up job.
    #[serde(rename = "purge_recordings.v1")]
    PurgeRecordingsV1 { before: i64 },
    /// Write an ended call's call log and billing ledger entry (once) and emit `call.log`.
    #[serde(rename = "log_call.v1")]
    LogCallV1 { call_session_id: String },
    /// Start the recording a browser asked for on its direct WebRTC call (`recording_requests`
    /// row): `record_start`, retried while Telnyx answers "not answered yet", never past the
    /// call's end.
    #[serde(rename = "record_direct_call.v1")]
    RecordDirectCallV1 { call_control_id: String },
}

/// One event to the app backend, fixed when its call decision committed: retries send the same
/// id, timestamp and body, so the receiver can dedupe on `webhook-id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppEventMessage {
    /// `webhook-id`: stable across retries (derived from the call effect's key).
    pub id: String,
    /// `call.incoming`, `call.answered`, `call.ended`, `call.missed`, `voicemail.started`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Unix milliseconds of the decision (the payload's `timestamp`).
    pub occurred_at_ms: i64,
    /// The payload's `data`: always carries `call_session_id` and `org_id`.
    pub data: serde_json::Value,
}

impl Job {
    /// The pool (queue) this kind runs on.
    pub fn pool(&self) -> Pool {
        match self {
            Self::ProcessWebhookV1 { .. } => Pool::Webhooks,
            Self::ProvisionCredentialV1 { .. }
            | Self::DeleteCredentialV1 { .. }
            | Self::RotateCredentialV1 { .. } => Pool::Credentials,
            Self::SendPushV1 { .. } => Pool::Push,
            Self::CallCommandV1 { .. } | Self::RejectCallV1 { .. } | Self::RecordDirectCallV1 { .. } => {
                Pool::Legs
            }
            Self::CallTimerV1 { .. } => Pool::SimringRetries,
            Self::CallInputV1 { .. } => Pool::Webhooks,
            Self::EmitEventV1 { .. } => Pool::Events,
            Self::StoreRecordingV1 { .. } | Self::TranscribeRecordingV1 { .. } => Pool::Recordings,
            // A quick store write promised within seconds of the hangup: not behind downloads.
            Self::LogCallV1 { .. } => Pool::Webhooks,
            Self::PurgeWebhookEventsV1 { .. }
            | Self::CleanupExpiredCredentialsV1 { .. }
            | Self::SweepOrphanCredentialsV1 { .. }
            | Self::SweepDepartedCredentialsV1 { .. }
            | Self::RotateExpiringCredentialsV1 { .. }
            | Self::ResealSecretsV1 { .. }
            | Self::PurgeRecordingsV1 { .. } => Pool::Maintenance,
        }
    }

    /// Stable, low-cardinality name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ProcessWebhookV1 { .. } => "process_webhook",
            Self::PurgeWebhookEventsV1 { .. } => "purge_webhook_events",
            Self::ProvisionCredentialV1 { .. } => "provision_credential",
            Self::DeleteCredentialV1 { .. } => "delete_credential",
            Self::RotateCredentialV1 { .. } => "rotate_credential",
            Self::CleanupExpiredCredentialsV1 { .. } => "cleanup_expired_credentials",
            Self::SweepOrphanCredentialsV1 { .. } => "sweep_orphan_credentials",
            Self::SweepDepartedCredentialsV1 { .. } => "sweep_departed_credentials",
            Self::RotateExpiringCredentialsV1 { .. } => "rotate_expiring_credentials",
            Self::ResealSecretsV1 { .. } => "reseal_secrets",
            Self::SendPushV1 { .. } => "send_push",
            Self::CallCommandV1 { .. } => "call_command",
            Self::RejectCallV1 { .. } => "reject_call",
            Self::CallTimerV1 { .. } => "call_timer",
            Self::CallInputV1 { .. } => "call_input",
            Self::EmitEventV1 { .. } => "emit_event",
            Self::StoreRecordingV1 { .. } => "store_recording",
            Self::TranscribeRecordingV1 { .. } => "transcribe_recording",
            Self::LogCallV1 { .. } => "log_call",
            Self::PurgeRecordingsV1 { .. } => "purge_recordings",
            Self::RecordDirectCallV1 { .. } => "record_direct_call",
        }
    }

    /// Retry budget and backoff of this kind.
    pub fn retry_policy(&self) -> RetryPolicy {
        match self {
            Self::ProcessWebhookV1 { .. } => {
                RetryPolicy::new(8, Duration::from_secs(1), Duration::from_secs(120))
            }
            Self::PurgeWebhookEventsV1 { .. } => {
                RetryPolicy::new(5, Duration::from_secs(30), Duration::from_secs(1800))
            }
            Self::ProvisionCredentialV1 { .. }
            | Self::DeleteCredentialV1 { .. }
            | Self::RotateCredentialV1 { .. } => {
                RetryPolicy::new(10, Duration::from_secs(1), Duration::from_secs(600))
            }
            Self::CleanupExpiredCredentialsV1 { .. }
            | Self::SweepOrphanCredentialsV1 { .. }
            | Self::SweepDepartedCredentialsV1 { .. }
            | Self::RotateExpiringCredentialsV1 { .. }
            | Self::ResealSecretsV1 { .. }
            | Self::PurgeRecordingsV1 { .. } => {
                RetryPolicy::new(8, Duration::from_secs(1), Duration::from_secs(900))
            }
            // Pushes are about a call happening now: short backoff, small budget. An
            // `incoming_call` is also bounded by its ring deadline (see `deadline`).
            Self::SendPushV1 { .. } => RetryPolicy::new(5, Duration::from_secs(1), Duration::from_secs(30)),
            // Live-call commands: a budget of seconds, not minutes (a caller is waiting). When it is
            // spent the command's compensation runs (see `compensation`).
            Self::CallCommandV1 { .. } | Self::RejectCallV1 { .. } => {
                RetryPolicy::new(5, Duration::from_millis(200), Duration::from_secs(2))
            }
            Self::CallTimerV1 { .. } | Self::CallInputV1 { .. } => {
                RetryPolicy::new(8, Duration::from_millis(200), Duration::from_secs(5))
            }
            Self::EmitEventV1 { .. } => {
                RetryPolicy::new(12, Duration::from_secs(1), Duration::from_secs(300))
            }
            // A copy asks for a fresh URL whenever the event's is too old, so its budget may
            // outlast the URL's ten minutes: about 20 minutes in all.
            Self::StoreRecordingV1 { .. } => {
                RetryPolicy::new(10, Duration::from_secs(2), Duration::from_secs(300))
            }
            Self::TranscribeRecordingV1 { .. } => {
                RetryPolicy::new(8, Duration::from_secs(5), Duration::from_secs(600))
            }
            // Waits for an answer that may take a while (a far end rings for up to a few
            // minutes): every 2 s at most, so the recording starts soon after it, for about
            // 15 minutes in all; each attempt first checks that the call still lives.
            Self::RecordDirectCallV1 { .. } => {
                RetryPolicy::new(450, Duration::from_millis(250), Duration::from_secs(2))
            }
            // A store write: short waits (the call log is promised within seconds of the hangup).
            Self::LogCallV1 { .. } => {
                RetryPolicy::new(10, Duration::from_millis(200), Duration::from_secs(30))
            }
        }
    }

    /// Longest one attempt may run before it counts as a (retryable) failure: a minute, and ten
    /// for the recordings pool (a long recording's download, upload or transcription).
    pub fn attempt_timeout(&self) -> Duration {
        match self.pool() {
            Pool::Recordings => Duration::from_secs(600),
            _ => Duration::from_secs(60),
        }
    }

    /// Unix seconds after which this work is worthless and must not run (an `incoming_call`
    /// push once the ring is over); `None` for work that never goes stale.
    pub fn deadline(&self) -> Option<i64> {
        match self {
            Self::SendPushV1 { message, .. } => message.deadline(),
            _ => None,
        }
    }

    /// What must happen when this job dies (its budget spent or a permanent failure): the input
    /// that tells its call the command failed for good, so the call is ended or rerouted cleanly
    /// instead of leaving a caller in silence. `None` for work without a compensation.
    pub fn compensation(&self) -> Option<Job> {
        let Self::CallCommandV1 { call_session_id, effect } = self else { return None };
        let input = match &effect.command {
            fleet_domain::call::Command::Dial { leg, .. } => CallInput::DialFailed { leg: leg.clone() },
            fleet_domain::call::Command::Bridge { .. } => CallInput::BridgeFailed,
            _ => return None,
        };
        Some(Self::CallInputV1 { call_session_id: call_session_id.clone(), input })
    }
}

/// `resume_at` is left out of a sweep tick's first job, so its payload is what it was before
/// continuations existed.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The identity of one push: `<kind>:<call session>:<device>`. It names the push job's work
/// (`push:<key>`) and the record of its delivery, so both agree on what "the same push" is.
pub fn push_key(message: &PushMessage, device_id: &str) -> String {
    format!("{}:{}:{device_id}", message.kind(), message.call_session_id())
}

/// The push of `message` to one device, first attempt. Its work id is `push:<push key>`, so
/// asking twice for the same push of the same call to the same device (a replayed webhook, a
/// retried handler) enqueues it once.
pub fn push_envelope(device_id: &str, message: PushMessage, requested_at_ms: i64) -> Envelope {
    let work_id = format!("push:{}", push_key(&message, device_id));
    let session = message.call_session_id().to_owned();
    Envelope::new(Job::SendPushV1 { device_id: device_id.to_owned(), message, requested_at_ms }, work_id)
        .with_call_session(Some(session))
}

/// The delivery of one app event, first attempt: what the call engine enqueues (in the same
/// transaction as the decision that caused it) as `NewJob::once(event_envelope(event))`. Its work
/// id is `event:<event id>`, so enqueueing the same event twice (a replayed webhook, a retried
/// handler) enqueues it once; the span carries the event's `data.call_session_id`.
pub fn event_envelope(event: AppEventMessage) -> Envelope {
    let work_id = format!("event:{}", event.id);
    let session = event.data.get("call_session_id").and_then(|v| v.as_str()).map(str::to_owned);
    Envelope::new(Job::EmitEventV1 { event }, work_id).with_call_session(session)
}

/// The copy of one saved recording, first attempt. Its work id is `recording:<recording id>`, so
/// a duplicated or replayed `call.recording.saved` enqueues it once.
pub fn recording_envelope(org_id: &str, recording: SavedRecording) -> Envelope {
    let work_id = format!("recording:{}", recording.recording_id);
    let session = recording.call_session_id.clone();
    Envelope::new(Job::StoreRecordingV1 { org_id: org_id.to_owned(), recording }, work_id)
        .with_call_session(Some(session))
}

/// The start of a direct call's requested recording (work id `record-direct:<call_control_id>`).
/// `nudge` names a repeat asked for by news of the call (its answer), so it runs now instead of
/// after the first job's next backoff; both send the same `command_id`.
/// The span carries the call's session when it is known (Telnyx or an event named it).
pub fn direct_recording_envelope(
    call_control_id: &str,
    call_session_id: Option<&str>,
    nudge: Option<&str>,
) -> Envelope {
    let job = Job::RecordDirectCallV1 { call_control_id: call_control_id.to_owned() };
    let work_id = match nudge {
        Some(why) => format!("record-direct:{call_control_id}:{why}"),
        None => format!("record-direct:{call_control_id}"),
    };
    Envelope::new(job, work_id).with_call_session(call_session_id.map(str::to_owned))
}

/// The transcription of one stored recording, first attempt (work id `transcribe:<recording id>`).
pub fn transcription_envelope(recording_id: &str, call_session_id: &str) -> Envelope {
    let job = Job::TranscribeRecordingV1 { recording_id: recording_id.to_owned() };
    Envelope::new(job, format!("transcribe:{recording_id}"))
        .with_call_session(Some(call_session_id.to_owned()))
}

/// What is stored in the queue: a job plus the facts that outlive one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Envelope format version.
    pub v: u8,
    pub job: Job,
    /// 1-based attempt number of this copy.
    pub attempt: u32,
    /// Id shared by every attempt of one piece of work (the first attempt's id).
    pub work_id: String,
    /// The call this work belongs to, for tracing (`call_session_id` on every span).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_session_id: Option<String>,
    /// W3C `traceparent` of the span that created this work, when traces are exported
    /// ([`trace`]): the job's span continues that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_parent: Option<String>,
}

impl Envelope {
    /// A first attempt. `work_id` should be deterministic when the work has a natural key
    /// (e.g. `webhook:<event id>`), so a re-enqueue of the same work can be recognised.
    pub fn new(job: Job, work_id: impl Into<String>) -> Self {
        Self {
            v: 1,
            job,
            attempt: 1,
            work_id: work_id.into(),
            call_session_id: None,
            trace_parent: trace::current(),
        }
    }

    pub fn with_call_session(mut self, call_session_id: Option<String>) -> Self {
        self.call_session_id = call_session_id;
        self
    }

    /// Continues `trace_parent` instead of the current span's trace (work built away from the
    /// request that asked for it: the ingress's group commit).
    pub fn with_trace_parent(mut self, trace_parent: Option<String>) -> Self {
        if trace_parent.is_some() {
            self.trace_parent = trace_parent;
        }
        self
    }

    /// The copy that runs the next attempt.
    pub fn next_attempt(&self) -> Self {
        Self { attempt: self.attempt + 1, ..self.clone() }
    }

    /// The same work from the start, as a new generation: used when an operator retries a dead
    /// job. The generation suffix keeps the new attempts' keys apart from the spent ones.
    pub fn restarted(&self, generation: &str) -> Self {
        Self { attempt: 1, work_id: format!("{}~{generation}", self.work_id), ..self.clone() }
    }

    pub fn pool(&self) -> Pool {
        self.job.pool()
    }

    /// Key that makes a push of this exact attempt idempotent.
    pub fn attempt_key(&self) -> String {
        format!("{}#{}", self.work_id, self.attempt)
    }
}

#[cfg(test)]
mod tests;
