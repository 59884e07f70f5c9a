//! The webhook ingress: verify, store durably, enqueue, acknowledge — and nothing else.
//!
//! `POST /webhooks/telnyx` and `POST /webhooks/telnyx/failover` run the same pipeline:
//! body limit (413) → Ed25519 signature and timestamp (401) → envelope parse (400) → the
//! [`batcher`] stores the event and enqueues its job in one transaction → 200. A delivery whose
//! event id is already stored (Telnyx retry, failover, replay) gets 200 and enqueues nothing.
//! When the store cannot commit, the answer is 503 so Telnyx retries: a 2xx is never sent for
//! something that is not durably stored. The ingress never calls Telnyx or any outside service.
//!
//! Also served here: the app API under `/v1` ([`api`]), `/healthz` (the process is up), `/readyz` (the store answers) and `/metrics`.

pub mod admin;
pub mod api;
mod batcher;
mod error;
mod gate;
pub mod health;
mod server;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use fleet_domain::signature::WebhookVerifier;
use fleet_platform::Config;
use fleet_platform::shutdown::CancellationToken;
use fleet_store::Store;
use tokio::net::TcpListener;

pub use batcher::{AckBatcher, BatcherConfig};
pub use error::IngressError;
use error::Rejection;
pub use server::{ServeOptions, serve};

/// Shared state of the ingress handlers.
#[derive(Clone)]
pub struct IngressState {
    pub(crate) verifier: Arc<WebhookVerifier>,
    pub(crate) batcher: AckBatcher,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) max_body: usize,
    pub(crate) api: api::ApiState,
    /// Cancelled when the process stops: `/readyz` then fails (see [`health`]).
    pub(crate) stopping: CancellationToken,
}

impl IngressState {
    /// Builds the state; fails when `TELNYX_PUBLIC_KEY` is missing or any of its keys is
    /// malformed. Says which keys are in force (public keys: safe to log).
    pub fn new(config: &Config, store: Arc<dyn Store>) -> Result<Self, IngressError> {
        fleet_platform::metrics::install();
        if config.telnyx_public_keys.is_empty() {
            return Err(IngressError::MissingPublicKey);
        }
        let verifier = WebhookVerifier::from_keys(&config.telnyx_public_keys)
            .map_err(|_| IngressError::InvalidPublicKey)?;
        tracing::info!(keys = ?verifier.keys_base64(), "Webhook signature keys in force.");
        let batcher = AckBatcher::start(store.clone(), BatcherConfig::for_engine(store.engine()));
        let telnyx =
            fleet_telnyx::client_from_config(config).map_err(|e| IngressError::Telnyx(e.to_string()))?;
        let settings = fleet_telnyx::TelnyxSettings::from_env(config)
            .map_err(|e| IngressError::Telnyx(e.to_string()))?;
        let call_control = fleet_telnyx::call_control_from_config(config, &settings)
            .map_err(|e| IngressError::Telnyx(e.to_string()))?;
        let api = api::ApiState::new(store.clone(), config.api_token.clone(), telnyx, call_control);
        let stopping = CancellationToken::new();
        Ok(Self {
            verifier: Arc::new(verifier),
            batcher,
            store,
            max_body: config.webhook_max_body,
            api,
            stopping,
        })
    }
}

/// The ingress routes, ready to serve or to drive with `oneshot` in tests. An unknown route or a
/// wrong method gets the same JSON error shape as every other refusal (`not_found`,
/// `method_not_allowed`).
pub fn router(state: IngressState) -> Router {
    let health = health::router(state.store.clone(), state.stopping.clone());
    let api = api::router(state.api.clone());
    with_json_fallbacks(webhooks::routes().with_state(state).merge(health).merge(api))
}

/// JSON 404 and 405 answers for `app` (whose own routes answer as they do).
pub fn with_json_fallbacks(app: Router) -> Router {
    app.fallback(|| async { Rejection::new(axum::http::StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            Rejection::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
}

/// Serves the ingress on `listener` until `shutdown` is cancelled, then drains in-flight requests.
pub async fn run(
    config: &Config,
    store: Arc<dyn Store>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), IngressError> {
    let mut state = IngressState::new(config, store)?;
    state.stopping = shutdown.clone();
    serve(router(state), listener, shutdown, ServeOptions::from_config(config)).await
}
