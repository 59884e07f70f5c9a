//! Configuration from the environment, optionally completed by a file, validated at start.
//!
//! Precedence: process environment, then the file named by `CALLFLEET_CONFIG` (lines of
//! `KEY=VALUE`, `#` comments), then built-in defaults. Every key is the environment variable of
//! the interface contract. [`Config::from_lookup`] takes any lookup function, so tests build a
//! config without touching the process environment. Invalid values fail the start with a message
//! that names the variable; secrets are [`Secret`]s and never print.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::Secret;
use crate::telemetry::LogFormat;

/// The scheduler's cron variables (read here, like every other setting, so the file counts too).
pub const CRON_KEYS: [&str; 7] = [
    "CALLFLEET_CRON_PURGE_WEBHOOKS",
    "CALLFLEET_CRON_RECORDING_RETENTION",
    "CALLFLEET_CRON_CREDENTIAL_CLEANUP",
    "CALLFLEET_CRON_ORPHAN_SWEEP",
    "CALLFLEET_CRON_DEPARTED_SWEEP",
    "CALLFLEET_CRON_CREDENTIAL_ROTATION",
    "CALLFLEET_CRON_SECRET_RESEAL",
];

/// Which store/queue engine the database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {key}: {problem}")]
pub struct ConfigError {
    pub key: &'static str,
    pub problem: String,
}

fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { key, problem: problem.into() }
}

