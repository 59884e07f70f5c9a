//! Request bodies of the Call Control commands, field names exactly as in the Telnyx OpenAPI
//! (`CallRequest`, `AnswerRequest`, `BridgeRequest`, `TransferCallRequest`, `HangupRequest`,
//! `RejectRequest`, `SpeakRequest`, `StartRecordingRequest`, `StopRecordingRequest` in the subset;
//! `PlayAudioUrlRequest`, `PlaybackStopRequest`, `GatherRequest` in the full `spec3.yml`).
//!
//! Only the fields callfleet needs are modelled; unset options are omitted from the JSON, so
//! Telnyx's defaults apply. Every body carries a mandatory [`CommandId`] (no `Default`, on
//! purpose: a command without a deterministic id is not harmless to retry). `client_state` is
//! sent as given: it must already be base64 (Telnyx answers 422 otherwise).

use serde::Serialize;

use super::CommandId;

/// Which command a request is: the metric label, the path segment and the classification key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Dial,
    Answer,
    Bridge,
    Transfer,
    Hangup,
    Reject,
    Speak,
    PlaybackStart,
    PlaybackStop,
    RecordStart,
    RecordStop,
    Gather,
    /// `GET /calls/{call_control_id}`.
    CallStatus,
}

impl CommandKind {
    /// The action's path segment (`dial` and `call_status` are not actions; used as labels only).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dial => "dial",
            Self::Answer => "answer",
            Self::Bridge => "bridge",
            Self::Transfer => "transfer",
            Self::Hangup => "hangup",
            Self::Reject => "reject",
            Self::Speak => "speak",
            Self::PlaybackStart => "playback_start",
            Self::PlaybackStop => "playback_stop",
            Self::RecordStart => "record_start",
            Self::RecordStop => "record_stop",
            Self::Gather => "gather",
            Self::CallStatus => "call_status",
        }
    }
}

impl std::fmt::Display for CommandKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A body sent to `POST /calls/{call_control_id}/actions/<KIND>`.
pub trait Action: Serialize {
    const KIND: CommandKind;
    fn command_id(&self) -> &CommandId;
}

/// One SIP header added to the INVITE/BYE (`CustomSipHeader`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomHeader {
    pub name: String,
    pub value: String,
}

impl CustomHeader {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self { name: name.into(), value: value.into() }
    }
}

/// Dial's `to`: one destination, or several rung at once (`oneOf` string / array of strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum DialTo {
    One(String),
    Many(Vec<String>),
}

/// `POST /calls` (`CallRequest`).
#[derive(Debug, Clone, Serialize)]
pub struct Dial {
    pub to: DialTo,
    /// +E.164 caller id.
    pub from: String,
    /// The Call Control App id.
    pub connection_id: String,
    pub command_id: CommandId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// 5–600, Telnyx default 30.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_limit_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prevent_double_bridge: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge_intent: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge_on_answer: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_headers: Vec<CustomHeader>,
}

impl Dial {
    pub fn new(to: DialTo, from: impl Into<String>, connection_id: impl Into<String>, id: CommandId) -> Self {
        Self {
            to,
            from: from.into(),
            connection_id: connection_id.into(),
            command_id: id,
            link_to: None,
            client_state: None,
            timeout_secs: None,
            time_limit_secs: None,
            prevent_double_bridge: None,
            bridge_intent: None,
            bridge_on_answer: None,
            from_display_name: None,
            webhook_url: None,
            custom_headers: Vec::new(),
        }
    }
}

