//! Message shapes and the error tables of push.md, row by row.

use super::*;

fn incoming() -> PushMessage {
    PushMessage::IncomingCall {
        call_session_id: "s1".into(),
        call_control_id: "v3:c".into(),
        caller_number: "+13125550101".into(),
        caller_name: None,
        org_id: "org-1".into(),
        org_name: "Acme".into(),
        channel_number: "+13125550199".into(),
        ring_ends_at: 1_000,
    }
}

#[test]
fn fcm_body_is_data_only_high_priority_with_string_values() {
    let body = incoming().fcm_body("tok", 970);
    let msg = &body["message"];
    assert!(msg.get("notification").is_none());
    assert_eq!(msg["android"]["priority"], "high");
    assert_eq!(msg["android"]["ttl"], "30s");
    assert_eq!(msg["android"]["collapse_key"], "incoming_call:s1");
    for (_, v) in msg["data"].as_object().unwrap() {
        assert!(v.is_string(), "every FCM data value is a string");
    }
    assert_eq!(msg["data"]["ring_ends_at"], "1000");
    assert!(serde_json::to_vec(&msg["data"]).unwrap().len() < FCM_DATA_MAX);
}

#[test]
fn apns_payload_is_small_and_has_our_keys() {
    let payload = incoming().apns_payload();
    assert_eq!(payload["type"], "incoming_call");
    assert!(payload["aps"].is_object());
    assert!(serde_json::to_vec(&payload).unwrap().len() < APNS_VOIP_MAX);
}

#[test]
fn a_ring_that_is_over_is_not_delivered() {
    assert!(incoming().is_deliverable_at(999));
    assert!(!incoming().is_deliverable_at(1_000));
    let ended = PushMessage::CallEnded {
        call_session_id: "s1".into(),
        org_id: "o".into(),
        reason: CallEndedReason::Missed,
    };
    assert!(ended.is_deliverable_at(i64::MAX));
    assert_eq!(ended.data()["reason"], "missed");
}

#[test]
fn fcm_errors() {
    let unregistered = br#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#;
    assert!(matches!(classify_fcm(404, unregistered, None), ProviderOutcome::PruneToken { .. }));
    let bare = br#"{"error":{"code":404,"message":"Not Found","status":"NOT_FOUND"}}"#;
    assert!(
        matches!(classify_fcm(404, bare, None), ProviderOutcome::Permanent { .. }),
        "a 404 that is not FCM's UNREGISTERED (wrong project or URL) must not prune tokens"
    );
    let bad_token = br#"{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"}]}}"#;
    assert!(matches!(classify_fcm(400, bad_token, None), ProviderOutcome::PruneToken { .. }));
    let bad_request = br#"{"error":{"code":400,"message":"Invalid value at 'message.data[0].value'","status":"INVALID_ARGUMENT"}}"#;
    assert!(matches!(classify_fcm(400, bad_request, None), ProviderOutcome::Permanent { .. }));
    let unavailable = br#"{"error":{"code":503,"status":"UNAVAILABLE"}}"#;
    assert_eq!(
        classify_fcm(503, unavailable, Some(Duration::from_secs(3))),
        ProviderOutcome::Retry { after: Some(Duration::from_secs(3)), reason: "UNAVAILABLE".into() }
    );
    assert!(matches!(classify_fcm(500, b"", None), ProviderOutcome::Retry { after: None, .. }));
    // A generic project quota 429 without an FcmError detail is still a 429.
    let quota = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}"#;
    assert!(
        matches!(classify_fcm(429, quota, None), ProviderOutcome::Retry { after: Some(d), .. } if d >= Duration::from_secs(60))
    );
    let unauth = br#"{"error":{"code":401,"status":"UNAUTHENTICATED"}}"#;
    assert!(matches!(classify_fcm(401, unauth, None), ProviderOutcome::RefreshAuth { .. }));
    let third_party = br#"{"error":{"code":401,"status":"UNAUTHENTICATED","details":[{"@type":"x.FcmError","errorCode":"THIRD_PARTY_AUTH_ERROR"}]}}"#;
    assert!(matches!(classify_fcm(401, third_party, None), ProviderOutcome::Permanent { .. }));
    assert_eq!(classify_fcm(200, b"{}", None), ProviderOutcome::Delivered);
}