/// Everything a role may need. Roles validate the parts they use at start
/// (e.g. the ingress refuses to start without `TELNYX_PUBLIC_KEY`).
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Secret,
    pub backend: Backend,
    pub redis_url: Option<Secret>,
    pub listen: SocketAddr,
    /// `CALLFLEET_METRICS_LISTEN`: `/healthz`, `/readyz` and `/metrics` on a listener of their
    /// own (every role; the worker's and scheduler's only HTTP).
    pub metrics_listen: Option<SocketAddr>,
    pub api_token: Option<Secret>,
    /// `CALLFLEET_OPERATOR_TOKEN`: opens the read-only admin pages (`/admin`) on the metrics
    /// listener; without it they answer 403 `admin_disabled`.
    pub operator_token: Option<Secret>,
    pub secret_key: Option<Secret>,
    /// Cron expressions that replace a schedule's default, by variable (`CALLFLEET_CRON_*`, one of
    /// [`CRON_KEYS`]); the scheduler validates them at start.
    pub crons: BTreeMap<&'static str, String>,
    /// `TELNYX_PUBLIC_KEY`: one key, or several comma-separated during a rotation; empty when unset.
    pub telnyx_public_keys: Vec<String>,
    pub telnyx_api_key: Option<Secret>,
    pub telnyx_api_base: String,
    pub telnyx_connection_id: Option<String>,
    pub telnyx_credential_connection_id: Option<String>,
    pub events_url: Option<String>,
    pub events_secret: Option<Secret>,
    pub fcm_service_account: Option<Secret>,
    pub fcm_api_base: Option<String>,
    pub apns_key_path: Option<PathBuf>,
    pub apns_key_id: Option<String>,
    pub apns_team_id: Option<String>,
    pub apns_topic: Option<String>,
    pub apns_api_base: Option<String>,
    /// `CALLFLEET_RECORDINGS_URL`: `file:///dir` or `s3://bucket[/prefix]` (unset: the data dir;
    /// the copies' keys start with `recordings/`).
    pub recordings_url: Option<String>,
    /// `AWS_*` settings for an `s3://` recordings URL (endpoint, region, keys, `AWS_ALLOW_HTTP`),
    /// read like every other setting (environment or config file). Values are secret.
    pub recordings_s3: Vec<(String, Secret)>,
    /// `TRANSCRIPTION_API_BASE` (unset: Telnyx's, `<TELNYX_API_BASE>/ai`).
    pub transcription_api_base: Option<String>,
    /// `TRANSCRIPTION_API_KEY` (unset: `TELNYX_API_KEY`).
    pub transcription_api_key: Option<Secret>,
    /// `CALLFLEET_TRANSCRIPTION_MODEL` (default `distil-whisper/distil-large-v2`, Telnyx's default).
    pub transcription_model: String,
    /// `CALLFLEET_TRANSCRIPTION_LANGUAGE` (unset: the model detects it).
    pub transcription_language: Option<String>,
    /// Recordings (copies and transcripts) older than this are deleted by the maintenance cron
    /// (`CALLFLEET_RECORDING_RETENTION_DAYS`, default 365).
    pub recording_retention_days: u32,
    /// Largest webhook body accepted (413 above).
    pub webhook_max_body: usize,
    /// Jobs one worker of one pool runs at once.
    pub worker_concurrency: usize,
    /// `CALLFLEET_DB_MAX_CONNECTIONS`: the process's database connections; unset, each role sizes
    /// its own ([`Config::db_connections`]).
    pub db_max_connections: Option<u32>,
    /// A worker silent this long is presumed dead and its running jobs go back to the queue.
    pub orphan_after: Duration,
    /// How long shutdown waits for in-flight jobs before leaving them to the orphan window.
    pub shutdown_timeout: Duration,
    /// After a stop signal, how long HTTP listeners keep serving with `/readyz` failing, so a
    /// load balancer stops sending before connections are refused (`CALLFLEET_SHUTDOWN_DRAIN_SECS`).
    pub shutdown_drain: Duration,
    /// A connection that has not sent a whole request head in this long is closed.
    pub http_header_timeout: Duration,
    /// A request (body included) that takes longer answers 408.
    pub http_request_timeout: Duration,
    /// Requests served at once per listener; past it, 503 `overloaded` before the body is read.
    pub http_max_in_flight: usize,
    /// How long stored webhook events are kept.
    pub webhook_retention_days: u32,
    /// Lifetime of a new device credential (`CALLFLEET_CREDENTIAL_TTL_SECS`, default 30 days).
    pub credential_ttl: Duration,
    /// Credentials this close to expiry are rotated (`CALLFLEET_CREDENTIAL_ROTATE_BEFORE_SECS`, 3 days).
    pub credential_rotate_before: Duration,
    /// Telnyx API calls per second, across replicas when Redis is configured
    /// (`CALLFLEET_TELNYX_RATE_LIMIT`, default 20).
    pub telnyx_rate_limit: u32,
    /// FCM sends per second, across replicas when Redis is configured
    /// (`CALLFLEET_FCM_RATE_LIMIT`, default 500).
    pub fcm_rate_limit: u32,
    /// APNs sends per second, across replicas when Redis is configured
    /// (`CALLFLEET_APNS_RATE_LIMIT`, default 500).
    pub apns_rate_limit: u32,
    /// Prefix of every Redis key this fleet writes (`CALLFLEET_REDIS_PREFIX`, default `callfleet`),
    /// so several fleets (or tests) can share one Redis.
    pub redis_prefix: String,
    pub log_format: LogFormat,
    /// Span export over OTLP/HTTP: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the traces URL) or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (the collector's base URL, `/v1/traces` appended),
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, the default, or `http/json`) and
    /// `OTEL_SERVICE_NAME` (`callfleet`). Off when no endpoint is set.
    pub otlp: Option<crate::trace::OtlpConfig>,
    /// Where the embedded default keeps its SQLite file.
    pub data_dir: PathBuf,
}

const DEFAULT_API_BASE: &str = "https://api.telnyx.com/v2";

impl Config {
    /// Reads the process environment (and `CALLFLEET_CONFIG`, if set).
    pub fn from_env() -> Result<Self, ConfigError> {
        let file = match std::env::var("CALLFLEET_CONFIG") {
            Ok(path) if !path.is_empty() => read_file(&path)?,
            _ => HashMap::new(),
        };
        Self::from_lookup(|key| std::env::var(key).ok().or_else(|| file.get(key).cloned()))
    }

