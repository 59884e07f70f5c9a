//! Telnyx Call Control (Voice API v2): the commands that drive live calls.
//!
//! Design: [`CallControl`] sends one typed body per command (`requests.rs`, names as in the
//! Telnyx OpenAPI), each with a caller-supplied deterministic [`CommandId`] so a retried job's
//! command is ignored by Telnyx. Each request passes this API's circuit breaker, then the `calls`
//! rate budget (a bounded wait: a live call must not queue behind housekeeping or behind itself
//! for long), then HTTP with connect + total timeouts. A 200 only means "accepted"; effects arrive
//! as webhooks.
//!
//! Failure behaviour: every failure is a [`CallControlError`] that keeps the HTTP status, all
//! Telnyx error objects (codes as strings), the retry hint and the transport error as `source`.
//! [`CallControlError::outcome`] turns it into what the job does ([`Outcome`]: `Done`,
//! `NotYetAnswered`, `AlreadyBridged`, `Wait`, `Gone`, `Permanent`), per command: `90018` on a
//! hangup means the goal is reached, on a bridge that the call is gone. The table and the codes
//! the reference does not document are in `outcome.rs`.
//!
//! Metrics: `callfleet_telnyx_request_duration_seconds{api,command,result}`,
//! `callfleet_telnyx_errors_total{api,command,code,outcome}` (codes outside a fixed list are
//! `other`), `callfleet_telnyx_limiter_wait_seconds{budget}`,
//! `callfleet_telnyx_limiter_refused_total{budget}`, `callfleet_telnyx_immediate_retries_total{command}`
//! and `callfleet_telnyx_breaker_state{api}`.

#[macro_use]
mod macros;
mod client;
mod command_id;
mod error;
mod media;
mod outcome;
mod requests;
mod responses;

pub use client::CallControl;
pub use command_id::{CommandId, InvalidCommandId};
pub use error::{ApiErrorObject, CallControlError, ErrorSource, Failure};
pub use media::{
    Gather, PlaybackStart, PlaybackStop, RecordChannels, RecordFormat, RecordStart, RecordStop, Speak,
};
pub use outcome::Outcome;
pub use requests::{
    Action, Answer, Bridge, CommandKind, CustomHeader, Dial, DialTo, Hangup, Reject, RejectCause, Transfer,
};
pub use responses::{CallStatus, CommandAck, Dialed, DialedCall};
