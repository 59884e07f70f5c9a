//! The trace context a new job inherits from the work that created it.
//!
//! An [`crate::Envelope`] carries the W3C `traceparent` of the span it was created in, so a call's
//! webhook, the jobs it causes and their Telnyx commands are one trace across processes. This
//! crate knows nothing of OpenTelemetry: the binary installs the source of the current context
//! once at start ([`set_source`]; `fleet_platform::trace::current_trace_parent`) when trace
//! export is on. Without it — export off, tests, tools — envelopes carry none.

use std::sync::OnceLock;

static SOURCE: OnceLock<fn() -> Option<String>> = OnceLock::new();

/// Installs the function that reads the current span's `traceparent` (once per process; later
/// calls are ignored).
pub fn set_source(source: fn() -> Option<String>) {
    let _ = SOURCE.set(source);
}

/// The current span's `traceparent`, if a source is installed and the span is traced.
pub fn current() -> Option<String> {
    SOURCE.get().and_then(|source| source())
}
