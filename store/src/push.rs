//! Push fan-out: which devices of a user a message goes to, as one push job per device.
//!
//! Org scoping is enforced twice: here only the user's devices registered in the message's
//! organization are selected, and the push worker checks the device's organization again at send
//! time (a device that signed into another org meanwhile gets nothing). Each job is keyed by
//! (message kind, call session, device), so asking twice enqueues once; the delivery record under
//! [`push_key`] keeps a re-run job from ringing the phone twice.

use fleet_domain::push::{PushMessage, route};
use fleet_jobs::push_envelope;
pub use fleet_jobs::push_key;

use crate::{NewJob, Store, StoreError};

/// The first-attempt job that pushes `message` to `device_id`.
pub fn push_job(device_id: &str, message: &PushMessage, requested_at_ms: i64) -> NewJob {
    NewJob::once(push_envelope(device_id, message.clone(), requested_at_ms))
}

/// Enqueues `message` for every device of `user_id` in the message's organization that a push can
/// reach (Android with an FCM token, iOS with a VoIP token), except the devices in `except` (the
/// one that answered). Returns how many jobs were newly enqueued.
pub async fn enqueue_for_user(
    store: &dyn Store,
    user_id: &str,
    message: &PushMessage,
    except: &[&str],
    requested_at_ms: i64,
) -> Result<usize, StoreError> {
    let devices = store.user_devices(user_id, message.org_id()).await?;
    let jobs: Vec<NewJob> = devices
        .iter()
        .filter(|d| !except.contains(&d.id.as_str()))
        .filter(|d| route(&d.platform, d.push_token.as_deref(), d.voip_token.as_deref()).is_some())
        .map(|d| push_job(&d.id, message, requested_at_ms))
        .collect();
    if jobs.is_empty() {
        return Ok(0);
    }
    Ok(store.enqueue(&jobs).await?.into_iter().filter(|inserted| *inserted).count())
}
