//! Request bodies of the media commands: speak, playback start/stop, record start/stop, gather
//! (`SpeakRequest`, `StartRecordingRequest`, `StopRecordingRequest` in the subset;
//! `PlayAudioUrlRequest`, `PlaybackStopRequest`, `GatherRequest` in the full `spec3.yml`). Same
//! rules as `requests.rs`: spec field names, unset options omitted, a mandatory `command_id`.

use serde::Serialize;

use super::CommandId;
use super::requests::{Action, CommandKind};

simple_action!(
    /// `playback_stop` (`PlaybackStopRequest`): `stop` is `all` (default) or `current`.
    PlaybackStop, PlaybackStop {
        #[serde(skip_serializing_if = "Option::is_none")]
        stop: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        overlay: Option<bool>,
    }
);

simple_action!(
    /// `record_stop` (`StopRecordingRequest`); without `recording_id`, the call's recording.
    RecordStop, RecordStop {
        #[serde(skip_serializing_if = "Option::is_none")]
        recording_id: Option<String>,
    }
);

simple_action!(
    /// `gather` (`GatherRequest`): collect DTMF; ends with `call.gather.ended`.
    Gather, Gather {
        #[serde(skip_serializing_if = "Option::is_none")]
        minimum_digits: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        maximum_digits: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout_millis: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        inter_digit_timeout_millis: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        initial_timeout_millis: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        terminating_digit: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        valid_digits: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        gather_id: Option<String>,
    }
);

/// `speak` (`SpeakRequest`): `payload` ≤ 3,000 chars; `voice` e.g. `female` (basic) or
/// `AWS.Polly.Joanna-Neural`.
#[derive(Debug, Clone, Serialize)]
pub struct Speak {
    pub payload: String,
    pub voice: String,
    pub command_id: CommandId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// `text` (default) or `ssml`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_type: Option<String>,
    /// `basic` or `premium` (default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `self` (default), `opposite` or `both`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_legs: Option<String>,
}

impl Speak {
    pub fn new(payload: impl Into<String>, voice: impl Into<String>, id: CommandId) -> Self {
        Self {
            payload: payload.into(),
            voice: voice.into(),
            command_id: id,
            client_state: None,
            payload_type: None,
            service_level: None,
            language: None,
            target_legs: None,
        }
    }
}
action!(Speak, Speak);

/// `playback_start` (`PlayAudioUrlRequest`): one of `audio_url`, `media_name`.
#[derive(Debug, Clone, Serialize)]
pub struct PlaybackStart {
    pub command_id: CommandId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// A count, or `"infinity"` (`Loopcount`: string or integer); as JSON.
    #[serde(rename = "loop", skip_serializing_if = "Option::is_none")]
    pub loop_count: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_legs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_audio: Option<bool>,
}

impl PlaybackStart {
    pub fn url(audio_url: impl Into<String>, id: CommandId) -> Self {
        Self {
            command_id: id,
            audio_url: Some(audio_url.into()),
            media_name: None,
            client_state: None,
            loop_count: None,
            overlay: None,
            target_legs: None,
            stop: None,
            cache_audio: None,
        }
    }
}
action!(PlaybackStart, PlaybackStart);

/// `record_start`'s `format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    Wav,
    Mp3,
}

/// `record_start`'s `channels`: `dual` = first leg on channel A, the rest on B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordChannels {
    Single,
    Dual,
}

/// `record_start` (`StartRecordingRequest`).
#[derive(Debug, Clone, Serialize)]
pub struct RecordStart {
    pub format: RecordFormat,
    pub channels: RecordChannels,
    pub command_id: CommandId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// Seconds, 0–14400; 0 (Telnyx default) = no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub play_beep: Option<bool>,
    /// Silence timeout in seconds (0 = none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
    /// `both` (default), `inbound` or `outbound`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_track: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_file_name: Option<String>,
}

impl RecordStart {
    pub fn new(format: RecordFormat, channels: RecordChannels, id: CommandId) -> Self {
        Self {
            format,
            channels,
            command_id: id,
            client_state: None,
            max_length: None,
            play_beep: None,
            timeout_secs: None,
            recording_track: None,
            custom_file_name: None,
        }
    }
}
action!(RecordStart, RecordStart);
