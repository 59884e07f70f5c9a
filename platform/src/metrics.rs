//! Prometheus metrics: one recorder per process, rendered by the roles' `/metrics` endpoints.
//!
//! Names follow `callfleet_<what>_<unit>[_total]` with bounded labels (pool, kind, outcome).
//! The recorder is global (the `metrics` facade is), so several roles in one process share it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Buckets for latencies in seconds: 0.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the recorder if none is installed yet and returns the handle that renders it.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("static bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by a test harness); rendering then
            // shows only what reached ours, which is still correct for our own counters.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Installs the recorder (idempotent). Call at start, before anything records: metrics recorded
/// while no recorder is installed are lost.
pub fn install() {
    let _ = handle();
}

/// Renders the Prometheus text exposition.
pub fn render() -> String {
    handle().render()
}
