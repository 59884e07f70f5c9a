//! Operator commands.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use fleet_jobs::Pool;
use fleet_platform::Config;
use fleet_store::{Db, ReplaySelector};

/// Opens the configured database (every role and operator command starts here).
pub(crate) async fn open(config: &Config) -> anyhow::Result<Db> {
    Db::open(config.database_url()).await.context("opening the database")
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
    let mut missing = Vec::new();
    for id in ids {
        if store.retry_dead_job(id).await? {
            println!("requeued {id}");
        } else {
            missing.push(id.as_str());
        }
    }
    if missing.is_empty() { Ok(()) } else { anyhow::bail!("not in the dead set: {}", missing.join(", ")) }
}

pub async fn replay(
    config: &Config,
    ids: Vec<String>,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> anyhow::Result<()> {
    let selector = match range {
        Some((from, to)) => ReplaySelector::Range { from, to },
        None if !ids.is_empty() => ReplaySelector::Ids(ids),
        None => anyhow::bail!("give --ids or --from and --to"),
    };
    let store = open(config).await?.store();
    let count = fleet_store::webhook_jobs::replay(store.as_ref(), &selector).await?;
    println!("replaying {count} event(s)");
    Ok(())
}
