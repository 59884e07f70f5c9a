//! FCM HTTP v1 and APNs simulator: the push half of the carrier simulator.
//!
//! # What it serves
//! [`router`] mounts the providers' real paths, so the fleet's production clients run unchanged
//! with their base URL pointed here:
//! - `POST /token`: Google's OAuth2 token endpoint (JWT-bearer grant, RFC 7523). The assertion
//!   must be an RS256 JWT signed with the key of the service account from
//!   [`PushSim::service_account_json`]; the signature **is verified** (crate `rsa`).
//! - `POST /v1/projects/{project_id}/messages:send`: FCM HTTP v1 send, bearer access token from
//!   `/token`, message validated like FCM (see `fcm.rs`).
//! - `POST /3/device/{token}`: APNs, with an ES256 provider token signed by the key from
//!   [`PushSim::apns_key`]; the signature **is verified** (crate `p256`). Serve the router with
//!   axum's `http2` feature (the workspace has it): one listener then speaks HTTP/1.1 and h2c
//!   (HTTP/2 with prior knowledge), which is what an APNs client needs on plain loopback TCP.
//!   Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so the APNs
//!   20-minute token-update rule is tracked per connection as at Apple (see `apns_auth.rs`);
//!   without connect info it is tracked per team across all connections (stricter).
//!
//! [`control_router`] adds JSON endpoints under `/sim/push/` to script tokens and read the log;
//! [`control_openapi`] describes them as an OpenAPI fragment to merge into `/sim/openapi.json`.
//!
//! # Request lifecycle (both providers)
//! Everything is decided the moment a request arrives, in this order: authentication, request
//! validation (the provider's own 4xx rules), then the token's [`Script`]. The decision is
//! appended to the request log ([`PushSim::requests`]) with the arrival time, so the log is in
//! arrival order. Only then does the simulated latency run (tokio time, so a paused clock works),
//! after which a successful push is *delivered* (see below) and the response is written. A
//! request rejected by auth or validation does not consume a script step.
//!
//! # Delivery and the observer hook
//! A push is delivered when its outcome is [`Outcome::Ok`] and its latency has elapsed. Delivery
//! runs in its own task, so a client that gives up during the latency does not un-deliver a push
//! the provider accepted (as with the real services). Each delivery is stored
//! ([`PushSim::delivered`]) and handed to every observer, in this order:
//! [`PushSim::subscribe`] (a `tokio::sync::broadcast` receiver: lossy only if a receiver falls
//! more than 1024 pushes behind, then it sees `RecvError::Lagged`), [`PushSim::observe`] (an
//! unbounded mpsc sender: lossless; dropped once its receiver is gone) and
//! [`PushSim::on_delivered`] (a synchronous callback, e.g. a bridge to the call model's
//! `PushObserver`). The call model uses this to wake a device. Rejected, hung and
//! `validate_only` requests are never delivered.
//!
//! # Time
//! The simulator's wall clock is the Unix time at [`PushSim::new`] plus the *tokio* time elapsed
//! since then ([`PushSim::now_unix`]). JWT `iat`/`exp` checks, access-token expiry and the APNs
//! 20-minute token-update rule all use it, so tests can advance a paused tokio clock past an
//! hour; mint test JWTs from `now_unix()`, not from `SystemTime`.
//!
//! # Failure behaviour
//! The simulator never panics on client input: every malformed request gets the provider's error
//! shape. Internal state sits behind a `std::sync::Mutex` that is never held across an `.await`.

mod apns;
mod apns_auth;
mod control;
mod control_openapi;
mod fcm;
mod fcm_body;
mod fcm_validate;
mod jwt;
mod keys;
mod oauth;
mod record;
mod script;
mod state;

#[cfg(test)]
mod tests;

use std::time::Duration;

use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

pub use control::control_router;
pub use control_openapi::control_openapi;
pub use keys::ApnsKeyInfo;
pub use record::{DeliveredPush, RecordedRequest, Reply, RequestKind};
pub use script::{Outcome, Script};

use state::Inner;

/// Which push service a request, script or delivery belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Firebase Cloud Messaging HTTP v1 (Android).
    Fcm,
    /// Apple Push Notification service (iOS VoIP pushes).
    Apns,
}

/// Handle on one simulated FCM + APNs pair. Cheap to clone (an `Arc` inside); every clone sees
/// the same scripts, log and observers.
#[derive(Clone)]
pub struct PushSim {
    inner: std::sync::Arc<Inner>,
}

impl std::fmt::Debug for PushSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSim").field("seed", &self.inner.seed).finish_non_exhaustive()
    }
}

