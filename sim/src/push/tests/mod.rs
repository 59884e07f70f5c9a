//! End-to-end tests of the push simulator over real loopback HTTP (HTTP/1.1 and h2c).
//!
//! Each test binds `127.0.0.1:0`, serves [`router`] + [`control_router`] with connect info (so
//! APNs token tracking is per connection, as at Apple) and drives it with reqwest, proxies off.
//! Tests that involve time run on tokio's paused clock; nothing sleeps to synchronise.

mod apns;
mod control;
mod fcm;
mod oauth;

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey as _;
use rsa::signature::SignatureEncoding as _;
use serde_json::{Value, json};

use super::{ApnsKeyInfo, PushSim, control_router, router};

pub(super) const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// A well-formed APNs device token (32 bytes as hex).
pub(super) const APNS_TOKEN: &str = "6c7f2a0b9d1e3f4a5b6c7d8e9f00112233445566778899aabbccddeeff001122";

pub(super) struct Harness {
    pub(super) sim: PushSim,
    pub(super) base: String,
    /// HTTP/1.1 client.
    pub(super) http: reqwest::Client,
    /// h2c client (HTTP/2 prior knowledge), pooled connections kept forever.
    pub(super) h2: reqwest::Client,
}

pub(super) async fn start() -> Harness {
    let sim = PushSim::new(42);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let app = router(sim.clone()).merge(control_router(sim.clone()));
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
    });
    Harness { sim, base: format!("http://{addr}"), http: client(false), h2: client(true) }
}

pub(super) fn client(h2: bool) -> reqwest::Client {
    let b = reqwest::Client::builder().no_proxy().pool_idle_timeout(None);
    let b = if h2 { b.http2_prior_knowledge() } else { b };
    b.build().expect("reqwest client")
}

pub(super) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS over `header`/`claims` signed RS256 with a PKCS#8 PEM RSA key.
pub(super) fn rs256(pem: &str, header: &Value, claims: &Value) -> String {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("service-account key parses");
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let sig = signer.sign(input.as_bytes()).to_vec();
    format!("{input}.{}", b64(&sig))
}

/// An APNs provider token signed ES256 with the simulator's key.
pub(super) fn apns_jwt(key: &ApnsKeyInfo, iat: i64) -> String {
    let signing = p256::ecdsa::SigningKey::from_pkcs8_pem(&key.private_key_pem).expect("p8 parses");
    let header = json!({"alg": "ES256", "kid": key.key_id});
    let claims = json!({"iss": key.team_id, "iat": iat});
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let sig: p256::ecdsa::Signature = signing.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

impl Harness {
    /// The service-account JSON, parsed.
    pub(super) fn service_account(&self) -> Value {
        serde_json::from_str(&self.sim.service_account_json(&self.base)).expect("service-account JSON")
    }

    /// The assertion google-auth would build from the service account at simulator time `iat`.
    pub(super) fn assertion(&self, sa: &Value, iat: i64) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": sa["private_key_id"]});
        let claims = json!({"iss": sa["client_email"], "scope": FCM_SCOPE, "aud": sa["token_uri"],
            "iat": iat, "exp": iat + 3600});
        rs256(sa["private_key"].as_str().expect("private_key"), &header, &claims)
    }

    /// POST a raw form body to the `token_uri`.
    pub(super) async fn grant(&self, form: String) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/token", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .expect("token request");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// The whole OAuth flow: service account → assertion → access token.
    pub(super) async fn access_token(&self) -> String {
        let sa = self.service_account();
        let assertion = self.assertion(&sa, self.sim.now_unix());
        let (status, body) = self
            .grant(format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().expect("access_token").to_owned()
    }

    pub(super) async fn fcm_send(&self, access_token: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/projects/callfleet-sim/messages:send", self.base))
            .bearer_auth(access_token)
            .json(body)
            .send()
            .await
            .expect("fcm request")
    }

    /// A VoIP push over h2c with the given provider token. `extra` replaces the default header
    /// of the same name; an empty value removes it.
    pub(super) async fn apns_send(
        &self,
        token: &str,
        jwt: &str,
        extra: &[(&str, &str)],
        payload: &Value,
    ) -> reqwest::Response {
        let auth = format!("bearer {jwt}");
        let mut headers = vec![
            ("authorization", auth.as_str()),
            ("apns-push-type", "voip"),
            ("apns-topic", "com.example.phone.voip"),
            ("apns-priority", "10"),
            ("apns-expiration", "0"),
        ];
        for (k, v) in extra {
            headers.retain(|(n, _)| n != k);
            if !v.is_empty() {
                headers.push((k, v));
            }
        }
        let mut req = self.h2.post(format!("{}/3/device/{token}", self.base));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.body(payload.to_string()).send().await.expect("apns request")
    }
}

/// The reference FCM message of push.md for `token`.
pub(super) fn call_message(token: &str) -> Value {
    json!({"message": {"token": token,
        "data": {"type": "incoming_call", "call_id": "c_01JZ8Q4M2V3K", "caller": "+13125550101", "expires_at": "1767225630"},
        "android": {"priority": "high", "ttl": "30s", "collapse_key": "call-c_01JZ8Q4M2V3K"}}})
}
