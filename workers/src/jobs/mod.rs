//! Job handlers, one module per pool. Each is idempotent: at-least-once delivery, replays and
//! operator retries may run it again with the same input.

mod maintenance;
mod webhook;

use fleet_jobs::{Envelope, Job};

use crate::{JobError, Runtime};

/// Runs the job of one envelope.
pub(crate) async fn run(runtime: &Runtime, envelope: &Envelope) -> Result<(), JobError> {
    match &envelope.job {
        Job::ProcessWebhookV1 { event_id } => webhook::process(runtime, event_id).await,
        Job::PurgeWebhookEventsV1 { before } => maintenance::purge_webhook_events(runtime, *before).await,
    }
}
