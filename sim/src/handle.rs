//! The library entry point: [`Simulator::start`] and the [`SimHandle`] tests drive it with.
//!
//! Start-up binds nothing itself (the caller passes a bound `TcpListener`, so tests use port 0) and spawns:
//! the HTTP server (Telnyx `/v2`, control `/sim`, recordings, push), the delivery lanes' dispatcher, and in
//! real-clock mode the clock driver. All stop when the `CancellationToken` is cancelled; in-flight webhook
//! attempts are then abandoned.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{ClockMode, DeliveryKnobs, SimConfig};
use crate::engine::Core;
use crate::error::SimError;
use crate::log::{Anomaly, RecordedRequest, RecordingDownload, SentWebhook};
use crate::observer::{DeliveredPush, PushObserver};
use crate::push::PushSim;
use crate::scenario::{CallerScript, DeviceScript, Fault, PlacedCall, RingBehaviour};
use crate::world::{CallView, Credential, World};

mod races;

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Serves the simulator on `listener` until `shutdown` is cancelled.
    ///
    /// Fails if the webhook or failover URL does not parse, the listener has no local address, or the HTTP
    /// client cannot be built. Must be called inside a tokio runtime.
    pub async fn start(
        config: SimConfig,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<SimHandle, SimError> {
        for url in std::iter::once(&config.webhook_url).chain(config.failover_url.as_ref()) {
            reqwest::Url::parse(url)
                .map_err(|e| SimError::InvalidConfig(format!("webhook URL {url:?}: {e}")))?;
        }
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let public_base = config.public_base_url.clone().unwrap_or_else(|| base_url.clone());
        // Sim time 0 is this instant and this wall time, read together: what follows (key
        // generation, an HTTP client loading its root certificates) takes tens of milliseconds,
        // which would otherwise skew every sim time mapped to the wall clock by as much.
        let (start, epoch) = (tokio::time::Instant::now(), config.epoch.unwrap_or_else(Utc::now));
        let max_in_flight = config.delivery.lanes.clamp(1, 4096);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let config = Arc::new(config);
        let world = World::new(config.clone(), epoch, public_base, tx, pending.clone());
        // Idle connections are dropped well before a server would close them (callfleet's ingress
        // closes one that sends no request head within its header timeout, 30 s by default), so a
        // delivery never races that close.
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(64)
            .pool_idle_timeout(Duration::from_secs(4))
            .build()?;
        let core = Arc::new(Core::new(config.clone(), world, pending, http, start)?);
        tokio::spawn(core.clone().lanes(rx, max_in_flight, shutdown.clone()));
        if config.clock == ClockMode::Real {
            tokio::spawn(core.clone().drive(shutdown.clone()));
        }
        let observer: Arc<dyn PushObserver> = Arc::new(CallModelObserver(core.clone()));
        let push = crate::push_link::push_sim(config.seed, observer);
        let handle = SimHandle {
            core: core.clone(),
            base_url,
            push: push.clone(),
            server: Arc::new(Mutex::new(None)),
        };
        let app = crate::api::router(core.clone())
            .merge(crate::control::router(handle.clone()))
            .merge(crate::push_link::router(&push));
        let token = shutdown.clone();
        let server = tokio::spawn(async move {
            // Connect info lets APNs track provider-token updates per connection, as Apple
            // does (several fleet replicas, each with its own token, are then fine).
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned()).await
        });
        if let Ok(mut s) = handle.server.lock() {
            *s = Some(server);
        }
        Ok(handle)
    }
}

/// Handle on a running simulator. Cheap to clone; all methods are safe to call concurrently.
#[derive(Clone)]
pub struct SimHandle {
    core: Arc<Core>,
    base_url: String,
    push: PushSim,
    server: Arc<Mutex<Option<JoinHandle<std::io::Result<()>>>>>,
}

struct CallModelObserver(Arc<Core>);

impl PushObserver for CallModelObserver {
    fn push_delivered(&self, push: DeliveredPush) {
        self.0.with(|w| w.push_delivered(&push));
    }
}

