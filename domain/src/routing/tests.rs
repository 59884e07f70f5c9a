use chrono::TimeZone;

use super::*;
use crate::call::Platform;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn number(schedule: Option<Schedule>) -> NumberConfig {
    NumberConfig {
        org_id: "org1".into(),
        user_id: Some("u1".into()),
        mode: Mode::Ring,
        ring_timeout_secs: 30,
        schedule,
        outside_hours: OutsideHours::Voicemail,
    }
}

fn phone() -> RingDevice {
    RingDevice { device_id: "d1".into(), platform: Platform::Android, push: true, sip_target: None }
}

fn facts(number: &NumberConfig) -> RoutingFacts<'_> {
    RoutingFacts {
        number,
        ai_agent_sip_uri: Some("sip:agent@ai.example"),
        caller_blocked: false,
        user_dnd: false,
        devices: vec![phone()],
    }
}

fn weekly(tz: &str, days: &[Day], start: &str, end: &str) -> Schedule {
    Schedule {
        timezone: tz.into(),
        weekly: vec![Window { days: days.to_vec(), start: start.into(), end: end.into() }],
    }
}

const NOON: (u32, u32) = (12, 0);

fn reason(route: &Route) -> Option<EndReason> {
    match route {
        Route::Reject { reason } | Route::Voicemail { reason } | Route::AiAgent { reason, .. } => {
            Some(*reason)
        }
        Route::Ring { .. } | Route::Outbound | Route::Direct => None,
    }
}

#[test]
fn rules_apply_in_order() {
    let now = at(2026, 7, 1, NOON.0, NOON.1);
    let n = number(None);
    assert!(matches!(route(&facts(&n), now), Route::Ring { ring_timeout_secs: 30, .. }));
    let blocked = RoutingFacts { caller_blocked: true, user_dnd: true, ..facts(&n) };
    assert_eq!(reason(&route(&blocked, now)), Some(EndReason::Blocked));
    let dnd = RoutingFacts { user_dnd: true, ..facts(&n) };
    assert_eq!(reason(&route(&dnd, now)), Some(EndReason::Dnd));
    let nobody = RoutingFacts { devices: vec![], ..facts(&n) };
    assert_eq!(reason(&route(&nobody, now)), Some(EndReason::NoDevices));
    let no_user = NumberConfig { user_id: None, ..number(None) };
    assert_eq!(reason(&route(&facts(&no_user), now)), Some(EndReason::NoUser));
    let vm = NumberConfig { mode: Mode::Voicemail, ..number(None) };
    assert_eq!(route(&facts(&vm), now), Route::Voicemail { reason: EndReason::Voicemail });
    let ai = NumberConfig { mode: Mode::AiAgent, ..number(None) };
    assert!(matches!(route(&facts(&ai), now), Route::AiAgent { reason: EndReason::AiAgent, .. }));
    let no_uri = RoutingFacts { ai_agent_sip_uri: None, ..facts(&ai) };
    assert!(matches!(route(&no_uri, now), Route::Voicemail { .. }), "falls back to voicemail");
}

#[test]
fn outside_hours_goes_where_configured() {
    // 2026-07-01 is a Wednesday; 12:00 UTC is 07:00 in Chicago (CDT).
    let now = at(2026, 7, 1, 12, 0);
    let closed = number(Some(weekly("America/Chicago", &[Day::Wed], "09:00", "17:00")));
    assert_eq!(route(&facts(&closed), now), Route::Voicemail { reason: EndReason::OutsideHours });
    let to_ai = NumberConfig { outside_hours: OutsideHours::AiAgent, ..closed.clone() };
    assert!(matches!(route(&facts(&to_ai), now), Route::AiAgent { reason: EndReason::OutsideHours, .. }));
    let blocked = RoutingFacts { caller_blocked: true, ..facts(&closed) };
    assert_eq!(reason(&route(&blocked, now)), Some(EndReason::Blocked));
}

#[test]
fn schedules_follow_the_local_clock_across_dst() {
    let s = weekly("America/Chicago", &[Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri], "09:00", "17:00");
    // Summer (UTC-5): 14:00 UTC = 09:00 local, open; 13:59 UTC closed.
    assert!(s.is_open(at(2026, 7, 1, 14, 0)).unwrap());
    assert!(!s.is_open(at(2026, 7, 1, 13, 59)).unwrap());
    // Winter (UTC-6): 14:00 UTC = 08:00 local, closed; 15:00 UTC open; 23:00 UTC = 17:00 closed.
    assert!(!s.is_open(at(2026, 1, 7, 14, 0)).unwrap());
    assert!(s.is_open(at(2026, 1, 7, 15, 0)).unwrap());
    assert!(!s.is_open(at(2026, 1, 7, 23, 0)).unwrap());
    // The day is the local one: Saturday 00:00 UTC is Friday 19:00 in Chicago (CDT).
    let friday_evening = weekly("America/Chicago", &[Day::Fri], "18:00", "20:00");
    assert!(friday_evening.is_open(at(2026, 7, 4, 0, 0)).unwrap());
    assert!(!friday_evening.is_open(at(2026, 7, 4, 1, 0)).unwrap(), "20:00 local is the end");
}

