//! `/healthz` (the process answers), `/readyz` (the store and its queues answer within 2 s —
//! a failed or a hung ping is `store_unavailable` alike —, and the process is not stopping), `/metrics`, and the sampler that turns queue depth into gauges. Every role
//! that serves HTTP mounts these.
//!
//! Shutdown order: once the stop signal comes, `/readyz` answers 503 `shutting_down` at once
//! while the listener keeps serving for the drain period ([`crate::serve`]), so a load balancer
//! takes the process out of rotation before its connections are refused.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use fleet_platform::shutdown::CancellationToken;
use fleet_store::Store;

use crate::api::STORE_UNAVAILABLE;
use crate::error::Rejection;

/// The health and metrics routes over a store; `/readyz` fails once `stopping` is cancelled.
pub fn router(store: Arc<dyn Store>, stopping: CancellationToken) -> Router {
    fleet_platform::metrics::install();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Health { store, stopping })
}

#[derive(Clone)]
struct Health {
    store: Arc<dyn Store>,
    stopping: CancellationToken,
}

async fn readyz(State(Health { store, stopping }): State<Health>) -> Result<&'static str, Rejection> {
    if stopping.is_cancelled() {
        return Err(Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the process is stopping",
        ));
    }
    match tokio::time::timeout(Duration::from_secs(2), store.ping()).await {
        Ok(Ok(())) => Ok("ready"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "Not ready: store ping failed.");
            Err(Rejection::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", STORE_UNAVAILABLE))
        }
        // A partition hangs a query on a pooled connection without any error of the store's own:
        // for the caller it is the same unreachable store (and the same words, nothing of ours).
        Err(_) => {
            tracing::warn!("Not ready: store ping timed out.");
            Err(Rejection::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", STORE_UNAVAILABLE))
        }
    }
}

async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], fleet_platform::metrics::render())
}

/// Every `every`, reads queue depth and oldest-job age per pool into gauges
/// (`callfleet_queue_jobs{pool,state}`, `callfleet_queue_oldest_ready_age_seconds{pool}`).
/// One grouped query per sample; a failed sample is skipped. Also this process's connection
/// pool (`callfleet_db_connections{state=in_use|idle|max}`), read without a query, and the calls
/// still routing or ringing five minutes after they started (`callfleet_calls_stuck`).
pub async fn sample_queue_gauges(store: Arc<dyn Store>, every: Duration, shutdown: CancellationToken) {
    loop {
        let pool = store.connections();
        for (state, n) in
            [("in_use", pool.open.saturating_sub(pool.idle)), ("idle", pool.idle), ("max", pool.max)]
        {
            metrics::gauge!("callfleet_db_connections", "state" => state).set(f64::from(n));
        }
        if let Ok(n) = store.stuck_calls(store.now() - chrono::Duration::minutes(5)).await {
            metrics::gauge!("callfleet_calls_stuck").set(n as f64);
        }
        if let Ok(stats) = store.queue_stats().await {
            for s in stats {
                let pool = s.pool.clone();
                for (state, n) in
                    [("ready", s.ready), ("scheduled", s.scheduled), ("running", s.running), ("dead", s.dead)]
                {
                    metrics::gauge!("callfleet_queue_jobs", "pool" => pool.clone(), "state" => state)
                        .set(n as f64);
                }
                metrics::gauge!("callfleet_queue_oldest_ready_age_seconds", "pool" => pool)
                    .set(s.oldest_ready_age_secs);
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