#[test]
fn apns_errors() {
    let r = |reason: &str| format!(r#"{{"reason":"{reason}"}}"#).into_bytes();
    assert!(matches!(classify_apns(410, &r("Unregistered"), None), ProviderOutcome::PruneToken { .. }));
    assert!(matches!(classify_apns(410, &r("ExpiredToken"), None), ProviderOutcome::PruneToken { .. }));
    assert!(matches!(classify_apns(400, &r("BadDeviceToken"), None), ProviderOutcome::PruneToken { .. }));
    assert!(matches!(classify_apns(400, &r("BadTopic"), None), ProviderOutcome::Permanent { .. }));
    assert!(matches!(classify_apns(413, &r("PayloadTooLarge"), None), ProviderOutcome::Permanent { .. }));
    assert!(matches!(
        classify_apns(403, &r("ExpiredProviderToken"), None),
        ProviderOutcome::RefreshAuth { .. }
    ));
    assert!(matches!(
        classify_apns(403, &r("InvalidProviderToken"), None),
        ProviderOutcome::Permanent { .. }
    ));
    assert!(matches!(classify_apns(429, &r("TooManyRequests"), None), ProviderOutcome::Retry { .. }));
    assert!(matches!(classify_apns(503, &r("ServiceUnavailable"), None), ProviderOutcome::Retry { .. }));
    assert!(matches!(classify_apns(500, b"", None), ProviderOutcome::Retry { .. }));
    assert_eq!(classify_apns(200, b"", None), ProviderOutcome::Delivered);
}

#[test]
fn routing_rings_android_by_fcm_and_ios_by_voip_token_only() {
    assert_eq!(route("android", Some("f1"), None), Some((Provider::Fcm, "f1".into())));
    assert_eq!(route("ios", Some("apns-alert"), Some("abcd")), Some((Provider::Apns, "abcd".into())));
    assert_eq!(route("ios", Some("apns-alert"), None), None, "no VoIP token: nothing can ring CallKit");
    assert_eq!(route("android", Some("  "), None), None);
    assert_eq!(route("web", Some("x"), Some("y")), None);
}

#[test]
fn metric_reasons_are_bounded() {
    assert_eq!(metric_reason("UNREGISTERED"), "UNREGISTERED");
    assert_eq!(metric_reason("BadDeviceToken"), "BadDeviceToken");
    assert_eq!(metric_reason("transport: connection refused"), "other");
    assert_eq!(metric_reason(&"A".repeat(49)), "other");
    assert_eq!(metric_reason(""), "other");
}

#[test]
fn only_provider_failures_feed_the_breaker() {
    let retry = |reason: &str| ProviderOutcome::Retry { after: None, reason: reason.into() };
    assert!(retry("UNAVAILABLE").is_provider_failure());
    assert!(retry("timeout").is_provider_failure());
    assert!(!retry("TooManyRequests").is_provider_failure(), "a device's 429 is not an outage");
    assert!(!retry("QUOTA_EXCEEDED").is_provider_failure());
    assert!(!ProviderOutcome::PruneToken { reason: "Unregistered".into() }.is_provider_failure());
    assert!(!ProviderOutcome::Delivered.is_provider_failure());
}

#[test]
fn apns_device_tokens_are_hex_whole_bytes() {
    assert!(is_apns_device_token(&"ab".repeat(32)));
    assert!(is_apns_device_token(&"0F".repeat(100)));
    for bad in ["", "abc", "zz".repeat(32).as_str(), &format!("{}/../x", "ab".repeat(32)), &"ab".repeat(201)]
    {
        assert!(!is_apns_device_token(bad), "{bad}");
    }
}
