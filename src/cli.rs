//! The command-line surface: roles (`run`, `ingress`, `worker`, `scheduler`, `sim`), `migrate`,
//! and operator commands (`queues`, `dead-jobs`, `retry-dead`, `replay`).

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use fleet_jobs::Pool;
use fleet_platform::{Config, telemetry};

use crate::{ops, roles};

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
        /// Serve /healthz, /readyz and /metrics on this address.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// The cron scheduler (only enqueues; any number of replicas is safe).
    Scheduler,
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
    /// Puts dead jobs back in their queue, with a fresh retry budget.
    RetryDead {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Re-runs stored webhook events (after a bug fix). Handlers are idempotent, so a replay
    /// never doubles a side effect.
    Replay {
        /// Telnyx event ids (data.id), comma-separated.
        #[arg(long, value_delimiter = ',', conflicts_with_all = ["from", "to"])]
        ids: Vec<String>,
        /// Received at or after this time (RFC 3339).
        #[arg(long, requires = "to")]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Received before this time (RFC 3339).
        #[arg(long, requires = "from")]
        to: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// The carrier simulator (Telnyx Call Control, credentials, FCM, APNs) on loopback.
    Sim(fleet_sim::SimArgs),
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env().context("loading configuration")?;
    let default_filter = match cli.command {
        Command::Queues { .. }
        | Command::DeadJobs { .. }
        | Command::RetryDead { .. }
        | Command::Replay { .. } => "warn",
        _ => "info,sqlx=warn,apalis=warn",
    };
    telemetry::init(config.log_format, default_filter);
    fleet_platform::metrics::install();
    match cli.command {
        Command::Run => roles::run_all(config).await,
        Command::Ingress => roles::ingress(config).await,
        Command::Worker { pool, metrics_listen } => {
            let pools = Pool::parse_list(&pool)?;
            roles::worker(config, pools, metrics_listen).await
        }
        Command::Scheduler => roles::scheduler(config).await,
        Command::Migrate => ops::migrate(&config).await,
        Command::Queues { json } => ops::queues(&config, json).await,
        Command::DeadJobs { pool, limit, json } => {
            let pool = pool.map(|p| p.parse::<Pool>()).transpose()?;
            ops::dead_jobs(&config, pool, limit, json).await
        }
        Command::RetryDead { ids } => ops::retry_dead(&config, &ids).await,
        Command::Replay { ids, from, to } => ops::replay(&config, ids, from.zip(to)).await,
        Command::Sim(args) => {
            let shutdown = fleet_platform::shutdown::on_signals();
            fleet_sim::run_cli(args, shutdown).await.context("simulator")
        }
    }
}