#[test]
fn windows_cross_midnight() {
    let night = weekly("Europe/Berlin", &[Day::Fri], "22:00", "06:00");
    // Berlin is UTC+2 in July. Fri 2026-07-03 23:00 local = 21:00 UTC.
    assert!(night.is_open(at(2026, 7, 3, 21, 0)).unwrap());
    // Sat 03:00 local = Sat 01:00 UTC: still Friday's window.
    assert!(night.is_open(at(2026, 7, 4, 1, 0)).unwrap());
    // Sat 06:00 local: closed; Thu 23:00 local: closed.
    assert!(!night.is_open(at(2026, 7, 4, 4, 0)).unwrap());
    assert!(!night.is_open(at(2026, 7, 2, 21, 0)).unwrap());
    let to_midnight = weekly("UTC", &[Day::Wed], "20:00", "24:00");
    assert!(to_midnight.is_open(at(2026, 7, 1, 23, 59)).unwrap());
    assert!(!to_midnight.is_open(at(2026, 7, 2, 0, 0)).unwrap());
}

#[test]
fn validation_reasons() {
    assert!(validate_e164("+13125550199").is_ok());
    assert!(validate_e164("+12").is_ok());
    for bad in ["13125550199", "+0312", "+1", "+1234567890123456", "+1312-555", "+", ""] {
        assert_eq!(validate_e164(bad).map_err(ValidationError::reason), Err("invalid_e164"), "{bad}");
    }
    assert!(validate_timezone("America/Chicago").is_ok());
    assert_eq!(validate_timezone("Mars/Olympus").unwrap_err().reason(), "invalid_timezone");
    assert_eq!(parse_hhmm("09:30", false), Ok(570));
    assert_eq!(parse_hhmm("24:00", true), Ok(1440));
    for bad in ["24:00", "9:30", "09:60", "0930", "+9:30", "ab:cd"] {
        assert_eq!(parse_hhmm(bad, false).unwrap_err().reason(), "invalid_time", "{bad}");
    }
    assert_eq!(validate_ring_timeout(4).unwrap_err().reason(), "ring_timeout_out_of_range");
    assert!(validate_ring_timeout(5).is_ok() && validate_ring_timeout(120).is_ok());
    assert_eq!(validate_ring_timeout(121).unwrap_err().reason(), "ring_timeout_out_of_range");
    assert_eq!(validate_voicemail_max_secs(0).unwrap_err().reason(), "voicemail_max_secs_out_of_range");
    assert!(validate_sip_uri("sip:agent@ai.example").is_ok());
    assert_eq!(validate_sip_uri("http://x").unwrap_err().reason(), "invalid_sip_uri");
    let empty_days = weekly("UTC", &[], "09:00", "17:00");
    assert_eq!(validate_schedule(&empty_days).unwrap_err().reason(), "empty_days");
    let empty = weekly("UTC", &[Day::Mon], "09:00", "09:00");
    assert_eq!(validate_schedule(&empty).unwrap_err().reason(), "empty_window");
    let n = number(Some(weekly("Nowhere/City", &[Day::Mon], "09:00", "17:00")));
    assert_eq!(validate_number("+13125550199", &n).unwrap_err().reason(), "invalid_timezone");
}

#[test]
fn number_settings_deserialise_with_defaults() {
    let json = r#"{"org_id":"o","user_id":null,"schedule":{"timezone":"America/Chicago","weekly":[{"days":["mon","tue"],"start":"09:00","end":"17:00"}]}}"#;
    let n: NumberConfig = serde_json::from_str(json).unwrap();
    assert_eq!((n.mode, n.ring_timeout_secs, n.outside_hours), (Mode::Ring, 30, OutsideHours::Voicemail));
    assert_eq!(n.schedule.unwrap().weekly[0].days, [Day::Mon, Day::Tue]);
}

#[test]
fn sip_users_are_read_from_uris() {
    assert_eq!(sip_user("sip:gencred123@sip.telnyx.com"), "gencred123");
    assert_eq!(sip_user("sip:gencred123@sip.telnyx.com;transport=tls"), "gencred123");
    assert_eq!(sip_user("gencred123"), "gencred123");
}
