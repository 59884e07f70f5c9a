//! Starting the roles: each opens the database, builds its library's `run`, and stops on
//! SIGTERM/SIGINT. `run_all` composes every role in one process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use fleet_jobs::Pool;
use fleet_platform::Config;
use fleet_platform::shutdown::{self, CancellationToken};
use fleet_store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::ops::open_for;

const GAUGE_EVERY: Duration = Duration::from_secs(5);

/// The ingress's own connections: its batcher's commits and the API's reads.
const INGRESS_CONNECTIONS: u32 = 16;
/// A worker process's beside its pools: liveness, the promoter, health and admin pages.
const WORKER_CONNECTIONS: u32 = 4;
const SCHEDULER_CONNECTIONS: u32 = 4;

pub async fn ingress(config: Config) -> anyhow::Result<()> {
    let db = open_for(&config, INGRESS_CONNECTIONS, 0).await?;
    let token = shutdown::on_signals();
    let listener =
        TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    match config.metrics_listen {
        Some(addr) => serve_health(&config, db.store(), addr, token.clone()).await?,
        None => {
            tokio::spawn(fleet_ingress::health::sample_queue_gauges(db.store(), GAUGE_EVERY, token.clone()));
        }
    }
    fleet_ingress::run(&config, db.store(), listener, token).await?;
    Ok(())
}

pub async fn worker(config: Config, pools: Vec<Pool>) -> anyhow::Result<()> {
    let db = open_for(&config, WORKER_CONNECTIONS, pools.len()).await?;
    let token = shutdown::on_signals();
    if let Some(addr) = config.metrics_listen {
        serve_health(&config, db.store(), addr, token.clone()).await?;
    }
    fleet_workers::run(&config, &db, &pools, token).await?;
    Ok(())
}

pub async fn scheduler(config: Config) -> anyhow::Result<()> {
    let db = open_for(&config, SCHEDULER_CONNECTIONS, 0).await?;
    let token = shutdown::on_signals();
    if let Some(addr) = config.metrics_listen {
        serve_health(&config, db.store(), addr, token.clone()).await?;
    }
    fleet_scheduler::run(&config, db.store(), token).await?;
    Ok(())
}

/// `/healthz`, `/readyz`, `/metrics` and the read-only `/admin` pages on their own listener
/// (`CALLFLEET_METRICS_LISTEN`): the worker's and scheduler's only HTTP, and the ingress's admin
/// port apart from the webhooks; with the queue-depth sampler, so every scraped role exports the
/// gauges.
async fn serve_health(
    config: &Config,
    store: Arc<dyn Store>,
    addr: SocketAddr,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    tokio::spawn(fleet_ingress::health::sample_queue_gauges(store.clone(), GAUGE_EVERY, token.clone()));
    let routes = fleet_ingress::health::router(store.clone(), token.clone())
        .merge(fleet_ingress::admin::router(store, config.operator_token.clone()));
    tokio::spawn(fleet_ingress::serve(
        fleet_ingress::with_json_fallbacks(routes),
        listener,
        token,
        fleet_ingress::ServeOptions::from_config(config),
    ));
    Ok(())
}

/// Every role in one process, on the configured database (the embedded SQLite file by default).
pub async fn run_all(mut config: Config) -> anyhow::Result<()> {
    let base = INGRESS_CONNECTIONS + WORKER_CONNECTIONS + SCHEDULER_CONNECTIONS;
    let db = open_for(&config, base, Pool::ALL.len()).await?;
    db.migrate().await.context("migrating the database")?;
    let token = shutdown::on_signals();
    let listener =
        TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let sim = if config.telnyx_api_key.is_none() {
        Some(crate::demo::start_simulator(&mut config, token.clone()).await?)
    } else {
        None
    };
    let mut roles = JoinSet::new();
    let (c, store, t) = (config.clone(), db.store(), token.clone());
    roles.spawn(async move { fleet_ingress::run(&c, store, listener, t).await.map_err(anyhow::Error::from) });
    let (c, d, t) = (config.clone(), db.clone(), token.clone());
    roles.spawn(async move { fleet_workers::run(&c, &d, &Pool::ALL, t).await.map_err(anyhow::Error::from) });
    let (c, store, t) = (config.clone(), db.store(), token.clone());
    roles.spawn(async move { fleet_scheduler::run(&c, store, t).await.map_err(anyhow::Error::from) });
    tokio::spawn(fleet_ingress::health::sample_queue_gauges(db.store(), GAUGE_EVERY, token.clone()));
    tracing::info!(listen = %config.listen, "callfleet is running every role in one process.");
    if let Some(sim) = &sim {
        crate::demo::seed_and_print(&config, db.store().as_ref(), sim).await?;
    }
    let mut first_error = None;
    while let Some(done) = roles.join_next().await {
        // One role ending (error or not) stops the others: a half-running fleet is worse.
        token.cancel();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(e) => first_error = first_error.or(Some(anyhow::anyhow!("a role panicked: {e}"))),
        }
    }
    first_error.map_or(Ok(()), Err)
}
