//! The call engine's side effects around the pure state machine (`fleet_domain::call`).
//!
//! Every decision about a call is one atomic transition in the store: load the call, `step` it
//! with one input, and commit the next state **and** the jobs of its effects together with a
//! compare-and-set on the call's version ([`apply`]). Webhook jobs of one call run concurrently
//! and in any order; when two decide at once, one commit wins and the other reloads and steps
//! again from the winner's state — which is safe because `step` is pure and monotonic (the
//! loser's input either still matters or finds nothing to do). Nothing here holds a lock or a
//! transaction across a call to Telnyx: commands run later, as jobs.
//!
//! Within a process the inputs of one call take turns ([`CallSerializer`]), so they rarely
//! conflict at all; the compare-and-set is what makes that safe across processes.
//!
//! - [`webhook`]: a Telnyx event → a new call (routing) or an input of an existing one, after
//!   authenticating our `client_state` (a forged or foreign one changes nothing).
//! - [`commands`]: `call_command.v1` → the Telnyx command, with a `command_id` derived from the
//!   effect's key; its answer (a dialed leg's id, a status) comes back as an input.
//! - [`timers`]: `call_timer.v1` → the timer's input (ring timeout, redial, reconcile).
//! - [`outbox`]: the effects of a decision as jobs (pure).
//! - `outbound`: a call a device placed (credential connection): blocked check, caller id forced
//!   to one of the org's numbers, then a transfer to the destination.
//! - [`direct`]: a browser's own WebRTC call to the PSTN, followed and logged; its recording
//!   started when the browser asks (`record_direct_call.v1`).

pub mod commands;
pub mod direct;
mod outbound;
pub mod outbox;
mod routing;
mod serial;
pub mod timers;
pub mod webhook;

use fleet_domain::call::{Call, CallInput, step};

pub use serial::CallSerializer;

use crate::{JobError, Runtime};

/// Most reloads when concurrent transitions keep winning (each loss means another worker made
/// progress on the same call; a handful is already unusual).
const MAX_CONFLICTS: usize = 32;

/// Feeds `input` to the call `call_session_id` and commits the result with its jobs. A call
/// that does not exist (never routed here, or not ours) is left alone. Returns the state after
/// the input, if the call exists.
pub async fn apply(
    runtime: &Runtime,
    call_session_id: &str,
    input: &CallInput,
) -> Result<Option<Call>, JobError> {
    let _turn = runtime.call_turns.turn(call_session_id).await;
    for _ in 0..MAX_CONFLICTS {
        let Some(call) = runtime.store.call(call_session_id).await? else {
            tracing::info!(?input, "No such call; input ignored.");
            return Ok(None);
        };
        let now = runtime.store.now();
        let decision = step(&call, input, now);
        let Some(next) = decision.next else {
            tracing::debug!(?input, "Input changed nothing (duplicate or stale).");
            return Ok(Some(call));
        };
        let jobs = outbox::jobs_for(&next, &decision.effects, now);
        if runtime.store.transition_call(call.version, &next, &jobs).await? {
            metrics::counter!("callfleet_call_transitions_total", "state" => next.state.as_str())
                .increment(1);
            tracing::info!(
                state = next.state.as_str(),
                version = next.version,
                effects = decision.effects.len(),
                "Call transition committed."
            );
            return Ok(Some(next));
        }
        metrics::counter!("callfleet_call_transition_conflicts_total").increment(1);
    }
    Err(JobError::retryable(format!(
        "{MAX_CONFLICTS} concurrent transitions of call {call_session_id} won in a row"
    )))
}