/// The project id of the simulated Firebase project (also in the service-account JSON).
pub const PROJECT_ID: &str = "callfleet-sim";

impl PushSim {
    /// A simulator whose keys, ids and message ids derive from `seed`. The APNs key is made
    /// here (cheap); the 2048-bit RSA service-account key is made on first use and cached per
    /// seed for the process (about a second in a debug build).
    pub fn new(seed: u64) -> Self {
        Self { inner: std::sync::Arc::new(Inner::new(seed)) }
    }

    /// Replace the script of `token` at `provider`. A plain list of outcomes is played in order,
    /// then every later request succeeds; see [`Script`] for "forever" outcomes and latency.
    pub fn script(&self, provider: Provider, token: &str, script: impl Into<Script>) {
        self.inner.set_script(provider, token, script.into());
    }

    /// Forget the script of `token` (back to: always succeed, default latency).
    pub fn clear_script(&self, provider: Provider, token: &str) {
        self.inner.clear_script(provider, token);
    }

    /// Latency applied to every request whose token has no latency of its own in its script
    /// (including `POST /token`). Zero by default.
    pub fn set_default_latency(&self, latency: Duration) {
        self.inner.state().default_latency = latency;
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.state().log.clone()
    }

    /// The push requests (not OAuth grants) for `token`, in arrival order: the attempts.
    pub fn attempts(&self, provider: Provider, token: &str) -> Vec<RecordedRequest> {
        let state = self.inner.state();
        state
            .log
            .iter()
            .filter(|r| r.provider == provider && r.token.as_deref() == Some(token))
            .filter(|r| r.kind != RequestKind::OauthToken)
            .cloned()
            .collect()
    }

    /// Pushes delivered to `token` (either provider), in delivery order.
    pub fn delivered(&self, token: &str) -> Vec<DeliveredPush> {
        let state = self.inner.state();
        state.delivered.iter().filter(|d| d.token == token).cloned().collect()
    }

    /// A new receiver of every later delivery. Lossy only when it lags 1024 pushes behind.
    pub fn subscribe(&self) -> broadcast::Receiver<DeliveredPush> {
        self.inner.events.subscribe()
    }

    /// Send every later delivery to `tx` as well (lossless; removed once its receiver is dropped).
    pub fn observe(&self, tx: mpsc::UnboundedSender<DeliveredPush>) {
        self.inner.observers().push(tx);
    }

    /// Call `f` synchronously for every later delivery, in the delivering task, outside the
    /// simulator's locks (so `f` may call back into it). `f` must be quick and must not panic.
    /// Meant for bridging to a synchronous observer such as the call model's.
    pub fn on_delivered(&self, f: impl Fn(&DeliveredPush) + Send + Sync + 'static) {
        self.inner.add_callback(std::sync::Arc::new(f));
    }

    /// Clear the log, the deliveries, the scripts and the APNs token-update history. Keys,
    /// issued access tokens and observers are kept.
    pub fn reset(&self) {
        self.inner.reset();
    }

    /// Invalidate every access token issued by `POST /token`: the next FCM send with one of
    /// them gets `401 UNAUTHENTICATED` (to test refresh-once-and-retry).
    pub fn revoke_access_tokens(&self) {
        self.inner.state().access_tokens.clear();
    }

    /// The simulator's wall clock in seconds since the Unix epoch (see "Time" above).
    pub fn now_unix(&self) -> i64 {
        self.inner.clock.unix_ms() / 1000
    }

    /// A Google service-account key file (JSON) whose `token_uri` is `{token_uri_base}/token`,
    /// e.g. `service_account_json("http://127.0.0.1:4010")`. Its `private_key` (PKCS#8 PEM,
    /// RSA 2048) is the key `POST /token` verifies assertions with. May take about a second the
    /// first time per seed (RSA key generation).
    pub fn service_account_json(&self, token_uri_base: &str) -> String {
        self.inner.service_account_json(token_uri_base)
    }

    /// The APNs signing key (`.p8` PEM), its key id and team id.
    pub fn apns_key(&self) -> ApnsKeyInfo {
        self.inner.apns_key.info()
    }
}

/// The provider routes at their real paths: `POST /token`,
/// `POST /v1/projects/{project_id}/messages:send`, `POST /3/device/{token}` (plus APNs'
/// `405 MethodNotAllowed`, `404 BadPath` and `400 MissingDeviceToken` for near misses).
pub fn router(sim: PushSim) -> Router {
    Router::new().merge(oauth::routes()).merge(fcm::routes()).merge(apns::routes()).with_state(sim)
}
