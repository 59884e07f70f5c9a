//! APNs over HTTP/2: VoIP pushes with an ES256 provider token.

use std::time::{Duration, Instant};

use fleet_domain::push::{ProviderOutcome, PushMessage, classify_apns};
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey as _;
use serde_json::json;
use tokio::sync::Mutex;

use crate::{PushConfigError, REQUEST_TIMEOUT, jwt, retry_after, transport_failure};

const DEFAULT_API_BASE: &str = "https://api.push.apple.com";
/// Apple: refresh no more than once every 20 minutes and no less than once every 60.
const TOKEN_LIFETIME: Duration = Duration::from_secs(40 * 60);

/// What an APNs client needs.
#[derive(Clone)]
pub struct ApnsConfig {
    /// The `.p8` key (PKCS#8 PEM, P-256).
    pub key_pem: String,
    pub key_id: String,
    pub team_id: String,
    /// The app's bundle id; VoIP pushes go to `<bundle>.voip`.
    pub topic: String,
    pub api_base: Option<String>,
}

struct ProviderToken {
    value: String,
    minted: Instant,
}

/// Sends APNs VoIP pushes; share it (`Arc`): one HTTP/2 connection pool, one provider token.
pub struct ApnsClient {
    signer: SigningKey,
    key_id: String,
    team_id: String,
    topic: String,
    base: String,
    http: reqwest::Client,
    token: Mutex<Option<ProviderToken>>,
}

impl ApnsClient {
    pub fn new(config: ApnsConfig) -> Result<Self, PushConfigError> {
        let signer = SigningKey::from_pkcs8_pem(&config.key_pem)
            .map_err(|e| PushConfigError::ApnsKey(e.to_string()))?;
        let base = config.api_base.as_deref().unwrap_or(DEFAULT_API_BASE).trim_end_matches('/').to_owned();
        let mut builder = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
        // Plain http (the simulator) needs HTTP/2 with prior knowledge; https negotiates h2 by ALPN.
        if base.starts_with("http://") {
            builder = builder.http2_prior_knowledge();
        }
        let topic =
            if config.topic.ends_with(".voip") { config.topic } else { format!("{}.voip", config.topic) };
        Ok(Self {
            signer,
            key_id: config.key_id,
            team_id: config.team_id,
            topic,
            base,
            http: builder.build()?,
            token: Mutex::new(None),
        })
    }

    /// Sends `message` to the VoIP device token (hex).
    pub async fn send(&self, device_token: &str, message: &PushMessage) -> ProviderOutcome {
        // The token becomes a path segment: a stored one that is not hex is never sent (and is
        // pruned like a token APNs refused).
        if !fleet_domain::push::is_apns_device_token(device_token) {
            return ProviderOutcome::PruneToken { reason: "not a hex APNs device token".into() };
        }
        let outcome = self.send_once(device_token, message, false).await;
        if matches!(outcome, ProviderOutcome::RefreshAuth { .. }) {
            return match self.send_once(device_token, message, true).await {
                ProviderOutcome::RefreshAuth { reason } => ProviderOutcome::Permanent { reason },
                other => other,
            };
        }
        outcome
    }

    async fn send_once(
        &self,
        device_token: &str,
        message: &PushMessage,
        fresh_token: bool,
    ) -> ProviderOutcome {
        let auth = self.provider_token(fresh_token).await;
        let url = format!("{}/3/device/{device_token}", self.base);
        let request = self
            .http
            .post(url)
            .header("authorization", format!("bearer {auth}"))
            .header("apns-push-type", "voip")
            .header("apns-topic", &self.topic)
            .header("apns-priority", "10")
            .header("apns-expiration", "0")
            .header("apns-collapse-id", message.collapse_id())
            .json(&message.apns_payload());
        match request.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let after = retry_after(resp.headers());
                let bytes = resp.bytes().await.unwrap_or_default();
                classify_apns(status, &bytes, after)
            }
            Err(e) => transport_failure(e),
        }
    }

    /// The cached provider token, re-signed after [`TOKEN_LIFETIME`] or when `fresh` is asked.
    async fn provider_token(&self, fresh: bool) -> String {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| !fresh && t.minted.elapsed() < TOKEN_LIFETIME) {
            return token.value.clone();
        }
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let claims = json!({"iss": self.team_id, "iat": chrono::Utc::now().timestamp()});
        let input = jwt::signing_input(&header, &claims);
        let signature: p256::ecdsa::Signature = self.signer.sign(input.as_bytes());
        let value = jwt::finish(input, &signature.to_bytes());
        *cached = Some(ProviderToken { value: value.clone(), minted: Instant::now() });
        value
    }
}
