//! Prometheus metrics: one recorder per process, rendered by the roles' `/metrics` endpoints.
//!
//! Names follow `callfleet_<what>_<unit>[_total]` with bounded labels (pool, kind, outcome).
//! The recorder is global (the `metrics` facade is), so several roles in one process share it.
//!
//! Upkeep: the recorder keeps every histogram sample in a buffer until it is folded into the
//! buckets, which rendering does — so a process nobody scrapes (a worker without a metrics
//! listener) would grow without bound. A thread of its own folds them every [`UPKEEP_EVERY`]
//! (a thread, not a task: the recorder can be installed before or outside a runtime).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often buffered histogram samples are folded into their buckets.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(1);

static UPKEEPS: AtomicU64 = AtomicU64::new(0);

/// How many upkeep rounds have run in this process (for tests and the curious).
pub fn upkeep_rounds() -> u64 {
    UPKEEPS.load(Ordering::Relaxed)
}

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
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                    UPKEEPS.fetch_add(1, Ordering::Relaxed);
                    // So a scrape can tell the upkeep runs in this process.
                    metrics::counter!("callfleet_metrics_upkeep_total").increment(1);
                }
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "No metrics upkeep thread: histogram samples fold only when scraped.");
            }
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

/// `callfleet_build_info{version,role} 1`: which release each process runs (a rollout shows as
/// two versions side by side).
pub fn record_build_info(version: &'static str, role: &'static str) {
    metrics::gauge!("callfleet_build_info", "version" => version, "role" => role).set(1.0);
}

/// Renders the Prometheus text exposition.
pub fn render() -> String {
    handle().render()
}

/// The sum of every sample of `name` this process holds whose labels contain each of `labels`
/// (`key="value"`; a histogram's count is `<name>_count`). Tests read it before and after the
/// step under test and assert the change: counters are global to the process.
pub fn sum(name: &str, labels: &[&str]) -> f64 {
    render()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name) && labels.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident memory of this process, in bytes (Linux).
    fn rss() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    fn wait_for_upkeep() {
        let seen = upkeep_rounds();
        for _ in 0..200 {
            if upkeep_rounds() >= seen + 2 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no metrics upkeep ran in 10 s");
    }

    /// Nothing scrapes; half a million samples per round; memory stays flat across rounds,
    /// because the upkeep thread folds the samples (without it: ~4 MB more per round).
    #[test]
    fn memory_stays_flat_when_nothing_scrapes() {
        install();
        let round = || {
            for i in 0..500_000u32 {
                metrics::histogram!("callfleet_upkeep_test_seconds").record(f64::from(i % 1000) / 1e4);
            }
            wait_for_upkeep();
        };
        round();
        let before = rss();
        for _ in 0..4 {
            round();
        }
        let grown = rss().saturating_sub(before);
        assert!(grown < 4 << 20, "grew {} KiB over 2 M samples", grown >> 10);
    }
}
