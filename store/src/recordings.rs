//! Rows of the recording pipeline: a recording's stored copy with its transcript, and a
//! recording Telnyx reported as failed.
//!
//! A row exists only once its copy is in the object store (it is written after the upload, in
//! the transaction that enqueues the transcription), so "a row" means "a copy an operator and
//! the app can fetch". The transcript moves `pending` → `done` | `failed` once; a late repeat of
//! the transcription job finds it settled and changes nothing.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use crate::sql::{OptTs, Ts};

/// Where a recording's transcript is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TranscriptStatus {
    Pending,
    Done,
    Failed,
}

impl TranscriptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

/// A stored transcript or request status this build does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(String);

impl TryFrom<String> for TranscriptStatus {
    type Error = UnknownStatus;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        match raw.as_str() {
            "pending" => Ok(Self::Pending),
            "done" => Ok(Self::Done),
            "failed" => Ok(Self::Failed),
            _ => Err(UnknownStatus(raw)),
        }
    }
}

/// A recording copied into the object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct Recording {
    /// Telnyx's `recording_id`.
    pub id: String,
    pub call_session_id: String,
    pub org_id: String,
    /// `mp3` or `wav`.
    pub format: String,
    /// `single` or `dual`.
    pub channels: String,
    /// The copy's key in the object store.
    pub object_key: String,
    /// Lowercase hex SHA-256 of the stored bytes.
    pub sha256: String,
    pub size_bytes: i64,
    pub duration_ms: Option<i64>,
    #[sqlx(try_from = "OptTs")]
    pub started_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "OptTs")]
    pub ended_at: Option<DateTime<Utc>>,
    /// When Telnyx announced it (`call.recording.saved`).
    #[sqlx(try_from = "Ts")]
    pub saved_at: DateTime<Utc>,
    /// When the copy was recorded here.
    #[sqlx(try_from = "Ts")]
    pub stored_at: DateTime<Utc>,
    #[sqlx(try_from = "String")]
    pub transcript_status: TranscriptStatus,
    pub transcript: Option<String>,
    /// Why the transcription failed for good (our sentence and the provider's status, never
    /// its answer body).
    pub transcript_error: Option<String>,
    #[sqlx(try_from = "OptTs")]
    pub transcribed_at: Option<DateTime<Utc>>,
}

/// How a transcription ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transcript {
    Done(String),
    Failed(String),
}

/// A `call.recording.error`: Telnyx could not record (part of) a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct RecordingFailure {
    pub event_id: String,
    pub call_session_id: String,
    pub reason: String,
    #[sqlx(try_from = "Ts")]
    pub failed_at: DateTime<Utc>,
}

/// Where a browser's request to record its direct call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RequestStatus {
    /// Waiting for the call to be answered (Telnyx refuses `record_start` until then).
    Pending,
    /// Telnyx accepted `record_start`; the recording arrives as `call.recording.saved`.
    Started,
    /// The call ended before it could be recorded.
    Ended,
    /// Telnyx refused the recording for good (`detail` says why).
    Failed,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Started => "started",
            Self::Ended => "ended",
            Self::Failed => "failed",
        }
    }
}

impl TryFrom<String> for RequestStatus {
    type Error = UnknownStatus;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        [Self::Pending, Self::Started, Self::Ended, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or(UnknownStatus(raw))
    }
}

/// A browser asked to record its direct WebRTC call (`POST /v1/calls/{id}/recording`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct RecordingRequest {
    pub call_control_id: String,
    /// The org the recording is kept in: of the caller's credential or number.
    pub org_id: String,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    #[sqlx(rename = "from_party")]
    pub from: String,
    #[sqlx(rename = "to_party")]
    pub to: String,
    /// `mp3` or `wav`.
    pub format: String,
    /// `dual` or `single`.
    pub channels: String,
    #[sqlx(try_from = "String")]
    pub status: RequestStatus,
    pub detail: Option<String>,
    #[sqlx(try_from = "Ts")]
    pub requested_at: DateTime<Utc>,
    #[sqlx(try_from = "OptTs")]
    pub settled_at: Option<DateTime<Utc>>,
}
