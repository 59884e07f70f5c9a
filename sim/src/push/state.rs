//! Shared state behind [`super::PushSim`]: clock, keys, scripts, log, deliveries, observers.
//!
//! One `std::sync::Mutex<State>` guards everything mutable; handlers take it, decide, record and
//! drop it before any `.await` (so a paused tokio clock and many concurrent requests are safe).
//! A poisoned lock is recovered rather than propagated: the state is plain data that a panicking
//! test cannot leave half-updated in a way that matters to the next assertion.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::apns_auth::ProviderTokens;
use super::keys::{self, ApnsKey, RsaKeys};
use super::record::{DeliveredPush, RecordedRequest};
use super::script::{Outcome, Playing, Script};
use super::{PROJECT_ID, Provider};

/// The simulator's clock: wall time at start plus tokio time elapsed since (see `mod.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SimClock {
    base: Instant,
    base_unix_ms: i64,
}

/// One reading of [`SimClock`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    pub(crate) at: Instant,
    pub(crate) at_ms: u64,
    pub(crate) unix_ms: i64,
}

impl SimClock {
    fn new() -> Self {
        Self { base: Instant::now(), base_unix_ms: chrono::Utc::now().timestamp_millis() }
    }

    pub(crate) fn now(&self) -> Stamp {
        let at = Instant::now();
        let at_ms = at.duration_since(self.base).as_millis() as u64;
        Stamp { at, at_ms, unix_ms: self.base_unix_ms + at_ms as i64 }
    }

    pub(crate) fn unix_ms(&self) -> i64 {
        self.now().unix_ms
    }
}

/// Everything mutable.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) scripts: HashMap<(Provider, String), Playing>,
    pub(crate) default_latency: Duration,
    pub(crate) log: Vec<RecordedRequest>,
    pub(crate) delivered: Vec<DeliveredPush>,
    /// Issued OAuth access tokens → expiry (sim unix ms).
    pub(crate) access_tokens: HashMap<String, i64>,
    /// `token_uri`s handed out in service-account JSON (accepted as JWT `aud`).
    pub(crate) token_uris: BTreeSet<String>,
    pub(crate) provider_tokens: ProviderTokens,
    counter: u64,
}

impl State {
    /// The outcome for the next valid request of `token`, and its latency.
    pub(crate) fn next_outcome(&mut self, provider: Provider, token: &str) -> (Outcome, Duration) {
        let default = self.default_latency;
        match self.scripts.get_mut(&(provider, token.to_owned())) {
            Some(p) => (p.next(), p.latency.unwrap_or(default)),
            None => (Outcome::Ok, default),
        }
    }

    /// The latency for a request that is rejected before its script is consulted.
    pub(crate) fn latency_for(&self, provider: Provider, token: Option<&str>) -> Duration {
        token
            .and_then(|t| self.scripts.get(&(provider, t.to_owned())))
            .and_then(|p| p.latency)
            .unwrap_or(self.default_latency)
    }

    /// Append to the log, assigning the sequence number.
    pub(crate) fn record(&mut self, mut rec: RecordedRequest) {
        rec.seq = self.log.len() as u64;
        self.log.push(rec);
    }

    /// 32 fresh deterministic bytes (ids, access tokens).
    pub(crate) fn fresh_bytes(&mut self, seed: u64) -> [u8; 32] {
        self.counter += 1;
        let mut h = Sha256::new();
        h.update(b"fleet-sim push id");
        h.update(seed.to_le_bytes());
        h.update(self.counter.to_le_bytes());
        h.finalize().into()
    }
}

pub(crate) struct Inner {
    pub(crate) seed: u64,
    pub(crate) clock: SimClock,
    pub(crate) apns_key: ApnsKey,
    rsa: OnceLock<Arc<RsaKeys>>,
    state: Mutex<State>,
    pub(crate) events: broadcast::Sender<DeliveredPush>,
    observers: Mutex<Vec<mpsc::UnboundedSender<DeliveredPush>>>,
    callbacks: Mutex<Vec<DeliveryCallback>>,
}

