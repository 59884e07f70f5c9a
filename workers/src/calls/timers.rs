//! `call_timer.v1`: a timer a call scheduled for itself, fired as an input of the call.
//!
//! Timers are delayed jobs (millisecond due times, promoted by the worker process's promoter), so
//! a ring timeout or a redial survives any crash and never holds a worker while it waits. A
//! redial looks the device up again at fire time: a device whose push woke it and whose SIP
//! registration has arrived meanwhile is dialable now; one that is still not registered waits
//! for the next round, until the ring is over. A timer of a call that moved on finds nothing to
//! do (the state machine ignores stale rounds).

use fleet_domain::call::{CallInput, Timer};

use super::{apply, routing};
use crate::{JobError, Runtime};

pub async fn fire(runtime: &Runtime, session: &str, timer: &Timer) -> Result<(), JobError> {
    let input = match timer {
        Timer::RingTimeout => CallInput::RingTimeout,
        Timer::Reconcile { round } => CallInput::ReconcileDue { round: *round },
        Timer::Redial { device_id, round } => {
            let Some(call) = runtime.store.call(session).await? else { return Ok(()) };
            if !call.is_ringing() {
                return Ok(());
            }
            let targets = match &call.user_id {
                Some(user) => runtime.store.ring_targets(user, runtime.store.now()).await?,
                None => Vec::new(),
            };
            let sip_target = targets
                .iter()
                .find(|t| &t.device.id == device_id)
                .and_then(|t| t.sip_username.as_deref())
                .map(routing::sip_target);
            CallInput::RedialDue { device_id: device_id.clone(), round: *round, sip_target }
        }
    };
    apply(runtime, session, &input).await?;
    Ok(())
}
