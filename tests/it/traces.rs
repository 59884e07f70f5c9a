//! Trace export (OTLP/HTTP, issue 14): one call's webhooks, the jobs they cause and the Telnyx
//! commands those send are one trace, received by a collector (here an OTLP/JSON endpoint in
//! the test). The test process installs the same subscriber the binary does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_platform::telemetry::LogFormat;
use fleet_platform::trace::{OtlpConfig, OtlpProtocol};
use fleet_sim::RingBehaviour;
use fleet_store::Engine;
use serde_json::Value;

use crate::calls::{CALLER, NUMBER, answer_after, env_with_user};

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: Vec<(String, String)>,
}

impl Span {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_calls_webhooks_jobs_and_telnyx_commands_are_one_trace() {
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let collector = {
        let bodies = bodies.clone();
        axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let bodies = bodies.clone();
                async move {
                    bodies.lock().unwrap().push(serde_json::from_slice(&body).expect("OTLP/JSON"));
                    axum::http::StatusCode::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await });
    let otlp = OtlpConfig { endpoint, protocol: OtlpProtocol::Json, service_name: "callfleet-test".into() };
    fleet_platform::telemetry::init_with(LogFormat::Json, "info,sqlx=warn,apalis=warn", Some(&otlp), "test")
        .expect("the exporter");
    fleet_jobs::trace::set_source(fleet_platform::trace::current_trace_parent);

    let env = env_with_user(Engine::Postgres).await;
    env.phone("android-1", "u1", "o1", "android", true, answer_after(1_000)).await;
    env.phone("ios-1", "u1", "o1", "ios", true, RingBehaviour::Never).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(4)).await;
    env.sim.remote_hangup(&placed.call_control_id).unwrap();
    env.run_for(Duration::from_secs(3)).await;
    let session = placed.call_session_id.as_str();
    assert_eq!(env.requests("bridge").len(), 1, "the call was answered and bridged");
    // Sends what is queued (the blocking exporter, from the SDK's thread).
    tokio::task::block_in_place(fleet_platform::trace::shutdown);

    let spans: Vec<Span> = bodies.lock().unwrap().iter().flat_map(spans_of).collect();
    let trace = fleet_platform::trace::call_trace_id(session);
    let in_trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace).collect();
    let jobs: Vec<&Span> =
        spans.iter().filter(|s| s.name == "job" && s.attr("call_session_id") == Some(session)).collect();
    assert!(jobs.len() >= 5, "the call's jobs were exported: {}", jobs.len());
    for job in &jobs {
        assert_eq!(job.trace_id, trace, "every job of the call is in its trace: {job:?}");
    }
    let kinds: std::collections::BTreeSet<_> = jobs.iter().filter_map(|j| j.attr("kind")).collect();
    assert!(kinds.contains("process_webhook"), "{kinds:?}");
    let events = in_trace.iter().filter(|s| s.name == "webhook_event").count();
    assert!(events >= 3, "the call's webhooks joined its trace: {events}");
    let commands: Vec<&str> =
        in_trace.iter().filter(|s| s.name == "telnyx_command").filter_map(|s| s.attr("command")).collect();
    for command in ["dial", "answer", "bridge", "hangup"] {
        assert!(commands.contains(&command), "{command} in the call's trace: {commands:?}");
    }
    // Each span of the trace hangs off another span of it, or off the call's (unexported) root.
    let ids: std::collections::HashSet<&str> = in_trace.iter().map(|s| s.span_id.as_str()).collect();
    let roots: std::collections::HashSet<&str> = in_trace
        .iter()
        .filter(|s| !ids.contains(s.parent_span_id.as_str()))
        .map(|s| s.parent_span_id.as_str())
        .collect();
    assert_eq!(roots.len(), 1, "one root for the whole call: {roots:?}");
    eprintln!(
        "exported {} spans; the call's trace {trace}: {} spans ({} jobs, {events} webhook events, commands {commands:?})",
        spans.len(),
        in_trace.len(),
        jobs.len()
    );
    // A process_webhook job continues its webhook's span (the envelope's traceparent).
    let event_ids: std::collections::HashSet<&str> =
        in_trace.iter().filter(|s| s.name == "webhook_event").map(|s| s.span_id.as_str()).collect();
    assert!(
        jobs.iter()
            .any(|j| j.attr("kind") == Some("process_webhook")
                && event_ids.contains(j.parent_span_id.as_str())),
        "a webhook job is the child of its webhook's span"
    );
}

/// The spans of one OTLP/JSON `ExportTraceServiceRequest`.
fn spans_of(body: &Value) -> Vec<Span> {
    let mut out = Vec::new();
    for rs in body["resourceSpans"].as_array().into_iter().flatten() {
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                let attributes = s["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        let v = &a["value"];
                        let value = v["stringValue"].as_str().map(str::to_owned).unwrap_or_else(|| {
                            v.as_object()
                                .and_then(|o| o.values().next())
                                .map(|x| x.to_string())
                                .unwrap_or_default()
                        });
                        (text(&a["key"]), value)
                    })
                    .collect();
                out.push(Span {
                    name: text(&s["name"]),
                    trace_id: text(&s["traceId"]).to_lowercase(),
                    span_id: text(&s["spanId"]).to_lowercase(),
                    parent_span_id: text(&s["parentSpanId"]).to_lowercase(),
                    attributes,
                });
            }
        }
    }
    out
}
