//! Simulator configuration: where webhooks go, the seed, the API key, the clock and the delivery knobs.
//!
//! Every field has a documented default chosen to look like Telnyx; tests override fields in code
//! (`SimConfig { clock: ClockMode::Manual, ..SimConfig::new(url) }`). Nothing here is validated beyond what
//! [`crate::Simulator::start`] needs (the webhook URL must parse); odd knob values are clamped where used.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::scenario::RingBehaviour;

/// How simulated time moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockMode {
    /// Sim time follows tokio time (so `tokio::time::pause` works too); timers fire on their own.
    Real,
    /// Sim time only moves on [`crate::SimHandle::advance`]; nothing fires by itself except what is due now.
    Manual,
}

/// Which clock the `telnyx-timestamp` header is taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampSource {
    /// The machine's wall clock at send time, like Telnyx ("when the webhook was sent"). With a manual clock
    /// far ahead of the wall clock this keeps signatures inside a receiver's ±300 s tolerance.
    Wall,
    /// The simulated clock (epoch + sim time). Lets tests produce stale or future timestamps on purpose.
    Sim,
}

/// Webhook delivery behaviour. Randomness comes from the delivery RNG (seeded from the seed), so the same
/// seed and the same request sequence give the same decisions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryKnobs {
    /// Fixed delay between an event and its first delivery attempt (sim time). Default 0.
    #[serde(with = "ms")]
    pub latency: Duration,
    /// Extra uniformly random delay in `[0, jitter]` added per event (sim time). Default 0.
    #[serde(with = "ms")]
    pub jitter: Duration,
    /// Probability that a delivered event is delivered a second time (same `data.id`, `meta.attempt` + 1).
    pub duplicate_rate: f64,
    /// Delay of such a duplicate after the first delivery (sim time). Default 500 ms.
    #[serde(with = "ms")]
    pub duplicate_delay: Duration,
    /// Probability that an event is held back by `reorder_delay`, so later events overtake it.
    pub reorder_rate: f64,
    /// How long a reordered event is held back (sim time). Default 300 ms.
    #[serde(with = "ms")]
    pub reorder_delay: Duration,
    /// Probability that a delivery attempt is lost (never sent; counts as a failed attempt and is retried).
    pub drop_rate: f64,
    /// Delay before retrying a failed attempt (sim time). Default 1 s.
    #[serde(with = "ms")]
    pub retry_delay: Duration,
    /// Failed attempts at the primary URL before switching to the failover URL. Default 2 (Telnyx:
    /// "fails after two consecutive delivery attempts").
    pub primary_attempts: u32,
    /// Attempts at the failover URL before the event is given up. Default 2. Without a failover URL the
    /// primary URL gets `primary_attempts + failover_attempts` attempts in total.
    pub failover_attempts: u32,
    /// HTTP timeout of one attempt (wall time). Default 10 s.
    #[serde(with = "ms")]
    pub http_timeout: Duration,
    /// Most delivery attempts in flight at once, across all lanes (fixed at start). Default 64.
    pub lanes: usize,
    /// What one delivery lane carries: one leg's events (default) or one call session's. A lane sends one
    /// attempt at a time, in order (unless reordered on purpose); lanes run in parallel, so with
    /// [`LaneScope::Leg`] two legs' `call.answered` can reach the receiver at the same instant.
    pub lane_scope: LaneScope,
}

/// The unit of ordering of webhook deliveries (see [`DeliveryKnobs::lane_scope`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaneScope {
    /// One lane per `call_control_id`: a leg's events in order, legs in parallel.
    #[default]
    Leg,
    /// One lane per `call_session_id`: all legs of a call one after the other.
    Session,
}

impl Default for DeliveryKnobs {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            duplicate_rate: 0.0,
            duplicate_delay: Duration::from_millis(500),
            reorder_rate: 0.0,
            reorder_delay: Duration::from_millis(300),
            drop_rate: 0.0,
            retry_delay: Duration::from_secs(1),
            primary_attempts: 2,
            failover_attempts: 2,
            http_timeout: Duration::from_secs(10),
            lanes: 64,
            lane_scope: LaneScope::Leg,
        }
    }
}