/// Declares an action body whose only required field is `command_id`, with `new(id)`.
macro_rules! simple_action {
    ($(#[$m:meta])* $name:ident, $kind:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Serialize)]
        pub struct $name {
            pub command_id: CommandId,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub client_state: Option<String>,
            $($(#[$fm])* pub $field: $ty,)*
        }

        impl $name {
            pub fn new(id: CommandId) -> Self {
                Self { command_id: id, client_state: None, $($field: Default::default(),)* }
            }
        }

        impl Action for $name {
            const KIND: CommandKind = CommandKind::$kind;
            fn command_id(&self) -> &CommandId {
                &self.command_id
            }
        }
    };
}

/// Declares an action body with required fields besides `command_id`.
macro_rules! action {
    ($name:ident, $kind:ident) => {
        impl Action for $name {
            const KIND: CommandKind = CommandKind::$kind;
            fn command_id(&self) -> &CommandId {
                &self.command_id
            }
        }
    };
}

simple_action!(
    /// `answer` (`AnswerRequest`).
    Answer, Answer {
        #[serde(skip_serializing_if = "Option::is_none")]
        webhook_url: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        custom_headers: Vec<CustomHeader>,
    }
);

simple_action!(
    /// `hangup` (`HangupRequest`).
    Hangup, Hangup {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        custom_headers: Vec<CustomHeader>,
    }
);

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

/// `bridge` (`BridgeRequest`): `call_control_id` is the *other* leg.
#[derive(Debug, Clone, Serialize)]
pub struct Bridge {
    pub call_control_id: String,
    pub command_id: CommandId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prevent_double_bridge: Option<bool>,
    /// `"self"`: park this leg after unbridge instead of hanging it up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub park_after_unbridge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub play_ringtone: Option<bool>,
}

impl Bridge {
    pub fn new(other: impl Into<String>, id: CommandId) -> Self {
        Self {
            call_control_id: other.into(),
            command_id: id,
            client_state: None,
            prevent_double_bridge: None,
            park_after_unbridge: None,
            play_ringtone: None,
        }
    }
}
action!(Bridge, Bridge);

/// `transfer` (`TransferCallRequest`).
#[derive(Debug, Clone, Serialize)]
pub struct Transfer {
    pub to: String,
    pub command_id: CommandId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
    /// base64 state of the new leg.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_leg_client_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_media: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_headers: Vec<CustomHeader>,
}

impl Transfer {
    pub fn new(to: impl Into<String>, id: CommandId) -> Self {
        Self {
            to: to.into(),
            command_id: id,
            client_state: None,
            from: None,
            timeout_secs: None,
            target_leg_client_state: None,
            early_media: None,
            custom_headers: Vec::new(),
        }
    }
}
action!(Transfer, Transfer);

/// `reject`'s `cause`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectCause {
    CallRejected,
    UserBusy,
}

/// `reject` (`RejectRequest`): an incoming call not yet answered.
#[derive(Debug, Clone, Serialize)]
pub struct Reject {
    pub cause: RejectCause,
    pub command_id: CommandId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
}

impl Reject {
    pub fn new(cause: RejectCause, id: CommandId) -> Self {
        Self { cause, command_id: id, client_state: None }
    }
}
action!(Reject, Reject);

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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unset_options_are_omitted_and_names_match_the_spec() {
        let id = CommandId::new("c1").unwrap();
        let mut d = Dial::new(DialTo::Many(vec!["+1".into(), "sip:a@b".into()]), "+2", "app", id.clone());
        d.prevent_double_bridge = Some(true);
        d.custom_headers.push(CustomHeader::new("X-A", "1"));
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"to": ["+1", "sip:a@b"], "from": "+2", "connection_id": "app", "command_id": "c1",
                   "prevent_double_bridge": true, "custom_headers": [{"name": "X-A", "value": "1"}]})
        );
        assert_eq!(serde_json::to_value(Hangup::new(id.clone())).unwrap(), json!({"command_id": "c1"}));
        assert_eq!(
            serde_json::to_value(Reject::new(RejectCause::UserBusy, id.clone())).unwrap(),
            json!({"cause": "USER_BUSY", "command_id": "c1"})
        );
        let mut p = PlaybackStart::url("https://x/a.mp3", id);
        p.loop_count = Some(json!("infinity"));
        assert_eq!(serde_json::to_value(&p).unwrap()["loop"], "infinity");
    }
}
