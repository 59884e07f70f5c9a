//! Device credentials end to end, against the carrier simulator, on both engines: registration
//! races, encryption at rest, login tokens, deregistration, scheduled cleanup (with a Telnyx 5xx),
//! orphan and departed-user sweeps, rotation, the dialable query, and a search of every response,
//! log line and database dump for the SIP passwords.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use chrono::{Duration, Utc};
use fleet_domain::credentials::{CredentialStatus, credential_tag, org_of_tag};
use fleet_domain::sealing::Keyring;
use fleet_jobs::Pool;
use fleet_sim::{Fault, SimConfig, SimHandle, Simulator};
use fleet_store::{Engine, OrgCredential};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::on_both;
use crate::support::{Fleet, TestDb, eventually};

on_both! {
    concurrent_registrations_make_one_credential => concurrent_registrations_make_one_credential_postgres, concurrent_registrations_make_one_credential_sqlite;
    scheduled_cleanup_deletes_expired_orphans_and_departed => scheduled_cleanup_deletes_expired_orphans_and_departed_postgres, scheduled_cleanup_deletes_expired_orphans_and_departed_sqlite;
    failed_provisioning_is_retried_by_reregistering => failed_provisioning_is_retried_by_reregistering_postgres, failed_provisioning_is_retried_by_reregistering_sqlite;
    rotation_replaces_without_a_gap => rotation_replaces_without_a_gap_postgres, rotation_replaces_without_a_gap_sqlite;
}

const API_TOKEN: &str = "test-api-token";

fn secret_key() -> String {
    format!("k1:{}", base64::engine::general_purpose::STANDARD.encode([5u8; 32]))
}

/// A fleet (ingress + API) wired to a simulator, plus a log of every API response body.
pub struct Env {
    pub fleet: Fleet,
    pub sim: SimHandle,
    pub responses: Arc<Mutex<Vec<String>>>,
    _token: DropCancel,
}

struct DropCancel(CancellationToken);
impl Drop for DropCancel {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl Env {
    pub async fn start(engine: Engine, extra: &[(&str, &str)]) -> Self {
        Self::start_on(TestDb::new(engine).await, extra).await
    }

