//! Job handlers, one module per pool. Each is idempotent: at-least-once delivery, replays and
//! operator retries may run it again with the same input.

mod call_log;
mod credentials;
mod events;
mod maintenance;
mod push;
pub(crate) mod recordings;
mod sweeps;
mod webhook;

use fleet_jobs::{Envelope, Job};

use crate::{JobError, Runtime};

/// Runs the job of one envelope.
pub(crate) async fn run(runtime: &Runtime, envelope: &Envelope) -> Result<(), JobError> {
    match &envelope.job {
        Job::ProcessWebhookV1 { event_id } => webhook::process(runtime, event_id).await,
        Job::PurgeWebhookEventsV1 { before } => maintenance::purge_webhook_events(runtime, *before).await,
        Job::ProvisionCredentialV1 { credential_id } => {
            credentials::provision(runtime, envelope, credential_id).await
        }
        Job::DeleteCredentialV1 { credential_id } => credentials::delete(runtime, credential_id).await,
        Job::RotateCredentialV1 { credential_id } => credentials::rotate(runtime, credential_id).await,
        Job::CleanupExpiredCredentialsV1 { now } => sweeps::cleanup_expired(runtime, envelope, *now).await,
        Job::SweepOrphanCredentialsV1 { now, resume_at } => {
            sweeps::sweep_orphans(runtime, envelope, *now, *resume_at).await
        }
        Job::SweepDepartedCredentialsV1 { now } => sweeps::sweep_departed(runtime, *now).await,
        Job::RotateExpiringCredentialsV1 { now } => sweeps::rotate_expiring(runtime, *now).await,
        Job::ResealSecretsV1 { .. } => maintenance::reseal_secrets(runtime).await,
        Job::SendPushV1 { device_id, message, requested_at_ms } => {
            push::send(runtime, device_id, message, *requested_at_ms).await
        }
        Job::EmitEventV1 { event } => events::emit(runtime, event).await,
        Job::StoreRecordingV1 { org_id, recording } => recordings::store(runtime, org_id, recording).await,
        Job::TranscribeRecordingV1 { recording_id } => recordings::transcribe(runtime, recording_id).await,
        Job::LogCallV1 { call_session_id } => call_log::log_call(runtime, call_session_id).await,
        Job::PurgeRecordingsV1 { before } => maintenance::purge_recordings(runtime, envelope, *before).await,
        Job::CallCommandV1 { call_session_id, effect } => {
            crate::calls::commands::run(runtime, call_session_id, effect).await
        }
        Job::CallTimerV1 { call_session_id, timer, .. } => {
            crate::calls::timers::fire(runtime, call_session_id, timer).await
        }
        Job::RejectCallV1 { call_session_id, call_control_id } => {
            crate::calls::commands::reject_unknown(runtime, call_session_id, call_control_id).await
        }
        Job::RecordDirectCallV1 { call_control_id } => {
            crate::calls::direct::record(runtime, call_control_id).await
        }
        Job::CallInputV1 { call_session_id, input } => {
            crate::calls::apply(runtime, call_session_id, input).await.map(|_| ())
        }
    }
}

/// Hands the rest of a tick's work to a follow-up job: `job` under the work id of `envelope`
/// plus `+`, so an attempt that runs again enqueues the same follow-up once.
async fn continue_in_follow_up(runtime: &Runtime, envelope: &Envelope, job: Job) -> Result<(), JobError> {
    let next = Envelope::new(job, format!("{}+", envelope.work_id));
    runtime.store.enqueue(&[fleet_store::NewJob::once(next)]).await?;
    Ok(())
}
