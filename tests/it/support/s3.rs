//! An S3-compatible server on loopback for the recordings tests: moto's server mode (PyPI
//! `moto[server]`, installed by `scripts/test.sh` into the tools virtualenv, whose `bin` is on
//! the test's `PATH`). A test that needs it fails with a clear message when it cannot start.

use std::time::Duration;

use tokio::process::{Child, Command};

use super::process::free_port;

/// A running `moto_server`, killed on drop.
pub struct S3Server {
    pub endpoint: String,
    _child: Child,
}

impl S3Server {
    /// Starts a server and creates `bucket` in it.
    pub async fn start(bucket: &str) -> Self {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("moto_server (PyPI moto[server]) on PATH: ./scripts/test.sh installs it into ~/.cache/callfleet/venv");
        let endpoint = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        // moto accepts unsigned requests: a plain PUT creates the bucket.
        let mut created = false;
        for _ in 0..300 {
            if let Ok(res) = http.put(format!("{endpoint}/{bucket}")).send().await {
                assert!(res.status().is_success(), "creating bucket {bucket}: {}", res.status());
                created = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(created, "moto_server did not answer on {endpoint} within 30 s");
        Self { endpoint, _child: child }
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel but nothing is
    /// answered, as a store that hangs mid-request.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self._child.id().expect("moto_server runs").to_string();
        let ok = std::process::Command::new("kill").args([signal, &pid]).status().expect("kill").success();
        assert!(ok, "kill {signal} {pid}");
    }

    /// The settings that point a fleet's recordings at `bucket/prefix` on this server.
    pub fn fleet_env(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        vec![
            ("CALLFLEET_RECORDINGS_URL".into(), format!("s3://{bucket}/{prefix}")),
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test-secret".into()),
        ]
    }

    /// The bytes of `key` in `bucket`, read with a signed request (moto keeps objects private),
    /// after checking that moto's own listing holds the key with that size.
    pub async fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let listing = http.get(format!("{}/{bucket}?list-type=2", self.endpoint)).send().await.ok()?;
        let listing = listing.text().await.ok()?;
        let entry = listing.split("<Contents>").find(|c| c.contains(&format!("<Key>{key}</Key>")))?;
        let size: usize = entry.split("<Size>").nth(1)?.split('<').next()?.parse().ok()?;
        let options: Vec<(String, String)> = self.fleet_env(bucket, "").into_iter().skip(1).collect();
        let archive = fleet_recordings::Archive::open(&format!("s3://{bucket}"), &options).ok()?;
        let bytes = archive.get(key).await.ok()?.to_vec();
        assert_eq!(bytes.len(), size, "moto lists {key} with {size} bytes");
        Some(bytes)
    }
}
