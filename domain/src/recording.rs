//! Recordings: what a `call.recording.saved` says, where its copy is kept, and which URL a copy
//! job may still use.
//!
//! Design. A saved recording is copied once into the fleet's object store under a key that is a
//! pure function of the call's org, session and recording id ([`SavedRecording::object_key`]), so
//! a copy job that runs twice (at-least-once delivery, a crash between upload and the metadata
//! commit, a duplicated webhook) writes the same object again instead of a second one.
//!
//! Failure behaviour. Telnyx's recording URLs are pre-signed S3 links valid for 600 s from the
//! event (`X-Amz-Expires=600`). A copy job that starts with less than [`URL_MARGIN`] of that left
//! (a backed-up queue, a retry after backoff) does not try the event's URL at all: it asks the
//! recordings API for a fresh one ([`UrlChoice`]). A download refused as expired anyway (clock
//! skew) is retried once with a fresh URL by the worker.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{CallEvent, EventKind};

/// How long Telnyx's pre-signed recording URLs work after the event.
pub const URL_TTL: Duration = Duration::seconds(600);
/// A URL with less than this left is not used (the download itself takes time).
pub const URL_MARGIN: Duration = Duration::seconds(60);

/// The audio container Telnyx recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AudioFormat {
    Mp3,
    Wav,
}

impl AudioFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mp3 => "mp3",
            Self::Wav => "wav",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "mp3" => Some(Self::Mp3),
            "wav" => Some(Self::Wav),
            _ => None,
        }
    }

    /// The MIME type of a stored copy.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mp3 => "audio/mpeg",
            Self::Wav => "audio/wav",
        }
    }
}

/// Mono, or the first leg on channel A and the rest on channel B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Channels {
    Single,
    Dual,
}

impl Channels {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Dual => "dual",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "single" => Some(Self::Single),
            "dual" => Some(Self::Dual),
            _ => None,
        }
    }
}

/// The facts of one `call.recording.saved`, as the copy job carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRecording {
    pub recording_id: String,
    pub call_session_id: String,
    pub call_control_id: String,
    pub format: AudioFormat,
    pub channels: Channels,
    /// The event's pre-signed URL of `format` (absent when Telnyx sent none).
    pub url: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// When Telnyx announced it (the event's `occurred_at`): the URL's clock starts here.
    pub saved_at: DateTime<Utc>,
}

/// Why an event is not a usable `call.recording.saved`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordingEventError {
    #[error("not a call.recording.saved event")]
    NotSaved,
    #[error("call.recording.saved without {0}")]
    Missing(&'static str),
    #[error("call.recording.saved with an unknown {field} {value:?}")]
    Unknown { field: &'static str, value: String },
}

impl SavedRecording {
    /// Reads a `call.recording.saved`. `received_at` stands in for a missing `occurred_at`.
    pub fn from_event(event: &CallEvent, received_at: DateTime<Utc>) -> Result<Self, RecordingEventError> {
        if event.kind != EventKind::CallRecordingSaved {
            return Err(RecordingEventError::NotSaved);
        }
        let p = &event.payload;
        let need = |v: &Option<String>, name| v.clone().ok_or(RecordingEventError::Missing(name));
        let recording_id = need(&p.recording_id, "recording_id")?;
        let call_session_id = need(&p.call_session_id, "call_session_id")?;
        let call_control_id = need(&p.call_control_id, "call_control_id")?;
        let urls = p.recording_urls.clone().unwrap_or_default();
        // Telnyx names the format; without it, the one URL it sent says which.
        let raw_format = p
            .format
            .clone()
            .or_else(|| urls.wav.as_ref().map(|_| "wav".to_owned()))
            .unwrap_or_else(|| "mp3".to_owned());
        let format = AudioFormat::parse(&raw_format)
            .ok_or(RecordingEventError::Unknown { field: "format", value: raw_format })?;
        let raw_channels = p.channels.clone().unwrap_or_else(|| "single".to_owned());
        let channels = Channels::parse(&raw_channels)
            .ok_or(RecordingEventError::Unknown { field: "channels", value: raw_channels })?;
        let url = match format {
            AudioFormat::Mp3 => urls.mp3,
            AudioFormat::Wav => urls.wav,
        };
        Ok(Self {
            recording_id,
            call_session_id,
            call_control_id,
            format,
            channels,
            url,
            started_at: p.recording_started_at,
            ended_at: p.recording_ended_at,
            saved_at: event.occurred_at.unwrap_or(received_at),
        })
    }

    /// Where the copy is kept: `recordings/<org>/<session>/<recording>.<ext>`. Each part is
    /// reduced to URL-safe characters, so an id cannot climb out of its folder.
    pub fn object_key(&self, org_id: &str) -> String {
        format!(
            "recordings/{}/{}/{}.{}",
            path_part(org_id),
            path_part(&self.call_session_id),
            path_part(&self.recording_id),
            self.format.as_str()
        )
    }

    /// Length of the recording in milliseconds, when Telnyx said when it started and ended.
    pub fn duration_ms(&self) -> Option<i64> {
        let (start, end) = (self.started_at?, self.ended_at?);
        Some((end - start).num_milliseconds().max(0))
    }

    /// Which URL a copy starting at `now` should download.
    pub fn url_choice(&self, now: DateTime<Utc>) -> UrlChoice {
        match &self.url {
            Some(url) if now < self.saved_at + URL_TTL - URL_MARGIN => UrlChoice::FromEvent(url.clone()),
            _ => UrlChoice::Refresh,
        }
    }
}

/// The URL decision of a copy job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlChoice {
    /// The event's URL still has time left.
    FromEvent(String),
    /// Too late (or none was sent): ask `GET /recordings/{id}` for a fresh one.
    Refresh,
}