impl SimHandle {
    /// `http://<bound address>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `http://<bound address>/v2`, the base URL to give a Telnyx client.
    pub fn telnyx_api_base(&self) -> String {
        format!("{}/v2", self.base_url)
    }

    /// Standard base64 of the raw 32-byte Ed25519 public key webhooks are signed with.
    pub fn public_key_base64(&self) -> String {
        self.core.signer.public_key_base64()
    }

    pub fn public_key(&self) -> ed25519_dalek::VerifyingKey {
        self.core.signer.verifying_key()
    }

    pub fn config(&self) -> &SimConfig {
        &self.core.config
    }

    /// Sim time since start.
    pub fn now(&self) -> Duration {
        Duration::from_millis(self.core.with(|w| w.now))
    }

    /// Wall-clock equivalent of the current sim time.
    pub fn now_utc(&self) -> DateTime<Utc> {
        self.core.with(|w| w.now_utc())
    }

    // ---- scenario ----

    /// Adds an account number on the default Call Control app.
    pub fn add_number(&self, e164: &str) {
        let conn = self.core.config.connection_id.clone();
        self.add_number_on(e164, &conn);
    }

    /// Adds an account number on a given Call Control app (`connection_id` of its inbound calls).
    pub fn add_number_on(&self, e164: &str, connection_id: &str) {
        self.core.with(|w| w.numbers.insert(e164.to_owned(), connection_id.to_owned()));
    }

    /// Scripts what a PSTN number does when dialed or transferred to.
    pub fn set_pstn_behaviour(&self, e164: &str, behaviour: RingBehaviour) {
        self.core.with(|w| w.pstn.insert(e164.to_owned(), behaviour));
    }

    pub fn add_device(&self, script: DeviceScript) -> Result<(), SimError> {
        self.core.with(|w| w.add_device(script))
    }

    /// Registers (`true`) or unregisters a device now.
    pub fn set_device_online(&self, id: &str, online: bool) -> Result<(), SimError> {
        self.core.with(|w| w.set_device_online(id, online))
    }

    /// Whether a device is registered; `None` for an unknown device.
    pub fn device_registered(&self, id: &str) -> Option<bool> {
        self.core.with(|w| w.device_registered(id))
    }

    /// Schedules a scripted inbound call (see [`CallerScript`]); its ids are returned now.
    pub fn place_call(&self, script: CallerScript) -> Result<PlacedCall, SimError> {
        self.core.with(|w| w.place_call(script))
    }

    /// The far end hangs up now (the caller on an incoming leg; the callee on an answered outgoing leg; a
    /// ringing outgoing leg is declined).
    pub fn remote_hangup(&self, call_control_id: &str) -> Result<(), SimError> {
        self.core.with(|w| w.remote_hangup_now(call_control_id))
    }

    /// The callee of a ringing outgoing leg answers now.
    pub fn remote_answer(&self, call_control_id: &str) -> Result<(), SimError> {
        self.core.with(|w| w.remote_answer_now(call_control_id))
    }

    /// Tells the call model a push was delivered (what the push simulator does on its own).
    pub fn push_delivered(&self, push: DeliveredPush) {
        self.core.with(|w| w.push_delivered(&push));
    }

    /// The call model's push observer (already connected to [`SimHandle::push`]; useful to feed pushes
    /// from another push simulator).
    pub fn push_observer(&self) -> Arc<dyn PushObserver> {
        Arc::new(CallModelObserver(self.core.clone()))
    }

    /// The FCM/APNs simulator served by this simulator (same listener, its own paths).
    pub fn push(&self) -> &PushSim {
        &self.push
    }

    /// The fleet's push settings that point FCM and APNs at this simulator, as environment
    /// pairs: its service account, its base URL for both providers, and its APNs key, written to
    /// `apns_key_path` (the fleet reads the `.p8` from a file). `topic` is the app's bundle id.
    pub fn push_env(
        &self,
        apns_key_path: &std::path::Path,
        topic: &str,
    ) -> std::io::Result<Vec<(&'static str, String)>> {
        let key = self.push.apns_key();
        std::fs::write(apns_key_path, &key.private_key_pem)?;
        Ok(vec![
            ("FCM_SERVICE_ACCOUNT", self.push.service_account_json(&self.base_url)),
            ("FCM_API_BASE", self.base_url.clone()),
            ("APNS_KEY_PATH", apns_key_path.display().to_string()),
            ("APNS_KEY_ID", key.key_id),
            ("APNS_TEAM_ID", key.team_id),
            ("APNS_TOPIC", topic.to_owned()),
            ("APNS_API_BASE", self.base_url.clone()),
        ])
    }

