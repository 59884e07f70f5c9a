//! The call model: every piece of mutable simulator state, behind one `std::sync::Mutex` in `Core`.
//!
//! Design: the world is a synchronous state machine. API handlers, the clock driver, delivery lanes and the
//! push observer lock it, apply a change at the current sim time, run whatever became due
//! ([`World::run_due`]) and unlock; the lock is never held across an `.await`. Time-based behaviour
//! (ringing devices, timeouts, caller hangups, delayed webhook deliveries) is a [`Timeline`] of [`Action`]s,
//! run in (time, insertion) order, which together with the seeded RNGs makes runs reproducible.
//!
//! Failure behaviour: nothing here returns an I/O error. Client mistakes become Telnyx-shaped `ApiError`s;
//! impossible-in-practice states (an action for a leg that no longer exists) are ignored.

mod commands;
mod credentials;
mod devices;
mod events;
mod faults;
mod legs;
mod params;
mod recording;
mod rings;
mod speak;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::mpsc::UnboundedSender;

pub(crate) use self::commands::{Outcome, ReplyBody};
pub use self::credentials::Credential;
pub(crate) use self::devices::Devices;
pub(crate) use self::faults::{ApiFault, Faults};
pub(crate) use self::legs::Leg;
pub use self::legs::{CallView, Direction as LegDirection, LegState};
use crate::config::{DeliveryKnobs, SimConfig};
use crate::delivery::{Delivery, Outgoing};
use crate::log::Logs;
use crate::scenario::RingBehaviour;
use crate::timeline::{SimMs, Timeline};

/// Something scheduled to happen at a sim time.
pub(crate) enum Action {
    /// A webhook delivery attempt.
    Deliver(Box<Delivery>),
    /// A scripted inbound call begins (`call.initiated`).
    StartInbound(Box<legs::PendingInbound>),
    /// The browser of a direct WebRTC call hangs up.
    BrowserHangup(String),
    /// The far end of a leg acts (target index for outgoing legs; 0 for the caller of an incoming leg).
    Remote {
        ccid: String,
        target: usize,
        act: legs::RemoteAct,
    },
    /// `timeout_secs` elapsed on a ringing outgoing leg.
    RingTimeout(String),
    /// `time_limit_secs` elapsed.
    TimeLimit(String),
    SpeakStart {
        ccid: String,
        speak_id: String,
    },
    SpeakEnd {
        ccid: String,
        speak_id: String,
    },
    /// A device completes its SIP registration.
    Register(String),
    /// A device (index) unregisters while target `target` of leg `ccid` rings it.
    Unregister {
        ccid: String,
        target: usize,
        device: usize,
    },
    /// Race check: is this leg still ringing (its call was answered or ended a grace period ago)?
    RingCheck {
        ccid: String,
        why: &'static str,
    },
    /// Race check: was every device that rang for this call session dismissed?
    DismissCheck(String),
}

/// All mutable state.
pub(crate) struct World {
    /// Current sim time (ms since start).
    pub now: SimMs,
    pub epoch: DateTime<Utc>,
    pub config: Arc<SimConfig>,
    pub knobs: DeliveryKnobs,
    /// Ids and call-model randomness.
    pub rng: StdRng,
    /// Delivery-knob randomness (kept apart so knobs never shift ids).
    pub drng: StdRng,
    pub timeline: Timeline<Action>,
    pub legs: HashMap<String, Leg>,
    /// Account numbers → Call Control app id.
    pub numbers: HashMap<String, String>,
    /// Scripted PSTN callees.
    pub pstn: HashMap<String, RingBehaviour>,
    pub creds: credentials::Credentials,
    pub devices: Devices,
    /// Per-call device behaviours and what each device saw of each call (race anomalies).
    pub rings: rings::Rings,
    pub recordings: HashMap<String, recording::StoredRecording>,
    pub faults: Faults,
    pub dedupe: commands::Dedupe,
    /// Accepted dial times, for the dials-per-second limit.
    pub dials: VecDeque<SimMs>,
    pub log: Logs,
    /// Number of events created so far.
    pub event_seq: u64,
    /// Base URL of recording links.
    pub public_base: String,
    pub recording_key: [u8; 32],
    pub jwt_key: [u8; 32],
    /// Account user id shown on credentials.
    pub user_id: String,
    /// The delivery lanes' dispatcher (see `Core::lanes`).
    pub lanes: UnboundedSender<Outgoing>,
    pub pending: Arc<AtomicUsize>,
}