/// The dials-per-second limit (Telnyx default: 30/s as a 5-second rolling sum of 150).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialLimit {
    /// Dials allowed inside one window.
    pub max_dials: u32,
    /// Rolling window (sim time).
    #[serde(with = "ms")]
    pub window: Duration,
}

impl Default for DialLimit {
    fn default() -> Self {
        Self { max_dials: 150, window: Duration::from_secs(5) }
    }
}

/// Everything [`crate::Simulator::start`] needs.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The Call Control app's webhook URL (the fleet's `/webhooks/telnyx`).
    pub webhook_url: String,
    /// The app's failover URL (the fleet's `/webhooks/telnyx/failover`), if any.
    pub failover_url: Option<String>,
    /// Seed of every random choice (ids, keys, delivery knobs).
    pub seed: u64,
    /// The only accepted API key; `None` accepts any non-empty bearer token.
    pub api_key: Option<String>,
    /// Real or manual time.
    pub clock: ClockMode,
    /// Wall-clock instant that sim time zero maps to (`occurred_at`, `start_time`, credential expiry).
    /// `None`: the wall clock at start (not reproducible across runs; set it for byte-identical bodies).
    pub epoch: Option<DateTime<Utc>>,
    /// Base URL the simulator is reachable at from the fleet (used in recording URLs). `None`:
    /// `http://<bound address>`.
    pub public_base_url: Option<String>,
    /// Call Control app id (`connection_id`) numbers are attached to unless given another one.
    pub connection_id: String,
    /// Dials-per-second limit; `None` disables it (benchmarks).
    pub dial_limit: Option<DialLimit>,
    /// How PSTN numbers that have no script of their own behave when dialed or transferred to.
    pub default_pstn: RingBehaviour,
    /// How long a leg to an unknown or unregistered SIP user takes to fail (sim time). Default 100 ms.
    pub unreachable_delay: Duration,
    /// Where the `telnyx-timestamp` header comes from.
    pub timestamp_source: TimestampSource,
    /// Webhook delivery behaviour.
    pub delivery: DeliveryKnobs,
    /// Constant latency of the Telnyx API: every `/v2` answer is held this long (wall/tokio time) after
    /// the request was applied. Default 0; benchmarks use 50 ms. Changeable at run time
    /// ([`crate::SimHandle::set_api_latency`], `PUT /sim/api-latency`).
    pub api_latency: Duration,
    /// How long after a call was answered or ended a leg may still ring, and a device may still be
    /// undismissed, before it is an anomaly (sim time). Default 2 s.
    pub anomaly_grace: Duration,
    /// Secret (`whsec_<base64>`) the fleet signs its app events with (`CALLFLEET_EVENTS_SECRET`); `None`:
    /// one derived from the seed ([`crate::SimHandle::events_secret`]).
    pub events_secret: Option<String>,
    /// Largest accepted distance between an app event's `webhook-timestamp` and the wall clock; `None`
    /// accepts any. Default 5 minutes (the Standard Webhooks recommendation).
    pub events_tolerance: Option<Duration>,
}

impl SimConfig {
    /// Defaults: seed 0, any API key, real clock, epoch = now, connection id `"1684641123236054244"`-like
    /// fixed id, the Telnyx dial limit, PSTN callees answer after 2 s.
    pub fn new(webhook_url: impl Into<String>) -> Self {
        Self {
            webhook_url: webhook_url.into(),
            failover_url: None,
            seed: 0,
            api_key: None,
            clock: ClockMode::Real,
            epoch: None,
            public_base_url: None,
            connection_id: "2811212257810187875".to_owned(),
            dial_limit: Some(DialLimit::default()),
            default_pstn: RingBehaviour::Answer { after: Duration::from_secs(2) },
            unreachable_delay: Duration::from_millis(100),
            timestamp_source: TimestampSource::Wall,
            delivery: DeliveryKnobs::default(),
            api_latency: Duration::ZERO,
            anomaly_grace: Duration::from_secs(2),
            events_secret: None,
            events_tolerance: Some(Duration::from_secs(300)),
        }
    }
}

/// Serde helper: `Duration` as integer milliseconds.
pub(crate) mod ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