    // ---- clock ----

    /// Manual clock only: moves time forward, running everything that falls due, in order, and settling
    /// webhook deliveries at each step. Errors with [`SimError::NotManualClock`] on the real clock.
    pub async fn advance(&self, by: Duration) -> Result<(), SimError> {
        self.core.advance(by).await
    }

    /// Sim time of the next scheduled action (a ring, an answer, a delayed delivery), if any: a
    /// harness driving a fleet on the manual clock advances to it.
    pub fn next_due(&self) -> Option<Duration> {
        self.core.with(|w| w.next_due()).map(Duration::from_millis)
    }

    /// Waits until everything due now has run and every webhook attempt handed out has been answered.
    pub async fn settle(&self) {
        self.core.settle().await;
    }

    // ---- observation ----

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.core.read(|w| w.log.requests.clone())
    }

    pub fn webhooks(&self) -> Vec<SentWebhook> {
        self.core.read(|w| w.log.webhooks.clone())
    }

    pub fn anomalies(&self) -> Vec<Anomaly> {
        self.core.read(|w| w.log.anomalies.clone())
    }

    /// Every request for a recording's file, in order.
    pub fn recording_downloads(&self) -> Vec<RecordingDownload> {
        self.core.read(|w| w.log.downloads.clone())
    }

    /// Empties the logs (requests, recording downloads, webhooks, anomalies, pushes, app events).
    pub fn clear_logs(&self) {
        self.core.with(|w| {
            w.log.requests.clear();
            w.log.downloads.clear();
            w.log.webhooks.clear();
            w.log.anomalies.clear();
            w.log.pushes.clear();
            w.log.app_events.clear();
            w.log.app_event_index.clear();
        });
    }

    pub fn calls(&self) -> Vec<CallView> {
        self.core.read(|w| {
            let mut v: Vec<CallView> = w.legs.values().map(|l| l.view()).collect();
            v.sort_by(|a, b| (a.start_ms, &a.call_control_id).cmp(&(b.start_ms, &b.call_control_id)));
            v
        })
    }

    pub fn call(&self, call_control_id: &str) -> Option<CallView> {
        self.core.read(|w| w.legs.get(call_control_id).map(|l| l.view()))
    }

    /// Live (not deleted) telephony credentials, oldest first.
    pub fn credentials(&self) -> Vec<Credential> {
        self.core.read(|w| w.creds_snapshot())
    }

    // ---- faults and knobs ----

    /// Injects a fault; returns its id.
    pub fn inject(&self, fault: Fault) -> u64 {
        self.core.with(|w| w.faults.add(fault))
    }

    pub fn clear_faults(&self) {
        self.core.with(|w| w.faults.clear());
    }

    pub fn faults(&self) -> Vec<(u64, Fault, u32)> {
        self.core.read(|w| w.faults.list())
    }

    /// Replaces the delivery knobs (`lanes`, the in-flight limit, is fixed at start).
    pub fn set_delivery(&self, knobs: DeliveryKnobs) {
        self.core.with(|w| w.knobs = knobs);
    }

    pub fn delivery(&self) -> DeliveryKnobs {
        self.core.read(|w| w.knobs.clone())
    }

    // ---- lifecycle ----

    /// Waits for the HTTP server to stop (after the shutdown token is cancelled).
    pub async fn stopped(&self) -> Result<(), SimError> {
        let server = self.server.lock().ok().and_then(|mut s| s.take());
        match server {
            Some(h) => match h.await {
                Ok(r) => r.map_err(SimError::Io),
                Err(e) => Err(SimError::Io(std::io::Error::other(e))),
            },
            None => Ok(()),
        }
    }
}
