//! Errors of the simulator's library surface (starting, scripting, clock control).
//!
//! Errors returned to API clients are not here: they are Telnyx-shaped HTTP responses
//! (`telnyx_errors::ApiError`), because reproducing them is the simulator's job, not a failure of it.

use thiserror::Error;

/// A failure of the simulator itself or a misuse of its handle.
#[derive(Debug, Error)]
pub enum SimError {
    /// The configuration cannot work (e.g. the webhook URL does not parse).
    #[error("invalid simulator configuration: {0}")]
    InvalidConfig(String),
    /// Binding, reading the local address, or serving failed.
    #[error("simulator I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP client used for webhook delivery could not be built.
    #[error("cannot build the webhook HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    /// `advance` was called on a simulator running on the real clock.
    #[error("the simulator runs on the real clock; advance() needs ClockMode::Manual")]
    NotManualClock,
    /// A scenario call referred to a device id that was never added.
    #[error("unknown device {0:?}")]
    UnknownDevice(String),
    /// A device id was added twice.
    #[error("device {0:?} already exists")]
    DuplicateDevice(String),
    /// A scenario call referred to a call_control_id the simulator does not know.
    #[error("unknown call_control_id {0:?}")]
    UnknownCall(String),
    /// A scripted PSTN call targets a number that was not added with `add_number`.
    #[error("number {0:?} is not one of the account's numbers")]
    UnknownNumber(String),
    /// The request to the scenario makes no sense in the call's current state.
    #[error("invalid scenario step: {0}")]
    InvalidStep(String),
}