impl World {
    pub fn new(
        config: Arc<SimConfig>,
        epoch: DateTime<Utc>,
        public_base: String,
        lanes: UnboundedSender<Outgoing>,
        pending: Arc<AtomicUsize>,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let user_id = crate::ids::uuid(&mut rng);
        Self {
            now: 0,
            epoch,
            knobs: config.delivery.clone(),
            drng: StdRng::seed_from_u64(config.seed ^ 0x5eed_de11_7e57_0001),
            rng,
            timeline: Timeline::default(),
            legs: HashMap::new(),
            numbers: HashMap::new(),
            pstn: HashMap::new(),
            creds: credentials::Credentials::default(),
            devices: Devices::default(),
            rings: rings::Rings::new(config.anomaly_grace),
            recordings: HashMap::new(),
            faults: Faults::default(),
            dedupe: commands::Dedupe::default(),
            dials: VecDeque::new(),
            log: Logs::default(),
            event_seq: 0,
            public_base,
            recording_key: crate::delivery::signing::derived_secret(
                config.seed,
                "callfleet-sim/recordings/v1",
            ),
            jwt_key: crate::delivery::signing::derived_secret(config.seed, "callfleet-sim/jwt/v1"),
            user_id,
            lanes,
            pending,
            config,
        }
    }

    /// Wall-clock time of sim time `ms`.
    pub fn utc_at(&self, ms: SimMs) -> DateTime<Utc> {
        self.epoch + chrono::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX / 2))
    }

    pub fn now_utc(&self) -> DateTime<Utc> {
        self.utc_at(self.now)
    }

    pub fn schedule(&mut self, due: SimMs, action: Action) {
        self.timeline.schedule(due, action);
    }

    /// Runs every action due at or before `self.now`, each at its own due time, then restores `now`.
    pub fn run_due(&mut self) {
        let target = self.now;
        while let Some((due, action)) = self.timeline.pop_due(target) {
            self.now = due;
            self.run(action);
        }
        self.now = target;
    }

    /// Runs the earliest actions if they are due by `limit`: all actions sharing that due time. Returns
    /// whether anything ran (manual clock stepping).
    pub fn step_to(&mut self, limit: SimMs) -> bool {
        match self.timeline.next_due() {
            Some(due) if due <= limit => {
                self.now = self.now.max(due);
                self.run_due();
                true
            }
            _ => false,
        }
    }

    /// When the next scheduled thing happens (sim ms), if anything is scheduled.
    pub fn next_due(&self) -> Option<u64> {
        self.timeline.next_due()
    }

    /// Whether something is due now (after `run_due` this is false until time moves).
    pub fn has_due(&self) -> bool {
        self.timeline.next_due().is_some_and(|d| d <= self.now)
    }

    fn run(&mut self, action: Action) {
        match action {
            Action::Deliver(d) => self.dispatch(d),
            Action::StartInbound(p) => self.start_inbound(*p),
            Action::BrowserHangup(ccid) => self.browser_hangup(&ccid),
            Action::Remote { ccid, target, act } => self.remote(&ccid, target, act),
            Action::RingTimeout(ccid) => self.ring_timeout(&ccid),
            Action::TimeLimit(ccid) => self.time_limit(&ccid),
            Action::SpeakStart { ccid, speak_id } => self.speak_start(&ccid, &speak_id),
            Action::SpeakEnd { ccid, speak_id } => self.speak_end(&ccid, &speak_id),
            Action::Register(device) => self.register_device(&device),
            Action::Unregister { ccid, target, device } => self.unregister_mid_ring(&ccid, target, device),
            Action::RingCheck { ccid, why } => self.ring_check(&ccid, why),
            Action::DismissCheck(session) => self.dismiss_check(&session),
        }
    }

    /// Records an anomaly.
    pub fn anomaly(&mut self, kind: &str, ccid: Option<&str>, detail: impl Into<String>) {
        let session = ccid.and_then(|c| self.legs.get(c)).map(|l| l.session_id.clone());
        self.anomaly_in(kind, ccid, session, detail);
    }

    /// Records an anomaly of a call.
    pub fn anomaly_in(
        &mut self,
        kind: &str,
        ccid: Option<&str>,
        call_session_id: Option<String>,
        detail: impl Into<String>,
    ) {
        let at_ms = self.now;
        let seq = self.log.next_seq();
        self.log.anomalies.push(crate::log::Anomaly {
            seq,
            at_ms,
            kind: kind.to_owned(),
            call_control_id: ccid.map(str::to_owned),
            call_session_id,
            detail: detail.into(),
        });
    }
}
