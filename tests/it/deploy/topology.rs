//! `deploy/local-fleet.sh`: the compose topology as separate processes on PostgreSQL (ingress,
//! two worker groups, scheduler, the simulator, its settings handed over in a file), provisioned
//! through the app API and driven by a simulated call: both phones ring, one answers and is
//! bridged, the other is dismissed, the push and the app events went through the right groups;
//! SIGTERM stops every role.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;

use crate::support::{Engine, TestDb, eventually, process};

const TOKEN: &str = "topology-test-token";
const NUMBER: &str = "+13125550142";

/// The script's process group: SIGTERM on drop, so a failing test leaves no role running.
struct Fleet {
    child: tokio::process::Child,
    api: String,
    sim: String,
    dir: std::path::PathBuf,
    http: reqwest::Client,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
    }
}

impl Fleet {
    /// Starts the script on ports the kernel just handed out. Between choosing a port and a role
    /// binding it another test's connection may take it (a TOCTOU no port choice avoids), so a
    /// start that failed with "address in use" is tried again on new ports, at most three times.
    async fn start(db: &TestDb) -> Self {
        for _ in 0..3 {
            match Self::try_start(db).await {
                Ok(fleet) => return fleet,
                Err(why) if why.contains("in use") => eprintln!("retrying on new ports:\n{why}"),
                Err(why) => panic!("{why}"),
            }
        }
        panic!("three starts lost a port to another process")
    }

