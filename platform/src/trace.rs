//! OpenTelemetry trace export (OTLP over HTTP; off unless an endpoint is configured) and the trace
//! context that travels with a call's work.
//!
//! Design: `tracing` spans become OpenTelemetry spans through `tracing-opentelemetry`, exported in
//! batches by the SDK (its own thread, the blocking HTTP client, a 5 s timeout per export). Three
//! rules make one call one trace, whatever process handles which part:
//! - a webhook's event span joins the **call's trace**, whose trace id (and never-exported root
//!   span id) is derived from the Telnyx `call_session_id` ([`join_call`]): every webhook of a
//!   call, through any ingress, lands in the same trace;
//! - new work records the `traceparent` of the span that created it in its job envelope
//!   (`fleet_jobs::trace`, fed by [`current_trace_parent`]);
//! - a job's span continues the envelope's `traceparent`, or else the call's trace
//!   ([`continue_trace`]); the Telnyx commands it sends are its child spans.
//!
//! W3C Trace Context is read and written by the SDK's propagator, not by hand. Failure behaviour:
//! the collector being down or slow costs dropped spans (the SDK's bounded queue), never a
//! blocked request or job; export errors are the SDK's to log. With export off every function
//! here is a no-op and envelopes carry no context.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use sha2::Digest as _;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::registry::LookupSpan;

/// How spans are sent to the collector (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf`, the OTLP default.
    Protobuf,
    /// `http/json`.
    Json,
}

/// Where and how to export (read by [`crate::Config`] from the standard `OTEL_*` variables).
/// Its `Debug` shows the endpoint without credentials, like every other secret of the config.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The traces URL (`…/v1/traces`).
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    pub service_name: String,
}

impl std::fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint_for_logs())
            .field("protocol", &self.protocol)
            .field("service_name", &self.service_name)
            .finish()
    }
}

impl OtlpConfig {
    /// The endpoint as logs may show it: any `user:password@` in it replaced by `***@`.
    pub fn endpoint_for_logs(&self) -> String {
        let Some((scheme, rest)) = self.endpoint.split_once("://") else { return self.endpoint.clone() };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        match rest[..authority_end].rfind('@') {
            Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
            None => self.endpoint.clone(),
        }
    }
}

/// The trace exporter could not be built (a bad endpoint, typically).
#[derive(Debug, thiserror::Error)]
#[error("OTLP trace export: {0}")]
pub struct TraceExportError(#[from] opentelemetry_otlp::ExporterBuildError);

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The `tracing` layer that exports spans, and the provider behind it (to [`install`] once the
/// layer is in the global subscriber).
pub(crate) fn layer<S>(
    config: &OtlpConfig,
    role: &str,
) -> Result<
    (tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>, SdkTracerProvider),
    TraceExportError,
>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let protocol = match config.protocol {
        OtlpProtocol::Protobuf => Protocol::HttpBinary,
        OtlpProtocol::Json => Protocol::HttpJson,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(config.endpoint.clone())
        .with_protocol(protocol)
        .with_timeout(Duration::from_secs(5))
        .build()?;
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attribute(KeyValue::new("callfleet.role", role.to_owned()))
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let tracer = provider.tracer("callfleet");
    Ok((tracing_opentelemetry::layer().with_tracer(tracer), provider))
}

/// Makes `provider` the process's: [`exporting`] turns true and [`shutdown`] flushes it.
pub(crate) fn install(provider: SdkTracerProvider) {
    let _ = PROVIDER.set(provider);
}

/// Whether spans are being exported.
pub fn exporting() -> bool {
    PROVIDER.get().is_some()
}

/// Sends the spans still queued (at the end of the process; a SIGKILL loses them).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.shutdown();
    }
}

/// The W3C `traceparent` of the current span, when spans are exported.
pub fn current_trace_parent() -> Option<String> {
    if !exporting() {
        return None;
    }
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span`, before it is first entered, a child of the span `trace_parent` names, or else
/// part of `call_session_id`'s trace. Nothing when neither is given or export is off.
pub fn continue_trace(span: &tracing::Span, trace_parent: Option<&str>, call_session_id: Option<&str>) {
    if !exporting() {
        return;
    }
    if let Some(cx) = trace_parent.and_then(extract).or_else(|| call_session_id.map(call_root)) {
        let _ = span.set_parent(cx);
    }
}

/// Makes `span`, before it is first entered, part of the call's trace.
pub fn join_call(span: &tracing::Span, call_session_id: &str) {
    continue_trace(span, None, Some(call_session_id));
}

fn extract(trace_parent: &str) -> Option<Context> {
    let carrier = HashMap::from([("traceparent".to_owned(), trace_parent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// The call's trace: its id and a root span id derived from the session id (the root itself is
/// never exported; trace viewers show the call's spans under a missing root).
fn call_root(call_session_id: &str) -> Context {
    Context::new().with_remote_span_context(call_span_context(call_session_id))
}

fn call_span_context(call_session_id: &str) -> SpanContext {
    let digest = sha2::Sha256::digest(format!("callfleet call {call_session_id}").as_bytes());
    let mut trace = [0u8; 16];
    trace.copy_from_slice(&digest[..16]);
    let mut span = [0u8; 8];
    span.copy_from_slice(&digest[16..24]);
    SpanContext::new(
        TraceId::from_bytes(trace),
        SpanId::from_bytes(span),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    )
}

/// The trace id of a call, as exporters print it (32 hex digits): for finding a call's trace.
pub fn call_trace_id(call_session_id: &str) -> String {
    call_span_context(call_session_id).trace_id().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_has_one_trace_id_and_calls_have_different_ones() {
        let a = call_trace_id("v3:session-a");
        assert_eq!(a, call_trace_id("v3:session-a"));
        assert_ne!(a, call_trace_id("v3:session-b"));
        assert_eq!(a.len(), 32);
        assert!(call_span_context("v3:session-a").is_valid());
    }

    #[test]
    fn logs_never_show_credentials_in_the_endpoint() {
        let with = |endpoint: &str| OtlpConfig {
            endpoint: endpoint.into(),
            protocol: OtlpProtocol::Protobuf,
            service_name: "callfleet".into(),
        };
        assert_eq!(
            with("https://u:secret@c.example/v1/traces").endpoint_for_logs(),
            "https://***@c.example/v1/traces"
        );
        assert_eq!(with("http://c:4318/v1/traces").endpoint_for_logs(), "http://c:4318/v1/traces");
        assert_eq!(with("http://c:4318/v1/a@b").endpoint_for_logs(), "http://c:4318/v1/a@b");
        assert!(!format!("{:?}", with("https://u:secret@c.example/")).contains("secret"));
    }

    #[test]
    fn a_traceparent_round_trips_through_the_propagator() {
        let sc = call_span_context("s");
        let cx = Context::new().with_remote_span_context(sc.clone());
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut carrier);
        let header = carrier.remove("traceparent").expect("a traceparent");
        assert_eq!(header, format!("00-{}-{}-01", sc.trace_id(), sc.span_id()));
        let back = extract(&header).expect("valid");
        assert_eq!(back.span().span_context().trace_id(), sc.trace_id());
        assert!(extract("garbage").is_none());
    }
}
