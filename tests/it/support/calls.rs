//! The end-to-end harness of the call engine: a real fleet (ingress + every worker pool) wired to
//! the carrier simulator both ways, on either engine, driven as one discrete-event simulation.
//!
//! Wiring: the simulator's webhooks go to the fleet's ingress (signed with the simulator's key,
//! which is the fleet's `TELNYX_PUBLIC_KEY`); the fleet's Telnyx, FCM and APNs base URLs are the
//! simulator; the fleet's app events go to the simulator's receiver, which verifies their
//! Standard Webhooks signatures.
//!
//! Time: the simulator runs on its manual clock and the fleet on a [`TestClock`] that starts at
//! the simulator's epoch. [`CallEnv::run_for`] lets both sides do everything due now (the
//! simulator settles its deliveries; the fleet runs until no job is ready, running, or delayed
//! and already due), then moves both clocks together to the next thing either side has
//! scheduled — a device answering, a webhook's latency, a ring timeout, a redial — and repeats.
//! So a 3-hour call takes as long as a 3-second one, no test sleeps, and the order of events is
//! the one the scripts and timers say.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_domain::call::Call;
use fleet_domain::credentials::CredentialStatus;
use fleet_domain::routing::{Mode, NumberConfig, OutsideHours};
use fleet_jobs::Pool;
use fleet_platform::shutdown::CancellationToken;
use fleet_sim::{
    Caller, CallerScript, ClockMode, CredentialRef, DevicePlatform, DeviceScript, PlacedCall, RingBehaviour,
    SimConfig, SimHandle, Simulator,
};
use fleet_store::{DeviceRegistration, Engine, OrgSettings, Organization, Store, User};

use super::{Fleet, TestClock, TestDb, eventually};

/// The simulator's epoch and the fleet clock's start. The wall clock at start: Telnyx signature
/// timestamps (wall clock) and event times (virtual) then agree until the virtual clock jumps.
///
/// Whole milliseconds, like the [`TestClock`]: with a sub-millisecond epoch, a timer due a fraction
/// of a millisecond after the clock's reading rounded up to the clock's own reading, so
/// [`CallEnv::run_for`] never moved the clock past it ("time stands still").
fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("the wall clock is in range")
}

/// Stops the simulator when the environment is dropped.
struct DropCancel(CancellationToken);

