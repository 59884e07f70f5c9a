//! The FCM and APNs clients against the carrier simulator's push endpoints: the real OAuth and
//! provider-token paths, real HTTP/2 for APNs, and each error semantics of the reference.

use std::time::Duration;

use fleet_domain::push::{CallEndedReason, ProviderOutcome, PushMessage};
use fleet_push::{ApnsClient, ApnsConfig, FcmClient, ServiceAccount};
use fleet_sim::push::{Outcome, Provider, PushSim, router};

async fn serve(sim: &PushSim) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(sim.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn ended() -> PushMessage {
    PushMessage::CallEnded {
        call_session_id: "s1".into(),
        org_id: "org-1".into(),
        reason: CallEndedReason::AnsweredElsewhere,
    }
}

fn ringing(ends: i64) -> PushMessage {
    PushMessage::IncomingCall {
        call_session_id: "s2".into(),
        call_control_id: "v3:c".into(),
        caller_number: "+13125550101".into(),
        caller_name: Some("Ada".into()),
        org_id: "org-1".into(),
        org_name: "Acme".into(),
        channel_number: "+13125550199".into(),
        ring_ends_at: ends,
    }
}

async fn fcm(sim: &PushSim) -> FcmClient {
    let base = serve(sim).await;
    let account = ServiceAccount::parse(&sim.service_account_json(&base)).unwrap();
    FcmClient::new(account, Some(&base)).unwrap()
}

async fn apns(sim: &PushSim) -> ApnsClient {
    let base = serve(sim).await;
    let key = sim.apns_key();
    ApnsClient::new(ApnsConfig {
        key_pem: key.private_key_pem,
        key_id: key.key_id,
        team_id: key.team_id,
        topic: "com.example.phone".into(),
        api_base: Some(base),
    })
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn fcm_delivers_data_messages_with_one_cached_access_token() {
    let sim = PushSim::new(7);
    let client = fcm(&sim).await;
    assert_eq!(client.send("tok-a", &ringing(now() + 30), now()).await, ProviderOutcome::Delivered);
    assert_eq!(client.send("tok-a", &ended(), now()).await, ProviderOutcome::Delivered);
    let delivered = sim.delivered("tok-a");
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[0].data["type"], "incoming_call");
    assert_eq!(delivered[1].data["reason"], "answered_elsewhere");
    let token_requests = sim.requests().iter().filter(|r| r.path == "/token").count();
    assert_eq!(token_requests, 1, "the access token is cached");
}

#[tokio::test]
async fn fcm_errors_are_classified() {
    let sim = PushSim::new(7);
    let client = fcm(&sim).await;
    sim.script(Provider::Fcm, "gone", Outcome::Unregistered);
    sim.script(Provider::Fcm, "busy", vec![Outcome::Status(503)]);
    sim.script(Provider::Fcm, "slow", Outcome::RetryAfter(503, Duration::from_secs(3)));
    sim.script(Provider::Fcm, "bad", Outcome::BadDeviceToken);
    assert!(matches!(client.send("gone", &ended(), now()).await, ProviderOutcome::PruneToken { .. }));
    assert!(matches!(client.send("busy", &ended(), now()).await, ProviderOutcome::Retry { after: None, .. }));
    assert_eq!(client.send("busy", &ended(), now()).await, ProviderOutcome::Delivered, "503 then 200");
    assert!(matches!(client.send("slow", &ended(), now()).await,
        ProviderOutcome::Retry { after: Some(d), .. } if d == Duration::from_secs(3)));
    assert!(matches!(client.send("bad", &ended(), now()).await, ProviderOutcome::PruneToken { .. }));
}

#[tokio::test]
async fn fcm_refreshes_a_revoked_access_token_once() {
    let sim = PushSim::new(7);
    let client = fcm(&sim).await;
    assert_eq!(client.send("tok", &ended(), now()).await, ProviderOutcome::Delivered);
    sim.revoke_access_tokens();
    assert_eq!(client.send("tok", &ended(), now()).await, ProviderOutcome::Delivered);
    assert_eq!(sim.requests().iter().filter(|r| r.path == "/token").count(), 2);
}

#[tokio::test]
async fn apns_sends_voip_pushes_over_http2() {
    let sim = PushSim::new(9);
    let client = apns(&sim).await;
    let token = "aabbcc".repeat(4);
    assert_eq!(client.send(&token, &ringing(now() + 30)).await, ProviderOutcome::Delivered);
    let attempts = sim.attempts(Provider::Apns, &token);
    assert_eq!(attempts.len(), 1);
    let req = &attempts[0];
    assert!(req.http_version.contains('2'), "HTTP/2: {}", req.http_version);
    let header = |name: &str| req.headers.get(name).cloned();
    assert_eq!(header("apns-push-type").as_deref(), Some("voip"));
    assert_eq!(header("apns-topic").as_deref(), Some("com.example.phone.voip"));
    assert_eq!(header("apns-priority").as_deref(), Some("10"));
    assert_eq!(header("apns-expiration").as_deref(), Some("0"));
}

#[tokio::test]
async fn apns_errors_are_classified() {
    let sim = PushSim::new(9);
    let client = apns(&sim).await;
    let [dead, bad, down] = ["dead01", "0bad02", "d0e003"].map(|t| t.repeat(4));
    sim.script(Provider::Apns, &dead, Outcome::Unregistered);
    sim.script(Provider::Apns, &bad, Outcome::BadDeviceToken);
    sim.script(Provider::Apns, &down, Outcome::Status(500));
    assert!(matches!(client.send(&dead, &ended()).await, ProviderOutcome::PruneToken { .. }));
    assert!(matches!(client.send(&bad, &ended()).await, ProviderOutcome::PruneToken { .. }));
    let down = client.send(&down, &ended()).await;
    assert!(matches!(down, ProviderOutcome::Retry { .. }), "{down:?}");
    // A stored token that is not hex would become part of the request path: never sent, pruned.
    let before = sim.requests().len();
    let odd = client.send("../../3/device/aabb", &ended()).await;
    assert!(matches!(odd, ProviderOutcome::PruneToken { .. }), "{odd:?}");
    assert_eq!(sim.requests().len(), before, "no request went out");
}
