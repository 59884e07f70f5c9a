//! Routing of an inbound call on one of our numbers, and validation of the routing settings.
//!
//! [`route`] is pure: from the number's settings, its organisation, whether the caller is
//! blocked, the user's do-not-disturb flag and the user's reachable devices it picks a
//! [`Route`], in this order: blocked caller → reject; outside the schedule → `outside_hours`
//! (voicemail or AI agent); mode voicemail / ai_agent; no receiving user or dnd → voicemail; no
//! reachable device → voicemail; otherwise ring every device. Always in the number's org. An
//! AI-agent route without a configured SIP URI falls back to voicemail (a call is never lost to
//! a missing setting); a schedule that does not parse (the API validates it, so only old data)
//! counts as open. An unknown number has no settings: the worker rejects it with
//! `EndReason::UnknownNumber`.
//!
//! Schedules are evaluated on the wall clock of their IANA zone (`chrono-tz`), so DST shifts
//! move the window with the local clock; a window whose end is before its start crosses
//! midnight and belongs to the day it starts on (`fri 22:00–06:00` covers Saturday 03:00).
//!
//! The validators return a [`ValidationError`] whose [`ValidationError::reason`] is the
//! machine-readable snake_case `error` of a 400/422 answer.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::call::{EndReason, RingDevice, Route};

/// Shortest and longest ring, seconds, and the default.
pub const RING_TIMEOUT_SECS: std::ops::RangeInclusive<u32> = 5..=120;
pub const DEFAULT_RING_TIMEOUT_SECS: u32 = 30;
/// Allowed voicemail recording lengths, seconds.
pub const VOICEMAIL_MAX_SECS: std::ops::RangeInclusive<u32> = 10..=600;

/// What a number does with its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Mode {
    #[default]
    Ring,
    AiAgent,
    Voicemail,
}

/// Where calls go outside the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OutsideHours {
    #[default]
    Voicemail,
    AiAgent,
}

/// A day of the week as the API spells it (`mon` … `sun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    fn of(weekday: Weekday) -> Self {
        match weekday {
            Weekday::Mon => Self::Mon,
            Weekday::Tue => Self::Tue,
            Weekday::Wed => Self::Wed,
            Weekday::Thu => Self::Thu,
            Weekday::Fri => Self::Fri,
            Weekday::Sat => Self::Sat,
            Weekday::Sun => Self::Sun,
        }
    }
}

/// One weekly opening window, `start`/`end` as `HH:MM` (`end` may be `24:00`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub days: Vec<Day>,
    pub start: String,
    pub end: String,
}

/// Opening hours of a number (`null` in the API = always open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub timezone: String,
    pub weekly: Vec<Window>,
}

/// A number's routing settings (`PUT /v1/numbers/{e164}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberConfig {
    pub org_id: String,
    pub user_id: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u32,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    #[serde(default)]
    pub outside_hours: OutsideHours,
}

fn default_ring_timeout() -> u32 {
    DEFAULT_RING_TIMEOUT_SECS
}

/// Everything [`route`] looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingFacts<'a> {
    pub number: &'a NumberConfig,
    /// The org's AI agent (`ai_agent_sip_uri`), if it has one.
    pub ai_agent_sip_uri: Option<&'a str>,
    pub caller_blocked: bool,
    pub user_dnd: bool,
    /// The user's reachable devices (active, unexpired credentials; push tokens), in every org.
    pub devices: Vec<RingDevice>,
}

/// Decides where an inbound call goes. See the module header for the order of the rules.
pub fn route(facts: &RoutingFacts<'_>, now: DateTime<Utc>) -> Route {
    let number = facts.number;
    if facts.caller_blocked {
        return Route::Reject { reason: EndReason::Blocked };
    }
    let ai = |reason| match facts.ai_agent_sip_uri {
        Some(uri) => Route::AiAgent { sip_uri: uri.to_owned(), reason },
        None => Route::Voicemail { reason },
    };
    let open = number.schedule.as_ref().is_none_or(|s| s.is_open(now).unwrap_or(true));
    if !open {
        return match number.outside_hours {
            OutsideHours::Voicemail => Route::Voicemail { reason: EndReason::OutsideHours },
            OutsideHours::AiAgent => ai(EndReason::OutsideHours),
        };
    }
    match number.mode {
        Mode::Voicemail => return Route::Voicemail { reason: EndReason::Voicemail },
        Mode::AiAgent => return ai(EndReason::AiAgent),
        Mode::Ring => {}
    }
    if number.user_id.is_none() {
        return Route::Voicemail { reason: EndReason::NoUser };
    }
    if facts.user_dnd {
        return Route::Voicemail { reason: EndReason::Dnd };
    }
    let devices: Vec<_> =
        facts.devices.iter().filter(|d| d.push || d.sip_target.is_some()).cloned().collect();
    if devices.is_empty() {
        return Route::Voicemail { reason: EndReason::NoDevices };
    }
    let ring_timeout_secs =
        number.ring_timeout_secs.clamp(*RING_TIMEOUT_SECS.start(), *RING_TIMEOUT_SECS.end());
    Route::Ring { devices, ring_timeout_secs }
}