fn path_part(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    match cleaned.trim_matches('.') {
        "" => "_".to_owned(),
        part => part.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(body: &str) -> Result<SavedRecording, RecordingEventError> {
        let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        SavedRecording::from_event(&CallEvent::decode(body.as_bytes()).unwrap(), at)
    }

    const SAVED: &str = r#"{"data":{"id":"e1","event_type":"call.recording.saved","occurred_at":"2026-01-01T00:00:05Z",
        "payload":{"call_control_id":"v3:p","call_session_id":"s/1","recording_id":"r1","format":"mp3","channels":"dual",
        "recording_started_at":"2026-01-01T00:00:01.250Z","recording_ended_at":"2026-01-01T00:00:04Z",
        "recording_urls":{"mp3":"https://s3.example/r1.mp3?X-Amz-Expires=600"}}}}"#;

    #[test]
    fn reads_the_saved_event() {
        let r = saved(SAVED).unwrap();
        assert_eq!((r.format, r.channels), (AudioFormat::Mp3, Channels::Dual));
        assert_eq!(r.duration_ms(), Some(2_750));
        assert_eq!(r.url.as_deref(), Some("https://s3.example/r1.mp3?X-Amz-Expires=600"));
        assert_eq!(r.saved_at.to_rfc3339(), "2026-01-01T00:00:05+00:00");
        assert_eq!(r.object_key("org 1/.."), "recordings/org_1_/s_1/r1.mp3");
    }

    #[test]
    fn refuses_what_cannot_be_copied() {
        assert_eq!(
            saved(&SAVED.replace("\"recording_id\":\"r1\",", "")),
            Err(RecordingEventError::Missing("recording_id"))
        );
        assert!(matches!(
            saved(&SAVED.replace("\"mp3\",\"channels\"", "\"ogg\",\"channels\"")),
            Err(RecordingEventError::Unknown { field: "format", .. })
        ));
        assert_eq!(
            saved(&SAVED.replace("recording.saved", "recording.error")),
            Err(RecordingEventError::NotSaved)
        );
    }

    #[test]
    fn a_late_copy_asks_for_a_fresh_url() {
        let r = saved(SAVED).unwrap();
        let fresh = r.saved_at + Duration::seconds(30);
        assert!(matches!(r.url_choice(fresh), UrlChoice::FromEvent(_)));
        assert_eq!(r.url_choice(r.saved_at + URL_TTL - URL_MARGIN), UrlChoice::Refresh);
        assert_eq!(SavedRecording { url: None, ..r }.url_choice(fresh), UrlChoice::Refresh);
    }

    #[test]
    fn object_keys_stay_in_their_folder() {
        for hostile in ["..", ".", "", "a/../../b", "%2e%2e"] {
            let part = path_part(hostile);
            assert!(
                !part.is_empty() && !part.contains('/') && part != ".." && part != ".",
                "{hostile:?} → {part:?}"
            );
        }
    }
}
