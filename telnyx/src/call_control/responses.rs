//! What a successful Call Control request answers. A 200 only means "accepted": the outcome of a
//! command arrives later as webhooks. Unknown fields are ignored; absent optional ones are `None`.

use serde::Deserialize;

/// An action's `data` (`CallControlCommandResult`; `answer` may add `recording_id`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommandAck {
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub recording_id: Option<String>,
}

/// One leg created by a dial (`CallWithRecordingId`). `is_alive` is always false here (dialing
/// is asynchronous).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DialedCall {
    pub call_control_id: String,
    pub call_leg_id: String,
    pub call_session_id: String,
    #[serde(default)]
    pub client_state: Option<String>,
    #[serde(default)]
    pub recording_id: Option<String>,
}

/// A dial's answer. The spec documents one object; what Telnyx answers when `to` is an array is
/// unverified, so an array is accepted too and every element kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialed {
    /// Never empty.
    pub legs: Vec<DialedCall>,
}

impl Dialed {
    /// The (first) leg created.
    pub fn leg(&self) -> &DialedCall {
        &self.legs[0]
    }
}

impl<'de> Deserialize<'de> for Dialed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(DialedCall),
            Many(Vec<DialedCall>),
        }
        let legs = match OneOrMany::deserialize(d)? {
            OneOrMany::One(c) => vec![c],
            OneOrMany::Many(v) => v,
        };
        if legs.is_empty() {
            return Err(serde::de::Error::custom("dial answered no call"));
        }
        Ok(Self { legs })
    }
}

/// `GET /calls/{call_control_id}` (`Call`). Telnyx keeps it for 10 minutes after the call ended.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CallStatus {
    pub call_control_id: String,
    #[serde(default)]
    pub call_leg_id: String,
    #[serde(default)]
    pub call_session_id: String,
    pub is_alive: bool,
    /// Seconds since answer (absent before).
    #[serde(default)]
    pub call_duration: Option<u64>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    #[serde(default)]
    pub client_state: Option<String>,
}
