//! Request-field readers with Telnyx's validation errors (missing → 10004, wrong type → 10015, out of
//! range → 10033, not in the enum → 10032, bad number → 10016), and destination parsing: `+E.164`,
//! `sip:<user>@sip.telnyx.com` (a telephony credential; `;secure=…` parameters ignored) or another SIP URI.

use base64::Engine;
use serde_json::Value;

use super::legs::{Target, TargetKind};
use crate::telnyx_errors::ApiError;

pub(super) fn opt_str<'a>(v: &'a Value, f: &str) -> Result<Option<&'a str>, ApiError> {
    match v.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid_value(f, format!("'{f}' must be a string."))),
    }
}

pub(super) fn req_str<'a>(v: &'a Value, f: &str) -> Result<&'a str, ApiError> {
    opt_str(v, f)?.filter(|s| !s.is_empty()).ok_or_else(|| ApiError::missing(f))
}

pub(super) fn opt_bool(v: &Value, f: &str) -> Result<bool, ApiError> {
    match v.get(f) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::invalid_value(f, format!("'{f}' must be a boolean."))),
    }
}

pub(super) fn int_in(v: &Value, f: &str, default: i64, lo: i64, hi: i64) -> Result<i64, ApiError> {
    match v.get(f) {
        None | Some(Value::Null) => Ok(default),
        Some(n) => {
            let n =
                n.as_i64().ok_or_else(|| ApiError::invalid_value(f, format!("'{f}' must be an integer.")))?;
            if (lo..=hi).contains(&n) { Ok(n) } else { Err(ApiError::out_of_range(f, lo, hi)) }
        }
    }
}

pub(super) fn one_of(
    v: &Value,
    f: &str,
    allowed: &[&'static str],
    default: &'static str,
) -> Result<&'static str, ApiError> {
    match opt_str(v, f)? {
        None => Ok(default),
        Some(s) => allowed.iter().find(|a| **a == s).copied().ok_or_else(|| ApiError::enum_value(f, allowed)),
    }
}

pub(super) fn client_state(v: &Value, f: &str) -> Result<Option<String>, ApiError> {
    let Some(s) = opt_str(v, f)? else { return Ok(None) };
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| ApiError::invalid_value(f, "It must be a valid Base-64 encoded string."))?;
    Ok(Some(s.to_owned()))
}

pub(super) fn is_e164(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or("");
    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

/// Parses a dial/transfer destination.
pub(super) fn destination(s: &str) -> Option<TargetKind> {
    if let Some(rest) = s.strip_prefix("sip:") {
        let uri = rest.split(';').next().unwrap_or("");
        let (user, host) = uri.split_once('@')?;
        if user.is_empty() || host.is_empty() {
            return None;
        }
        return Some(if host.eq_ignore_ascii_case("sip.telnyx.com") {
            TargetKind::Credential(user.to_owned())
        } else {
            TargetKind::External
        });
    }
    is_e164(s).then(|| TargetKind::Pstn(s.to_owned()))
}

pub(super) fn targets_of(to: &[&str], field: &str) -> Result<Vec<Target>, ApiError> {
    to.iter()
        .map(|t| {
            destination(t).map(|kind| Target { kind, failed: None }).ok_or_else(|| ApiError::not_e164(field))
        })
        .collect()
}