    pub async fn start_on(test_db: TestDb, extra: &[(&str, &str)]) -> Self {
        crate::support::logs::capture();
        let token = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim =
            Simulator::start(SimConfig::new("http://127.0.0.1:9/webhooks/telnyx"), listener, token.clone())
                .await
                .unwrap();
        let base = sim.telnyx_api_base();
        let key = secret_key();
        let mut vars: Vec<(&str, &str)> = vec![
            ("TELNYX_API_KEY", "test-telnyx-key"),
            ("TELNYX_API_BASE", &base),
            ("TELNYX_CREDENTIAL_CONNECTION_ID", "cred-conn-1"),
            ("CALLFLEET_API_TOKEN", API_TOKEN),
            ("CALLFLEET_SECRET_KEY", &key),
        ];
        vars.extend_from_slice(extra);
        let fleet = Fleet::start_on(test_db, &vars).await;
        Self { fleet, sim, responses: Arc::default(), _token: DropCancel(token) }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.fleet.http.request(method, self.fleet.url(path)).bearer_auth(API_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        self.responses.lock().unwrap().push(text.clone());
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn tenant(&self, org: &str, users: &[&str]) {
        assert_eq!(self.put(&format!("/v1/organizations/{org}"), json!({"name": org})).await.0, 201);
        for u in users {
            assert_eq!(self.put(&format!("/v1/users/{u}"), json!({"org_id": org})).await.0, 201);
        }
    }

    pub async fn register(&self, device: &str, user: &str, org: &str) -> (u16, Value) {
        self.put(
            &format!("/v1/devices/{device}"),
            json!({"user_id": user, "org_id": org, "platform": "ios",
            "voip_token": crate::support::calls::hex_token(device), "app_version": "1.2.3"}),
        )
        .await
    }

    /// Live simulator credentials carrying one of our tags for `org`.
    pub fn sim_creds(&self, org: &str) -> Vec<fleet_sim::Credential> {
        self.sim
            .credentials()
            .into_iter()
            .filter(|c| c.tag.as_deref().and_then(org_of_tag) == Some(org))
            .collect()
    }

    pub async fn rows(&self) -> i64 {
        self.fleet.test_db.count("SELECT count(*) FROM device_credentials").await
    }

    /// Sets a device's stored credential expiry to `secs` (Unix seconds).
    pub async fn expire_in_store(&self, device: &str, secs: i64) {
        let value = match self.fleet.test_db.engine {
            Engine::Postgres => format!("to_timestamp({secs})"),
            Engine::Sqlite => (secs * 1000).to_string(),
        };
        self.fleet
            .test_db
            .exec(&format!("UPDATE device_credentials SET expires_at = {value} WHERE device_id = '{device}'"))
            .await;
    }
}

async fn concurrent_registrations_make_one_credential(engine: Engine) {
    let env = Env::start(engine, &[]).await;
    env.tenant("org-1", &["alice"]).await;
    let answers = futures::future::join_all((0..10).map(|_| env.register("phone-1", "alice", "org-1"))).await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    assert!(answers.iter().all(|(s, _)| *s == 200 || *s == 201), "{answers:?}");
    assert_eq!(created, 1);
    assert_eq!(answers[0].1["credential"]["status"], "provisioning");
    env.fleet.start_workers(&[Pool::Credentials]);
    env.fleet.drain().await;

    assert_eq!(env.sim_creds("org-1").len(), 1, "one credential on the simulator");
    assert_eq!(env.rows().await, 1, "one credential in the store");
    let sim_cred = env.sim_creds("org-1").remove(0);
    assert!(sim_cred.expires_at.is_some_and(|e| e > Utc::now() + Duration::days(29)));
    let device = env.fleet.store.device("phone-1").await.unwrap().unwrap();
    let cred = device.credential.unwrap();
    assert_eq!(cred.status, CredentialStatus::Active);
    assert_eq!(cred.sip_username.as_deref(), Some(sim_cred.sip_username.as_str()));
    let sealed = cred.sip_password_sealed.expect("password kept sealed");
    assert!(sealed.starts_with("v2:k1:") && !sealed.contains(&sim_cred.sip_password));
    let ring = Keyring::parse(&secret_key()).unwrap();
    assert_eq!(ring.open(&sealed, &sim_cred.id).unwrap(), sim_cred.sip_password);
    assert!(ring.open(&sealed, "another-credential").is_err(), "bound to its credential");

    // Re-registering an active device changes nothing on Telnyx.
    assert_eq!(env.register("phone-1", "alice", "org-1").await.0, 200);
    env.fleet.drain().await;
    assert_eq!(env.sim_creds("org-1").len(), 1);

    let (s, v) = env.call(reqwest::Method::GET, "/v1/devices/phone-1", None).await;
    assert_eq!((s, v["credential"]["status"].as_str()), (200, Some("active")));
    let (s, v) = env.call(reqwest::Method::POST, "/v1/devices/phone-1/token", None).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["token"].as_str().unwrap().split('.').count(), 3);
    let dialable = env.fleet.store.dialable_credentials("alice", "org-1", Utc::now()).await.unwrap();
    assert_eq!(dialable.len(), 1);

    // Deregistration: Telnyx credential and device gone; twice is fine.
    assert_eq!(env.call(reqwest::Method::DELETE, "/v1/devices/phone-1", None).await.0, 204);
    assert!(env.fleet.store.dialable_credentials("alice", "org-1", Utc::now()).await.unwrap().is_empty());
    env.fleet.drain().await;
    assert!(env.sim_creds("org-1").is_empty());
    assert_eq!(env.rows().await, 0);
    assert_eq!(env.call(reqwest::Method::DELETE, "/v1/devices/phone-1", None).await.0, 204);
    assert_eq!(env.call(reqwest::Method::GET, "/v1/devices/phone-1", None).await.0, 404);
    assert_no_password_leak(&env, &[sim_cred.sip_password]).await;
}

async fn failed_provisioning_is_retried_by_reregistering(engine: Engine) {
    let env = Env::start(engine, &[]).await;
    env.tenant("org-f", &["fred"]).await;
    // A permanent Telnyx refusal (422) fails provisioning for good.
    env.sim.inject(Fault::ApiError {
        operation: Some("credential_create".into()),
        status: 422,
        code: Some("10004".into()),
        count: 1,
    });
    env.register("tab-1", "fred", "org-f").await;
    env.fleet.start_workers(&[Pool::Credentials]);
    env.fleet.drain().await;
    let cred = env.fleet.store.device("tab-1").await.unwrap().unwrap().credential.unwrap();
    assert_eq!(cred.status, CredentialStatus::Failed);
    assert_eq!(env.call(reqwest::Method::POST, "/v1/devices/tab-1/token", None).await.0, 409);
    // Re-registering retries it.
    let (_, v) = env.register("tab-1", "fred", "org-f").await;
    assert_eq!(v["credential"]["status"], "provisioning");
    env.fleet.drain().await;
    let cred = env.fleet.store.device("tab-1").await.unwrap().unwrap().credential.unwrap();
    assert_eq!(cred.status, CredentialStatus::Active);
    assert_eq!(env.sim_creds("org-f").len(), 1);

    // Bad input changes nothing and says why; auth is required.
    let (s, v) =
        env.put("/v1/devices/tab-2", json!({"user_id": "fred", "org_id": "org-f", "platform": "fax"})).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_field")));
    // The APNs token becomes a path segment of the push request: hex only.
    for voip in ["../../3/device/x", "voip-tab-2", "abc"] {
        let body = json!({"user_id": "fred", "org_id": "org-f", "platform": "ios", "voip_token": voip});
        let (s, v) = env.put("/v1/devices/tab-2", body).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_field")), "{voip}");
    }
    let (s, v) = env
        .put("/v1/devices/tab-2", json!({"user_id": "nobody", "org_id": "org-f", "platform": "web"}))
        .await;
    assert_eq!((s, v["error"].as_str()), (422, Some("invalid_reference")));
    let (s, v) = env
        .put(
            "/v1/devices/tab-2",
            json!({"user_id": "fred", "org_id": "org-f", "platform": "web", "sip_password": "x"}),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_body")));
    assert_eq!(env.call(reqwest::Method::GET, "/v1/devices/tab-2", None).await.0, 404);
    let res = env.fleet.http.get(env.fleet.url("/v1/devices/tab-1")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "missing_token");
    // The document is public (the routing contract): no token needed.
    let res = env.fleet.http.get(env.fleet.url("/v1/openapi.json")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (s, doc) = env.call(reqwest::Method::GET, "/v1/openapi.json", None).await;
    assert_eq!(s, 200);
    assert!(doc["paths"]["/v1/devices/{id}/token"]["post"].is_object());
}

async fn scheduled_cleanup_deletes_expired_orphans_and_departed(engine: Engine) {
    let env = Env::start(engine, &[]).await;
    env.tenant("org-2", &["bob", "carol"]).await;
    for d in ["d-old-1", "d-old-2", "d-live"] {
        env.register(d, "bob", "org-2").await;
    }
    env.fleet.start_workers(&[Pool::Credentials]);
    env.fleet.drain().await;
    assert_eq!(env.sim_creds("org-2").len(), 3);
    let past = Utc::now().timestamp() - 3600;
    env.expire_in_store("d-old-1", past).await;
    env.expire_in_store("d-old-2", past).await;
    // Routing never dials an expired credential.
    let dialable = env.fleet.store.dialable_credentials("bob", "org-2", Utc::now()).await.unwrap();
    assert_eq!(dialable.iter().map(|d| d.device_id.as_str()).collect::<Vec<_>>(), vec!["d-live"]);

    // Orphans: tagged as ours (the bare tag of older rows, and a sharded one), unknown to the store.
    let telnyx = fleet_telnyx::TelnyxClient::new(
        &env.sim.telnyx_api_base(),
        "k",
        fleet_telnyx::RateLimiter::unlimited(),
    )
    .unwrap();
    // A credential made on Telnyx behind the store's back, on the fleet's credential connection.
    let create = |name: &'static str, tag: &str| {
        let request = fleet_telnyx::CreateCredential {
            connection_id: "cred-conn-1".into(),
            name: name.into(),
            tag: tag.to_owned(),
            expires_at: Utc::now() + Duration::days(30),
        };
        let telnyx = &telnyx;
        async move { telnyx.create_credential(&request).await.unwrap() }
    };
    let orphan = create("callfleet:ghost", "callfleet-org:org-2").await;
    let sharded_orphan = create("callfleet:ghost-2", &credential_tag("org-2", "ghost-2")).await;
    // Another system's credential on the same connection: not ours to delete.
    let foreign = create("pbx:front-desk", "pbx").await;
    // An org-level credential of a user who then moves to another org.
    let web = create("web:carol", "callfleet-org:org-2").await;
    env.fleet
        .store
        .upsert_org_credential(&OrgCredential {
            id: "web-carol".into(),
            user_id: "carol".into(),
            org_id: "org-2".into(),
            telnyx_id: web.id.clone(),
            sip_username: web.sip_username.clone(),
            expires_at: None,
        })
        .await
        .unwrap();
    env.tenant("org-3", &[]).await;
    assert_eq!(env.put("/v1/users/carol", json!({"org_id": "org-3"})).await.0, 200);

    let passwords: Vec<String> = env.sim.credentials().into_iter().map(|c| c.sip_password).collect();
    // One Telnyx 5xx during cleanup: retried with persisted backoff, not lost.
    env.sim.inject(Fault::ApiError {
        operation: Some("credential_delete".into()),
        status: 500,
        code: None,
        count: 1,
    });
    let schedules = fleet_scheduler::default_schedules(&env.fleet.config).unwrap();
    let now = Utc::now();
    // Hourly sweeps: their latest tick before now + 2 h is at least an hour away (past the orphan grace).
    let later = now + Duration::hours(2);
    for s in &schedules {
        let tick = s.previous_tick(if s.name == "credential-cleanup" { now } else { later }).unwrap();
        if s.name != "purge-webhook-events" && s.name != "credential-rotation" {
            assert!(fleet_scheduler::fire(env.fleet.store.as_ref(), s, tick).await.unwrap(), "{}", s.name);
        }
    }
    env.fleet.start_workers(&[Pool::Maintenance]);
    env.fleet.drain().await;

    let left: Vec<String> = env.sim_creds("org-2").into_iter().map(|c| c.id).collect();
    let live = env.fleet.store.device("d-live").await.unwrap().unwrap().credential.unwrap();
    assert_eq!(left, vec![live.telnyx_id.clone().unwrap()], "only the active credential is left on Telnyx");
    assert!(!left.contains(&orphan.id) && !left.contains(&sharded_orphan.id) && !left.contains(&web.id));
    assert!(env.sim.credentials().iter().any(|c| c.id == foreign.id), "another system's credential stays");
    assert_eq!(env.rows().await, 1);
    assert_eq!(live.status, CredentialStatus::Active);
    assert_eq!(env.fleet.test_db.count("SELECT count(*) FROM org_credentials").await, 0);
    assert!(env.fleet.store.dead_jobs(None, 10).await.unwrap().is_empty(), "nothing died");
    let deletes_failed = env.sim.requests().iter().filter(|r| r.status >= 500).count();
    assert_eq!(deletes_failed, 1, "the injected 5xx happened and was retried");
    assert_no_password_leak(&env, &passwords).await;
}

/// Telnyx holds at most 1,000 credentials per tag (the simulator refuses the 1,001st with 422):
/// an organization's credentials are spread over sharded tags, so its 1,001st device gets one.
/// Postgres only: what it exercises is the tag, not the engine.
#[tokio::test]
async fn an_organization_gets_more_credentials_than_one_telnyx_tag_holds() {
    // The credential API budget (20/s by default) would make this take two minutes.
    let env = Env::start(Engine::Postgres, &[("CALLFLEET_TELNYX_RATE_LIMIT", "5000")]).await;
    env.tenant("org-big", &["u-big"]).await;
    const DEVICES: usize = 1_100;
    for i in 0..DEVICES {
        let (status, body) = env.register(&format!("big-{i}"), "u-big", "org-big").await;
        assert!(status == 200 || status == 201, "{status} {body}");
    }
    env.fleet.start_workers(&[Pool::Credentials]);
    env.fleet.drain().await;
    assert!(env.fleet.store.dead_jobs(None, 10).await.unwrap().is_empty(), "no provisioning died");
    let creds = env.sim_creds("org-big");
    assert_eq!(creds.len(), DEVICES);
    let tags: std::collections::HashSet<_> = creds.iter().filter_map(|c| c.tag.clone()).collect();
    assert!(tags.len() > 200, "spread over the shards: {} tags", tags.len());
}

async fn rotation_replaces_without_a_gap(engine: Engine) {
    // Every credential is "near expiry" with a rotate-before longer than the TTL.
    let env = Env::start(
        engine,
        &[("CALLFLEET_CREDENTIAL_TTL_SECS", "3600"), ("CALLFLEET_CREDENTIAL_ROTATE_BEFORE_SECS", "7200")],
    )
    .await;
    env.tenant("org-r", &["rita"]).await;
    env.register("r-1", "rita", "org-r").await;
    env.fleet.start_workers(&[Pool::Credentials, Pool::Maintenance]);
    env.fleet.drain().await;
    let before = env.fleet.store.device("r-1").await.unwrap().unwrap().credential.unwrap();
    let store = env.fleet.store.clone();
    // Watch the dialable query the whole time: never empty.
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let gaps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let watcher = {
        let (store, watching, gaps) = (store.clone(), watching.clone(), gaps.clone());
        tokio::spawn(async move {
            while watching.load(std::sync::atomic::Ordering::SeqCst) {
                if store.dialable_credentials("rita", "org-r", Utc::now()).await.unwrap().is_empty() {
                    gaps.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let schedules = fleet_scheduler::default_schedules(&env.fleet.config).unwrap();
    let rotation = schedules.iter().find(|s| s.name == "credential-rotation").unwrap();
    fleet_scheduler::fire(store.as_ref(), rotation, rotation.previous_tick(Utc::now()).unwrap())
        .await
        .unwrap();
    let old_id = before.id.clone();
    eventually(30, "the rotation", || {
        let store = store.clone();
        let old_id = old_id.clone();
        async move {
            let c = store.device("r-1").await.ok()??.credential?;
            (c.id != old_id && store.credential(&old_id).await.ok()?.is_none()).then_some(())
        }
    })
    .await;
    env.fleet.drain().await;
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    watcher.await.unwrap();
    assert_eq!(gaps.load(std::sync::atomic::Ordering::SeqCst), 0, "the device was dialable throughout");
    let after = env.fleet.store.device("r-1").await.unwrap().unwrap().credential.unwrap();
    assert_ne!(after.telnyx_id, before.telnyx_id);
    let on_sim: Vec<String> = env.sim_creds("org-r").into_iter().map(|c| c.id).collect();
    assert_eq!(on_sim, vec![after.telnyx_id.unwrap()], "old one deleted, new one live");
    let passwords: Vec<String> = env.sim.credentials().into_iter().map(|c| c.sip_password).collect();
    assert_no_password_leak(&env, &passwords).await;
}

/// Searches every API response, the captured logs and a dump of the database for the passwords.
async fn assert_no_password_leak(env: &Env, passwords: &[String]) {
    let responses = env.responses.lock().unwrap().join("\n");
    let logs = crate::support::logs::captured();
    let dump = dump(&env.fleet.test_db).await;
    assert!(!dump.is_empty() && dump.contains("device_credentials"), "the dump is real");
    for p in passwords {
        assert!(!responses.contains(p.as_str()), "password in an API response");
        assert!(!logs.contains(p.as_str()), "password in the logs");
        assert!(!dump.contains(p.as_str()), "password in the database dump");
    }
}

async fn dump(db: &TestDb) -> String {
    let out = match db.engine {
        Engine::Postgres => tokio::process::Command::new("pg_dump").arg(&db.url).output().await.unwrap(),
        Engine::Sqlite => {
            let file = db.url.trim_start_matches("sqlite://").split('?').next().unwrap().to_owned();
            tokio::process::Command::new("sqlite3").arg(file).arg(".dump").output().await.unwrap()
        }
    };
    String::from_utf8_lossy(&out.stdout).into_owned()
}

on_both! {
    long_cleanups_continue_in_follow_up_jobs => long_cleanups_continue_in_follow_up_jobs_postgres, long_cleanups_continue_in_follow_up_jobs_sqlite;
    orphan_sweeps_resume_where_they_stopped => orphan_sweeps_resume_where_they_stopped_postgres, orphan_sweeps_resume_where_they_stopped_sqlite;
    the_reseal_job_moves_passwords_under_the_new_key => the_reseal_job_moves_passwords_under_the_new_key_postgres, the_reseal_job_moves_passwords_under_the_new_key_sqlite;
}

/// An attempt whose time budget is spent hands the rest of the tick to a continuation job (once).
async fn long_cleanups_continue_in_follow_up_jobs(engine: Engine) {
    let env = Env::start(engine, &[]).await;
    env.tenant("org-c", &["cy"]).await;
    env.register("c-1", "cy", "org-c").await;
    env.fleet.start_workers(&[Pool::Credentials]);
    env.fleet.drain().await;
    env.expire_in_store("c-1", Utc::now().timestamp() - 60).await;
    let mut runtime =
        fleet_workers::Runtime::from_config(&env.fleet.config, env.fleet.store.clone()).unwrap();
    runtime.attempt_budget = Some(std::time::Duration::ZERO);
    let tick = Utc::now().timestamp();
    let job =
        fleet_jobs::Envelope::new(fleet_jobs::Job::CleanupExpiredCredentialsV1 { now: tick }, "cleanup:t");
    fleet_workers::run_job(&runtime, &job).await.unwrap();
    fleet_workers::run_job(&runtime, &job).await.unwrap();
    assert!(env.sim_creds("org-c").is_empty());
    assert_eq!(env.rows().await, 0);
    let table = env.fleet.test_db.jobs_table();
    let follow_ups = env
        .fleet
        .test_db
        .count(&format!("SELECT count(*) FROM {table} WHERE job_type = 'maintenance'"))
        .await;
    assert_eq!(follow_ups, 1, "one continuation, however often the attempt ran");
}

/// Device logins share the Telnyx rate budget with cleanups, but a person is waiting: past
/// `INTERACTIVE_WAIT` the answer is 503 `telnyx_busy` (before: the request hung until the budget
/// had room, however long a cleanup run kept it full).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn device_logins_never_hang_behind_the_rate_budget() {
    let env = Env::start(Engine::Sqlite, &[("CALLFLEET_TELNYX_RATE_LIMIT", "1")]).await;
    env.tenant("org-1", &["alice"]).await;
    assert_eq!(env.register("phone-1", "alice", "org-1").await.0, 201);
    env.fleet.start_workers(&[Pool::Credentials]);
    env.fleet.drain().await;
    // One call per second with a burst of one, twelve logins at once: at most three fit in the
    // two seconds each may wait.
    let logins = (0..12).map(|_| env.call(reqwest::Method::POST, "/v1/devices/phone-1/token", None));
    let answers = futures::future::join_all(logins).await;
    let issued = answers.iter().filter(|(s, _)| *s == 201).count();
    let busy = answers.iter().filter(|(s, v)| *s == 503 && v["error"] == "telnyx_busy").count();
    assert_eq!(issued + busy, answers.len(), "{answers:?}");
    assert!(issued >= 1 && busy >= 1, "issued {issued}, busy {busy}");
}

/// The store goes away for 10 s while an attempt fails and must enqueue its next one: the
/// enqueue is retried with a backoff inside the attempt until the store is back, and the chain
/// goes on. Before, the failed enqueue failed the handler into apalis's re-run, which has no
/// backoff; the job then came back through the liveness rescue (measured with a 13 s cut), so
/// what tells the two apart here is the retried enqueue, not the end state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_outage_while_enqueuing_the_next_attempt_delays_the_job_instead_of_killing_it() {
    let mut test_db = TestDb::new(Engine::Postgres).await;
    let proxy = crate::support::proxy::Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let direct = test_db.url.clone();
    test_db.url = test_db.url.replace("127.0.0.1:5432", &proxy.addr.to_string());
    let env = Env::start_on(test_db, &[]).await;
    env.tenant("org-1", &["alice"]).await;
    // The first lookup of the credential answers late with a 503: the attempt fails (retryable)
    // while the database is cut.
    env.sim.inject(Fault::ApiTimeout {
        operation: Some(fleet_sim::scenario::ops::CREDENTIAL_LIST.into()),
        delay: std::time::Duration::from_secs(2),
        apply: false,
        count: 1,
    });
    assert_eq!(env.register("phone-1", "alice", "org-1").await.0, 201);
    env.fleet.start_workers(&[Pool::Credentials]);
    eventually(20, "the attempt to reach Telnyx", || async {
        env.sim
            .requests()
            .iter()
            .any(|r| r.operation == fleet_sim::scenario::ops::CREDENTIAL_LIST)
            .then_some(())
    })
    .await;
    proxy.cut();
    let cut_at = tokio::time::Instant::now();
    eventually(30, "the next attempt's enqueue to be retried", || async {
        let logs = crate::support::logs::captured();
        (logs.matches("Could not enqueue the job's next step").count() >= 3).then_some(())
    })
    .await;
    // The outage lasts 10 s in all, as in the issue (its length is the scenario, not an assertion).
    tokio::time::sleep_until(cut_at + std::time::Duration::from_secs(10)).await;
    proxy.restore();
    env.fleet.test_db.make_scheduled_due("credentials").await;
    env.fleet.drain().await;
    let cred = env.fleet.store.device("phone-1").await.unwrap().unwrap().credential.unwrap();
    assert_eq!(cred.status, CredentialStatus::Active, "provisioned by the next attempt");
    assert!(env.fleet.store.dead_jobs(None, 10).await.unwrap().is_empty(), "nothing died");
    drop(direct);
}

/// Key rotation of `CALLFLEET_SECRET_KEY`: with a new key first, the re-seal job moves every
/// stored password under it (bound to its credential), after which the old key can be removed.
async fn the_reseal_job_moves_passwords_under_the_new_key(engine: Engine) {
    let env = Env::start(engine, &[]).await;
    env.tenant("org-1", &["alice"]).await;
    assert_eq!(env.register("phone-1", "alice", "org-1").await.0, 201);
    env.fleet.start_workers(&[Pool::Credentials]);
    env.fleet.drain().await;
    let before = env.fleet.store.device("phone-1").await.unwrap().unwrap().credential.unwrap();
    assert!(before.sip_password_sealed.as_deref().unwrap().starts_with("v2:k1:"));

    let k2 = format!("k2:{}", base64::engine::general_purpose::STANDARD.encode([6u8; 32]));
    let rotated = format!("{k2},{}", secret_key());
    let config =
        crate::support::fleet::test_config(&env.fleet.test_db.url, &[("CALLFLEET_SECRET_KEY", &rotated)]);
    let runtime = fleet_workers::Runtime::from_config(&config, env.fleet.store.clone()).unwrap();
    let job = fleet_jobs::Envelope::new(fleet_jobs::Job::ResealSecretsV1 { now: 0 }, "reseal-test");
    fleet_workers::run_job(&runtime, &job).await.unwrap();

    let after = env.fleet.store.device("phone-1").await.unwrap().unwrap().credential.unwrap();
    let sealed = after.sip_password_sealed.unwrap();
    assert!(sealed.starts_with("v2:k2:"), "{sealed}");
    let telnyx_id = after.telnyx_id.unwrap();
    let password = env.sim_creds("org-1").remove(0).sip_password;
    assert_eq!(
        Keyring::parse(&k2).unwrap().open(&sealed, &telnyx_id).unwrap(),
        password,
        "k1 is no longer needed"
    );
    // A second run finds nothing left to do.
    fleet_workers::run_job(&runtime, &job).await.unwrap();
    let again = env.fleet.store.device("phone-1").await.unwrap().unwrap().credential.unwrap();
    assert_eq!(again.sip_password_sealed.as_deref(), Some(sealed.as_str()));
}

/// An orphan sweep too large for one attempt goes on where it stopped. With a zero budget each
/// attempt sweeps one page of the listing and hands the rest to a continuation; a Telnyx failure
/// on the second page retries that page, not the first (before: every attempt listed the whole
/// connection from its first page, so a connection too large to list and sweep within one
/// attempt was restarted from the beginning forever; checked: this test then fails). Deleted
/// credentials leave the listing: the next page starts after the ones kept, none is skipped.
async fn orphan_sweeps_resume_where_they_stopped(engine: Engine) {
    let env = Env::start(engine, &[]).await;
    env.tenant("org-s", &["sy"]).await;
    env.register("s-1", "sy", "org-s").await;
    env.fleet.start_workers(&[Pool::Credentials]);
    env.fleet.drain().await;
    let telnyx = fleet_telnyx::TelnyxClient::new(
        &env.sim.telnyx_api_base(),
        "k",
        fleet_telnyx::RateLimiter::unlimited(),
    )
    .unwrap();
    let create = |name: String, tag: &'static str| {
        let request = fleet_telnyx::CreateCredential {
            connection_id: "cred-conn-1".into(),
            name,
            tag: tag.to_owned(),
            expires_at: Utc::now() + Duration::days(30),
        };
        let telnyx = &telnyx;
        async move { telnyx.create_credential(&request).await.unwrap().id }
    };
    // The listing (creation order): the device's credential and 249 of another system's (page 1,
    // nothing to delete), then 250 orphans between 250 more of the other system's (pages 2 and 3).
    let mut kept =
        vec![env.fleet.store.device("s-1").await.unwrap().unwrap().credential.unwrap().telnyx_id.unwrap()];
    for i in 0..249 {
        kept.push(create(format!("pbx:{i}"), "pbx").await);
    }
    let mut orphans = Vec::new();
    for i in 0..250 {
        orphans.push(create(format!("callfleet:ghost-{i}"), "callfleet-org:org-s").await);
        kept.push(create(format!("pbx:late-{i}"), "pbx").await);
    }
    env.sim.inject(Fault::ApiError {
        operation: Some("credential_delete".into()),
        status: 500,
        code: None,
        count: 1,
    });
    let mut runtime =
        fleet_workers::Runtime::from_config(&env.fleet.config, env.fleet.store.clone()).unwrap();
    runtime.attempt_budget = Some(std::time::Duration::ZERO);
    // Past the orphan grace.
    let tick = (Utc::now() + Duration::hours(2)).timestamp();
    let mut job = fleet_jobs::Envelope::new(
        fleet_jobs::Job::SweepOrphanCredentialsV1 { now: tick, resume_at: 0 },
        "orphan-sweep:t",
    );
    let (mut attempts, mut failures) = (0, 0);
    loop {
        attempts += 1;
        assert!(attempts <= 20, "the sweep did not finish in 20 attempts");
        if fleet_workers::run_job(&runtime, &job).await.is_err() {
            failures += 1;
            continue;
        }
        // The continuation this attempt enqueued, if any.
        let payload = match engine {
            Engine::Postgres => "convert_from(job, 'UTF8')",
            Engine::Sqlite => "CAST(job AS TEXT)",
        };
        let table = env.fleet.test_db.jobs_table();
        let next = env
            .fleet
            .test_db
            .strings(&format!(
                "SELECT {payload} FROM {table} WHERE {payload} LIKE '%\"work_id\":\"{}+\"%'",
                job.work_id
            ))
            .await;
        match next.first() {
            Some(payload) => job = serde_json::from_str(payload).unwrap(),
            None => break,
        }
    }
    assert_eq!(failures, 1, "the injected 5xx failed one attempt");
    let left: std::collections::HashSet<String> = env.sim.credentials().into_iter().map(|c| c.id).collect();
    assert!(orphans.iter().all(|id| !left.contains(id)), "every orphan deleted");
    assert!(kept.iter().all(|id| left.contains(id)), "every other credential kept");
    // The sweep's listings (a registration's lookup by name is not one), by page number.
    let pages: Vec<String> = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.operation == "credential_list")
        .filter_map(|r| r.query)
        .filter(|q| q.contains("resource_id"))
        .collect();
    let first = pages
        .iter()
        .filter(|q| q.replace("%5B", "[").replace("%5D", "]").split('&').any(|p| p == "page[number]=1"))
        .count();
    assert_eq!(first, 1, "the first page listed once: {pages:?}");
}
