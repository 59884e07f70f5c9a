//! The Telnyx webhook wire envelope, parsed just enough to store and route a delivery.
//!
//! The ingress keeps the raw bytes (they are what was signed and what replay re-reads) and pulls
//! out only the fields it needs: the event id (`data.id`, the de-duplication key across retries
//! and failover), the event type, the call session id (for tracing) and the delivery attempt.
//! Unknown fields are ignored and nearly everything is optional, because real deliveries carry
//! fields the spec does not list and omit some it does.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Upper bound on `data.id` and `data.event_type`, so a hostile body cannot bloat the store keys.
const MAX_KEY_LEN: usize = 200;

/// Why a body is not a Telnyx webhook envelope. `reason()` is the wire form (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the body is not a Telnyx webhook envelope: {0}")]
    InvalidEnvelope(&'static str),
}

impl WebhookError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::InvalidEnvelope(_) => "invalid_envelope",
        }
    }
}

/// The routing facts of one delivery, borrowed from the raw body where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHead<'a> {
    pub event_id: Cow<'a, str>,
    pub event_type: Cow<'a, str>,
    pub call_session_id: Option<Cow<'a, str>>,
    pub attempt: Option<u32>,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    data: Option<WireData<'a>>,
    #[serde(borrow)]
    meta: Option<WireMeta<'a>>,
}

#[derive(Deserialize)]
struct WireData<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Option<WirePayload<'a>>,
}

#[derive(Deserialize)]
struct WirePayload<'a> {
    #[serde(borrow, default)]
    call_session_id: Option<Loose<'a>>,
}

#[derive(Deserialize)]
struct WireMeta<'a> {
    #[serde(borrow, default)]
    attempt: Option<Loose<'a>>,
}

/// One JSON value seen loosely: a string, a whole non-negative number, or anything else (which
/// is skipped). For the fields the ingress reads only for tracing and metrics (the session id,
/// the delivery attempt): serde's derive would refuse a mismatched type outright, the ingress
/// would answer 400, Telnyx would retry it forever and the event would never be stored.
enum Loose<'a> {
    Str(Cow<'a, str>),
    Int(u64),
    Other,
}

impl<'a> Loose<'a> {
    fn string(self) -> Option<Cow<'a, str>> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A count such as `meta.attempt`: a whole number, or a string of one.
    fn count(self) -> Option<u32> {
        match self {
            Self::Int(n) => u32::try_from(n).ok(),
            Self::Str(s) => s.trim().parse().ok(),
            Self::Other => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Loose::Int(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(v).map_or(Loose::Other, Loose::Int))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
}

/// Parses the envelope head of a raw webhook body.
pub fn parse_head(body: &[u8]) -> Result<WebhookHead<'_>, WebhookError> {
    let wire: Wire<'_> =
        serde_json::from_slice(body).map_err(|e| WebhookError::MalformedJson(e.to_string()))?;
    let data = wire.data.ok_or(WebhookError::InvalidEnvelope("missing data"))?;
    let event_id = data.id.ok_or(WebhookError::InvalidEnvelope("missing data.id"))?;
    let event_type = data.event_type.ok_or(WebhookError::InvalidEnvelope("missing data.event_type"))?;
    if event_id.trim().is_empty() || event_id.len() > MAX_KEY_LEN {
        return Err(WebhookError::InvalidEnvelope("data.id must be 1 to 200 characters"));
    }
    if event_type.trim().is_empty() || event_type.len() > MAX_KEY_LEN {
        return Err(WebhookError::InvalidEnvelope("data.event_type must be 1 to 200 characters"));
    }
    Ok(WebhookHead {
        event_id,
        event_type,
        call_session_id: data.payload.and_then(|p| p.call_session_id).and_then(Loose::string),
        attempt: wire.meta.and_then(|m| m.attempt).and_then(|a| a.count()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = include_str!("../tests/fixtures/call.initiated.inbound.pstn.json");

    #[test]
    fn reads_a_real_capture() {
        let head = parse_head(REAL.as_bytes()).unwrap();
        assert_eq!(head.event_type, "call.initiated");
        assert!(!head.event_id.is_empty());
        assert!(head.call_session_id.is_some());
        assert_eq!(head.attempt, Some(1));
    }

    #[test]
    fn rejects_what_is_not_an_envelope() {
        let cases: [(&[u8], &str); 6] = [
            (b"{", "malformed_json"),
            (b"[]", "malformed_json"),
            (b"{}", "invalid_envelope"),
            (br#"{"data":{"event_type":"call.hangup"}}"#, "invalid_envelope"),
            (br#"{"data":{"id":"","event_type":"call.hangup"}}"#, "invalid_envelope"),
            (br#"{"data":{"id":"x"}}"#, "invalid_envelope"),
        ];
        for (body, reason) in cases {
            assert_eq!(parse_head(body).unwrap_err().reason(), reason, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn unknown_types_and_fields_are_fine() {
        let head = parse_head(br#"{"data":{"id":"e1","event_type":"call.future","payload":{"x":1}},"meta":{"attempt":3},"extra":true}"#).unwrap();
        assert_eq!(head.event_type, "call.future");
        assert_eq!(head.call_session_id, None);
        assert_eq!(head.attempt, Some(3));
    }

    #[test]
    fn fields_read_only_for_tracing_never_refuse_a_delivery() {
        let cases: [(&[u8], Option<&str>, Option<u32>); 6] = [
            (br#"{"data":{"id":"e","event_type":"t"},"meta":{"attempt":"2"}}"#, None, Some(2)),
            (br#"{"data":{"id":"e","event_type":"t"},"meta":{"attempt":"two"}}"#, None, None),
            (br#"{"data":{"id":"e","event_type":"t"},"meta":{"attempt":-1}}"#, None, None),
            (br#"{"data":{"id":"e","event_type":"t"},"meta":{"attempt":[1],"x":{}}}"#, None, None),
            (br#"{"data":{"id":"e","event_type":"t","payload":{"call_session_id":7}},"meta":null}"#, None, None),
            (
                br#"{"data":{"id":"e","event_type":"t","payload":{"call_session_id":"s\u0031","a":[{"b":1}]}},"meta":{"attempt":3.5}}"#,
                Some("s1"),
                None,
            ),
        ];
        for (body, session, attempt) in cases {
            let head = parse_head(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)));
            assert_eq!((head.call_session_id.as_deref(), head.attempt), (session, attempt));
        }
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let head = parse_head(br#"{"data":{"id":"a\u0062c","event_type":"call.hangup"}}"#).unwrap();
        assert_eq!(head.event_id, "abc");
    }
}
