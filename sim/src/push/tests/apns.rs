//! APNs over h2c: provider tokens, header and payload rules, scripted outcomes, near misses.

use std::time::Duration;

use serde_json::{Value, json};

use super::{APNS_TOKEN, apns_jwt, client, start};
use crate::push::{Outcome, Provider, Script};

fn voip_payload() -> Value {
    json!({"type": "incoming_call", "call_id": "c_01", "caller": "+13125550101"})
}

async fn reason(r: reqwest::Response) -> (u16, Value) {
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn h2c_and_http1_share_the_listener_and_success_is_empty_with_apns_id() {
    let h = start().await;
    let key = h.sim.apns_key();
    let jwt = apns_jwt(&key, h.sim.now_unix());
    let mut events = h.sim.subscribe();

    let id = "0fd4b8e1-4f5a-4c1e-9b2a-1a2b3c4d5e6f";
    let r = h
        .apns_send(APNS_TOKEN, &jwt, &[("apns-id", id), ("apns-collapse-id", "call-c_01")], &voip_payload())
        .await;
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["apns-id"], id);
    assert!(r.bytes().await.unwrap().is_empty());

    let seen = events.recv().await.unwrap();
    assert_eq!(
        (seen.provider, seen.token.as_str(), seen.message_id.as_str()),
        (Provider::Apns, APNS_TOKEN, id)
    );
    assert_eq!(seen.data, voip_payload());

    // HTTP/1.1 on the same port works too; the log says which protocol was used.
    let r = h
        .http
        .post(format!("{}/3/device/{APNS_TOKEN}", h.base))
        .header("authorization", format!("bearer {jwt}"))
        .header("apns-push-type", "voip")
        .header("apns-topic", "com.example.phone.voip")
        .body(voip_payload().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.status(), 200);
    let generated = r.headers()["apns-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok());

    let attempts = h.sim.attempts(Provider::Apns, APNS_TOKEN);
    assert_eq!(attempts[0].http_version, "HTTP/2.0");
    assert_eq!(attempts[1].http_version, "HTTP/1.1");
    assert_eq!(attempts[0].headers["apns-collapse-id"], "call-c_01");
    assert_eq!(h.sim.delivered(APNS_TOKEN).len(), 2);
}

#[tokio::test]
async fn provider_token_errors() {
    let h = start().await;
    let key = h.sim.apns_key();
    let now = h.sim.now_unix();

    let r =
        h.h2.post(format!("{}/3/device/{APNS_TOKEN}", h.base))
            .header("apns-topic", "a.voip")
            .body("{}")
            .send()
            .await
            .unwrap();
    assert_eq!(reason(r).await, (403, json!({"reason": "MissingProviderToken"})));

    let r = h.apns_send(APNS_TOKEN, "not.a.jwt", &[], &voip_payload()).await;
    assert_eq!(reason(r).await, (403, json!({"reason": "InvalidProviderToken"})));

    // Signed by another key (another simulator seed) with our kid and team.
    let mut forged_key = crate::push::PushSim::new(7).apns_key();
    forged_key.key_id = key.key_id.clone();
    forged_key.team_id = key.team_id.clone();
    let r = h.apns_send(APNS_TOKEN, &apns_jwt(&forged_key, now), &[], &voip_payload()).await;
    assert_eq!(reason(r).await, (403, json!({"reason": "InvalidProviderToken"})));

    let r = h.apns_send(APNS_TOKEN, &apns_jwt(&key, now - 3601), &[], &voip_payload()).await;
    assert_eq!(reason(r).await, (403, json!({"reason": "ExpiredProviderToken"})));
    assert!(h.sim.delivered(APNS_TOKEN).is_empty());
}

#[tokio::test(start_paused = true)]
async fn provider_token_updates_are_limited_per_connection_to_one_per_20_minutes() {
    let h = start().await;
    let key = h.sim.apns_key();
    let first = apns_jwt(&key, h.sim.now_unix());
    assert_eq!(h.apns_send(APNS_TOKEN, &first, &[], &voip_payload()).await.status(), 200);

    tokio::time::advance(Duration::from_secs(10 * 60)).await;
    let second = apns_jwt(&key, h.sim.now_unix());
    let r = h.apns_send(APNS_TOKEN, &second, &[], &voip_payload()).await;
    assert_eq!(reason(r).await, (429, json!({"reason": "TooManyProviderTokenUpdates"})));
    // The first token still works on that connection; a new connection may use the new one.
    assert_eq!(h.apns_send(APNS_TOKEN, &first, &[], &voip_payload()).await.status(), 200);
    let other = start_like(&h);
    assert_eq!(other.apns_send(APNS_TOKEN, &second, &[], &voip_payload()).await.status(), 200);

    tokio::time::advance(Duration::from_secs(10 * 60)).await;
    assert_eq!(h.apns_send(APNS_TOKEN, &second, &[], &voip_payload()).await.status(), 200);
    // 50 more minutes: the first token's iat is now over an hour old.
    tokio::time::advance(Duration::from_secs(50 * 60)).await;
    let r = h.apns_send(APNS_TOKEN, &first, &[], &voip_payload()).await;
    assert_eq!(reason(r).await.1["reason"], "ExpiredProviderToken");
}

/// A second handle on the same server (fresh clients).
fn start_like(h: &crate::push::tests::Harness) -> crate::push::tests::Harness {
    crate::push::tests::Harness {
        sim: h.sim.clone(),
        base: h.base.clone(),
        http: client(false),
        h2: client(true),
    }
}

/// Extra headers, payload, expected status and reason.
type Case<'a> = (Vec<(&'a str, &'a str)>, Value, u16, &'a str);

