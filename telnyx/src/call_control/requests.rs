//! Request bodies of the call-flow commands (dial, answer, bridge, transfer, hangup, reject), field
//! names exactly as in the Telnyx OpenAPI subset (`CallRequest`, `AnswerRequest`, `BridgeRequest`,
//! `TransferCallRequest`, `HangupRequest`, `RejectRequest`); media commands are in `media.rs`.
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::call_control::PlaybackStart;

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
