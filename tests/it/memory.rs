//! A worker process that nothing scrapes keeps its memory flat over 100k jobs (issue 12, item 1).
//!
//! The Prometheus recorder buffers every histogram sample until something folds it into its
//! buckets; before the upkeep thread only a scrape of `/metrics` did, and the shipped worker
//! units expose none, so each job left its samples behind for good. Here a real `callfleet worker
//! --pool webhooks` process, with no metrics listener, works through a backlog of 100k stored
//! webhooks on Postgres while the test reads its resident memory from `/proc` after every
//! tenth of them. The first fifth warms the process up (connections, statement caches, the
//! allocator's arenas); from there on the resident size must not keep growing.
//!
//! Measured on the 2-core machine (`cargo test --test it -- memory:: --nocapture`): with the
//! upkeep, 28.7 MiB at 10k jobs and 29.0 MiB at 100k (+0.2 MiB from 20k on); with the upkeep
//! call taken out, 30.1 → 33.5 MiB, growing by about 0.37 MiB every 10k jobs (+3.0 MiB from 20k
//! on, ~40 bytes a job). The bound, 1 MiB, sits between the two.

use fleet_store::{Engine, NewWebhook};

use crate::support::{TestDb, eventually, process, webhook};

/// Resident memory of process `pid`, in bytes (Linux).
fn rss(pid: u32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).expect("the worker is alive");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// A `call.speak.started` of a call that is none of ours: stored, then processed and ignored.
fn event(i: usize) -> NewWebhook {
    webhook::stored(&format!("m-{i}"), "call.speak.started", &format!("v3:m{i}"), &format!("ms-{i}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unscraped_worker_keeps_its_memory_flat_over_100k_jobs_postgres() {
    let total: usize =
        std::env::var("CALLFLEET_MEMORY_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let db = TestDb::new(Engine::Postgres).await;
    let store = db.open().await.store();
    let events: Vec<NewWebhook> = (0..total).map(event).collect();
    for chunk in events.chunks(2_000) {
        store.accept_webhooks(chunk).await.unwrap();
    }
    let worker = process::spawn(&db.url, &["worker", "--pool", "webhooks"], &[]);
    let pid = worker.id().expect("the worker runs");

    let step = total / 10;
    let mut samples = Vec::new();
    for mark in (1..=10).map(|k| k * step) {
        eventually(180, "the worker to get through its backlog", || async {
            let done = db.count("SELECT count(*) FROM webhook_events WHERE processed_at IS NOT NULL").await;
            (done >= mark as i64).then_some(())
        })
        .await;
        samples.push((mark, rss(pid)));
    }
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    let shown: Vec<String> = samples.iter().map(|(n, b)| format!("{n}: {:.1} MiB", mib(*b))).collect();
    println!("worker RSS by jobs done: {}", shown.join(", "));

    let warm = samples[1].1;
    let peak = samples[2..].iter().map(|(_, b)| *b).max().unwrap();
    let grown = peak.saturating_sub(warm);
    assert!(grown < 1 << 20, "the worker grew {:.1} MiB after warming up ({})", mib(grown), shown.join(", "));
}
