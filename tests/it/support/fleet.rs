//! An in-process fleet on a per-test database: the real ingress on port 0, and worker pools on
//! demand, sharing one cancellation token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use fleet_jobs::Pool;
use fleet_platform::Config;
use fleet_platform::shutdown::CancellationToken;
use fleet_store::{Db, Engine, Store};
use tokio::net::TcpListener;

use super::{TestDb, eventually, webhook};

pub struct Fleet {
    pub test_db: TestDb,
    pub db: Db,
    pub store: Arc<dyn Store>,
    pub config: Config,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    token: CancellationToken,
    /// The pools started in this process (what `drain` waits for).
    started: std::sync::Mutex<Vec<Pool>>,
}

/// Test configuration: short orphan window and shutdown, the test signing key.
pub fn test_config(db_url: &str, extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = [
        ("CALLFLEET_DATABASE_URL", db_url.to_owned()),
        ("TELNYX_PUBLIC_KEY", webhook::public_key()),
        ("CALLFLEET_LISTEN", "127.0.0.1:0".to_owned()),
        ("CALLFLEET_ORPHAN_AFTER_SECS", "3".to_owned()),
        ("CALLFLEET_SHUTDOWN_TIMEOUT_SECS", "2".to_owned()),
        ("CALLFLEET_SHUTDOWN_DRAIN_SECS", "0".to_owned()),
        ("CALLFLEET_WORKER_CONCURRENCY", "8".to_owned()),
        ("CALLFLEET_WEBHOOK_MAX_BODY", "65536".to_owned()),
        ("CALLFLEET_RECORDINGS_URL", format!("file://{}", recordings_dir().display())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Config::from_lookup(|k| vars.get(k).cloned()).expect("test config")
}

/// A directory of this test's own for recording copies (removed with its fleet).
fn recordings_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("callfleet-recordings-{}", ulid::Ulid::generate()))
}

impl Fleet {
    /// A fresh database and the ingress, no workers yet.
    pub async fn start(engine: Engine) -> Self {
        let test_db = TestDb::new(engine).await;
        Self::start_on(test_db, &[]).await
    }

    pub async fn start_on(test_db: TestDb, extra: &[(&str, &str)]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_with(test_db, listener, extra, None).await
    }

    /// The ingress on `listener` (bound by the caller, so a simulator can be pointed at it
    /// first), with record times and timers read from `clock` when one is given.
    pub async fn start_with(
        test_db: TestDb,
        listener: TcpListener,
        extra: &[(&str, &str)],
        clock: Option<fleet_store::sql::Clock>,
    ) -> Self {
        let config = test_config(&test_db.url, extra);
        let db = test_db.open().await;
        let db = match clock {
            Some(clock) => db.with_clock(clock),
            None => db,
        };
        let store = db.store();
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        let (c, s, t) = (config.clone(), store.clone(), token.clone());
        tokio::spawn(async move { fleet_ingress::run(&c, s, listener, t).await });
        // The server closes a keep-alive connection that sends no request head within its header
        // timeout (CALLFLEET_HTTP_HEADER_TIMEOUT_SECS, 30 s by default): a client must not reuse one
        // idle that long, or its request races the close (`IncompleteMessage`).
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_idle_timeout(std::time::Duration::from_secs(1))
            .build()
            .unwrap();
        Self { test_db, db, store, config, addr, http, token, started: Default::default() }
    }

    /// The pools started in this process so far.
    pub fn started_pools(&self) -> Vec<Pool> {
        self.started.lock().unwrap().clone()
    }

    /// Where this fleet keeps recording copies (`CALLFLEET_RECORDINGS_URL` of a `file://` URL).
    pub fn recordings_dir(&self) -> Option<std::path::PathBuf> {
        let url = self.config.recordings_url.as_deref()?;
        url.strip_prefix("file://").map(std::path::PathBuf::from)
    }

    /// Starts worker pools in this process.
    pub fn start_workers(&self, pools: &[Pool]) {
        self.started.lock().unwrap().extend_from_slice(pools);
        let (c, d, t, p) = (self.config.clone(), self.db.clone(), self.token.clone(), pools.to_vec());
        tokio::spawn(async move { fleet_workers::run(&c, &d, &p, t).await });
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET path` of the app API with the bearer `token`, as JSON.
    pub async fn api_json(&self, path: &str, token: &str) -> serde_json::Value {
        let res = self.http.get(self.url(path)).bearer_auth(token).send().await.unwrap();
        res.json().await.unwrap()
    }

    /// POSTs `body` signed now to `path`.
    pub async fn deliver_to(&self, path: &str, body: &str) -> reqwest::Response {
        let (ts, sig) = webhook::sign_now(body);
        self.post(
            path,
            &[("telnyx-timestamp", ts), ("telnyx-signature-ed25519", sig)],
            body.as_bytes().to_vec(),
        )
        .await
    }

    /// POSTs `body` signed now to the primary endpoint.
    pub async fn deliver(&self, body: &str) -> reqwest::Response {
        self.deliver_to("/webhooks/telnyx", body).await
    }

    pub async fn post(&self, path: &str, headers: &[(&str, String)], body: Vec<u8>) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).header("content-type", "application/json").body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.send().await.expect("request")
    }

    /// Waits until no job is ready, scheduled or running in the pools this fleet runs (all of
    /// them when it started none: workers of another process).
    pub async fn drain(&self) {
        let store = self.store.clone();
        let pools: Vec<String> = self.started.lock().unwrap().iter().map(|p| p.as_str().to_owned()).collect();
        eventually(60, "queues to drain", || {
            let (store, pools) = (store.clone(), pools.clone());
            async move {
                let stats = store.queue_stats().await.ok()?;
                stats
                    .iter()
                    .filter(|s| pools.is_empty() || pools.contains(&s.pool))
                    .all(|s| s.ready == 0 && s.running == 0 && s.scheduled == 0)
                    .then_some(())
            }
        })
        .await
    }

    /// Number of jobs per pool that are not done (ready + scheduled + running + dead).
    pub async fn pending_jobs(&self, pool: Pool) -> u64 {
        let stats = self.store.queue_stats().await.unwrap();
        let s = stats.iter().find(|s| s.pool == pool.as_str()).unwrap();
        s.ready + s.scheduled + s.running
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.token.cancel();
        if let Some(dir) = self.recordings_dir().filter(|d| d.starts_with(std::env::temp_dir())) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
