//! FCM HTTP v1: OAuth2 access token from a service account, then `messages:send`.

use std::time::{Duration, Instant};

use fleet_domain::push::{ProviderOutcome, PushMessage, classify_fcm};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use tokio::sync::Mutex;

use crate::{PushConfigError, REQUEST_TIMEOUT, jwt, retry_after, transport_failure};

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const DEFAULT_API_BASE: &str = "https://fcm.googleapis.com";
/// Refresh when less than this is left (google-auth's threshold).
const REFRESH_MARGIN: Duration = Duration::from_secs(225);

/// The fields of a Google service-account key file that the JWT-bearer grant needs.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    pub private_key_id: String,
    pub private_key: String,
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("private_key", &"***")
            .finish()
    }
}

impl ServiceAccount {
    /// Parses the key file's JSON (the value of `FCM_SERVICE_ACCOUNT`, or the file it names).
    pub fn parse(json_or_path: &str) -> Result<Self, PushConfigError> {
        let text = if json_or_path.trim_start().starts_with('{') {
            json_or_path.to_owned()
        } else {
            std::fs::read_to_string(json_or_path)
                .map_err(|e| PushConfigError::ServiceAccount(e.to_string()))?
        };
        serde_json::from_str(&text).map_err(|e| PushConfigError::ServiceAccount(e.to_string()))
    }
}

struct AccessToken {
    value: String,
    refresh_at: Instant,
}

/// Sends FCM messages; cheap to share (`Arc`), the access token is cached inside.
pub struct FcmClient {
    account: ServiceAccount,
    signer: SigningKey<Sha256>,
    send_url: String,
    http: reqwest::Client,
    token: Mutex<Option<AccessToken>>,
}

impl FcmClient {
    pub fn new(account: ServiceAccount, api_base: Option<&str>) -> Result<Self, PushConfigError> {
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&account.private_key)
            .map_err(|e| PushConfigError::ServiceAccount(format!("private_key: {e}")))?;
        let base = api_base.unwrap_or(DEFAULT_API_BASE).trim_end_matches('/');
        let send_url = format!("{base}/v1/projects/{}/messages:send", account.project_id);
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build()?;
        Ok(Self { signer: SigningKey::<Sha256>::new(key), account, send_url, http, token: Mutex::new(None) })
    }

    /// Sends `message` to `token`. `now` is Unix seconds (for the TTL of an incoming call).
    pub async fn send(&self, token: &str, message: &PushMessage, now: i64) -> ProviderOutcome {
        let body = message.fcm_body(token, now);
        let outcome = self.send_once(&body).await;
        if matches!(outcome, ProviderOutcome::RefreshAuth { .. }) {
            *self.token.lock().await = None;
            return match self.send_once(&body).await {
                ProviderOutcome::RefreshAuth { reason } => ProviderOutcome::Permanent { reason },
                other => other,
            };
        }
        outcome
    }

    async fn send_once(&self, body: &serde_json::Value) -> ProviderOutcome {
        let access = match self.access_token().await {
            Ok(access) => access,
            Err(outcome) => return outcome,
        };
        match self.http.post(&self.send_url).bearer_auth(access).json(body).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let after = retry_after(resp.headers());
                let bytes = resp.bytes().await.unwrap_or_default();
                classify_fcm(status, &bytes, after)
            }
            Err(e) => transport_failure(e),
        }
    }

    /// The cached access token, or a fresh one from the token endpoint.
    async fn access_token(&self) -> Result<String, ProviderOutcome> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.value.clone());
        }
        let now = chrono::Utc::now().timestamp();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.account.private_key_id});
        let claims = json!({
            "iss": self.account.client_email, "scope": SCOPE, "aud": self.account.token_uri,
            "iat": now, "exp": now + 3600,
        });
        let input = jwt::signing_input(&header, &claims);
        let assertion = jwt::finish(input.clone(), &self.signer.sign(input.as_bytes()).to_vec());
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        let body = form_urlencoded(&form);
        let resp = self
            .http
            .post(&self.account.token_uri)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(transport_failure)?;
        let status = resp.status();
        #[derive(Deserialize)]
        struct Grant {
            access_token: String,
            expires_in: u64,
        }
        if !status.is_success() {
            tracing::warn!(%status, "FCM OAuth token endpoint refused the grant.");
            let reason = format!("oauth_{}", status.as_u16());
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                ProviderOutcome::Retry { after: retry_after(resp.headers()), reason }
            } else {
                ProviderOutcome::Permanent { reason }
            });
        }
        let grant: Grant = resp.json().await.map_err(|e| {
            tracing::warn!(error = %e, "FCM OAuth token endpoint answered something unreadable.");
            ProviderOutcome::Retry { after: None, reason: "oauth_unreadable".into() }
        })?;
        let lifetime = Duration::from_secs(grant.expires_in).saturating_sub(REFRESH_MARGIN);
        *cached =
            Some(AccessToken { value: grant.access_token.clone(), refresh_at: Instant::now() + lifetime });
        Ok(grant.access_token)
    }
}

/// `application/x-www-form-urlencoded` of a few pairs (values here are URL-safe but for `:`).
fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect::<Vec<_>>().join("&")
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