    /// Builds a config from any key lookup; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| lookup(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let data_dir = PathBuf::from(get("CALLFLEET_DATA_DIR").unwrap_or_else(|| "data".into()));
        let database_url = get("CALLFLEET_DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("callfleet.db").display()));
        let backend = backend_of(&database_url)?;
        let listen = get("CALLFLEET_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen.parse().map_err(|_| {
            invalid("CALLFLEET_LISTEN", format!("{listen:?} is not an address like 127.0.0.1:8080"))
        })?;
        let metrics_listen = get("CALLFLEET_METRICS_LISTEN")
            .map(|a| {
                a.parse().map_err(|_| invalid("CALLFLEET_METRICS_LISTEN", format!("{a:?} is not an address")))
            })
            .transpose()?;
        let telnyx_api_base = get("TELNYX_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.into());
        check_url("TELNYX_API_BASE", &telnyx_api_base)?;
        for key in ["CALLFLEET_EVENTS_URL", "FCM_API_BASE", "APNS_API_BASE", "TRANSCRIPTION_API_BASE"] {
            if let Some(url) = get(key) {
                check_url(key, &url)?;
            }
        }
        if let Some(url) = get("CALLFLEET_RECORDINGS_URL") {
            if !(url.starts_with("file:///") || url.starts_with("s3://")) {
                return Err(invalid(
                    "CALLFLEET_RECORDINGS_URL",
                    format!("{url:?} is neither file:///<absolute dir> nor s3://<bucket>[/prefix]"),
                ));
            }
        }
        if let Some(secret) = get("CALLFLEET_EVENTS_SECRET") {
            if !secret.starts_with("whsec_") {
                return Err(invalid(
                    "CALLFLEET_EVENTS_SECRET",
                    "must be a Standard Webhooks secret (whsec_…)",
                ));
            }
        }
        let log_format = match get("CALLFLEET_LOG_FORMAT") {
            // Logs go to stderr: readable lines for a person at a terminal, JSON for collectors.
            None if std::io::IsTerminal::is_terminal(&std::io::stderr()) => LogFormat::Pretty,
            None => LogFormat::Json,
            Some(f) => {
                LogFormat::parse(&f).ok_or_else(|| invalid("CALLFLEET_LOG_FORMAT", "json or pretty"))?
            }
        };
        let secret = |key| get(key).map(Secret::new);
        Ok(Self {
            database_url: Secret::new(database_url),
            backend,
            redis_url: secret("CALLFLEET_REDIS_URL"),
            listen,
            metrics_listen,
            api_token: secret("CALLFLEET_API_TOKEN"),
            operator_token: secret("CALLFLEET_OPERATOR_TOKEN"),
            secret_key: secret("CALLFLEET_SECRET_KEY"),
            crons: CRON_KEYS.iter().filter_map(|k| Some((*k, get(k)?))).collect(),
            telnyx_public_keys: get("TELNYX_PUBLIC_KEY").map(|v| key_list(&v)).unwrap_or_default(),
            telnyx_api_key: secret("TELNYX_API_KEY"),
            telnyx_api_base,
            telnyx_connection_id: get("TELNYX_CONNECTION_ID"),
            telnyx_credential_connection_id: get("TELNYX_CREDENTIAL_CONNECTION_ID"),
            events_url: get("CALLFLEET_EVENTS_URL"),
            events_secret: secret("CALLFLEET_EVENTS_SECRET"),
            fcm_service_account: secret("FCM_SERVICE_ACCOUNT"),
            fcm_api_base: get("FCM_API_BASE"),
            apns_key_path: get("APNS_KEY_PATH").map(PathBuf::from),
            apns_key_id: get("APNS_KEY_ID"),
            apns_team_id: get("APNS_TEAM_ID"),
            apns_topic: get("APNS_TOPIC"),
            apns_api_base: get("APNS_API_BASE"),
            recordings_url: get("CALLFLEET_RECORDINGS_URL"),
            recordings_s3: AWS_KEYS
                .iter()
                .filter_map(|key| get(key).map(|v| ((*key).to_owned(), Secret::new(v))))
                .collect(),
            transcription_api_base: get("TRANSCRIPTION_API_BASE"),
            transcription_api_key: secret("TRANSCRIPTION_API_KEY"),
            transcription_model: get("CALLFLEET_TRANSCRIPTION_MODEL")
                .unwrap_or_else(|| "distil-whisper/distil-large-v2".into()),
            transcription_language: get("CALLFLEET_TRANSCRIPTION_LANGUAGE"),
            recording_retention_days: number(&get, "CALLFLEET_RECORDING_RETENTION_DAYS", 365, 1, 36_500)?
                as u32,
            webhook_max_body: number(&get, "CALLFLEET_WEBHOOK_MAX_BODY", 256 * 1024, 1024, 16 << 20)?,
            worker_concurrency: number(&get, "CALLFLEET_WORKER_CONCURRENCY", 32, 1, 4096)?,
            db_max_connections: match get("CALLFLEET_DB_MAX_CONNECTIONS") {
                Some(_) => Some(number(&get, "CALLFLEET_DB_MAX_CONNECTIONS", 0, 1, 10_000)? as u32),
                None => None,
            },
            orphan_after: Duration::from_secs(
                number(&get, "CALLFLEET_ORPHAN_AFTER_SECS", 12, 3, 3600)? as u64
            ),
            shutdown_timeout: Duration::from_secs(
                number(&get, "CALLFLEET_SHUTDOWN_TIMEOUT_SECS", 20, 1, 600)? as u64,
            ),
            shutdown_drain: Duration::from_secs(
                number(&get, "CALLFLEET_SHUTDOWN_DRAIN_SECS", 5, 0, 300)? as u64
            ),
            http_header_timeout: Duration::from_secs(number(
                &get,
                "CALLFLEET_HTTP_HEADER_TIMEOUT_SECS",
                30,
                1,
                300,
            )? as u64),
            http_request_timeout: Duration::from_secs(number(
                &get,
                "CALLFLEET_HTTP_REQUEST_TIMEOUT_SECS",
                30,
                1,
                600,
            )? as u64),
            http_max_in_flight: number(&get, "CALLFLEET_HTTP_MAX_IN_FLIGHT", 1024, 1, 100_000)?,
            webhook_retention_days: number(&get, "CALLFLEET_WEBHOOK_RETENTION_DAYS", 30, 1, 3650)? as u32,
            credential_ttl: Duration::from_secs(number(
                &get,
                "CALLFLEET_CREDENTIAL_TTL_SECS",
                30 * 86_400,
                60,
                3650 * 86_400,
            )? as u64),
            credential_rotate_before: Duration::from_secs(number(
                &get,
                "CALLFLEET_CREDENTIAL_ROTATE_BEFORE_SECS",
                3 * 86_400,
                0,
                3650 * 86_400,
            )? as u64),
            telnyx_rate_limit: number(&get, "CALLFLEET_TELNYX_RATE_LIMIT", 20, 1, 100_000)? as u32,
            fcm_rate_limit: number(&get, "CALLFLEET_FCM_RATE_LIMIT", 500, 1, 100_000)? as u32,
            apns_rate_limit: number(&get, "CALLFLEET_APNS_RATE_LIMIT", 500, 1, 100_000)? as u32,
            redis_prefix: get("CALLFLEET_REDIS_PREFIX").unwrap_or_else(|| "callfleet".into()),
            log_format,
            otlp: otlp(&get)?,
            data_dir,
        })
    }

