//! FCM HTTP v1 message validation (a pure function of the request body).
//!
//! Rules, each answering `400 INVALID_ARGUMENT` (FCM ErrorCode docs and push.md):
//! - body is a JSON object with only `message` and `validate_only`; `message` has only known
//!   fields (snake_case or camelCase, as protobuf JSON allows) — "Unknown name … Cannot find field."
//! - exactly one target, and it must be `token` (the simulator is per token; `topic`/`condition`
//!   are refused with a clear message); a malformed token gets the `FcmError INVALID_ARGUMENT`
//!   "not a valid FCM registration token" body.
//! - `data` and `android.data` are `map<string,string>`: a non-string value is
//!   "Invalid value at 'message.data[i].value' (TYPE_STRING), v"; keys `from`, `gcm`, `google*`
//!   are reserved.
//! - keys + values of the data maps ≤ 4096 bytes.
//! - `android.priority` ∈ `normal|high|NORMAL|HIGH`; `android.ttl` a protobuf Duration string
//!   (`"30s"`, `"1.5s"`) between 0 and 2,419,200 s.
//!
//! The delivered data is `message.data` overlaid with `android.data` (FCM's Android behaviour).

use serde_json::{Map, Value};

use super::fcm_body::FcmError;

/// FCM's size limit for a (non-topic) message's data.
pub(crate) const MAX_DATA_BYTES: usize = 4096;
/// Four weeks, FCM's maximum and default TTL.
pub(crate) const MAX_TTL_SECS: u64 = 2_419_200;

const MESSAGE_FIELDS: &[&str] = &[
    "name",
    "data",
    "notification",
    "android",
    "webpush",
    "apns",
    "fcm_options",
    "fcmOptions",
    "token",
    "topic",
    "condition",
];
const ANDROID_FIELDS: &[&str] = &[
    "collapse_key",
    "collapseKey",
    "priority",
    "ttl",
    "restricted_package_name",
    "restrictedPackageName",
    "data",
    "notification",
    "fcm_options",
    "fcmOptions",
    "direct_boot_ok",
    "directBootOk",
];

/// A message that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValidMessage {
    pub(crate) token: String,
    /// `message.data` overlaid with `android.data`.
    pub(crate) data: Value,
    pub(crate) validate_only: bool,
}

fn unknown(at: &str, name: &str) -> FcmError {
    let message = if at.is_empty() {
        format!("Invalid JSON payload received. Unknown name \"{name}\": Cannot find field.")
    } else {
        format!("Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field.")
    };
    FcmError::bad_request(at, message)
}

fn invalid_value(field: &str, type_name: &str, v: &Value) -> FcmError {
    FcmError::bad_request(field, format!("Invalid value at '{field}' ({type_name}), {v}"))
}

/// Validate a `messages:send` body.
pub(crate) fn validate(body: Option<&Value>) -> Result<ValidMessage, FcmError> {
    let Some(Value::Object(root)) = body else {
        return Err(FcmError::bad_request("", "Invalid JSON payload received. Unexpected token."));
    };
    if let Some(k) = root.keys().find(|k| !["message", "validate_only", "validateOnly"].contains(&k.as_str()))
    {
        return Err(unknown("", k));
    }
    let validate_only = match root.get("validate_only").or_else(|| root.get("validateOnly")) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(invalid_value("validate_only", "TYPE_BOOL", v)),
    };
    let message = match root.get("message") {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => return Err(no_recipient()),
        Some(v) => {
            return Err(invalid_value("message", "type.googleapis.com/google.firebase.fcm.v1.Message", v));
        }
    };
    if let Some(k) = message.keys().find(|k| !MESSAGE_FIELDS.contains(&k.as_str())) {
        return Err(unknown("message", k));
    }
    let token = target(message)?;

    let mut data = string_map("message.data", message.get("data"))?;
    let mut size = map_bytes(&data);
    if let Some(android) = message.get("android") {
        let Value::Object(android) = android else {
            return Err(invalid_value(
                "message.android",
                "type.googleapis.com/google.firebase.fcm.v1.AndroidConfig",
                android,
            ));
        };
        if let Some(k) = android.keys().find(|k| !ANDROID_FIELDS.contains(&k.as_str())) {
            return Err(unknown("message.android", k));
        }
        check_priority(android.get("priority"))?;
        check_ttl(android.get("ttl"))?;
        if let Some(v) = android.get("collapse_key").or_else(|| android.get("collapseKey")) {
            if !v.is_string() {
                return Err(invalid_value("message.android.collapse_key", "TYPE_STRING", v));
            }
        }
        let android_data = string_map("message.android.data", android.get("data"))?;
        size += map_bytes(&android_data);
        data.extend(android_data);
    }
    if size > MAX_DATA_BYTES {
        return Err(FcmError::fcm(
            400,
            "INVALID_ARGUMENT",
            format!("Message is too big: data is {size} bytes, the limit is {MAX_DATA_BYTES}."),
        ));
    }
    Ok(ValidMessage { token, data: Value::Object(data), validate_only })
}

fn no_recipient() -> FcmError {
    FcmError::bad_request("message", "Recipient of the message is not set.")
}

fn target(message: &Map<String, Value>) -> Result<String, FcmError> {
    let set: Vec<&str> = ["token", "topic", "condition"]
        .into_iter()
        .filter(|k| !matches!(message.get(*k), None | Some(Value::Null)))
        .collect();
    match set.as_slice() {
        [] => Err(no_recipient()),
        ["token"] => match message.get("token") {
            Some(Value::String(t)) if token_looks_valid(t) => Ok(t.clone()),
            Some(Value::String(_)) => Err(FcmError::invalid_token()),
            Some(v) => Err(invalid_value("message.token", "TYPE_STRING", v)),
            None => Err(no_recipient()),
        },
        [one] => Err(FcmError::bad_request(
            &format!("message.{one}"),
            format!("fleet-sim: only token messages are simulated, not '{one}'."),
        )),
        [first, second, ..] => Err(FcmError::bad_request(
            "message",
            format!(
                "Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set '{second}' after '{first}'."
            ),
        )),
    }
}

