//! `callfleet run` without a Telnyx API key, as a newcomer starts it: the built-in simulator, the
//! demo call that rings, and a configured webhook key that the demo never replaces.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::support::{Engine, TestDb, eventually, process, webhook};

/// `callfleet run` on a fresh SQLite database, the simulator and the fleet on free ports; the
/// variables in `unset` are removed from the test defaults.
struct Demo {
    _db: TestDb,
    _child: tokio::process::Child,
    /// Everything the process wrote to stderr so far (drained continuously, so it never blocks).
    log: Arc<Mutex<String>>,
    api: String,
    sim: String,
    http: reqwest::Client,
}

impl Demo {
    async fn start(unset: &[&str]) -> Self {
        let db = TestDb::new(Engine::Sqlite).await;
        let api = format!("127.0.0.1:{}", process::free_port());
        let sim = format!("127.0.0.1:{}", process::free_port());
        let data = std::env::temp_dir().join(format!("callfleet-demo-{}", ulid::Ulid::generate()));
        let mut cmd = process::command(
            &db.url,
            &["run"],
            &[
                ("CALLFLEET_LISTEN", &api),
                ("CALLFLEET_SIM_LISTEN", &sim),
                ("CALLFLEET_DATA_DIR", data.to_str().unwrap()),
                ("CALLFLEET_API_TOKEN", "demo-test-token"),
                ("RUST_LOG", "info"),
            ],
        );
        for key in unset {
            cmd.env_remove(key);
        }
        cmd.stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn callfleet run");
        let log = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().unwrap();
        let (api, sim) = (format!("http://{api}"), format!("http://{sim}"));
        let demo = Self { _db: db, _child: child, log, api, sim, http };
        let ready = format!("{}/readyz", demo.api);
        eventually(60, "callfleet run to be ready", || async {
            let r = demo.http.get(&ready).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        demo
    }

    /// Waits for a log line containing `needle` (the demo prints its banner on stderr once the
    /// phones are provisioned); the log so far.
    async fn log_until(&self, needle: &str) -> String {
        let found = eventually(60, needle, || async {
            let log = self.log.lock().unwrap().clone();
            log.contains(needle).then_some(log)
        });
        found.await
    }

    async fn sim_json(&self, path: &str) -> Value {
        answer(self.http.get(format!("{}{path}", self.sim))).await
    }
}

/// The JSON body of the answer to `request`.
async fn answer(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_call_rings_both_phones_and_one_answers() {
    let demo = Demo::start(&["TELNYX_PUBLIC_KEY"]).await;
    demo.log_until("Demo: a caller rings").await;
    let call = json!({"from": {"pstn": "+13125550101"}, "to": "+13125550199", "hangup_after_ms": 30000});
    let placed = answer(demo.http.post(format!("{}/sim/calls", demo.sim)).json(&call)).await;
    let session = placed["call_session_id"].as_str().expect("a placed call").to_owned();
    let legs = |all: Value| -> Vec<Value> {
        all.as_array().unwrap().iter().filter(|l| l["call_session_id"] == session.as_str()).cloned().collect()
    };
    // Both phones ring (two device legs beside the caller's), the Android phone answers and is
    // bridged to the caller, and the iPhone's leg is ended.
    let settled = eventually(40, "the demo call to be answered on one phone", || async {
        let legs = legs(demo.sim_json("/sim/calls").await);
        let bridged = legs.iter().filter(|l| !l["bridged_with"].is_null()).count();
        let dismissed =
            legs.iter().filter(|l| l["bridged_with"].is_null() && !l["ended_ms"].is_null()).count();
        (legs.len() == 3 && bridged == 2 && dismissed == 1).then_some(legs)
    })
    .await;
    assert_eq!(settled.len(), 3, "{settled:#?}");
    let active_call = format!("{}/v1/users/demo-user/active-call", demo.api);
    let active = answer(demo.http.get(active_call).bearer_auth("demo-test-token")).await;
    assert_eq!(active["call_session_id"], session.as_str(), "{active}");
}

/// A configured `TELNYX_PUBLIC_KEY` stays the key in force: before, the demo replaced it with the
/// simulator's, so every real Telnyx webhook got 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_configured_webhook_key_is_never_replaced_by_the_simulators() {
    let demo = Demo::start(&[]).await;
    let log = demo.log_until("Webhook signature keys in force").await;
    assert!(log.contains(&webhook::public_key()), "the configured key is named at start:\n{log}");
    let sim_key = demo.sim_json("/sim/info").await["public_key"].as_str().unwrap().to_owned();
    assert_ne!(sim_key, webhook::public_key());

    let body = webhook::event("configured-key", "call.initiated", "v3:k", "s-k");
    let resp = webhook::deliver(&demo.http, &format!("{}/webhooks/telnyx", demo.api), &body).await;
    let status = resp.status().as_u16();
    let accepted: Value = resp.json().await.unwrap();
    assert_eq!((status, accepted["status"].as_str()), (200, Some("accepted")), "{accepted}");

    // The simulator signs with its own key, which is not in force: its deliveries are refused
    // (before, the demo trusted it in place of the configured key).
    let call = json!({"from": {"pstn": "+13125550101"}, "to": "+13125550199", "hangup_after_ms": 30000});
    let placed = answer(demo.http.post(format!("{}/sim/calls", demo.sim)).json(&call)).await;
    let session = placed["call_session_id"].as_str().expect("a placed call").to_owned();
    let refused = eventually(30, "the simulator's webhook to be answered", || async {
        let sent = demo.sim_json("/sim/webhooks").await;
        let ours = sent
            .as_array()?
            .iter()
            .find(|w| w["call_session_id"] == session.as_str() && w["outcome"]["kind"] != "pending")?;
        Some(ours["outcome"].clone())
    })
    .await;
    assert_eq!(refused, json!({"kind": "rejected", "status": 401}), "a simulator-signed webhook");
}
