//! The edges of the recording pipeline: downloading a recording from its pre-signed URL
//! ([`Downloader`]), keeping the copy in an object store ([`Archive`]: a local directory on the
//! embedded default, any S3-compatible store in fleet mode) and transcribing it through an
//! OpenAI-compatible `/audio/transcriptions` API ([`Transcriber`]).
//!
//! Design. Each adapter is one HTTP (or filesystem) call with its own timeouts, and answers with
//! one error type, [`MediaError`], whose variants say what the job may do: `Expired` (the
//! pre-signed URL is past its ten minutes: ask Telnyx for a fresh one), `Retryable` (timeouts,
//! 408/429/5xx, transport: back off, honouring `retry_after`), `Permanent` (the request itself is
//! wrong), `Storage` (the object store failed; its cause is kept as the source). Nothing here
//! decides about calls or rows: the `recordings` pool's handlers do, with the domain's rules
//! (`fleet_domain::recording`). No URL is ever logged or put in an error (a pre-signed URL is a
//! bearer credential for the file), and no provider's answer body either — only its status.

mod archive;
mod fetch;
mod transcribe;

pub use archive::{Archive, ArchiveConfigError};
pub use fetch::{Downloaded, Downloader, sha256_hex};
pub use transcribe::{Transcriber, TranscriberSettings};

use std::time::Duration;

/// What went wrong at an edge of the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The pre-signed URL has expired (S3 `AccessDenied` / "Request has expired").
    #[error("the recording URL has expired")]
    Expired,
    /// Worth retrying later.
    #[error("{message}")]
    Retryable { message: String, retry_after: Option<Duration> },
    /// Retrying will not help.
    #[error("{message}")]
    Permanent { message: String },
    /// The object store failed.
    #[error("object store: {what}")]
    Storage {
        what: &'static str,
        #[source]
        source: object_store::Error,
    },
}

impl MediaError {
    fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable { message: message.into(), retry_after: None }
    }

    /// An HTTP status that is neither success nor handled by the caller.
    fn from_status(what: &str, status: reqwest::StatusCode, retry_after: Option<Duration>) -> Self {
        let message = format!("{what} answered {status}");
        match status.as_u16() {
            408 | 409 | 425 | 429 | 500..=599 => Self::Retryable { message, retry_after },
            _ => Self::Permanent { message },
        }
    }

    /// A transport failure, described without its URL.
    fn transport(what: &str, e: &reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "failed in transit"
        };
        Self::retryable(format!("{what} {kind}"))
    }
}

/// `Retry-After` in seconds, when the server sent one.
fn retry_after(res: &reqwest::Response) -> Option<Duration> {
    let raw = res.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    raw.trim().parse::<u64>().ok().map(|s| Duration::from_secs(s.min(3_600)))
}
