//! `fleet-sim`: a local stand-in for Telnyx Call Control, telephony credentials and signed webhooks (plus
//! FCM/APNs in [`push`]), with scripted devices and callers, for tests, benchmarks and first runs.
//!
//! # Shape
//! - [`Simulator::start`] serves, on a listener you bind: the Telnyx API under `/v2` (so the official SDKs
//!   work with their base URL pointed there): Call Control, telephony credentials,
//!   `GET /v2/recordings/{id}` (re-signed download URLs) and `POST /v2/ai/audio/transcriptions` (a
//!   deterministic stub: [`transcript_of`]); the control API under `/sim` (documented at
//!   `/sim/openapi.json`), recording downloads under `/sim-s3/` (their bytes: [`recording_bytes`]), and the
//!   push simulator's routes.
//! - [`SimHandle`] scripts scenarios (numbers, devices, callers), drives the clock ([`ClockMode::Manual`]:
//!   [`SimHandle::advance`]), injects faults, and reads back every API request and webhook attempt in order
//!   ([`SimHandle::requests`], [`SimHandle::webhooks`]); [`SimHandle::settle`] waits until everything due has
//!   been delivered, so tests never sleep.
//! - [`SimArgs`] + [`run_cli`] are `callfleet sim`.
//!
//! # Design
//! One synchronous world (the call model) behind a short `std::sync::Mutex`, never held across `.await`;
//! time-based behaviour is a timeline of actions in (sim time, insertion order); every random choice comes
//! from RNGs seeded by [`SimConfig::seed`], so the same seed and request sequence replay the same ids and
//! event order. Webhooks leave through per-leg lanes (in order within a leg, parallel across legs and
//! calls), signed with an Ed25519 key derived from the seed (see [`delivery::signing`]).
//!
//! # Push simulator seam
//! The push simulator ([`push`], served on the same listener: `/token`, `/v1/projects/…/messages:send`,
//! `/3/device/{token}`, `/sim/push/…`; reachable as [`SimHandle::push`]) reports every push it delivered to
//! the call model through [`PushObserver`] (`fn push_delivered(&self, DeliveredPush { platform, token,
//! data })`, synchronous and cheap; wired in `push_link.rs` with `PushSim::on_delivered`). A scripted device
//! whose `push_token` matches and that has `register_after_push` set registers that long after. Pushes from
//! elsewhere can be reported with [`SimHandle::push_delivered`] or `POST /sim/push-delivered`. See
//! [`observer`] for the full contract.
//!
//! # What the call races need
//! - A constant Telnyx API latency ([`SimConfig::api_latency`], `--api-latency-ms`, `PUT /sim/api-latency`).
//! - One delivery lane per leg ([`LaneScope`]): two legs' `call.answered` can reach the fleet together.
//! - Device behaviours per device or per call ([`DeviceBehaviour`], [`RingBehaviour`]: answer, decline,
//!   busy, never, answer-then-drop, ignore the hangup, unregister mid-ring, register late).
//! - Race anomalies `leg_still_ringing` and `device_not_dismissed` (see `world/rings.rs`) next to the
//!   others in [`SimHandle::anomalies`] / `GET /sim/anomalies`.
//! - A merged per-call timeline ([`SimHandle::call_timeline`], `GET /sim/calls/{session}/timeline`) and
//!   its pages for people (`GET /sim/timeline`, `GET /sim/timeline/{session}`).
//! - The app-event receiver (`POST /sim/events`, [`app_events`]): Standard Webhooks signatures under
//!   [`SimHandle::events_secret`], deduplicated by `webhook-id`, listed by [`SimHandle::app_events`].
//!
//! # Tests
//! `cargo nextest run -p fleet-sim`: unit tests next to the code, and `tests/sim/` (one binary): call
//! flows, credentials, delivery knobs, determinism, the control API, the CLI, a 500 × 10 load run, and the
//! conformance suite, which checks every exchange and webhook against Telnyx's OpenAPI document with
//! [`openapi_check`].
//!
//! # Failure behaviour
//! Client mistakes get Telnyx's own error answers (status, code, shape); the simulator's own failures are
//! [`SimError`]. A webhook that cannot be delivered is retried, failed over, then abandoned and logged as an
//! anomaly; it never blocks other calls.

pub mod app_events;
mod call_timeline;
pub mod config;
mod control;
pub mod delivery;
mod engine;
pub mod error;
mod handle;
mod ids;
mod jwt;
pub mod log;
pub mod media;
pub mod observer;
pub mod openapi_check;
pub mod push;
mod push_link;
pub mod scenario;
mod telnyx_errors;
mod timeline;
mod transcription;
mod world;

mod api;
mod cli;

pub use crate::call_timeline::{CallSummary, CallTimeline, EntryKind, TimelineEntry};
pub use crate::cli::{SimArgs, run_cli};
pub use crate::config::{ClockMode, DeliveryKnobs, DialLimit, LaneScope, SimConfig, TimestampSource};
pub use crate::error::SimError;
pub use crate::handle::{SimHandle, Simulator};
pub use crate::log::{
    Anomaly, DeliveryOutcome, PushRecord, ReceivedEvent, RecordedRequest, RecordingDownload, SentWebhook,
    UploadedFile,
};
pub use crate::media::recording as recording_bytes;
pub use crate::observer::{DeliveredPush, NoopPushObserver, PushObserver, PushPlatform};
pub use crate::scenario::{
    Caller, CallerScript, CredentialRef, DeviceBehaviour, DevicePlatform, DeviceScript, Fault, PlacedCall,
    RingBehaviour,
};
pub use crate::transcription::transcript_of;
pub use crate::world::{CallView, Credential, LegDirection, LegState};

/// The webhook public key (standard base64 of the raw 32-byte Ed25519 key) that a simulator started with
/// `seed` uses and prints, computed without starting one (for configuring the fleet beforehand).
pub fn public_key_for_seed(seed: u64) -> String {
    delivery::signing::Signer::from_seed(seed).public_key_base64()
}
