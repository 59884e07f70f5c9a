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
    let _ = init_with(format, default_filter, None, "cli");
}

/// [`init`], plus span export over OTLP when `export` is given (see [`crate::trace`]); `role`
/// labels this process's spans. The level filter applies to both: exported spans are the ones
/// that would be logged.
pub fn init_with(
    format: LogFormat,
    default_filter: &str,
    export: Option<&crate::trace::OtlpConfig>,
    role: &str,
) -> Result<(), crate::trace::TraceExportError> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).boxed(),
        LogFormat::Pretty => logs.compact().boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(logs);
    match export {
        Some(config) => {
            let (spans, provider) = crate::trace::layer(config, role)?;
            // Only a subscriber actually installed exports: a second init leaves export off.
            if registry.with(spans).try_init().is_ok() {
                crate::trace::install(provider);
            }
        }
        None => {
            let _ = registry.try_init();
        }
    }
    Ok(())
}
