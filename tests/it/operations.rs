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
    // The scheduler's health and metrics come from the configuration (environment or file).
    let scheduler_addr = format!("127.0.0.1:{}", process::free_port());
    let _scheduler =
        process::spawn(&db.url, &["scheduler"], &[("CALLFLEET_METRICS_LISTEN", &scheduler_addr)]);

    for addr in [&ingress_addr, &worker_addr, &scheduler_addr] {
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
    // Nothing scraped the worker so far, yet its histogram samples are folded every second
    // (before, only a scrape folded them, so an unscraped worker's memory grew with every job;
    // `fleet_platform::metrics`'s unit test shows the upkeep keeps it flat).
    let worker_metrics = format!("http://{worker_addr}/metrics");
    eventually(30, "the worker's metrics upkeep", || {
        let (http, url) = (http.clone(), worker_metrics.clone());
        async move {
            let text = http.get(url).send().await.ok()?.text().await.ok()?;
            let rounds = text
                .lines()
                .find_map(|l| l.strip_prefix("callfleet_metrics_upkeep_total "))
                .and_then(|v| v.trim().parse::<f64>().ok())?;
            (rounds >= 2.0).then_some(())
        }
    })
    .await;
    // The scheduler enqueued the latest tick of each of its 7 schedules on start, once.
    eventually(30, "the scheduler's start-up ticks", || async {
        (db.count("SELECT count(*) FROM schedule_ticks").await == 7).then_some(())
    })
    .await;
    // The container health check asks the role's own listener (the metrics one when set).
    for (addr, healthy) in [(worker_addr.clone(), true), (format!("0.0.0.0:{}", process::free_port()), false)]
    {
        let env = [("CALLFLEET_METRICS_LISTEN", addr.as_str())];
        let out = process::command(&db.url, &["healthcheck"], &env).output().await.unwrap();
        assert_eq!(out.status.success(), healthy, "healthcheck on {addr}: {out:?}");
    }
    let workers = db.count("SELECT count(*) FROM apalis.workers WHERE worker_type = 'push'").await;
    assert_eq!(workers, 1, "the push pool registered one worker");
    for addr in [&worker_addr, &scheduler_addr] {
        let url = format!("http://{addr}/metrics");
        eventually(30, "the role's queue gauges", || async {
            let text = http.get(&url).send().await.ok()?.text().await.ok()?;
            text.contains("callfleet_queue_jobs").then_some(())
        })
        .await;
    }
}

/// On SIGTERM the ingress fails `/readyz` first and keeps acknowledging webhooks for the drain
/// period, so a load balancer stops sending before connections are refused; then it exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_sigterm_readiness_fails_before_the_listener_closes() {
    let db = TestDb::new(Engine::Sqlite).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let addr = format!("127.0.0.1:{}", process::free_port());
    let env = [("CALLFLEET_LISTEN", addr.as_str()), ("CALLFLEET_SHUTDOWN_DRAIN_SECS", "30")];
    let mut ingress = process::spawn(&db.url, &["ingress"], &env);
    let readyz = format!("http://{addr}/readyz");
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.ok().map(|r| r.status().as_u16()) }
    };
    eventually(30, "the ingress to be ready", || async {
        (status(readyz.clone()).await == Some(200)).then_some(())
    })
    .await;

    process::sigterm(&ingress);
    eventually(10, "/readyz to fail", || async { (status(readyz.clone()).await == Some(503)).then_some(()) })
        .await;
    let body: serde_json::Value = http.get(&readyz).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["error"], "shutting_down");
    // Still serving: a webhook that arrives now is stored and acknowledged.
    let event = webhook::event("during-drain", "call.initiated", "v3:d", "s-d");
    let resp = webhook::deliver(&http, &format!("http://{addr}/webhooks/telnyx"), &event).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(db.count("SELECT count(*) FROM webhook_events WHERE event_id = 'during-drain'").await, 1);
    // A still-running process: the drain has not ended (30 s); kill it rather than wait.
    assert!(ingress.try_wait().unwrap().is_none(), "the ingress is still draining");
    process::kill9(&mut ingress).await;

    // With a short drain, the process exits cleanly once it is over.
    let env = [("CALLFLEET_LISTEN", addr.as_str()), ("CALLFLEET_SHUTDOWN_DRAIN_SECS", "1")];
    let mut ingress = process::spawn(&db.url, &["ingress"], &env);
    eventually(30, "the ingress to be ready again", || async {
        (status(readyz.clone()).await == Some(200)).then_some(())
    })
    .await;
    process::sigterm(&ingress);
    let exited = tokio::time::timeout(std::time::Duration::from_secs(30), ingress.wait()).await;
    assert!(exited.expect("the ingress exits after its drain").unwrap().success());
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
    let (ok, out) = process::run(&url, &["replay", "--session", "s-cli"]).await;
    assert!(ok && out.contains("replaying 1"), "{out}");
    fleet.drain().await;

    // One dead job in full: its error and the payload it would run again.
    let again = dead[0]["id"].as_str().unwrap().to_owned();
    let (ok, out) = process::run(&url, &["dead-job", &again]).await;
    assert!(ok && out.contains("webhooks") && out.contains("cli-bad") && out.contains("error"), "{out}");
    // retry-dead --all requeues the pool's dead set once (it dies again: a new generation).
    let (ok, out) = process::run(&url, &["retry-dead", "--all", "--pool", "webhooks"]).await;
    assert!(ok && out.contains("1 dead job(s) requeued"), "{out}");
    fleet.drain().await;
    let (_, out) = process::run(&url, &["dead-jobs", "--json"]).await;
    let dead: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let last = dead[0]["id"].as_str().unwrap().to_owned();
    assert_ne!(last, again);
    // Discarded: gone from the dead set for good.
    let (ok, out) = process::run(&url, &["discard-dead", &last]).await;
    assert!(ok && out.contains("discarded"), "{out}");
    let (_, out) = process::run(&url, &["dead-jobs", "--json"]).await;
    assert_eq!(out.trim(), "[]");
    let (ok, _) = process::run(&url, &["discard-dead", &last]).await;
    assert!(!ok, "discarding twice is an error");

    // The call's story: its webhooks (and leg record) in order.
    let (ok, out) = process::run(&url, &["call", "s-cli"]).await;
    assert!(
        ok && out.contains("webhook call.initiated cli-ok") && out.contains("leg v3:c initiated"),
        "{out}"
    );
    let (ok, _) = process::run(&url, &["call", "s-nobody"]).await;
    assert!(!ok, "an unknown session is an error");
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