/// A synchronous delivery hook (see `PushSim::on_delivered`).
pub(crate) type DeliveryCallback = Arc<dyn Fn(&DeliveredPush) + Send + Sync>;

impl Inner {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            seed,
            clock: SimClock::new(),
            apns_key: keys::apns_key(seed),
            rsa: OnceLock::new(),
            state: Mutex::new(State::default()),
            events: broadcast::channel(1024).0,
            observers: Mutex::new(Vec::new()),
            callbacks: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn observers(&self) -> MutexGuard<'_, Vec<mpsc::UnboundedSender<DeliveredPush>>> {
        self.observers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn add_callback(&self, f: DeliveryCallback) {
        self.callbacks.lock().unwrap_or_else(|p| p.into_inner()).push(f);
    }

    /// The RSA service-account key, generating it (blocking, ~1 s) on first use.
    pub(crate) fn rsa(&self) -> Arc<RsaKeys> {
        self.rsa.get_or_init(|| keys::rsa_keys(self.seed)).clone()
    }

    /// As [`Inner::rsa`], off the async worker threads when the key is not made yet.
    pub(crate) async fn rsa_async(self: &Arc<Self>) -> Arc<RsaKeys> {
        if let Some(k) = self.rsa.get() {
            return k.clone();
        }
        let inner = self.clone();
        match tokio::task::spawn_blocking(move || inner.rsa()).await {
            Ok(k) => k,
            // The blocking pool is gone (runtime shutting down): make it here.
            Err(_) => self.rsa(),
        }
    }

    pub(crate) fn set_script(&self, provider: Provider, token: &str, script: Script) {
        self.state().scripts.insert((provider, token.to_owned()), script.into());
    }

    pub(crate) fn clear_script(&self, provider: Provider, token: &str) {
        self.state().scripts.remove(&(provider, token.to_owned()));
    }

    pub(crate) fn reset(&self) {
        let mut s = self.state();
        s.scripts.clear();
        s.log.clear();
        s.delivered.clear();
        s.provider_tokens = ProviderTokens::default();
    }

    pub(crate) fn service_account_json(&self, token_uri_base: &str) -> String {
        let base = token_uri_base.trim_end_matches('/');
        let token_uri = format!("{base}/token");
        self.state().token_uris.insert(token_uri.clone());
        let rsa = self.rsa();
        let json = serde_json::json!({
            "type": "service_account",
            "project_id": PROJECT_ID,
            "private_key_id": rsa.key_id,
            "private_key": rsa.pem,
            "client_email": keys::CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            // Never fetched by the JWT-bearer flow; kept on the simulator so nothing points out.
            "auth_uri": format!("{base}/o/oauth2/auth"),
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": format!("{base}/oauth2/v1/certs"),
            "client_x509_cert_url": format!("{base}/robot/v1/metadata/x509/fleet-sim"),
            "universe_domain": "googleapis.com",
        });
        serde_json::to_string_pretty(&json).unwrap_or_default()
    }

    /// Deliver after `latency` in a task of its own (so a client that hangs up meanwhile does
    /// not cancel a delivery the provider accepted). Await the handle to respond after it.
    pub(crate) fn deliver_after(
        self: &Arc<Self>,
        latency: Duration,
        provider: Provider,
        token: String,
        data: serde_json::Value,
        message_id: String,
    ) -> JoinHandle<()> {
        let inner = self.clone();
        tokio::spawn(async move {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let now = inner.clock.now();
            let push = DeliveredPush {
                provider,
                token,
                data,
                message_id,
                at: now.at,
                at_ms: now.at_ms,
                unix_ms: now.unix_ms,
            };
            inner.state().delivered.push(push.clone());
            // No receiver is fine: nobody is watching.
            let _ = inner.events.send(push.clone());
            inner.observers().retain(|tx| tx.send(push.clone()).is_ok());
            // Cloned out so a callback may call back into the simulator without deadlocking.
            let callbacks = inner.callbacks.lock().unwrap_or_else(|p| p.into_inner()).clone();
            for f in callbacks {
                f(&push);
            }
        })
    }
}

/// Sleep for the simulated latency (tokio time).
pub(crate) async fn latency(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}