    async fn try_start(db: &TestDb) -> Result<Self, String> {
        let (api, sim) =
            (format!("127.0.0.1:{}", process::free_port()), format!("127.0.0.1:{}", process::free_port()));
        let metrics = [process::free_port(), process::free_port(), process::free_port()];
        let dir = std::env::temp_dir().join(format!("callfleet-topology-{}", ulid::Ulid::generate()));
        let child = tokio::process::Command::new("bash")
            .arg(super::repo("deploy/local-fleet.sh"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CALLFLEET_DATABASE_URL", &db.url)
            .env("CALLFLEET_BIN", env!("CARGO_BIN_EXE_callfleet"))
            .env("CALLFLEET_API_TOKEN", TOKEN)
            .env("CALLFLEET_SHUTDOWN_DRAIN_SECS", "0")
            .env("CALLFLEET_SHUTDOWN_TIMEOUT_SECS", "2")
            .env("LOCAL_FLEET_DIR", &dir)
            .env("LOCAL_FLEET_INGRESS", &api)
            .env("LOCAL_FLEET_SIM", &sim)
            .env("LOCAL_FLEET_METRICS_PORTS", metrics.map(|p| p.to_string()).join(","))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash deploy/local-fleet.sh");
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().unwrap();
        let mut fleet = Self { child, api: format!("http://{api}"), sim: format!("http://{sim}"), dir, http };
        let mut ready = vec![format!("{}/readyz", fleet.api)];
        ready.extend(metrics.iter().map(|port| format!("http://127.0.0.1:{port}/readyz")));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        for url in ready {
            while !fleet.http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                if let Some(status) = fleet.child.try_wait().unwrap() {
                    let mut stderr = String::new();
                    fleet.child.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
                    let logs = role_logs(&fleet.dir);
                    std::fs::remove_dir_all(&fleet.dir).ok();
                    return Err(format!(
                        "deploy/local-fleet.sh exited ({status}) before {url} was ready:\n{stderr}\n{logs}"
                    ));
                }
                assert!(tokio::time::Instant::now() < deadline, "{url} not ready in 60 s");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(fleet)
    }

    async fn api_put(&self, path: &str, body: Value) {
        let res =
            self.http.put(format!("{}{path}", self.api)).bearer_auth(TOKEN).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "PUT {path}: {}", res.text().await.unwrap());
    }

    async fn get(&self, url: String, auth: bool) -> Value {
        let req = self.http.get(url);
        let req = if auth { req.bearer_auth(TOKEN) } else { req };
        req.send().await.unwrap().json().await.unwrap()
    }

    async fn sim_post(&self, path: &str, body: Value) -> Value {
        let res = self.http.post(format!("{}{path}", self.sim)).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "POST {path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }

    /// Registers a phone through the app API, waits for the fleet to provision its SIP
    /// credential on the simulator, and scripts it there.
    async fn phone(&self, id: &str, on_ring: Value) {
        let body = json!({"user_id": "u-1", "org_id": "o-1", "platform": "android", "push_token": format!("tok-{id}")});
        self.api_put(&format!("/v1/devices/{id}"), body).await;
        let url = format!("{}/v1/devices/{id}", self.api);
        let sip = eventually(60, "the phone's credential", || async {
            let device = self.get(url.clone(), true).await;
            let cred = &device["credential"];
            (cred["status"] == "active").then(|| cred["sip_username"].as_str().map(str::to_owned)).flatten()
        })
        .await;
        let script = json!({"id": id, "platform": "android", "push_token": format!("tok-{id}"),
                            "credential": {"sip_username": sip}, "online": true, "on_ring": on_ring});
        self.sim_post("/sim/devices", script).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_local_topology_rings_a_call_and_stops_on_sigterm() {
    let db = TestDb::new(Engine::Postgres).await;
    let mut fleet = Fleet::start(&db).await;
    fleet.api_put("/v1/organizations/o-1", json!({"name": "Topology Org"})).await;
    fleet.api_put("/v1/users/u-1", json!({"org_id": "o-1"})).await;
    fleet
        .api_put(&format!("/v1/numbers/{NUMBER}"), json!({"org_id": "o-1", "user_id": "u-1", "mode": "ring"}))
        .await;
    fleet.sim_post("/sim/numbers", json!({"number": NUMBER})).await;
    fleet.phone("ph-answers", json!({"kind": "answer", "after_ms": 700})).await;
    fleet.phone("ph-rings", json!({"kind": "never"})).await;

    let call = json!({"from": {"pstn": "+13125550100"}, "to": NUMBER, "hangup_after_ms": 30000});
    let placed = fleet.sim_post("/sim/calls", call).await;
    let session = placed["call_session_id"].as_str().expect("a placed call").to_owned();
    let status_url = format!("{}/v1/calls/{session}", fleet.api);
    let status = eventually(40, "the call to be answered on one phone", || async {
        let status = fleet.get(status_url.clone(), true).await;
        (status["state"] == "answered").then_some(status)
    })
    .await;
    assert_eq!(status["answered_by_device_id"], "ph-answers", "{status}");
    // The caller is bridged to the phone that answered; the other phone's leg is ended.
    let legs = eventually(20, "the other phone to be dismissed", || async {
        let all = fleet.get(format!("{}/sim/calls", fleet.sim), false).await;
        let legs: Vec<Value> =
            all.as_array()?.iter().filter(|l| l["call_session_id"] == session.as_str()).cloned().collect();
        let bridged = legs.iter().filter(|l| !l["bridged_with"].is_null()).count();
        let ended = legs.iter().filter(|l| l["bridged_with"].is_null() && !l["ended_ms"].is_null()).count();
        (legs.len() == 3 && bridged == 2 && ended == 1).then_some(legs)
    })
    .await;
    assert_eq!(legs.len(), 3);
    // The push went out through the call group's push pool, the app event through the
    // background group's events pool, each with the simulator's settings from the file.
    let pushes = fleet.get(format!("{}/sim/pushes", fleet.sim), false).await;
    assert!(pushes.to_string().contains(&session), "an incoming_call push for the call: {pushes}");
    eventually(20, "the call.answered app event", || async {
        let events = fleet.get(format!("{}/sim/events", fleet.sim), false).await.to_string();
        (events.contains("call.answered") && events.contains(&session)).then_some(())
    })
    .await;
    assert!(fleet.sim_anomalies().await.is_empty());
    // What an operator sees of it: the winner and both legs, the webhooks in order.
    let (ok, story) = process::run(&db.url, &["call", &session]).await;
    assert!(ok && story.contains("state answered") && story.contains("winner ph-answers"), "{story}");
    assert!(story.contains("webhook call.answered"), "{story}");

    // SIGTERM: the script passes it on and exits once every role has stopped.
    let mut stderr = String::new();
    let mut pipe = fleet.child.stderr.take().unwrap();
    process::sigterm(&fleet.child);
    let exited = tokio::time::timeout(Duration::from_secs(30), fleet.child.wait()).await;
    pipe.read_to_string(&mut stderr).await.unwrap();
    assert!(exited.is_ok(), "the script stopped within 30 s:\n{stderr}");
    let pids: Vec<&str> = stderr.lines().filter_map(|l| l.split("(pid ").nth(1)?.split(')').next()).collect();
    assert_eq!(pids.len(), 5, "sim, ingress, two worker groups, scheduler:\n{stderr}");
    for pid in pids {
        let alive =
            std::process::Command::new("kill").args(["-0", pid]).stderr(Stdio::null()).status().unwrap();
        assert!(!alive.success(), "role {pid} still running after the script exited");
    }
    std::fs::remove_dir_all(&fleet.dir).ok();
}

/// The last lines of every role's log, for a start that failed.
fn role_logs(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(10).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            out += &format!("--- {}:\n{}\n", path.display(), tail.join("\n"));
        }
    }
    out
}

impl Fleet {
    async fn sim_anomalies(&self) -> Vec<Value> {
        let v = self.get(format!("{}/sim/anomalies", self.sim), false).await;
        v.as_array().cloned().unwrap_or_default()
    }
}
