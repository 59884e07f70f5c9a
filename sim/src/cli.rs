//! `callfleet sim`: the standalone simulator. The lead wires [`SimArgs`] into the binary's clap tree and
//! calls [`run_cli`].
//!
//! On start it prints, on stdout, `TELNYX_PUBLIC_KEY=<base64>` (first line) then `TELNYX_API_BASE=<url>` and
//! `SIM_CONTROL_API=<url>/sim/openapi.json`, `CALLFLEET_EVENTS_URL=<url>/sim/events`,
//! `CALLFLEET_EVENTS_SECRET=whsec_…` and `SIM_TIMELINE=<url>/sim/timeline`, and flushes, so a parent process can read them. It serves until
//! `shutdown` is cancelled. Fails if the address cannot be bound or the configuration is invalid.
//!
//! With `--env-file PATH` it also writes, before it serves, a `CALLFLEET_CONFIG` file with every
//! setting that points a fleet of separate processes at it (Telnyx API and key, webhook key,
//! connection ids, app events, FCM and APNs), the provider keys in files beside it. The file is
//! written under a temporary name and renamed, so a role that waits for it never reads half of
//! one; the process environment of each role still wins over it (a configured value is never
//! replaced).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{ClockMode, SimConfig};
use crate::error::SimError;
use crate::handle::{SimHandle, Simulator};

/// Flags of `callfleet sim`.
#[derive(Clone, Debug, clap::Args)]
pub struct SimArgs {
    /// Address to listen on (e.g. 127.0.0.1:8090; port 0 picks one).
    #[arg(long)]
    pub listen: String,
    /// The fleet's Telnyx webhook URL (e.g. http://127.0.0.1:8080/webhooks/telnyx).
    #[arg(long)]
    pub webhook_url: String,
    /// Seed of every random choice (ids, signing key, delivery knobs).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The only accepted API key (default: any non-empty bearer token).
    #[arg(long)]
    pub api_key: Option<String>,
    /// Failover webhook URL (used after two failed attempts).
    #[arg(long)]
    pub failover_url: Option<String>,
    /// Base URL the fleet reaches the simulator at (recording links); default http://<listen address>.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Call Control app id of the account's numbers.
    #[arg(long)]
    pub connection_id: Option<String>,
    /// Run on a manual clock (advance it with POST /sim/clock/advance).
    #[arg(long)]
    pub manual_clock: bool,
    /// Webhook latency in ms.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Webhook jitter in ms (uniform, added to the latency).
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Probability of delivering an event twice.
    #[arg(long, default_value_t = 0.0)]
    pub duplicate_rate: f64,
    /// Probability of holding an event back so later ones overtake it.
    #[arg(long, default_value_t = 0.0)]
    pub reorder_rate: f64,
    /// Probability of losing a delivery attempt (it is retried).
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Constant Telnyx API latency in ms: every /v2 answer is held this long.
    #[arg(long, default_value_t = 0)]
    pub api_latency_ms: u64,
    /// Secret (`whsec_<base64>`) the fleet's app events to POST /sim/events are signed with (default: one
    /// derived from the seed, printed at start).
    #[arg(long)]
    pub events_secret: Option<String>,
    /// Disable the 30 dials/s (150 per 5 s) limit.
    #[arg(long)]
    pub no_dial_limit: bool,
    /// Write the fleet's settings for this simulator to this file (`CALLFLEET_CONFIG` format),
    /// with its FCM and APNs keys beside it.
    #[arg(long)]
    pub env_file: Option<std::path::PathBuf>,
}

impl SimArgs {
    /// The configuration these flags describe.
    pub fn to_config(&self) -> SimConfig {
        let mut c = SimConfig::new(self.webhook_url.clone());
        c.failover_url = self.failover_url.clone();
        c.seed = self.seed;
        c.api_key = self.api_key.clone();
        c.public_base_url = self.public_url.clone();
        if let Some(id) = &self.connection_id {
            c.connection_id = id.clone();
        }
        c.clock = if self.manual_clock { ClockMode::Manual } else { ClockMode::Real };
        c.delivery.latency = Duration::from_millis(self.latency_ms);
        c.delivery.jitter = Duration::from_millis(self.jitter_ms);
        c.delivery.duplicate_rate = self.duplicate_rate;
        c.delivery.reorder_rate = self.reorder_rate;
        c.delivery.drop_rate = self.drop_rate;
        c.api_latency = Duration::from_millis(self.api_latency_ms);
        c.events_secret = self.events_secret.clone();
        if self.no_dial_limit {
            c.dial_limit = None;
        }
        c
    }
}

/// Runs the simulator until `shutdown` is cancelled.
pub async fn run_cli(args: SimArgs, shutdown: CancellationToken) -> Result<(), SimError> {
    let listener = TcpListener::bind(&args.listen).await?;
    let handle = Simulator::start(args.to_config(), listener, shutdown.clone()).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "TELNYX_PUBLIC_KEY={}", handle.public_key_base64())?;
        writeln!(out, "TELNYX_API_BASE={}", handle.telnyx_api_base())?;
        writeln!(out, "SIM_CONTROL_API={}/sim/openapi.json", handle.base_url())?;
        writeln!(out, "CALLFLEET_EVENTS_URL={}", handle.events_url())?;
        writeln!(out, "CALLFLEET_EVENTS_SECRET={}", handle.events_secret())?;
        writeln!(out, "SIM_TIMELINE={}/sim/timeline", handle.base_url())?;
        out.flush()?;
    }
    if let Some(path) = &args.env_file {
        write_env_file(&handle, args.api_key.as_deref(), path)?;
    }
    tracing::info!(base_url = handle.base_url(), "carrier simulator listening");
    shutdown.cancelled().await;
    handle.stopped().await
}

/// The `CALLFLEET_CONFIG` lines that point a fleet at `handle`; the push keys go to files in the
/// same folder as `path`.
fn write_env_file(handle: &SimHandle, api_key: Option<&str>, path: &Path) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let fcm = dir.join("simulator-fcm.json");
    std::fs::write(&fcm, handle.push().service_account_json(handle.base_url()))?;
    let mut lines = vec![
        "# Written by `callfleet sim --env-file`: the settings that point a fleet at this simulator."
            .to_owned(),
        format!("TELNYX_PUBLIC_KEY={}", handle.public_key_base64()),
        format!("TELNYX_API_BASE={}", handle.telnyx_api_base()),
        format!("TELNYX_API_KEY={}", api_key.unwrap_or("simulator")),
        format!("TELNYX_CONNECTION_ID={}", handle.config().connection_id),
        "TELNYX_CREDENTIAL_CONNECTION_ID=simulator-credential-connection".to_owned(),
        format!("CALLFLEET_EVENTS_URL={}", handle.events_url()),
        format!("CALLFLEET_EVENTS_SECRET={}", handle.events_secret()),
    ];
    for (key, value) in handle.push_env(&dir.join("simulator-apns.p8"), "com.callfleet.sim")? {
        let value = if key == "FCM_SERVICE_ACCOUNT" { fcm.display().to_string() } else { value };
        lines.push(format!("{key}={value}"));
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, lines.join("\n") + "\n")?;
    std::fs::rename(&partial, path)
}