    /// The value, for the one place that opens the connection.
    pub fn database_url(&self) -> &str {
        self.database_url.expose()
    }

    /// Database connections for a process that runs `worker_pools` worker pools (0 for the
    /// ingress, the scheduler or an operator command) beside `base` connections of its own: the
    /// configured `CALLFLEET_DB_MAX_CONNECTIONS`, or `base` plus one connection per eight jobs a
    /// pool may run at once, capped at 64. Jobs spend most of their time waiting on Telnyx or a
    /// push provider, not holding a connection; the cap keeps a fleet of a few processes under
    /// PostgreSQL's default 100 connections. The NOTIFY listener has a connection of its own.
    pub fn db_connections(&self, base: u32, worker_pools: usize) -> u32 {
        self.db_max_connections.unwrap_or_else(|| {
            let per_pool = self.worker_concurrency.div_ceil(8) as u32;
            (base + per_pool.saturating_mul(worker_pools as u32)).min(64)
        })
    }
}

/// A comma-separated list, trimmed, without empty entries.
fn key_list(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect()
}

fn backend_of(url: &str) -> Result<Backend, ConfigError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else {
        Err(invalid("CALLFLEET_DATABASE_URL", "must start with postgres://, postgresql:// or sqlite:"))
    }
}

/// The S3 settings a recordings URL may use (`object_store`'s names for them).
const AWS_KEYS: [&str; 9] = [
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ALLOW_HTTP",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
    "AWS_S3_EXPRESS",
];

