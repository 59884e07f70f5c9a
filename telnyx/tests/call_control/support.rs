//! Harness: a manual-clock simulator with a webhook sink, the two clients pointed at it, and
//! spec checks of what the simulator logged.

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use fleet_sim::openapi_check::OpenApi;
use fleet_sim::{Caller, CallerScript, ClockMode, SimConfig, SimHandle, Simulator};
use fleet_telnyx::call_control::CommandId;
use fleet_telnyx::{CallControl, RateLimiter, TelnyxClient, TelnyxSettings};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const NUMBER: &str = "+13125550199";
pub const CALLER: &str = "+13125550101";
pub const KEY: &str = "KEYtest";

pub struct Env {
    pub sim: SimHandle,
    pub cc: CallControl,
    pub creds: TelnyxClient,
    cancel: CancellationToken,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Settings for tests: generous limits, no immediate retries unless a test asks.
pub fn settings() -> TelnyxSettings {
    TelnyxSettings { calls_immediate_retries: 0, ..TelnyxSettings::default() }
}

/// A webhook receiver that accepts everything (the tests read the simulator's own logs).
pub async fn sink(cancel: &CancellationToken) -> String {
    let app = Router::new().route("/hook", post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = cancel.clone();
    tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned()).await.unwrap();
    });
    format!("http://{addr}/hook")
}

impl Env {
    pub async fn start(settings: TelnyxSettings, tweak: impl FnOnce(&mut SimConfig)) -> Self {
        Self::with_limiter(settings, RateLimiter::unlimited(), tweak).await
    }

    pub async fn with_limiter(
        settings: TelnyxSettings,
        calls: RateLimiter,
        tweak: impl FnOnce(&mut SimConfig),
    ) -> Self {
        fleet_platform::metrics::install();
        let cancel = CancellationToken::new();
        let mut config = SimConfig::new(sink(&cancel).await);
        config.clock = ClockMode::Manual;
        config.seed = 7;
        config.api_key = Some(KEY.to_owned());
        config.epoch = Some("2026-01-01T00:00:00Z".parse().unwrap());
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = Simulator::start(config, listener, cancel.clone()).await.unwrap();
        let cc = CallControl::new(&sim.telnyx_api_base(), KEY, calls, &settings).unwrap();
        let creds = TelnyxClient::new(&sim.telnyx_api_base(), KEY, RateLimiter::unlimited()).unwrap();
        sim.add_number(NUMBER);
        Self { sim, cc, creds, cancel }
    }

    pub fn connection_id(&self) -> String {
        self.sim.config().connection_id.clone()
    }

    /// An inbound PSTN call, parked (not answered); its `call_control_id`.
    pub async fn inbound(&self) -> String {
        let placed = self
            .sim
            .place_call(CallerScript {
                from: Caller::Pstn(CALLER.to_owned()),
                to: NUMBER.to_owned(),
                at: Duration::ZERO,
                hangup_after: None,
            })
            .unwrap();
        self.sim.settle().await;
        placed.call_control_id
    }

    pub async fn advance_ms(&self, ms: u64) {
        self.sim.advance(Duration::from_millis(ms)).await.unwrap();
    }

    /// Requests the simulator logged for `operation`.
    pub fn requests_of(&self, operation: &str) -> Vec<fleet_sim::RecordedRequest> {
        self.sim.requests().into_iter().filter(|r| r.operation == operation).collect()
    }
}

/// A deterministic id for a test step.
pub fn id(step: &str) -> CommandId {
    CommandId::derive(step)
}

pub fn spec_doc() -> Value {
    serde_json::from_str(include_str!("../../../sim/openapi/telnyx-call-control.subset.json")).unwrap()
}

/// Request body fields the operation's schema does not declare (the subset declares no
/// `additionalProperties: false`, so the validator alone would accept a misspelt field).
pub fn undeclared_fields(doc: &Value, method: &str, path: &str, body: &Value) -> Vec<String> {
    let api = OpenApi::new(doc.clone());
    let Some((_, op)) = api.operation(method, path) else { return vec![format!("no operation {path}")] };
    let Some(r) = op.pointer("/requestBody/content/application~1json/schema/$ref").and_then(Value::as_str)
    else {
        return Vec::new();
    };
    let schema = doc.pointer(r.trim_start_matches('#')).cloned().unwrap_or_default();
    let props = schema["properties"].as_object().cloned().unwrap_or_default();
    body.as_object()
        .map(|o| o.keys().filter(|k| !props.contains_key(*k)).cloned().collect())
        .unwrap_or_default()
}

/// Every exchange the simulator logged matches the spec: accepted requests validate, declare no
/// unknown field and (actions, dial) carry a `command_id`; every answer matches its status.
/// Returns how many accepted exchanges were checked.
pub fn assert_conforms(env: &Env) -> usize {
    let doc = spec_doc();
    let api = OpenApi::new(doc.clone()).with_lenient_nulls(&["client_state"]);
    let mut accepted = 0;
    for r in env.sim.requests() {
        let resp = api.check_response(&r.method, &r.path, r.status, &r.content_type, &r.response);
        assert!(resp.is_ok(), "answer to {} {} ({}) breaks the spec: {resp:?}", r.method, r.path, r.status);
        if !(200..300).contains(&r.status) {
            continue;
        }
        accepted += 1;
        let body = (!r.body.is_null()).then_some(&r.body);
        let req = api.check_request(&r.method, &r.path, r.query.as_deref(), body);
        assert!(req.is_ok(), "accepted {} {} breaks the spec: {req:?}\n{}", r.method, r.path, r.body);
        if r.method == "POST" {
            assert!(r.body["command_id"].is_string(), "{} without command_id: {}", r.path, r.body);
            let extra = undeclared_fields(&doc, &r.method, &r.path, &r.body);
            assert!(extra.is_empty(), "{} sends undeclared fields {extra:?}", r.path);
        }
    }
    accepted
}
