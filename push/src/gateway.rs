//! The push pool's way out: one lane per provider with its client, its rate limiter and its
//! circuit breaker.
//!
//! Order of a send: the breaker (open → refused at once as `Retry` after the remaining cooldown,
//! so the job is rescheduled instead of hammering a failing service), then the rate limiter
//! (shared across replicas through Redis, local when Redis is absent or down), then the provider.
//! Only provider failures (5xx, timeouts, transport errors) count against the breaker; a dead
//! token or a device's 429 does not. The breaker state is the gauge
//! `callfleet_push_breaker_state{provider}` (0 closed, 1 half-open, 2 open). A provider that is
//! not configured answers `Permanent` (`not_configured`): the job goes to the dead set, where an
//! operator can retry it once the keys are in place.

use std::sync::Mutex;
use std::time::Instant;

use fleet_domain::breaker::CircuitBreaker;
use fleet_domain::push::{Provider, ProviderOutcome, PushMessage};
use fleet_platform::{Config, RateLimiter};

use crate::{ApnsClient, ApnsConfig, FcmClient, PushConfigError, ServiceAccount};

/// Consecutive provider failures that open a breaker.
const BREAKER_THRESHOLD: u32 = 10;
/// How long an open breaker refuses sends before letting one probe through.
const BREAKER_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(10);

struct Lane<C> {
    client: C,
    limiter: RateLimiter,
    breaker: Mutex<CircuitBreaker>,
}

impl<C> Lane<C> {
    fn new(client: C, limiter: RateLimiter) -> Self {
        Self {
            client,
            limiter,
            breaker: Mutex::new(CircuitBreaker::new(BREAKER_THRESHOLD, BREAKER_COOLDOWN)),
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, CircuitBreaker> {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the breaker; `Err` is the outcome of a refused send.
    fn admit(&self, provider: Provider) -> Result<(), ProviderOutcome> {
        let now = Instant::now();
        let mut breaker = self.breaker();
        let allowed = breaker.allow(now);
        publish(provider, &breaker, now);
        if allowed {
            Ok(())
        } else {
            Err(ProviderOutcome::Retry { after: Some(breaker.retry_in(now)), reason: "circuit_open".into() })
        }
    }

    fn settle(&self, provider: Provider, outcome: &ProviderOutcome) {
        let now = Instant::now();
        let mut breaker = self.breaker();
        if outcome.is_provider_failure() {
            breaker.on_failure(now);
        } else {
            breaker.on_success();
        }
        publish(provider, &breaker, now);
    }
}

fn publish(provider: Provider, breaker: &CircuitBreaker, now: Instant) {
    metrics::gauge!("callfleet_push_breaker_state", "provider" => provider.as_str())
        .set(breaker.state(now).as_gauge());
}

/// FCM and APNs behind their limits and breakers; share one per process (`Arc`).
pub struct PushGateway {
    fcm: Option<Lane<FcmClient>>,
    apns: Option<Lane<ApnsClient>>,
}

impl PushGateway {
    pub fn new(fcm: Option<(FcmClient, RateLimiter)>, apns: Option<(ApnsClient, RateLimiter)>) -> Self {
        Self {
            fcm: fcm.map(|(client, limiter)| Lane::new(client, limiter)),
            apns: apns.map(|(client, limiter)| Lane::new(client, limiter)),
        }
    }

    /// The providers the configuration names: FCM with `FCM_SERVICE_ACCOUNT` (JSON, or a path to
    /// it) and `FCM_API_BASE`; APNs with `APNS_KEY_PATH`, `APNS_KEY_ID`, `APNS_TEAM_ID`,
    /// `APNS_TOPIC` (all four, or none) and `APNS_API_BASE`.
    pub fn from_config(config: &Config) -> Result<Self, PushConfigError> {
        let limiter = |name: &str, rate: u32| {
            RateLimiter::from_config(config, name, rate).map_err(|e| PushConfigError::Config(e.to_string()))
        };
        let fcm = match &config.fcm_service_account {
            Some(account) => {
                let account = ServiceAccount::parse(account.expose())?;
                Some((
                    FcmClient::new(account, config.fcm_api_base.as_deref())?,
                    limiter("fcm", config.fcm_rate_limit)?,
                ))
            }
            None => None,
        };
        let apns =
            match (&config.apns_key_path, &config.apns_key_id, &config.apns_team_id, &config.apns_topic) {
                (Some(path), Some(key_id), Some(team_id), Some(topic)) => {
                    let key_pem = std::fs::read_to_string(path)
                        .map_err(|e| PushConfigError::ApnsKey(format!("{}: {e}", path.display())))?;
                    let client = ApnsClient::new(ApnsConfig {
                        key_pem,
                        key_id: key_id.clone(),
                        team_id: team_id.clone(),
                        topic: topic.clone(),
                        api_base: config.apns_api_base.clone(),
                    })?;
                    Some((client, limiter("apns", config.apns_rate_limit)?))
                }
                (None, None, None, None) => None,
                _ => {
                    return Err(PushConfigError::Config(
                        "APNs needs all of APNS_KEY_PATH, APNS_KEY_ID, APNS_TEAM_ID and APNS_TOPIC".into(),
                    ));
                }
            };
        Ok(Self::new(fcm, apns))
    }

    /// Sends `message` to `token` through `provider`. `now` is Unix seconds (FCM's TTL).
    pub async fn send(
        &self,
        provider: Provider,
        token: &str,
        message: &PushMessage,
        now: i64,
    ) -> ProviderOutcome {
        match provider {
            Provider::Fcm => through(self.fcm.as_ref(), provider, |c| c.send(token, message, now)).await,
            Provider::Apns => through(self.apns.as_ref(), provider, |c| c.send(token, message)).await,
        }
    }
}

/// Breaker, then limiter, then the provider call, then the breaker's verdict.
async fn through<'a, C, F, Fut>(lane: Option<&'a Lane<C>>, provider: Provider, send: F) -> ProviderOutcome
where
    F: FnOnce(&'a C) -> Fut,
    Fut: std::future::Future<Output = ProviderOutcome>,
{
    let Some(lane) = lane else { return ProviderOutcome::Permanent { reason: "not_configured".into() } };
    if let Err(refused) = lane.admit(provider) {
        return refused;
    }
    lane.limiter.acquire().await;
    let outcome = send(&lane.client).await;
    lane.settle(provider, &outcome);
    outcome
}
