//! The push pool: one message to one device, at most once per (message kind, call, device).
//!
//! Checks before sending, each ending the job without a push: the message's deadline (an
//! `incoming_call` whose ring is over is dropped, never delivered late), the device (gone →
//! nothing to do), its call (only a device rung for the call gets its pushes, and
//! `incoming_call` only while the call still rings; a push without a call needs the device in the
//! message's organization), a token for its platform, and the delivery record (a re-run after a
//! delivery does not ring the phone again). A delivered `incoming_call` tells its call (the
//! device may then be dismissed by a `call_ended` push).
//!
//! Then the provider's answer decides: delivered → recorded; dead token (FCM `UNREGISTERED`,
//! APNs 410 / `BadDeviceToken`) → removed from the device if it is still its token, no retry;
//! 429, 5xx, timeouts, an open breaker → retryable, honouring `Retry-After` (the executor
//! persists the backoff as a delayed job, or drops the push if the retry would miss the ring);
//! anything else → permanent, into the dead set.
//!
//! The delivery record commits with the input that tells the call (one transaction), so a
//! recorded delivery always reaches its call. Crash (or a failed write) between the provider's
//! 200 and that commit: the job runs again and the push is
//! sent again with the same collapse id (APNs `apns-collapse-id`, FCM `collapse_key`), which
//! the phone merges; the app also de-duplicates by call session id.
//!
//! Metrics: `callfleet_push_total{provider, kind, outcome, reason}` with outcome `sent`,
//! `pruned`, `retry`, `failed`, `expired` or `skipped`, and the histogram
//! `callfleet_push_delivery_seconds{provider, kind}` from request to provider acceptance.

use fleet_domain::call::CallInput;
use fleet_domain::push::{Provider, ProviderOutcome, PushMessage, metric_reason, route};
use fleet_domain::retry::Failure;
use fleet_jobs::{Envelope, Job};
use fleet_store::NewJob;
use fleet_store::push::push_key;

use crate::{JobError, Runtime};

fn count(provider: Option<Provider>, kind: &'static str, outcome: &'static str, reason: &str) {
    let provider = provider.map_or("none", Provider::as_str);
    metrics::counter!(
        "callfleet_push_total",
        "provider" => provider, "kind" => kind, "outcome" => outcome, "reason" => metric_reason(reason).to_owned()
    )
    .increment(1);
}

pub(crate) async fn send(
    runtime: &Runtime,
    device_id: &str,
    message: &PushMessage,
    requested_at_ms: i64,
) -> Result<(), JobError> {
    let kind = message.kind();
    let now = runtime.store.now();
    if !message.is_deliverable_at(now.timestamp()) {
        tracing::info!(device_id, kind, "The ring is over; push dropped, not delivered late.");
        count(None, kind, "expired", "deadline");
        return Ok(());
    }
    // The device, its call and whether this push already went out are independent reads: one
    // round of three queries instead of three in a row (the last of a call's pushes waits for them).
    let key = push_key(message, device_id);
    let store = &runtime.store;
    let (device, call, delivered) = tokio::try_join!(
        store.device_registration(device_id),
        store.call(message.call_session_id()),
        store.push_delivered(&key)
    )?;
    let Some(device) = device else {
        tracing::info!(device_id, kind, "Device is gone; nothing to push.");
        count(None, kind, "skipped", "device_gone");
        return Ok(());
    };
    // A call's pushes go only to the devices rung for it (a user's devices in any of the user's
    // organizations), and `incoming_call` only while it still rings; without a call row (a push
    // asked for directly) the device must be in the message's organization.
    let refused = match &call {
        Some(call) if call.rung(device_id).is_none() => Some("not_rung"),
        Some(call) if matches!(message, PushMessage::IncomingCall { .. }) && !call.is_ringing() => {
            Some("not_ringing")
        }
        Some(_) => None,
        None if device.org_id != message.org_id() => Some("other_org"),
        None => None,
    };
    if let Some(reason) = refused {
        tracing::info!(device_id, kind, reason, "Push not sent.");
        count(None, kind, "skipped", reason);
        return Ok(());
    }
    let Some((provider, token)) =
        route(&device.platform, device.push_token.as_deref(), device.voip_token.as_deref())
    else {
        tracing::info!(device_id, kind, platform = %device.platform, "Device has no push token; nothing to send.");
        count(None, kind, "skipped", "no_token");
        return Ok(());
    };
    if delivered {
        tracing::info!(device_id, kind, "Push already delivered; not sending it twice.");
        count(Some(provider), kind, "skipped", "already_delivered");
        return Ok(());
    }
    let outcome = runtime.push.send(provider, &token, message, now.timestamp()).await;
    let reason = outcome.reason().to_owned();
    match outcome {
        ProviderOutcome::Delivered => {
            let latency_ms = (runtime.store.now().timestamp_millis() - requested_at_ms).max(0);
            metrics::histogram!("callfleet_push_delivery_seconds", "provider" => provider.as_str(), "kind" => kind)
                .record(latency_ms as f64 / 1000.0);
            count(Some(provider), kind, "sent", &reason);
            tracing::info!(device_id, kind, provider = provider.as_str(), latency_ms, "Push delivered.");
            // The call may now send this device `call_ended` (iOS shows a call UI for every VoIP
            // push, so only a device that got one is dismissed by push): that input commits with
            // the delivery record, so a recorded delivery always reaches its call.
            let feedback: Vec<NewJob> = match (&call, message) {
                (Some(call), PushMessage::IncomingCall { .. }) => {
                    let input = CallInput::IncomingPushDelivered { device_id: device_id.to_owned() };
                    let job = Job::CallInputV1 { call_session_id: call.id.clone(), input };
                    let envelope =
                        Envelope::new(job, format!("pushed:{key}")).with_call_session(Some(call.id.clone()));
                    vec![NewJob::once(envelope)]
                }
                _ => Vec::new(),
            };
            // A failure to record it is retried like the crash in the header: the push may go
            // out again (same collapse id, merged by the phone), and its call then learns of it.
            if let Err(e) = runtime.store.record_push_delivery(&key, device_id, provider, &feedback).await {
                tracing::warn!(device_id, error = %e, "Push delivered but not recorded; a re-run may repeat it.");
                return Err(JobError::retryable(format!("push delivered, record failed: {e}")));
            }
            Ok(())
        }
        ProviderOutcome::PruneToken { .. } => {
            let pruned = runtime.store.prune_push_token(device_id, provider, &token).await?;
            count(Some(provider), kind, "pruned", &reason);
            tracing::info!(
                device_id,
                kind,
                provider = provider.as_str(),
                reason,
                pruned,
                "Push token is dead; removed from the device."
            );
            Ok(())
        }
        ProviderOutcome::Retry { after, .. } => {
            count(Some(provider), kind, "retry", &reason);
            Err(JobError {
                failure: Failure::Retryable { retry_after: after },
                message: format!("{} answered {reason}", provider.as_str()),
            })
        }
        ProviderOutcome::Permanent { .. } | ProviderOutcome::RefreshAuth { .. } => {
            count(Some(provider), kind, "failed", &reason);
            Err(JobError::permanent(format!("{} refused the push: {reason}", provider.as_str())))
        }
    }
}