fn check_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(invalid(key, format!("{url:?} is not an http(s) URL")))
    }
}

fn otlp(get: &impl Fn(&str) -> Option<String>) -> Result<Option<crate::trace::OtlpConfig>, ConfigError> {
    use crate::trace::{OtlpConfig, OtlpProtocol};
    let endpoint = match (get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), get("OTEL_EXPORTER_OTLP_ENDPOINT")) {
        (Some(traces), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces),
        (None, Some(base)) => {
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("{}/v1/traces", base.trim_end_matches('/')))
        }
        (None, None) => return Ok(None),
    };
    if !(endpoint.1.starts_with("http://") || endpoint.1.starts_with("https://")) {
        // Not echoed: an endpoint may carry credentials.
        return Err(invalid(endpoint.0, "is not an http(s) URL"));
    }
    let key = if get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").is_some() {
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
    } else {
        "OTEL_EXPORTER_OTLP_PROTOCOL"
    };
    let protocol = match get(key).as_deref() {
        None | Some("http/protobuf") => OtlpProtocol::Protobuf,
        Some("http/json") => OtlpProtocol::Json,
        Some(other) => {
            return Err(invalid(
                key,
                format!(
                    "{other:?}: callfleet exports over http/protobuf or http/json (a collector's port 4318), not gRPC"
                ),
            ));
        }
    };
    let service_name = get("OTEL_SERVICE_NAME").unwrap_or_else(|| "callfleet".into());
    Ok(Some(OtlpConfig { endpoint: endpoint.1, protocol, service_name }))
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    let Some(raw) = get(key) else { return Ok(default) };
    match raw.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(key, format!("{raw:?} is not a whole number from {min} to {max}"))),
    }
}

