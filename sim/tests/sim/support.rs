//! Test harness: a webhook receiver that records and verifies what the simulator sends, a simulator on a
//! manual clock, and a small Telnyx client.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use fleet_sim::{ClockMode, SimConfig, SimHandle, Simulator};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// One webhook as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub failover: bool,
    pub body: Value,
    pub signature_ok: bool,
}

impl Received {
    pub fn event_type(&self) -> &str {
        self.body["data"]["event_type"].as_str().unwrap_or_default()
    }
    pub fn payload(&self) -> &Value {
        &self.body["data"]["payload"]
    }
    pub fn ccid(&self) -> &str {
        self.payload()["call_control_id"].as_str().unwrap_or_default()
    }
}

#[derive(Default)]
struct RecvState {
    arrived: tokio::sync::Notify,
    key: OnceLock<VerifyingKey>,
    got: Mutex<Vec<Received>>,
    /// Statuses to answer on the primary URL, in order (then 200).
    primary: Mutex<VecDeque<u16>>,
}

/// A local webhook receiver (`/webhooks/telnyx` and `/webhooks/telnyx/failover`).
pub struct Receiver {
    pub url: String,
    pub failover_url: String,
    state: Arc<RecvState>,
}

async fn receive(state: Arc<RecvState>, failover: bool, headers: HeaderMap, body: Bytes) -> StatusCode {
    let ts = headers.get("telnyx-timestamp").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let sig = headers.get("telnyx-signature-ed25519").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let signature_ok = state.key.get().is_some_and(|key| {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(sig) else { return false };
        let Ok(raw): Result<[u8; 64], _> = raw.try_into() else { return false };
        let mut msg = ts.as_bytes().to_vec();
        msg.push(b'|');
        msg.extend_from_slice(&body);
        key.verify(&msg, &Signature::from_bytes(&raw)).is_ok()
    });
    let status = if failover { 200 } else { state.primary.lock().unwrap().pop_front().unwrap_or(200) };
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status < 300 {
        state.got.lock().unwrap().push(Received { failover, body: parsed, signature_ok });
        state.arrived.notify_waiters();
    }
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    pub async fn start(cancel: &CancellationToken) -> Self {
        let state = Arc::new(RecvState::default());
        let app = Router::new()
            .route(
                "/webhooks/telnyx",
                post(|State(s): State<Arc<RecvState>>, h: HeaderMap, b: Bytes| receive(s, false, h, b)),
            )
            .route(
                "/webhooks/telnyx/failover",
                post(|State(s): State<Arc<RecvState>>, h: HeaderMap, b: Bytes| receive(s, true, h, b)),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = cancel.clone();
        tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned()).await.unwrap();
        });
        Self {
            url: format!("http://{addr}/webhooks/telnyx"),
            failover_url: format!("http://{addr}/webhooks/telnyx/failover"),
            state,
        }
    }

    pub fn got(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    /// Received events of `event_type` for `ccid`.
    pub fn of(&self, ccid: &str, event_type: &str) -> Vec<Received> {
        self.got().into_iter().filter(|r| r.ccid() == ccid && r.event_type() == event_type).collect()
    }

    /// Event types received for one leg, in order.
    pub fn types_for(&self, ccid: &str) -> Vec<String> {
        self.got().into_iter().filter(|r| r.ccid() == ccid).map(|r| r.event_type().to_owned()).collect()
    }

    /// Waits (up to `limit`, wall time) until a received webhook satisfies `pred` (real-clock tests).
    pub async fn wait_for(&self, limit: std::time::Duration, pred: impl Fn(&Received) -> bool) -> Received {
        let wait = async {
            loop {
                let notified = self.state.arrived.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(r) = self.got().into_iter().find(|r| pred(r)) {
                    return r;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.expect("webhook did not arrive in time")
    }

    /// The next primary deliveries answer these statuses.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.state.primary.lock().unwrap().extend(statuses);
    }
}

/// A running simulator with its receiver and a client.
pub struct Env {
    pub sim: SimHandle,
    pub rx: Receiver,
    pub http: reqwest::Client,
    pub cancel: CancellationToken,
    pub key: String,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub const KEY: &str = "KEYtest";
pub const CONN: &str = "1684641123236054244";

impl Env {
    /// A manual-clock simulator (seed 1, fixed epoch, retries immediate); `tweak` adjusts the config.
    pub async fn start(tweak: impl FnOnce(&mut SimConfig)) -> Self {
        let cancel = CancellationToken::new();
        let rx = Receiver::start(&cancel).await;
        let mut config = SimConfig::new(rx.url.clone());
        config.clock = ClockMode::Manual;
        config.seed = 1;
        config.api_key = Some(KEY.to_owned());
        config.epoch = Some("2026-01-01T00:00:00Z".parse().unwrap());
        config.delivery.retry_delay = std::time::Duration::ZERO;
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = Simulator::start(config, listener, cancel.clone()).await.unwrap();
        let key = base64::engine::general_purpose::STANDARD.decode(sim.public_key_base64()).unwrap();
        let _ = rx.state.key.set(VerifyingKey::from_bytes(&key.try_into().unwrap()).unwrap());
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Self { sim, rx, http, cancel, key: KEY.to_owned() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.telnyx_api_base())
    }

    /// Sends a request and returns (status, JSON body or JSON string for text).
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let is_json = res
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap_or_default().starts_with("application/json"));
        let text = res.text().await.unwrap();
        let v = if is_json { serde_json::from_str(&text).unwrap() } else { Value::String(text) };
        (status, v)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// `POST /calls/{id}/actions/{action}`, asserting 200.
    pub async fn act(&self, ccid: &str, action: &str, body: Value) -> Value {
        let (status, v) = self.post(&format!("/calls/{ccid}/actions/{action}"), body).await;
        assert_eq!(status, 200, "{action} on {ccid}: {v}");
        v
    }

    /// Dials and returns the new call_control_id.
    pub async fn dial(&self, to: &str, extra: Value) -> String {
        let mut body = json!({"connection_id": CONN, "to": to, "from": "+13125550100"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, v) = self.post("/calls", body).await;
        assert_eq!(status, 200, "dial: {v}");
        v["data"]["call_control_id"].as_str().unwrap().to_owned()
    }

    /// `POST /ai/audio/transcriptions` as multipart/form-data: the text `fields`, then `file` (as
    /// `recording.wav`) if given; returns (status, JSON body).
    pub async fn transcribe(&self, fields: &[(&str, &str)], file: Option<&[u8]>) -> (u16, Value) {
        let (content_type, body) = multipart(fields, file);
        let res = self
            .http
            .post(self.url("/ai/audio/transcriptions"))
            .bearer_auth(&self.key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    pub fn inject(&self, fault: fleet_sim::Fault) {
        self.sim.inject(fault);
    }

    pub async fn advance_ms(&self, ms: u64) {
        self.sim.advance(std::time::Duration::from_millis(ms)).await.unwrap();
    }
}

pub fn code(v: &Value) -> &str {
    v["errors"][0]["code"].as_str().unwrap_or_default()
}

/// A multipart/form-data body, built by hand (the test client has no multipart feature): returns the
/// content type (with its boundary) and the body.
pub fn multipart(fields: &[(&str, &str)], file: Option<&[u8]>) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "fleet-sim-test-7d1f0c";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    if let Some(bytes) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"recording.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}