/// Real registration tokens are long strings of `[A-Za-z0-9_:-]`; the simulator also allows `.`
/// so readable test tokens work, and rejects empty, whitespace and other punctuation.
pub(crate) fn token_looks_valid(t: &str) -> bool {
    !t.is_empty() && t.len() <= 4096 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:-.".contains(&b))
}

fn string_map(field: &str, v: Option<&Value>) -> Result<Map<String, Value>, FcmError> {
    let map = match v {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(m)) => m,
        Some(v) => return Err(invalid_value(field, "type.googleapis.com/google.protobuf.Map", v)),
    };
    for (i, (k, v)) in map.iter().enumerate() {
        if !v.is_string() {
            let at = format!("{field}[{i}].value");
            return Err(invalid_value(&at, "TYPE_STRING", v));
        }
        let lower = k.to_ascii_lowercase();
        if lower == "from" || lower == "gcm" || lower.starts_with("google") {
            return Err(FcmError::bad_request(
                field,
                format!("Invalid data payload key: {k}. Keys 'from', 'gcm' and 'google*' are reserved."),
            ));
        }
    }
    Ok(map.clone())
}

fn map_bytes(m: &Map<String, Value>) -> usize {
    m.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum()
}

fn check_priority(v: Option<&Value>) -> Result<(), FcmError> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if ["normal", "high", "NORMAL", "HIGH"].contains(&s.as_str()) => Ok(()),
        Some(v) => Err(invalid_value(
            "message.android.priority",
            "type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority",
            v,
        )),
    }
}

fn check_ttl(v: Option<&Value>) -> Result<(), FcmError> {
    let s = match v {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => s,
        Some(v) => {
            return Err(invalid_value(
                "message.android.ttl",
                "type.googleapis.com/google.protobuf.Duration",
                v,
            ));
        }
    };
    match parse_duration_secs(s) {
        Some(secs) if secs <= MAX_TTL_SECS as f64 => Ok(()),
        Some(_) => Err(FcmError::bad_request(
            "message.android.ttl",
            format!("TTL {s} exceeds the maximum of 4 weeks ({MAX_TTL_SECS}s)."),
        )),
        None => Err(invalid_value(
            "message.android.ttl",
            "type.googleapis.com/google.protobuf.Duration",
            &Value::String(s.clone()),
        )),
    }
}

/// A non-negative protobuf Duration string: digits, optional `.` and 1–9 digits, then `s`.
fn parse_duration_secs(s: &str) -> Option<f64> {
    let num = s.strip_suffix('s')?;
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(frac)
        || frac.len() > 9
        || (num.contains('.') && frac.is_empty())
    {
        return None;
    }
    num.parse().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ok(v: Value) -> ValidMessage {
        validate(Some(&v)).unwrap()
    }

    fn err(v: Value) -> FcmError {
        validate(Some(&v)).unwrap_err()
    }

    #[test]
    fn accepts_the_reference_message() {
        let m = ok(json!({"message": {"token": "tok-1", "data": {"type": "incoming_call", "call_id": "c1"},
            "android": {"priority": "high", "ttl": "30s", "collapse_key": "call-c1", "data": {"call_id": "c2"}}}}));
        assert_eq!(m.token, "tok-1");
        assert_eq!(m.data, json!({"type": "incoming_call", "call_id": "c2"}));
        assert!(!m.validate_only);
        assert!(ok(json!({"validate_only": true, "message": {"token": "t"}})).validate_only);
    }

    #[test]
    fn rejects_like_fcm() {
        let e = err(json!({"message": {"token": "t", "data": {"a": "x", "b": 12}}}));
        assert_eq!(e.message, "Invalid value at 'message.data[1].value' (TYPE_STRING), 12");
        assert_eq!(e.code, 400);
        assert!(err(json!({"message": {"token": "t", "data": {"from": "x"}}})).message.contains("from"));
        assert!(
            err(json!({"message": {"token": "t", "data": {"google.x": "x"}}})).message.contains("google.x")
        );
        assert_eq!(err(json!({"message": {"data": {}}})).message, "Recipient of the message is not set.");
        assert_eq!(err(json!({"message": {"token": "has space"}})), FcmError::invalid_token());
        assert!(
            err(json!({"message": {"token": "t", "bogus": 1}}))
                .message
                .contains("Unknown name \"bogus\" at 'message'")
        );
        assert!(err(json!({"message": {"token": "t", "topic": "x"}})).message.contains("oneof"));
        assert!(
            err(json!({"message": {"token": "t", "android": {"priority": "urgent"}}}))
                .message
                .contains("\"urgent\"")
        );
        for bad in ["30", "-1s", "1.s", "s", "1.0000000001s", "2419201s"] {
            assert_eq!(err(json!({"message": {"token": "t", "android": {"ttl": bad}}})).code, 400, "{bad}");
        }
        for good in ["0s", "1.5s", "2419200s"] {
            ok(json!({"message": {"token": "t", "android": {"ttl": good}}}));
        }
        let big = "x".repeat(MAX_DATA_BYTES);
        assert!(
            err(json!({"message": {"token": "t", "data": {"k": big}}}))
                .message
                .starts_with("Message is too big")
        );
        let fits = "x".repeat(MAX_DATA_BYTES - 1);
        ok(json!({"message": {"token": "t", "data": {"k": fits}}}));
        assert_eq!(validate(None).unwrap_err().code, 400);
    }
}
