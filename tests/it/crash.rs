//! Crash safety with real processes: SIGKILL a worker mid-job, SIGKILL the ingress right after
//! its acknowledgement. Nothing acknowledged is lost.

use fleet_jobs::Pool;
use fleet_store::{Engine, NewWebhook};

use crate::on_both;
use crate::support::{Fleet, TestDb, eventually, process, webhook};

on_both! {
    sigkilled_worker_jobs_finish_elsewhere => sigkilled_worker_jobs_finish_elsewhere_postgres, sigkilled_worker_jobs_finish_elsewhere_sqlite;
    sigkilled_ingress_keeps_what_it_acknowledged => sigkilled_ingress_keeps_what_it_acknowledged_postgres, sigkilled_ingress_keeps_what_it_acknowledged_sqlite;
}

const EVENTS: usize = 400;

async fn processed(db: &TestDb) -> i64 {
    db.count("SELECT count(*) FROM webhook_events WHERE processed_at IS NOT NULL").await
}

async fn sigkilled_worker_jobs_finish_elsewhere(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = db.open().await.store();
    let batch: Vec<NewWebhook> = (0..EVENTS)
        .map(|i| webhook::stored(&format!("k-{i}"), "call.initiated", &format!("v3:k{i}"), &format!("s-{i}")))
        .collect();
    for chunk in batch.chunks(100) {
        store.accept_webhooks(chunk).await.unwrap();
    }
    // Kill a worker the moment one of its jobs is seen running. The job may still finish in the
    // instant between seeing and killing; then that round proves nothing and we go again.
    let table = db.jobs_table();
    let running = format!("SELECT count(*) FROM {table} WHERE status = 'Running'");
    let in_flight = format!("SELECT count(*) FROM {table} WHERE status IN ('Queued', 'Running')");
    let mut killed_mid_job = false;
    for _round in 0..5 {
        let mut worker = process::spawn(
            &db.url,
            &["worker", "--pool", "webhooks"],
            &[("CALLFLEET_WORKER_CONCURRENCY", "1")],
        );
        eventually(60, "a job running", || async { (db.count(&running).await > 0).then_some(()) }).await;
        process::kill9(&mut worker).await;
        if db.count(&in_flight).await > 0 {
            killed_mid_job = true;
            break;
        }
    }
    assert!(killed_mid_job, "a worker was killed holding a job");
    assert!((processed(&db).await as usize) < EVENTS, "the worker was killed before finishing");

    let mut second = process::spawn(&db.url, &["worker", "--pool", "webhooks"], &[]);
    eventually(60, "every event processed after the restart", || async {
        (processed(&db).await as usize == EVENTS).then_some(())
    })
    .await;
    // (The events are calls to numbers nobody configured: their rejections wait on the `legs`
    // pool, which this test does not run.)
    eventually(30, "no webhook job left locked or pending", || async {
        let open = db
            .count(&format!(
                "SELECT count(*) FROM {table} WHERE job_type = 'webhooks' AND status NOT IN ('Done')"
            ))
            .await;
        (open == 0).then_some(())
    })
    .await;
    assert_eq!(db.count("SELECT count(*) FROM call_legs").await as usize, EVENTS);
    process::kill9(&mut second).await;
}

async fn sigkilled_ingress_keeps_what_it_acknowledged(engine: Engine) {
    let db = TestDb::new(engine).await;
    let port = process::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut ingress = process::spawn(&db.url, &["ingress"], &[("CALLFLEET_LISTEN", &listen)]);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{listen}");
    eventually(30, "the ingress to listen", || {
        let http = http.clone();
        let url = format!("{base}/healthz");
        async move { http.get(url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
    })
    .await;
    let body = webhook::event("acked-1", "call.answered", "v3:acked", "s-acked");
    let resp = webhook::deliver(&http, &format!("{base}/webhooks/telnyx"), &body).await;
    assert_eq!(resp.status().as_u16(), 200);
    process::kill9(&mut ingress).await;

    let fleet = Fleet::start_on(db, &[]).await;
    assert!(fleet.store.webhook("acked-1").await.unwrap().is_some(), "the acknowledged event is stored");
    assert_eq!(fleet.pending_jobs(Pool::Webhooks).await, 1, "and its job is queued");
    fleet.start_workers(&[Pool::Webhooks]);
    fleet.drain().await;
    assert_eq!(fleet.store.webhook("acked-1").await.unwrap().unwrap().outcome.as_deref(), Some("processed"));
}
