//! Operator commands and the demo wiring of `callfleet run`.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use fleet_jobs::Pool;
use fleet_platform::shutdown::CancellationToken;
use fleet_platform::{Config, Secret};
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

/// Without FCM or APNs keys, the demo sends pushes to the simulator's FCM and APNs (its own
/// service account and `.p8` key; the key is written under `CALLFLEET_DATA_DIR`).
fn point_push_at_simulator(config: &mut Config, sim: &fleet_sim::SimHandle) -> anyhow::Result<()> {
    if config.fcm_service_account.is_some() || config.apns_key_path.is_some() {
        return Ok(());
    }
    let base = sim.base_url().to_owned();
    config.fcm_service_account = Some(Secret::new(sim.push().service_account_json(&base)));
    config.fcm_api_base = Some(base.clone());
    let key = sim.push().apns_key();
    std::fs::create_dir_all(&config.data_dir).context("creating CALLFLEET_DATA_DIR")?;
    let path = config.data_dir.join("simulator-apns.p8");
    std::fs::write(&path, key.private_key_pem).context("writing the simulator's APNs key")?;
    config.apns_key_path = Some(path);
    config.apns_key_id = Some(key.key_id);
    config.apns_team_id = Some(key.team_id);
    config.apns_topic = Some("com.callfleet.demo".into());
    config.apns_api_base = Some(base);
    Ok(())
}

/// The demo simulator's address (`CALLFLEET_SIM_LISTEN`, default 127.0.0.1:8090) and number.
const DEMO_SIM_LISTEN: &str = "127.0.0.1:8090";
const DEMO_NUMBER: &str = "+13125550199";

/// Starts the carrier simulator in-process and points the fleet at it: its Telnyx API, its
/// webhook key, and our ingress as its webhook target. A demo number is added so a call can be
/// placed with one request (printed at start).
pub async fn start_demo_simulator(
    config: &mut Config,
    token: CancellationToken,
) -> anyhow::Result<fleet_sim::SimHandle> {
    let listen = std::env::var("CALLFLEET_SIM_LISTEN").unwrap_or_else(|_| DEMO_SIM_LISTEN.into());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("binding the simulator on {listen}"))?;
    let base = format!("http://{}", config.listen);
    let mut sim_config = fleet_sim::SimConfig::new(format!("{base}/webhooks/telnyx"));
    sim_config.failover_url = Some(format!("{base}/webhooks/telnyx/failover"));
    let sim =
        fleet_sim::Simulator::start(sim_config, listener, token).await.context("starting the simulator")?;
    sim.add_number(DEMO_NUMBER);
    config.telnyx_public_key = Some(sim.public_key_base64());
    config.telnyx_api_base = sim.telnyx_api_base();
    config.telnyx_api_key = Some(Secret::new("simulator"));
    if config.telnyx_credential_connection_id.is_none() {
        config.telnyx_credential_connection_id = Some("simulator-credential-connection".into());
    }
    let sim_base = sim.base_url();
    point_push_at_simulator(config, &sim)?;
    tracing::info!(
        simulator = sim_base,
        control_api = %format!("{sim_base}/sim/openapi.json"),
        "No TELNYX_API_KEY: running against the built-in carrier simulator."
    );
    eprintln!(
        "\nDemo: place a simulated call to {DEMO_NUMBER} that hangs up after 5 s:\n  curl -s -X POST {sim_base}/sim/calls \\\n    -H 'content-type: application/json' \\\n    -d '{{\"from\":{{\"pstn\":\"+13125550101\"}},\"to\":\"{DEMO_NUMBER}\",\"hangup_after_ms\":5000}}'\nWatch its webhooks: curl -s {sim_base}/sim/webhooks | jq '.[].event_type'\nAnd what the fleet stored: callfleet queues; the log lines carry call_session_id.\n"
    );
    Ok(sim)
}
