//! Which deliveries of a batch are new, and the processing job each new one gets.

use std::collections::HashSet;

use fleet_jobs::{Envelope, Job};

use crate::{Accepted, NewJob, NewWebhook};

/// Maps inserted ids back onto the batch (first occurrence wins) and builds their jobs.
pub fn outcomes(batch: &[NewWebhook], mut inserted: HashSet<String>) -> (Vec<Accepted>, Vec<NewJob>) {
    let mut jobs = Vec::with_capacity(inserted.len());
    let outcomes = batch
        .iter()
        .map(|w| {
            if inserted.remove(&w.event_id) {
                jobs.push(process_job(&w.event_id, w.call_session_id.clone(), w.trace_parent.clone()));
                Accepted::Stored
            } else {
                Accepted::Duplicate
            }
        })
        .collect();
    (outcomes, jobs)
}

/// The processing job of a stored webhook. Its unique key makes a second push of the same
/// event's first attempt a no-op.
pub fn process_job(event_id: &str, call_session_id: Option<String>, trace_parent: Option<String>) -> NewJob {
    NewJob::once(
        Envelope::new(Job::ProcessWebhookV1 { event_id: event_id.to_owned() }, format!("webhook:{event_id}"))
            .with_call_session(call_session_id)
            .with_trace_parent(trace_parent),
    )
}

/// Re-enqueues the processing of stored webhooks (operator replay). Each replay is a new piece
/// of work (its own work id), so it runs even if the event was processed before; the handlers'
/// idempotency keeps it from doubling side effects. Returns how many events were enqueued.
pub async fn replay(
    store: &dyn crate::Store,
    selector: &crate::ReplaySelector,
) -> Result<usize, crate::StoreError> {
    let targets = store.select_webhooks(selector).await?;
    let run = ulid::Ulid::generate();
    let jobs: Vec<NewJob> = targets
        .into_iter()
        .map(|t| {
            NewJob::once(
                Envelope::new(
                    Job::ProcessWebhookV1 { event_id: t.event_id.clone() },
                    format!("replay:{run}:{}", t.event_id),
                )
                .with_call_session(t.call_session_id),
            )
        })
        .collect();
    for chunk in jobs.chunks(500) {
        store.enqueue(chunk).await?;
    }
    Ok(jobs.len())
}