impl Schedule {
    /// Whether `now` falls in a window, on the zone's wall clock.
    pub fn is_open(&self, now: DateTime<Utc>) -> Result<bool, ValidationError> {
        let tz = validate_timezone(&self.timezone)?;
        let local = now.with_timezone(&tz);
        let minute = local.hour() * 60 + local.minute();
        let today = Day::of(local.weekday());
        let yesterday = Day::of(local.weekday().pred());
        for window in &self.weekly {
            let (start, end) = (parse_hhmm(&window.start, false)?, parse_hhmm(&window.end, true)?);
            let open = if start < end {
                window.days.contains(&today) && (start..end).contains(&minute)
            } else if start > end {
                (window.days.contains(&today) && minute >= start)
                    || (window.days.contains(&yesterday) && minute < end)
            } else {
                false
            };
            if open {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A setting the API refuses; `reason()` is the machine-readable `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("not an E.164 number (+ then 2 to 15 digits, the first not 0)")]
    InvalidE164,
    #[error("not an IANA time zone name")]
    InvalidTimezone,
    #[error("not a time of day as HH:MM")]
    InvalidTime,
    #[error("a schedule window needs at least one day")]
    EmptyDays,
    #[error("a schedule window cannot start when it ends")]
    EmptyWindow,
    #[error("ring_timeout_secs must be between 5 and 120")]
    RingTimeoutOutOfRange,
    #[error("voicemail_max_secs must be between 10 and 600")]
    VoicemailMaxSecsOutOfRange,
    #[error("not a sip: or sips: URI")]
    InvalidSipUri,
}

impl ValidationError {
    pub fn reason(self) -> &'static str {
        match self {
            Self::InvalidE164 => "invalid_e164",
            Self::InvalidTimezone => "invalid_timezone",
            Self::InvalidTime => "invalid_time",
            Self::EmptyDays => "empty_days",
            Self::EmptyWindow => "empty_window",
            Self::RingTimeoutOutOfRange => "ring_timeout_out_of_range",
            Self::VoicemailMaxSecsOutOfRange => "voicemail_max_secs_out_of_range",
            Self::InvalidSipUri => "invalid_sip_uri",
        }
    }
}

/// `sip:<user>@host` (or a bare user) → `<user>`: how a credential's SIP user appears in a
/// call's `from`.
pub fn sip_user(uri: &str) -> &str {
    let rest = uri.strip_prefix("sip:").unwrap_or(uri);
    rest.split(['@', ';']).next().unwrap_or(rest)
}

/// `+` then 2–15 digits, the first not `0`.
pub fn validate_e164(number: &str) -> Result<(), ValidationError> {
    let digits = number.strip_prefix('+').ok_or(ValidationError::InvalidE164)?;
    let ok = (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    ok.then_some(()).ok_or(ValidationError::InvalidE164)
}

/// An IANA zone name (`America/Chicago`), case-sensitive.
pub fn validate_timezone(name: &str) -> Result<Tz, ValidationError> {
    name.parse::<Tz>().map_err(|_| ValidationError::InvalidTimezone)
}

/// `HH:MM` as minutes after midnight; `24:00` only where `end` is true.
pub fn parse_hhmm(raw: &str, end: bool) -> Result<u32, ValidationError> {
    let bytes = raw.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' {
        return Err(ValidationError::InvalidTime);
    }
    let two = |s: &str| s.parse::<u32>().ok().filter(|_| s.bytes().all(|b| b.is_ascii_digit()));
    let (h, m) = (two(&raw[..2]), two(&raw[3..]));
    match (h, m) {
        (Some(24), Some(0)) if end => Ok(24 * 60),
        (Some(h @ 0..=23), Some(m @ 0..=59)) => Ok(h * 60 + m),
        _ => Err(ValidationError::InvalidTime),
    }
}

pub fn validate_ring_timeout(secs: u32) -> Result<(), ValidationError> {
    RING_TIMEOUT_SECS.contains(&secs).then_some(()).ok_or(ValidationError::RingTimeoutOutOfRange)
}

pub fn validate_voicemail_max_secs(secs: u32) -> Result<(), ValidationError> {
    VOICEMAIL_MAX_SECS.contains(&secs).then_some(()).ok_or(ValidationError::VoicemailMaxSecsOutOfRange)
}

/// `sip:` or `sips:` followed by something.
pub fn validate_sip_uri(uri: &str) -> Result<(), ValidationError> {
    let rest = uri.strip_prefix("sips:").or_else(|| uri.strip_prefix("sip:"));
    rest.filter(|r| !r.is_empty() && !r.chars().any(char::is_whitespace))
        .map(|_| ())
        .ok_or(ValidationError::InvalidSipUri)
}

/// Every check of a schedule: the zone, each window's days and times.
pub fn validate_schedule(schedule: &Schedule) -> Result<(), ValidationError> {
    validate_timezone(&schedule.timezone)?;
    for window in &schedule.weekly {
        if window.days.is_empty() {
            return Err(ValidationError::EmptyDays);
        }
        if parse_hhmm(&window.start, false)? == parse_hhmm(&window.end, true)? {
            return Err(ValidationError::EmptyWindow);
        }
    }
    Ok(())
}

/// Every check of a number's settings (the org and user are checked by the store).
pub fn validate_number(e164: &str, config: &NumberConfig) -> Result<(), ValidationError> {
    validate_e164(e164)?;
    validate_ring_timeout(config.ring_timeout_secs)?;
    config.schedule.as_ref().map_or(Ok(()), validate_schedule)
}

#[cfg(test)]
mod tests;
