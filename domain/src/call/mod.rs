//! The call state machine: a pure `step(call, input, now) → Decision`.
//!
//! Design. A [`Call`] holds everything a live call needs; [`step`] applies one [`CallInput`] to
//! a copy and returns the next state (or none, when nothing changed) with the [`Effect`]s the
//! worker must perform. The worker stores the next state with a compare-and-set on the old
//! `version` **and** enqueues the effects in the same transaction (an outbox); if the CAS loses
//! to a concurrent step, it reloads and steps again, which is safe because `step` is a pure
//! function of the stored state.
//!
//! Failure behaviour. Inputs can be duplicated, replayed, reordered, or lost:
//! - every transition is monotonic (states only move forward, first answer wins, reasons are set
//!   once), so a stale input finds nothing to do;
//! - every effect has a deterministic key and the call remembers the keys it produced, so an
//!   effect happens at most once per call, whatever the order of inputs;
//! - cleanup is a sweep run after every input ("once the ring is over, every leg but the winner
//!   is hung up; once the call is over, every leg is"), so a leg whose dial response or webhook
//!   arrives after the decision is still hung up, and a worker that died after committing the
//!   decision left the hangups in the outbox for another to run;
//! - a webhook Telnyx never sends is covered by timers (ring timeout; reconcile rounds that ask
//!   `GET /calls/{id}` while a call is answered or in voicemail); nothing expires on its own.

mod command;
mod input;
mod log;
mod model;
mod step;
mod sweep;

#[cfg(test)]
mod direct_tests;
#[cfg(test)]
mod outbound_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

pub use command::{AppEvent, Command, Effect, HEADER_CALL_ID, HEADER_ORG_ID, HangupTarget, Push};
pub use input::{CallInput, Route, Timer, is_decline};
pub use log::{BillingKind, CallLog, CallStatus, LedgerEntry, settle};
pub use model::{
    Call, CallDirection, CallSetup, CallState, DEFAULT_GREETING, DEFAULT_VOICEMAIL_MAX_SECS, EndReason, Leg,
    LegId, LegState, Platform, RingDevice, Rung, VoicemailSettings,
};
pub use step::{OUTBOUND_RECONCILE_AFTER, OUTBOUND_RING_SECS};

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The state to store (version already bumped), or `None` when the input changed nothing.
    pub next: Option<Call>,
    /// What to perform, in dependency order; empty when `next` is `None`.
    pub effects: Vec<Effect>,
}

/// Applies `input` to `call` at `now`. Pure and total: every input is accepted in every state.
pub fn step(call: &Call, input: &CallInput, now: DateTime<Utc>) -> Decision {
    let mut tx = step::Tx::new(call.clone(), now);
    tx.apply(input);
    tx.sweep();
    let (mut next, effects) = tx.finish();
    if next == *call {
        return Decision { next: None, effects: Vec::new() };
    }
    next.version = call.version + 1;
    Decision { next: Some(next), effects }
}