#[tokio::test]
async fn header_and_payload_rules() {
    let h = start().await;
    let jwt = apns_jwt(&h.sim.apns_key(), h.sim.now_unix());
    let long_collapse = "c".repeat(65);
    let cases: Vec<Case> = vec![
        (vec![("apns-topic", "com.example.phone")], voip_payload(), 400, "BadTopic"),
        (vec![("apns-topic", "")], voip_payload(), 400, "MissingTopic"),
        (vec![("apns-push-type", "ring")], voip_payload(), 400, "InvalidPushType"),
        (vec![("apns-priority", "7")], voip_payload(), 400, "BadPriority"),
        (vec![("apns-expiration", "soon")], voip_payload(), 400, "BadExpirationDate"),
        (vec![("apns-collapse-id", long_collapse.as_str())], voip_payload(), 400, "BadCollapseId"),
        (vec![("apns-id", "not-a-uuid")], voip_payload(), 400, "BadMessageId"),
        (vec![], json!({"pad": "x".repeat(5120)}), 413, "PayloadTooLarge"),
        (
            vec![("apns-push-type", "alert"), ("apns-topic", "com.example.phone")],
            json!({"pad": "x".repeat(4090)}),
            413,
            "PayloadTooLarge",
        ),
    ];
    for (headers, payload, status, want) in cases {
        let r = h.apns_send(APNS_TOKEN, &jwt, &headers, &payload).await;
        assert_eq!(reason(r).await, (status, json!({"reason": want})), "{headers:?}");
    }
    let r = h.apns_send("zz-not-hex", &jwt, &[], &voip_payload()).await;
    assert_eq!(reason(r).await, (400, json!({"reason": "BadDeviceToken"})));

    // Exactly 5120 bytes is fine for VoIP; 65 bytes of collapse id is not, 64 is.
    let filler = 5120 - json!({"pad": ""}).to_string().len();
    let exact = json!({"pad": "x".repeat(filler)});
    assert_eq!(exact.to_string().len(), 5120);
    let c64 = "c".repeat(64);
    assert_eq!(
        h.apns_send(APNS_TOKEN, &jwt, &[("apns-collapse-id", c64.as_str())], &exact).await.status(),
        200
    );

    // Empty body and duplicate headers.
    let empty =
        h.h2.post(format!("{}/3/device/{APNS_TOKEN}", h.base))
            .header("authorization", format!("bearer {jwt}"))
            .header("apns-topic", "com.example.phone.voip")
            .send()
            .await
            .unwrap();
    assert_eq!(reason(empty).await, (400, json!({"reason": "PayloadEmpty"})));
    let dup =
        h.h2.post(format!("{}/3/device/{APNS_TOKEN}", h.base))
            .header("authorization", format!("bearer {jwt}"))
            .header("apns-topic", "com.example.phone.voip")
            .header("apns-topic", "com.example.other.voip")
            .body("{}")
            .send()
            .await
            .unwrap();
    assert_eq!(reason(dup).await, (400, json!({"reason": "DuplicateHeaders"})));
    assert_eq!(h.sim.delivered(APNS_TOKEN).len(), 1);
}

