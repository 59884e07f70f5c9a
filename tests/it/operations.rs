//! Operators' view: each role runs alone against Postgres, and the CLI lists queues and dead
//! jobs, retries them and replays events.

use fleet_store::Engine;

use crate::support::{Fleet, TestDb, eventually, process, webhook};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_role_runs_alone_against_postgres() {
    let db = TestDb::new(Engine::Postgres).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let ingress_addr = format!("127.0.0.1:{}", process::free_port());
    let _ingress = process::spawn(&db.url, &["ingress"], &[("CALLFLEET_LISTEN", &ingress_addr)]);
    let worker_addr = format!("127.0.0.1:{}", process::free_port());
    let _worker =
        process::spawn(&db.url, &["worker", "--pool", "push", "--metrics-listen", &worker_addr], &[]);
    let _scheduler = process::spawn(&db.url, &["scheduler"], &[]);

    for addr in [&ingress_addr, &worker_addr] {
        let url = format!("http://{addr}/readyz");
        eventually(30, "the role to be ready", || {
            let (http, url) = (http.clone(), url.clone());
            async move { http.get(url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
    }
    // The queue gauges are sampled in the background: the first sample may follow readiness.
    let metrics_url = format!("http://{ingress_addr}/metrics");
    eventually(30, "queue gauges exported", || {
        let (http, url) = (http.clone(), metrics_url.clone());
        async move {
            let text = http.get(url).send().await.ok()?.text().await.ok()?;
            text.contains("callfleet_queue_jobs").then_some(())
        }
    })
    .await;
    // The scheduler enqueued the latest tick of each of its 5 schedules on start, once.
    eventually(30, "the scheduler's start-up ticks", || async {
        (db.count("SELECT count(*) FROM schedule_ticks").await == 5).then_some(())
    })
    .await;
    let workers = db.count("SELECT count(*) FROM apalis.workers WHERE worker_type = 'push'").await;
    assert_eq!(workers, 1, "the push pool registered one worker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_lists_retries_and_replays() {
    let fleet = Fleet::start(Engine::Postgres).await;
    let url = fleet.test_db.url.clone();
    let bad = r#"{"data":{"id":"cli-bad","event_type":"call.hangup","occurred_at":"never","payload":{}}}"#;
    assert_eq!(fleet.deliver(bad).await.status().as_u16(), 200);
    assert_eq!(
        fleet.deliver(&webhook::event("cli-ok", "call.initiated", "v3:c", "s-cli")).await.status().as_u16(),
        200
    );

    let (ok, out) = process::run(&url, &["queues", "--json"]).await;
    assert!(ok);
    let queues: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hooks = queues.as_array().unwrap().iter().find(|q| q["pool"] == "webhooks").unwrap();
    assert_eq!(hooks["ready"], 2);

    fleet.start_workers(&[fleet_jobs::Pool::Webhooks]);
    fleet.drain().await;
    let (ok, out) = process::run(&url, &["dead-jobs", "--json", "--pool", "webhooks"]).await;
    assert!(ok);
    let dead: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(dead.len(), 1);
    let id = dead[0]["id"].as_str().unwrap().to_owned();

    let (ok, out) = process::run(&url, &["retry-dead", &id]).await;
    assert!(ok && out.contains("requeued"), "{out}");
    let (ok, _) = process::run(&url, &["retry-dead", "01ARZ3NDEKTSV4RRFFQ69G5FAV"]).await;
    assert!(!ok, "an unknown id is an error");
    fleet.drain().await;
    // Still undecodable: it died again, as a new generation of the same work.
    let (_, out) = process::run(&url, &["dead-jobs", "--json"]).await;
    let dead: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(dead.len(), 1);
    assert_ne!(dead[0]["id"].as_str().unwrap(), id);

    let (ok, out) = process::run(&url, &["replay", "--ids", "cli-ok"]).await;
    assert!(ok && out.contains("replaying 1"), "{out}");
    fleet.drain().await;
    assert_eq!(fleet.store.call_legs("s-cli").await.unwrap().len(), 1);
}

/// A worker in another process is woken by Postgres NOTIFY, not by its heartbeat: with the
/// heartbeat at 30 s, a job enqueued by the ingress still runs well within it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_in_other_processes_wake_on_notify() {
    let fleet = Fleet::start(Engine::Postgres).await;
    let slow_heartbeat = [("CALLFLEET_ORPHAN_AFTER_SECS", "90")];
    let _worker = process::spawn(&fleet.test_db.url, &["worker", "--pool", "webhooks"], &slow_heartbeat);
    eventually(30, "the worker to register", || async {
        (fleet.test_db.count("SELECT count(*) FROM apalis.workers WHERE worker_type = 'webhooks'").await == 1)
            .then_some(())
    })
    .await;
    assert_eq!(
        fleet.deliver(&webhook::event("wake-1", "call.initiated", "v3:w", "s-wake")).await.status().as_u16(),
        200
    );
    eventually(15, "the event processed by the other process", || async {
        let stored = fleet.store.webhook("wake-1").await.ok()??;
        stored.processed_at.map(|_| ())
    })
    .await;
}