fn read_file(path: &str) -> Result<HashMap<String, String>, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| invalid("CALLFLEET_CONFIG", format!("{path}: {e}")))?;
    let mut values = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| invalid("CALLFLEET_CONFIG", format!("{path}:{}: expected KEY=VALUE", n + 1)))?;
        values.insert(key.trim().to_owned(), value.trim().trim_matches('"').to_owned());
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_embedded_sqlite_fleet() {
        let cfg = with(&[]).unwrap();
        assert_eq!(cfg.backend, Backend::Sqlite);
        assert!(cfg.database_url().contains("data/callfleet.db"));
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(cfg.telnyx_api_base, DEFAULT_API_BASE);
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(
            with(&[("CALLFLEET_DATABASE_URL", "mysql://x")]).unwrap_err().key,
            "CALLFLEET_DATABASE_URL"
        );
        assert_eq!(with(&[("CALLFLEET_LISTEN", "nope")]).unwrap_err().key, "CALLFLEET_LISTEN");
        assert_eq!(
            with(&[("CALLFLEET_WORKER_CONCURRENCY", "0")]).unwrap_err().key,
            "CALLFLEET_WORKER_CONCURRENCY"
        );
        assert_eq!(with(&[("CALLFLEET_EVENTS_SECRET", "abc")]).unwrap_err().key, "CALLFLEET_EVENTS_SECRET");
        assert_eq!(with(&[("TELNYX_API_BASE", "ftp://x")]).unwrap_err().key, "TELNYX_API_BASE");
    }

    #[test]
    fn database_connections_follow_the_pools_unless_configured() {
        let cfg = with(&[]).unwrap();
        assert_eq!(cfg.db_connections(16, 0), 16, "the ingress");
        assert_eq!(cfg.db_connections(4, 1), 8, "one pool at concurrency 32");
        assert_eq!(cfg.db_connections(4, 8), 36, "every pool");
        let busy = with(&[("CALLFLEET_WORKER_CONCURRENCY", "256")]).unwrap();
        assert_eq!(busy.db_connections(4, 8), 64, "capped");
        let set = with(&[("CALLFLEET_DB_MAX_CONNECTIONS", "5")]).unwrap();
        assert_eq!(set.db_connections(4, 8), 5, "a configured size is never replaced");
        let bad = with(&[("CALLFLEET_DB_MAX_CONNECTIONS", "0")]).unwrap_err();
        assert_eq!(bad.key, "CALLFLEET_DB_MAX_CONNECTIONS");
    }

    #[test]
    fn trace_export_is_off_unless_an_endpoint_is_set() {
        use crate::trace::OtlpProtocol;
        assert_eq!(with(&[]).unwrap().otlp, None);
        let base = with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).unwrap().otlp.unwrap();
        assert_eq!(base.endpoint, "http://collector:4318/v1/traces");
        assert_eq!((base.protocol, base.service_name.as_str()), (OtlpProtocol::Protobuf, "callfleet"));
        let traces = with(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c.example/traces"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ])
        .unwrap()
        .otlp
        .unwrap();
        assert_eq!(
            (traces.endpoint.as_str(), traces.protocol),
            ("https://c.example/traces", OtlpProtocol::Json)
        );
        let grpc = with(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]);
        assert_eq!(grpc.unwrap_err().key, "OTEL_EXPORTER_OTLP_PROTOCOL");
        assert_eq!(
            with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4318")]).unwrap_err().key,
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        );
    }

    #[test]
    fn the_config_file_sets_cron_expressions_too() {
        let dir = std::env::temp_dir().join(format!("callfleet-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("callfleet.env");
        std::fs::write(&path, "# crons\nCALLFLEET_CRON_ORPHAN_SWEEP = \"0 */5 * * * *\"\n").unwrap();
        let file = read_file(path.to_str().unwrap()).unwrap();
        let cfg = Config::from_lookup(|k| file.get(k).cloned()).unwrap();
        assert_eq!(cfg.crons.get("CALLFLEET_CRON_ORPHAN_SWEEP").map(String::as_str), Some("0 */5 * * * *"));
        assert_eq!(cfg.crons.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn several_public_keys_are_a_comma_separated_list() {
        assert!(with(&[]).unwrap().telnyx_public_keys.is_empty());
        let cfg = with(&[("TELNYX_PUBLIC_KEY", " k1 , k2,,")]).unwrap();
        assert_eq!(cfg.telnyx_public_keys, vec!["k1", "k2"]);
    }

    #[test]
    fn secrets_do_not_print() {
        let cfg = with(&[
            ("CALLFLEET_DATABASE_URL", "postgres://u:pw-123@h/db"),
            ("TELNYX_API_KEY", "KEY-SECRET"),
            ("CALLFLEET_API_TOKEN", "tok-secret"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
            ("TRANSCRIPTION_API_KEY", "stt-secret"),
        ])
        .unwrap();
        let shown = format!("{cfg:?}");
        for secret in ["pw-123", "KEY-SECRET", "tok-secret", "aws-secret", "stt-secret"] {
            assert!(!shown.contains(secret), "{secret} leaked");
        }
        assert_eq!(cfg.backend, Backend::Postgres);
        assert_eq!(cfg.recordings_s3.len(), 1, "AWS settings are read like any other");
    }

    #[test]
    fn recordings_settings_are_checked() {
        for bad in ["http://store/x", "file://relative/dir", "ftp://x"] {
            let err = with(&[("CALLFLEET_RECORDINGS_URL", bad)]).unwrap_err().to_string();
            assert!(err.contains("CALLFLEET_RECORDINGS_URL"), "{bad}: {err}");
        }
        for good in ["file:///var/lib/callfleet/recordings", "s3://bucket/prefix"] {
            assert!(with(&[("CALLFLEET_RECORDINGS_URL", good)]).is_ok(), "{good}");
        }
        let cfg = with(&[]).unwrap();
        assert_eq!(
            (cfg.recording_retention_days, cfg.transcription_model.as_str()),
            (365, "distil-whisper/distil-large-v2")
        );
        assert!(with(&[("CALLFLEET_RECORDING_RETENTION_DAYS", "0")]).is_err());
    }
}
