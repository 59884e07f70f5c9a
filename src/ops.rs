//! Operator commands.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use fleet_jobs::Pool;
use fleet_platform::Config;
use fleet_store::{Db, PoolSize, ReplaySelector};

/// Opens the configured database for an operator command (a few connections).
pub(crate) async fn open(config: &Config) -> anyhow::Result<Db> {
    open_for(config, 4, 0).await
}

/// Opens the configured database for a process that needs `base` connections of its own beside
/// `worker_pools` worker pools (every role starts here; see [`Config::db_connections`]).
pub(crate) async fn open_for(config: &Config, base: u32, worker_pools: usize) -> anyhow::Result<Db> {
    let size = PoolSize {
        max: config.db_connections(base, worker_pools),
        configured: config.db_max_connections.is_some(),
    };
    let db = Db::open_with(config.database_url(), size).await.context("opening the database")?;
    tracing::info!(
        max_connections = db.max_connections(),
        configured = size.configured,
        "Database connection pool sized."
    );
    Ok(db)
}

pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    open(config).await?.migrate().await.context("migrating")?;
    println!("migrations applied");
    Ok(())
}

pub async fn queues(config: &Config, json: bool) -> anyhow::Result<()> {
    let stats = open(config).await?.store().queue_stats().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
        return Ok(());
    }
    println!(
        "{:<16} {:>8} {:>10} {:>8} {:>6} {:>12}",
        "POOL", "READY", "SCHEDULED", "RUNNING", "DEAD", "OLDEST(s)"
    );
    for s in stats {
        println!(
            "{:<16} {:>8} {:>10} {:>8} {:>6} {:>12.1}",
            s.pool, s.ready, s.scheduled, s.running, s.dead, s.oldest_ready_age_secs
        );
    }
    Ok(())
}

pub async fn dead_jobs(config: &Config, pool: Option<Pool>, limit: u32, json: bool) -> anyhow::Result<()> {
    let dead = open(config).await?.store().dead_jobs(pool, limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&dead)?);
        return Ok(());
    }
    if dead.is_empty() {
        println!("no dead jobs");
    }
    for job in dead {
        let when = job.died_at.map(|t| t.to_rfc3339()).unwrap_or_default();
        println!(
            "{}  {:<14} {:<22} attempts={} {}  {}",
            job.id,
            job.pool,
            job.kind,
            job.attempts,
            when,
            job.last_error.unwrap_or_default()
        );
    }
    Ok(())
}

pub async fn retry_dead(config: &Config, ids: &[String]) -> anyhow::Result<()> {
    let store = open(config).await?.store();
    for_each_dead(ids, "requeued", |id| store.retry_dead_job(id)).await
}

/// Applies `act` to each id, saying `done <id>` for each it applied to; fails naming the ids
/// that were not in the dead set (after trying all of them).
async fn for_each_dead<'a, F, Fut>(ids: &'a [String], done: &str, act: F) -> anyhow::Result<()>
where
    F: Fn(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<bool, fleet_store::StoreError>>,
{
    let mut missing = Vec::new();
    for id in ids {
        if act(id).await? {
            println!("{done} {id}");
        } else {
            missing.push(id.as_str());
        }
    }
    if missing.is_empty() { Ok(()) } else { anyhow::bail!("not in the dead set: {}", missing.join(", ")) }
}

/// Retries the jobs in the dead set (of `pool`) when it starts, at most [`RETRY_ALL_BOUND`] per
/// run: a job that dies again while this runs has a new id and stays dead for the next run
/// (never a loop that feeds itself).
pub async fn retry_all_dead(config: &Config, pool: Option<Pool>) -> anyhow::Result<()> {
    let store = open(config).await?.store();
    let dead = store.dead_jobs(pool, RETRY_ALL_BOUND).await?;
    let mut requeued = 0;
    for job in &dead {
        if store.retry_dead_job(&job.id).await? {
            requeued += 1;
            println!("requeued {} ({} {})", job.id, job.pool, job.kind);
        }
    }
    println!("{requeued} dead job(s) requeued");
    if dead.len() == RETRY_ALL_BOUND as usize {
        println!("more may be dead: run it again");
    }
    Ok(())
}

/// How many dead jobs one `retry-dead --all` requeues.
const RETRY_ALL_BOUND: u32 = 100_000;

pub async fn dead_job(config: &Config, id: &str, json: bool) -> anyhow::Result<()> {
    let Some(job) = open(config).await?.store().dead_job(id).await? else {
        anyhow::bail!("not in the dead set: {id}");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&job)?);
        return Ok(());
    }
    println!("id        {}", job.id);
    println!("pool      {}", job.pool);
    println!("kind      {}", job.kind);
    println!("attempts  {}", job.attempts);
    println!("died at   {}", job.died_at.map(|t| t.to_rfc3339()).unwrap_or_default());
    println!("error     {}", job.last_error.unwrap_or_default());
    println!("payload   {}", serde_json::to_string_pretty(&job.payload)?);
    Ok(())
}

pub async fn discard_dead(config: &Config, ids: &[String]) -> anyhow::Result<()> {
    let store = open(config).await?.store();
    for_each_dead(ids, "discarded", |id| store.discard_dead_job(id)).await
}

pub async fn replay(
    config: &Config,
    ids: Vec<String>,
    session: Option<String>,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> anyhow::Result<()> {
    let selector = match (range, session) {
        (Some((from, to)), _) => ReplaySelector::Range { from, to },
        (None, Some(session)) => ReplaySelector::Session(session),
        (None, None) if !ids.is_empty() => ReplaySelector::Ids(ids),
        (None, None) => anyhow::bail!("give --ids, --session, or --from and --to"),
    };
    let store = open(config).await?.store();
    let count = fleet_store::webhook_jobs::replay(store.as_ref(), &selector).await?;
    println!("replaying {count} event(s)");
    Ok(())
}

/// GETs `/healthz` on this role's own listener: the metrics listener when one is configured (the
/// worker and scheduler roles), else the ingress's; an unspecified address (`0.0.0.0`) is asked
/// on loopback. Fails unless it answers 2xx within 3 s.
pub async fn healthcheck(config: &Config, url: Option<String>) -> anyhow::Result<()> {
    let url = match url {
        Some(url) => url,
        None => {
            let mut addr = config.metrics_listen.unwrap_or(config.listen);
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}/healthz")
        }
    };
    let client = reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(3)).build()?;
    let status = client.get(&url).send().await.with_context(|| format!("asking {url}"))?.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    println!("{url}: {status}");
    Ok(())
}
