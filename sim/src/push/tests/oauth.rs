//! `POST /token` and the FCM bearer check.

use std::time::Duration;

use serde_json::{Value, json};

use super::{FCM_SCOPE, Harness, b64, call_message, rs256, start};
use crate::push::{Provider, RequestKind};

const GRANT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";

async fn grant_with(h: &Harness, header: Value, claims: Value) -> (u16, Value) {
    let sa = h.service_account();
    let assertion = rs256(sa["private_key"].as_str().unwrap(), &header, &claims);
    h.grant(format!("grant_type={GRANT}&assertion={assertion}")).await
}

#[tokio::test]
async fn service_account_json_has_the_fields_google_auth_reads() {
    let h = start().await;
    let sa = h.service_account();
    assert_eq!(sa["type"], "service_account");
    assert_eq!(sa["project_id"], "callfleet-sim");
    assert_eq!(sa["token_uri"], format!("{}/token", h.base));
    assert!(sa["private_key"].as_str().unwrap().starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert_eq!(sa["private_key_id"].as_str().unwrap().len(), 40);
    assert!(sa["client_email"].as_str().unwrap().ends_with(".iam.gserviceaccount.com"));
    // Same seed, same key: a restarted simulator keeps accepting a saved key file.
    assert_eq!(
        crate::push::PushSim::new(42).service_account_json(&h.base),
        h.sim.service_account_json(&h.base)
    );
}

#[tokio::test]
async fn jwt_bearer_grant_issues_a_token_fcm_accepts() {
    let h = start().await;
    let token = h.access_token().await;
    assert!(token.starts_with("ya29."));
    let r = h.fcm_send(&token, &call_message("tok-a")).await;
    assert_eq!(r.status(), 200);

    let log = h.sim.requests();
    assert_eq!(log[0].kind, RequestKind::OauthToken);
    assert_eq!(log[0].reply.status, Some(200));
    assert_eq!(log[0].body["assertion_claims"]["scope"], FCM_SCOPE);
    assert_eq!(log[0].body["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
    assert_eq!(log[1].kind, RequestKind::FcmSend);
}

#[tokio::test]
async fn token_response_shape() {
    let h = start().await;
    let sa = h.service_account();
    let assertion = h.assertion(&sa, h.sim.now_unix());
    let (status, body) = h.grant(format!("grant_type={GRANT}&assertion={assertion}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body.as_object().unwrap().len(), 3);
}

#[tokio::test]
async fn token_endpoint_refuses_like_google() {
    let h = start().await;
    let sa = h.service_account();
    let now = h.sim.now_unix();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": sa["private_key_id"]});
    let claims = |f: &dyn Fn(&mut Value)| {
        let mut c = json!({"iss": sa["client_email"], "scope": FCM_SCOPE, "aud": sa["token_uri"], "iat": now, "exp": now + 3600});
        f(&mut c);
        c
    };
    let cases: Vec<(&str, Value, Value, &str)> = vec![
        (
            "wrong iss",
            header.clone(),
            claims(&|c| c["iss"] = json!("x@y.iam.gserviceaccount.com")),
            "invalid_grant",
        ),
        (
            "wrong aud",
            header.clone(),
            claims(&|c| c["aud"] = json!("http://elsewhere/token")),
            "invalid_grant",
        ),
        (
            "expired",
            header.clone(),
            claims(&|c| {
                c["iat"] = json!(now - 7200);
                c["exp"] = json!(now - 3600);
            }),
            "invalid_grant",
        ),
        ("too long-lived", header.clone(), claims(&|c| c["exp"] = json!(now + 7200)), "invalid_grant"),
        (
            "from the future",
            header.clone(),
            claims(&|c| {
                c["iat"] = json!(now + 900);
                c["exp"] = json!(now + 1800);
            }),
            "invalid_grant",
        ),
        (
            "no scope",
            header.clone(),
            claims(&|c| {
                c.as_object_mut().unwrap().remove("scope");
            }),
            "invalid_scope",
        ),
        (
            "other scope",
            header.clone(),
            claims(&|c| c["scope"] = json!("https://www.googleapis.com/auth/userinfo.email")),
            "invalid_scope",
        ),
        ("wrong kid", json!({"alg": "RS256", "kid": "0000"}), claims(&|_| {}), "invalid_grant"),
    ];
    for (name, header, claims, code) in cases {
        let (status, body) = grant_with(&h, header, claims).await;
        assert_eq!((status, body["error"].as_str()), (400, Some(code)), "{name}: {body}");
        assert!(body["error_description"].is_string(), "{name}");
    }

    // Google's real audience is accepted too, and cloud-platform is a valid scope.
    let ok = claims(&|c| {
        c["aud"] = json!("https://oauth2.googleapis.com/token");
        c["scope"] = json!("https://www.googleapis.com/auth/cloud-platform");
    });
    assert_eq!(grant_with(&h, header.clone(), ok).await.0, 200);

    // Tampered signature, alg none, garbage, wrong grant type, no assertion.
    let good = h.assertion(&sa, now);
    let (input, sig) = good.rsplit_once('.').unwrap();
    let mut sig_bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
    sig_bytes[10] ^= 1;
    let tampered = format!("{input}.{}", b64(&sig_bytes));
    let none_alg = format!("{}.{}.", b64(br#"{"alg":"none"}"#), input.split_once('.').unwrap().1);
    for (name, form, code, desc) in [
        (
            "tampered",
            format!("grant_type={GRANT}&assertion={tampered}"),
            "invalid_grant",
            Some("Invalid JWT Signature."),
        ),
        (
            "alg none",
            format!("grant_type={GRANT}&assertion={none_alg}"),
            "invalid_grant",
            Some("Invalid JWT Signature."),
        ),
        ("garbage", format!("grant_type={GRANT}&assertion=abc"), "invalid_grant", None),
        (
            "grant type",
            format!("grant_type=client_credentials&assertion={good}"),
            "unsupported_grant_type",
            None,
        ),
        ("no assertion", format!("grant_type={GRANT}"), "invalid_request", None),
    ] {
        let (status, body) = h.grant(form).await;
        assert_eq!((status, body["error"].as_str()), (400, Some(code)), "{name}: {body}");
        if let Some(desc) = desc {
            assert_eq!(body["error_description"], desc, "{name}");
        }
    }
    let refused = h.sim.requests().iter().filter(|r| r.reply.status == Some(400)).count();
    assert_eq!(refused, 13);
}

#[tokio::test]
async fn fcm_rejects_missing_unknown_expired_and_revoked_tokens() {
    let h = start().await;
    let msg = call_message("tok-b");

    let r = h
        .http
        .post(format!("{}/v1/projects/callfleet-sim/messages:send", h.base))
        .json(&msg)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Request is missing required authentication credential")
    );

    let body: Value = h.fcm_send("ya29.made-up", &msg).await.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Request had invalid authentication credentials")
    );

    let token = h.access_token().await;
    h.sim.revoke_access_tokens();
    assert_eq!(h.fcm_send(&token, &msg).await.status(), 401);
    // Refused requests consume no script step and deliver nothing.
    assert!(h.sim.delivered("tok-b").is_empty());
    assert!(h.sim.attempts(Provider::Fcm, "tok-b").iter().all(|r| !r.reply.scripted));
}

#[tokio::test(start_paused = true)]
async fn access_tokens_expire_after_3599_seconds_of_sim_time() {
    let h = start().await;
    let token = h.access_token().await;
    tokio::time::advance(Duration::from_secs(3598)).await;
    assert_eq!(h.fcm_send(&token, &call_message("tok-c")).await.status(), 200);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(h.fcm_send(&token, &call_message("tok-c")).await.status(), 401);
    // A fresh grant minted from the simulator's clock works again.
    let fresh = h.access_token().await;
    assert_eq!(h.fcm_send(&fresh, &call_message("tok-c")).await.status(), 200);
}