/// The read-only admin pages on a role's metrics listener: refused without the operator token
/// (and off without one configured), the queues and dead set on one page with store text
/// escaped, one dead job and one call story as JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_pages_show_queues_dead_jobs_and_calls_to_operators_only() {
    use base64::Engine as _;
    let db = TestDb::new(Engine::Postgres).await;
    let store = db.open().await.store();
    let job = fleet_store::NewJob::now(fleet_jobs::Envelope::new(
        fleet_jobs::Job::PurgeWebhookEventsV1 { before: 1 },
        "admin-dead",
    ));
    store.enqueue(&[job]).await.unwrap();
    db.exec(r#"UPDATE apalis.jobs SET status = 'Killed', last_result = '{"Err":"<script>x</script>"}'"#)
        .await;
    let dead_id = store.dead_jobs(None, 1).await.unwrap()[0].id.clone();

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let addr = format!("127.0.0.1:{}", process::free_port());
    let env = [("CALLFLEET_METRICS_LISTEN", addr.as_str()), ("CALLFLEET_OPERATOR_TOKEN", "ops-secret")];
    let _scheduler = process::spawn(&db.url, &["scheduler"], &env);
    let base = format!("http://{addr}");
    eventually(30, "the admin listener", || async {
        http.get(format!("{base}/healthz")).send().await.ok().filter(|r| r.status().is_success()).map(|_| ())
    })
    .await;

    let anonymous = http.get(format!("{base}/admin")).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"), "a browser asks for the token");
    let wrong = http.get(format!("{base}/admin")).bearer_auth("ops-secreT").send().await.unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    let page = http.get(format!("{base}/admin")).bearer_auth("ops-secret").send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("maintenance") && page.contains(&dead_id), "{page}");
    assert!(page.contains("&lt;script&gt;") && !page.contains("<script>x"), "store text is escaped");
    let basic = base64::engine::general_purpose::STANDARD.encode("anyone:ops-secret");
    let job: serde_json::Value = http
        .get(format!("{base}/admin/dead-jobs/{dead_id}"))
        .header("authorization", format!("Basic {basic}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (job["pool"].as_str(), job["kind"].as_str()),
        (Some("maintenance"), Some("purge_webhook_events.v1"))
    );
    let get = |path: &str| http.get(format!("{base}{path}")).bearer_auth("ops-secret").send();
    let missing = get("/admin/calls/s-none").await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(missing.json::<serde_json::Value>().await.unwrap()["error"], "unknown_call");
    assert_eq!(get("/admin/dead-jobs?pool=nope").await.unwrap().status().as_u16(), 400);
    let queues: serde_json::Value = get("/admin/queues").await.unwrap().json().await.unwrap();
    assert!(
        queues.as_array().unwrap().iter().any(|q| q["pool"] == "maintenance" && q["dead"] == 1),
        "{queues}"
    );
    // Read-only: no method changes anything.
    let post = http
        .post(format!("{base}/admin/dead-jobs/{dead_id}"))
        .bearer_auth("ops-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);

    // No operator token configured: the pages are off, and say so.
    let other = format!("127.0.0.1:{}", process::free_port());
    let _plain = process::spawn(&db.url, &["scheduler", "--metrics-listen", &other], &[]);
    let off = eventually(30, "the second listener", || async {
        http.get(format!("http://{other}/admin")).bearer_auth("ops-secret").send().await.ok()
    })
    .await;
    assert_eq!(off.status().as_u16(), 403);
    assert_eq!(off.json::<serde_json::Value>().await.unwrap()["error"], "admin_disabled");
}
