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

pub mod api;
mod batcher;
mod error;
pub mod health;
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

/// Shared state of the ingress handlers.
#[derive(Clone)]
pub struct IngressState {
    pub(crate) verifier: Arc<WebhookVerifier>,
    pub(crate) batcher: AckBatcher,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) max_body: usize,
    pub(crate) api: api::ApiState,
}

impl IngressState {
    /// Builds the state; fails when `TELNYX_PUBLIC_KEY` is missing or malformed.
    pub fn new(config: &Config, store: Arc<dyn Store>) -> Result<Self, IngressError> {
        fleet_platform::metrics::install();
        let key = config.telnyx_public_key.as_deref().ok_or(IngressError::MissingPublicKey)?;
        let verifier = WebhookVerifier::from_base64(key).map_err(|_| IngressError::InvalidPublicKey)?;
        let batcher = AckBatcher::start(store.clone(), BatcherConfig::for_engine(store.engine()));
        let telnyx =
            fleet_telnyx::client_from_config(config).map_err(|e| IngressError::Telnyx(e.to_string()))?;
        let api = api::ApiState::new(store.clone(), config.api_token.clone(), telnyx);
        Ok(Self { verifier: Arc::new(verifier), batcher, store, max_body: config.webhook_max_body, api })
    }
}

/// The ingress routes, ready to serve or to drive with `oneshot` in tests.
pub fn router(state: IngressState) -> Router {
    let store = state.store.clone();
    let api = api::router(state.api.clone());
    webhooks::routes().with_state(state).merge(health::router(store)).merge(api)
}

/// Serves the ingress on `listener` until `shutdown` is cancelled, then drains in-flight requests.
pub async fn run(
    config: &Config,
    store: Arc<dyn Store>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), IngressError> {
    let state = IngressState::new(config, store)?;
    serve(router(state), listener, shutdown).await
}

/// Serves any router with graceful shutdown.
pub async fn serve(
    app: Router,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), IngressError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "Ingress listening.");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(IngressError::Serve)
}
