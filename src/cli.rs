//! The command-line surface: roles (`run`, `ingress`, `worker`, `scheduler`, `sim`), `migrate`,
//! and operator commands (`queues`, `dead-jobs`, `dead-job`, `retry-dead`, `discard-dead`, `replay`,
//! `call`, `healthcheck`).

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use fleet_jobs::Pool;
use fleet_platform::{Config, telemetry};

use crate::{inspect, ops, roles};

#[derive(Parser)]
#[command(
    name = "callfleet",
    version,
    about = "Call orchestration on Telnyx Call Control: a durable worker fleet."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every role in one process (ingress, all worker pools, scheduler). Migrates first. With no
    /// TELNYX_API_KEY it also starts the carrier simulator and wires itself to it.
    Run,
    /// The webhook ingress (HTTP on CALLFLEET_LISTEN).
    Ingress,
    /// Worker pools, e.g. `--pool webhooks,push` or `--pool all`.
    Worker {
        #[arg(long, value_name = "NAMES")]
        pool: String,
        /// Serve /healthz, /readyz and /metrics on this address (overrides CALLFLEET_METRICS_LISTEN).
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// The cron scheduler (only enqueues; any number of replicas is safe).
    Scheduler {
        /// Serve /healthz, /readyz and /metrics on this address (overrides CALLFLEET_METRICS_LISTEN).
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// Creates or updates the database schema (apalis's and callfleet's).
    Migrate,
    /// Queue depth, scheduled, running, dead and oldest-job age per pool.
    Queues {
        #[arg(long)]
        json: bool,
    },
    /// Lists jobs in the dead set.
    DeadJobs {
        #[arg(long)]
        pool: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// One dead job: its pool, kind, attempts, last error and payload.
    DeadJob {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Puts dead jobs back in their queue, with a fresh retry budget: the ids given, or with
    /// `--all` every dead job (of `--pool` only, when given).
    RetryDead {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, requires = "all")]
        pool: Option<String>,
    },
    /// Closes dead jobs without running them again (kept as done until the retention purge).
    DiscardDead {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Everything the fleet knows about one call, in order: the call, its legs, its webhooks.
    Call {
        call_session_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Re-runs stored webhook events (after a bug fix). Handlers are idempotent, so a replay
    /// never doubles a side effect.
    Replay {
        /// Telnyx event ids (data.id), comma-separated.
        #[arg(long, value_delimiter = ',', conflicts_with_all = ["from", "to", "session"])]
        ids: Vec<String>,
        /// Every event of one call session.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        session: Option<String>,
        /// Received at or after this time (RFC 3339).
        #[arg(long, requires = "to")]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Received before this time (RFC 3339).
        #[arg(long, requires = "from")]
        to: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// The carrier simulator (Telnyx Call Control, credentials, FCM, APNs) on loopback.
    Sim(fleet_sim::SimArgs),
    /// Exits 0 when this role's /healthz answers (CALLFLEET_METRICS_LISTEN, else CALLFLEET_LISTEN):
    /// the container health check.
    Healthcheck {
        /// Ask this URL instead.
        #[arg(long)]
        url: Option<String>,
    },
}

impl Command {
    /// The `role` label of this process's metrics.
    fn role(&self) -> &'static str {
        match self {
            Command::Run => "all",
            Command::Ingress => "ingress",
            Command::Worker { .. } => "worker",
            Command::Scheduler { .. } => "scheduler",
            Command::Sim(_) => "sim",
            _ => "cli",
        }
    }
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env().context("loading configuration")?;
    let default_filter = match cli.command {
        Command::Queues { .. }
        | Command::DeadJobs { .. }
        | Command::DeadJob { .. }
        | Command::RetryDead { .. }
        | Command::DiscardDead { .. }
        | Command::Call { .. }
        | Command::Replay { .. }
        | Command::Healthcheck { .. } => "warn",
        _ => "info,sqlx=warn,apalis=warn",
    };
    let role = cli.command.role();
    telemetry::init_with(config.log_format, default_filter, config.otlp.as_ref(), role)?;
    if let Some(otlp) = &config.otlp {
        // New jobs carry the trace of the span that made them (fleet_jobs::trace).
        fleet_jobs::trace::set_source(fleet_platform::trace::current_trace_parent);
        tracing::info!(endpoint = %otlp.endpoint_for_logs(), protocol = ?otlp.protocol, "Exporting traces over OTLP.");
    }
    fleet_platform::metrics::install();
    fleet_platform::metrics::record_build_info(env!("CARGO_PKG_VERSION"), role);
    let result = run(cli.command, config).await;
    fleet_platform::trace::shutdown();
    result
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Run => roles::run_all(config).await,
        Command::Ingress => roles::ingress(config).await,
        Command::Worker { pool, metrics_listen } => {
            let pools = Pool::parse_list(&pool)?;
            roles::worker(with_metrics_listen(config, metrics_listen), pools).await
        }
        Command::Scheduler { metrics_listen } => {
            roles::scheduler(with_metrics_listen(config, metrics_listen)).await
        }
        Command::Migrate => ops::migrate(&config).await,
        Command::Queues { json } => ops::queues(&config, json).await,
        Command::DeadJobs { pool, limit, json } => {
            let pool = pool.map(|p| p.parse::<Pool>()).transpose()?;
            ops::dead_jobs(&config, pool, limit, json).await
        }
        Command::DeadJob { id, json } => ops::dead_job(&config, &id, json).await,
        Command::RetryDead { ids, all, pool } => {
            let pool = pool.map(|p| p.parse::<Pool>()).transpose()?;
            if all { ops::retry_all_dead(&config, pool).await } else { ops::retry_dead(&config, &ids).await }
        }
        Command::DiscardDead { ids } => ops::discard_dead(&config, &ids).await,
        Command::Call { call_session_id, json } => inspect::call(&config, &call_session_id, json).await,
        Command::Replay { ids, session, from, to } => ops::replay(&config, ids, session, from.zip(to)).await,
        Command::Healthcheck { url } => ops::healthcheck(&config, url).await,
        Command::Sim(args) => {
            let shutdown = fleet_platform::shutdown::on_signals();
            fleet_sim::run_cli(args, shutdown).await.context("simulator")
        }
    }
}

/// The `--metrics-listen` flag, when given, is the address (said so when it replaces
/// `CALLFLEET_METRICS_LISTEN`: an explicit flag wins, never silently).
fn with_metrics_listen(mut config: Config, flag: Option<std::net::SocketAddr>) -> Config {
    if let Some(addr) = flag {
        if let Some(configured) = config.metrics_listen.filter(|c| *c != addr) {
            tracing::info!(%configured, flag = %addr, "--metrics-listen replaces CALLFLEET_METRICS_LISTEN.");
        }
        config.metrics_listen = Some(addr);
    }
    config
}
