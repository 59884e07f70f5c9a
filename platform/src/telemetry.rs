//! Structured logs with `tracing`: JSON lines by default, a readable format for humans.
//!
//! `RUST_LOG` overrides the level filter. Spans carry the call session id as a field
//! (`call_session_id`), so every line of a call can be found with one query. Secrets are wrapped in
//! [`crate::Secret`], which prints as `***`, so a `?config` field cannot leak them.

use tracing_subscriber::EnvFilter;

/// Output format of the log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl LogFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "json" => Some(Self::Json),
            "pretty" | "text" => Some(Self::Pretty),
            _ => None,
        }
    }
}

/// Installs the global subscriber (once per process; later calls are ignored). Logs go to stderr
/// so stdout stays free for command output (`TELNYX_PUBLIC_KEY=…`, operator listings).
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