#[tokio::test]
async fn scripted_outcomes_on_the_wire() {
    let h = start().await;
    let jwt = apns_jwt(&h.sim.apns_key(), h.sim.now_unix());
    let t = |n: u8| format!("{n:02x}").repeat(32);

    h.sim.script(Provider::Apns, &t(1), Script::always(Outcome::Unregistered));
    let before = h.sim.now_unix() * 1000;
    let (s, b) = reason(h.apns_send(&t(1), &jwt, &[], &voip_payload()).await).await;
    assert_eq!((s, b["reason"].as_str()), (410, Some("Unregistered")));
    assert!(b["timestamp"].as_i64().unwrap() >= before);

    h.sim.script(Provider::Apns, &t(2), [Outcome::BadDeviceToken, Outcome::Status(503), Outcome::Ok]);
    assert_eq!(
        reason(h.apns_send(&t(2), &jwt, &[], &voip_payload()).await).await,
        (400, json!({"reason": "BadDeviceToken"}))
    );
    assert_eq!(
        reason(h.apns_send(&t(2), &jwt, &[], &voip_payload()).await).await,
        (503, json!({"reason": "ServiceUnavailable"}))
    );
    assert_eq!(h.apns_send(&t(2), &jwt, &[], &voip_payload()).await.status(), 200);
    assert_eq!(h.sim.delivered(&t(2)).len(), 1);

    h.sim.script(Provider::Apns, &t(3), [Outcome::RetryAfter(429, Duration::from_millis(2500))]);
    let r = h.apns_send(&t(3), &jwt, &[], &voip_payload()).await;
    assert_eq!(r.headers()["retry-after"], "3");
    assert!(r.headers().contains_key("apns-id"));
    assert_eq!(reason(r).await, (429, json!({"reason": "TooManyRequests"})));

    h.sim.script(Provider::Apns, &t(4), Script::always(Outcome::Status(500)));
    for _ in 0..2 {
        assert_eq!(
            reason(h.apns_send(&t(4), &jwt, &[], &voip_payload()).await).await,
            (500, json!({"reason": "InternalServerError"}))
        );
    }
    h.sim.script(Provider::Apns, &t(5), [Outcome::Reason(410, "ExpiredToken".into())]);
    let (s, b) = reason(h.apns_send(&t(5), &jwt, &[], &voip_payload()).await).await;
    assert_eq!((s, b["reason"].as_str(), b["timestamp"].is_i64()), (410, Some("ExpiredToken"), true));

    // The same token at the other provider is unaffected.
    assert!(h.sim.attempts(Provider::Fcm, &t(1)).is_empty());
    let log = h.sim.attempts(Provider::Apns, &t(2));
    assert_eq!(log.iter().map(|r| r.reply.status.unwrap()).collect::<Vec<_>>(), [400, 503, 200]);
    assert!(log.iter().all(|r| r.reply.scripted));
}

#[tokio::test(start_paused = true)]
async fn hang_and_latency() {
    let h = start().await;
    let jwt = apns_jwt(&h.sim.apns_key(), h.sim.now_unix());
    h.sim.script(Provider::Apns, APNS_TOKEN, Script::new([Outcome::Hang]).latency(Duration::from_millis(50)));
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let err = impatient
        .post(format!("{}/3/device/{APNS_TOKEN}", h.base))
        .header("authorization", format!("bearer {jwt}"))
        .header("apns-push-type", "voip")
        .header("apns-topic", "com.example.phone.voip")
        .body("{}")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    let started = tokio::time::Instant::now();
    assert_eq!(h.apns_send(APNS_TOKEN, &jwt, &[], &voip_payload()).await.status(), 200);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(50) && waited < Duration::from_secs(1), "{waited:?}");
    assert_eq!(h.sim.delivered(APNS_TOKEN).len(), 1);
}

#[tokio::test]
async fn near_misses() {
    let h = start().await;
    let r = h.h2.get(format!("{}/3/device/{APNS_TOKEN}", h.base)).send().await.unwrap();
    assert_eq!(reason(r).await, (405, json!({"reason": "MethodNotAllowed"})));
    let r = h.h2.post(format!("{}/3/device/", h.base)).body("{}").send().await.unwrap();
    assert_eq!(reason(r).await, (400, json!({"reason": "MissingDeviceToken"})));
    let r = h.h2.post(format!("{}/3/devices/{APNS_TOKEN}", h.base)).body("{}").send().await.unwrap();
    assert_eq!(reason(r).await, (404, json!({"reason": "BadPath"})));
    assert_eq!(h.sim.requests().len(), 3);
}