impl Drop for DropCancel {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

pub struct CallEnv {
    pub fleet: Fleet,
    pub sim: SimHandle,
    pub clock: TestClock,
    pub epoch: DateTime<Utc>,
    /// The fleet's environment beside the test defaults (for `callfleet` child processes).
    pub env: Vec<(String, String)>,
    _sim_stop: DropCancel,
    _keys: tempfile_dir::Dir,
}

mod tempfile_dir {
    /// A directory removed on drop (the APNs key file lives there).
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("callfleet-calls-{}", ulid::Ulid::generate()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl CallEnv {
    /// A fleet on a fresh database of `engine` and a simulator, every pool running.
    pub async fn start(engine: Engine) -> Self {
        Self::start_with(engine, &[]).await
    }

    pub async fn start_with(engine: Engine, extra: &[(&str, &str)]) -> Self {
        Self::build(engine, extra, true, &[], |_| {}).await
    }

    /// [`Self::start_with`] without the pools `held_back` (a backed-up pool): the harness waits
    /// only for the pools that run, until the test starts the others (`fleet.start_workers`).
    pub async fn start_without(engine: Engine, extra: &[(&str, &str)], held_back: &[Pool]) -> Self {
        Self::build(engine, extra, true, held_back, |_| {}).await
    }

    /// The simulator on its real clock, the ingress in this process and no worker: the test runs
    /// `callfleet worker` processes with [`Self::env`] (crash tests). `sim` adjusts the
    /// simulator's configuration.
    pub async fn start_for_processes(
        engine: Engine,
        extra: &[(&str, &str)],
        sim: impl FnOnce(&mut SimConfig),
    ) -> Self {
        Self::build(engine, extra, false, &[], sim).await
    }

    async fn build(
        engine: Engine,
        extra: &[(&str, &str)],
        in_process: bool,
        held_back: &[Pool],
        adjust: impl FnOnce(&mut SimConfig),
    ) -> Self {
        let epoch = epoch();
        let ingress = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let webhook_url = format!("http://{}/webhooks/telnyx", ingress.local_addr().unwrap());
        let stop = CancellationToken::new();
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut config = SimConfig::new(webhook_url.clone());
        config.clock = if in_process { ClockMode::Manual } else { ClockMode::Real };
        config.epoch = Some(epoch);
        config.failover_url = Some(webhook_url.replace("/webhooks/telnyx", "/webhooks/telnyx/failover"));
        adjust(&mut config);
        let sim = Simulator::start(config, sim_listener, stop.clone()).await.unwrap();
        let keys = tempfile_dir::Dir::new();
        let mut vars: Vec<(&str, String)> = vec![
            ("TELNYX_PUBLIC_KEY", sim.public_key_base64()),
            ("TELNYX_API_KEY", "test-telnyx-key".into()),
            ("TELNYX_API_BASE", sim.telnyx_api_base()),
            ("TELNYX_CONNECTION_ID", sim.config().connection_id.clone()),
            ("TELNYX_CREDENTIAL_CONNECTION_ID", "cred-conn-1".into()),
            ("CALLFLEET_SECRET_KEY", format!("k1:{}", base64_key())),
            ("CALLFLEET_EVENTS_URL", sim.events_url()),
            ("CALLFLEET_EVENTS_SECRET", sim.events_secret().to_owned()),
            ("CALLFLEET_WORKER_CONCURRENCY", "16".into()),
            ("CALLFLEET_RECORDINGS_URL", format!("file://{}", keys.0.join("recordings").display())),
        ];
        vars.extend(sim.push_env(&keys.0.join("apns.p8"), "com.example.phone").unwrap());
        let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(extra);
        let clock = TestClock::at(epoch);
        let fleet_clock = in_process.then(|| clock.clock());
        let fleet = Fleet::start_with(TestDb::new(engine).await, ingress, &all, fleet_clock).await;
        if in_process {
            let pools: Vec<Pool> = Pool::ALL.into_iter().filter(|p| !held_back.contains(p)).collect();
            fleet.start_workers(&pools);
        }
        let env = all.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Self { fleet, sim, clock, epoch, env, _sim_stop: DropCancel(stop), _keys: keys }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.fleet.store
    }

    /// An organization with its settings.
    pub async fn org(&self, id: &str, settings: OrgSettings) {
        let org = Organization { id: id.into(), name: Some(format!("Org {id}")), settings };
        self.store().upsert_organization(&org).await.unwrap();
    }

    /// A user in `orgs` (the first is the primary).
    pub async fn user(&self, id: &str, orgs: &[&str], dnd: bool) {
        let user = User {
            id: id.into(),
            org_id: orgs[0].into(),
            org_ids: orgs.iter().map(|o| (*o).to_owned()).collect(),
            name: None,
            dnd,
        };
        self.store().upsert_user(&user).await.unwrap();
    }

    /// A number that rings `user` (or nobody), with the simulator routing PSTN calls to it.
    pub async fn number(&self, e164: &str, org: &str, user: Option<&str>, ring_timeout_secs: u32) {
        let config = NumberConfig {
            org_id: org.into(),
            user_id: user.map(Into::into),
            mode: Mode::Ring,
            ring_timeout_secs,
            schedule: None,
            outside_hours: OutsideHours::Voicemail,
        };
        self.store().put_number(e164, &config).await.unwrap();
        self.sim.add_number(e164);
    }

    /// A phone of `user`, registered in `org` through the store (its credential provisioned by the
    /// fleet against the simulator), then scripted in the simulator: registered (`online`) or not,
    /// with a push token (FCM for android, APNs VoIP for ios), behaving `on_ring`.
    pub async fn phone(
        &self,
        id: &str,
        user: &str,
        org: &str,
        platform: &str,
        online: bool,
        on_ring: RingBehaviour,
    ) {
        let platform = match platform {
            "ios" => "ios",
            "android" => "android",
            _ => "web",
        };
        let phone = Phone { id: id.into(), user: user.into(), org: org.into(), platform, online, on_ring };
        self.phones(vec![phone]).await;
    }

    /// [`Self::phone`] for many phones at once: all registered, then all awaited.
    pub async fn phones(&self, phones: Vec<Phone>) {
        for p in &phones {
            let token = format!("tok-{}", p.id);
            let reg = DeviceRegistration {
                id: p.id.clone(),
                user_id: p.user.clone(),
                org_id: p.org.clone(),
                platform: p.platform.into(),
                push_token: (p.platform == "android").then(|| token.clone()),
                voip_token: (p.platform == "ios").then(|| hex_token(&p.id)),
                app_version: None,
                name: None,
            };
            self.store().register_device(&reg).await.unwrap();
        }
        let wait = 60 + phones.len() as u64 / 5;
        for p in phones {
            let store = self.store().clone();
            let sip = eventually(wait, "the device's credential to be active", || {
                let store = store.clone();
                let id = p.id.clone();
                async move {
                    let cred = store.device(&id).await.ok()??.credential?;
                    (cred.status == CredentialStatus::Active).then_some(cred.sip_username?)
                }
            })
            .await;
            let platform = match p.platform {
                "ios" => DevicePlatform::Ios,
                "android" => DevicePlatform::Android,
                _ => DevicePlatform::Web,
            };
            let push_token = match platform {
                DevicePlatform::Ios => Some(hex_token(&p.id)),
                DevicePlatform::Android => Some(format!("tok-{}", p.id)),
                DevicePlatform::Web => None,
            };
            self.sim
                .add_device(DeviceScript {
                    id: p.id,
                    platform,
                    push_token,
                    credential: CredentialRef::SipUsername(sip),
                    online: p.online,
                    register_after_push: None,
                    on_ring: p.on_ring,
                })
                .unwrap();
        }
    }

    /// A PSTN caller calls `to` now.
    pub fn call_from(&self, from: &str, to: &str) -> PlacedCall {
        self.sim
            .place_call(CallerScript {
                from: Caller::Pstn(from.into()),
                to: to.into(),
                at: Duration::ZERO,
                hangup_after: None,
            })
            .unwrap()
    }

    /// The fleet's stored call.
    pub async fn call(&self, session: &str) -> Call {
        self.store().call(session).await.unwrap().expect("the call is stored")
    }

    /// Runs both sides for `span` of virtual time (see the module header).
    pub async fn run_for(&self, span: Duration) {
        let sim_start = self.sim.now();
        let horizon = sim_start + span;
        let mut standing_still = 0;
        loop {
            self.settle().await;
            let sim_next = self.sim.next_due();
            let fleet_next = self
                .store()
                .next_due_at(&self.running_pools())
                .await
                .unwrap()
                // Rounded up: a timer 0.4 ms after a millisecond is due at the next one.
                .map(
                    |t| Duration::from_micros((t - self.epoch).num_microseconds().unwrap_or(0).max(0) as u64),
                )
                .map(|d| Duration::from_millis(d.as_micros().div_ceil(1000) as u64));
            let next = [sim_next, fleet_next].into_iter().flatten().min();
            let now = self.sim.now();
            let target = match next {
                Some(n) if n <= horizon => n.max(now),
                _ => horizon,
            };
            standing_still = if target > now { 0 } else { standing_still + 1 };
            assert!(standing_still < 1_000, "time stands still at {now:?}: something is due that never runs");
            if target > now {
                self.clock.set(self.epoch + chrono::Duration::milliseconds(target.as_millis() as i64));
                tokio::time::timeout(Duration::from_secs(30), self.sim.advance(target - now))
                    .await
                    .expect("the simulator advanced in 30 s")
                    .unwrap();
            }
            if target >= horizon && next.is_none_or(|n| n > horizon) {
                self.settle().await;
                return;
            }
        }
    }

    /// Until nothing is due now on either side: the simulator's deliveries answered, and no job
    /// of the fleet ready, running, or delayed and due.
    pub async fn settle(&self) {
        for _ in 0..200 {
            self.sim_settle().await;
            self.fleet_idle().await;
            self.sim_settle().await;
            if self.fleet_is_idle().await {
                return;
            }
        }
        let stats = self.store().queue_stats().await;
        let next = self.store().next_due_at(&Pool::ALL).await;
        panic!(
            "the fleet and the simulator never went quiet together: {stats:#?}, next due {next:?}, now {}",
            self.store().now()
        );
    }

    async fn sim_settle(&self) {
        if tokio::time::timeout(Duration::from_secs(30), self.sim.settle()).await.is_err() {
            panic!("the simulator did not settle in 30 s; its webhooks: {:#?}", self.sim.webhooks().last());
        }
    }

    /// The pools whose jobs the harness waits for: those running in this process, or all of
    /// them when the workers are other processes.
    fn running_pools(&self) -> Vec<Pool> {
        let started = self.fleet.started_pools();
        if started.is_empty() { Pool::ALL.to_vec() } else { started }
    }

    async fn fleet_is_idle(&self) -> bool {
        let store = self.store();
        let pools = self.running_pools();
        // Due delayed jobs first: one promoted between the two reads is then seen in the queue.
        let due = store.next_due_at(&pools).await.ok().flatten().is_some_and(|t| t <= store.now());
        let Ok(stats) = store.queue_stats().await else { return false };
        let busy = stats
            .iter()
            .filter(|s| pools.iter().any(|p| p.as_str() == s.pool))
            .any(|s| s.ready > 0 || s.running > 0);
        !busy && !due
    }

    async fn fleet_idle(&self) {
        eventually(60, "the fleet to go idle", || async { self.fleet_is_idle().await.then_some(()) }).await;
    }

    /// The Telnyx requests the fleet sent for one operation (`dial`, `answer`, `bridge`, `hangup`…).
    pub fn requests(&self, operation: &str) -> Vec<fleet_sim::RecordedRequest> {
        self.sim.requests().into_iter().filter(|r| r.operation == operation).collect()
    }

    /// App events the simulator's receiver verified, of one type and call.
    pub fn events(&self, event_type: &str, session: &str) -> Vec<fleet_sim::ReceivedEvent> {
        self.sim
            .app_events()
            .into_iter()
            .filter(|e| {
                e.event_type.as_deref() == Some(event_type) && e.call_session_id.as_deref() == Some(session)
            })
            .collect()
    }
}

/// A phone for [`CallEnv::phones`].
pub struct Phone {
    pub id: String,
    pub user: String,
    pub org: String,
    /// `android`, `ios` or `web`.
    pub platform: &'static str,
    pub online: bool,
    pub on_ring: RingBehaviour,
}

/// A 64-hex-digit APNs device token derived from the device id.
pub fn hex_token(id: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(id.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn base64_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}
