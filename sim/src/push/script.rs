//! Scripted outcomes per token.
//!
//! A [`Script`] is a queue of [`Outcome`]s consumed one per *valid* push request (requests that
//! fail authentication or validation never consume a step), followed by a `then` outcome used
//! for every request after the queue is empty (default [`Outcome::Ok`]), and an optional latency
//! applied to every request for that token. Wire rendering of each outcome lives with its
//! provider (`fcm_body.rs`, `apns.rs`); this file only decides which outcome is next.
//!
//! JSON form (control API): `{"steps":[{"kind":"status","status":503},{"kind":"ok"}],
//! "then":{"kind":"ok"},"latency_ms":50}`; outcome kinds are listed on [`Outcome`].

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the simulated provider answers to one push request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "OutcomeWire", into = "OutcomeWire")]
pub enum Outcome {
    /// 200 and the push is delivered. JSON `{"kind":"ok"}`.
    #[default]
    Ok,
    /// The provider's canonical error for this HTTP status (FCM 404 is `UNREGISTERED`, 503
    /// `UNAVAILABLE`; APNs 410 is `Unregistered`, …). JSON `{"kind":"status","status":503}`.
    Status(u16),
    /// As [`Outcome::Status`] plus a `retry-after` header in whole seconds (rounded up).
    /// JSON `{"kind":"retry_after","status":429,"after_ms":3000}`.
    RetryAfter(u16, Duration),
    /// FCM `404 UNREGISTERED`; APNs `410 Unregistered` with `timestamp`. `{"kind":"unregistered"}`.
    Unregistered,
    /// FCM `400 INVALID_ARGUMENT` (not a valid registration token); APNs `400 BadDeviceToken`.
    /// JSON `{"kind":"bad_device_token"}`.
    BadDeviceToken,
    /// An explicit reason: the APNs `reason` or the FCM `errorCode`, with this HTTP status.
    /// JSON `{"kind":"reason","status":400,"reason":"DeviceTokenNotForTopic"}`. An empty reason
    /// means FCM's generic Google error (no `FcmError` detail; for 429 the project-quota body)
    /// and APNs' canonical reason for the status.
    Reason(u16, String),
    /// Never answer: the request hangs until the client gives up. `{"kind":"hang"}`.
    Hang,
}

impl Outcome {
    /// The HTTP status this outcome answers with (`None` for [`Outcome::Hang`]).
    pub fn status(&self, provider: super::Provider) -> Option<u16> {
        match self {
            Outcome::Ok => Some(200),
            Outcome::Status(s) | Outcome::RetryAfter(s, _) | Outcome::Reason(s, _) => Some(*s),
            Outcome::Unregistered => Some(match provider {
                super::Provider::Fcm => 404,
                super::Provider::Apns => 410,
            }),
            Outcome::BadDeviceToken => Some(400),
            Outcome::Hang => None,
        }
    }

    /// Whole seconds for the `retry-after` header, if this outcome sends one.
    pub(crate) fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Outcome::RetryAfter(_, d) => Some(d.as_millis().div_ceil(1000) as u64),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum OutcomeWire {
    Ok,
    Status { status: u16 },
    RetryAfter { status: u16, after_ms: u64 },
    Unregistered,
    BadDeviceToken,
    Reason { status: u16, reason: String },
    Hang,
}

impl From<OutcomeWire> for Outcome {
    fn from(w: OutcomeWire) -> Self {
        match w {
            OutcomeWire::Ok => Outcome::Ok,
            OutcomeWire::Status { status } => Outcome::Status(status),
            OutcomeWire::RetryAfter { status, after_ms } => {
                Outcome::RetryAfter(status, Duration::from_millis(after_ms))
            }
            OutcomeWire::Unregistered => Outcome::Unregistered,
            OutcomeWire::BadDeviceToken => Outcome::BadDeviceToken,
            OutcomeWire::Reason { status, reason } => Outcome::Reason(status, reason),
            OutcomeWire::Hang => Outcome::Hang,
        }
    }
}

impl From<Outcome> for OutcomeWire {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Ok => OutcomeWire::Ok,
            Outcome::Status(status) => OutcomeWire::Status { status },
            Outcome::RetryAfter(status, d) => {
                OutcomeWire::RetryAfter { status, after_ms: d.as_millis() as u64 }
            }
            Outcome::Unregistered => OutcomeWire::Unregistered,
            Outcome::BadDeviceToken => OutcomeWire::BadDeviceToken,
            Outcome::Reason(status, reason) => OutcomeWire::Reason { status, reason },
            Outcome::Hang => OutcomeWire::Hang,
        }
    }
}

/// The scripted behaviour of one token at one provider.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Script {
    /// Played in order, one per valid request.
    #[serde(default)]
    pub steps: Vec<Outcome>,
    /// Used for every request once `steps` is exhausted.
    #[serde(default)]
    pub then: Outcome,
    /// Simulated provider latency for this token; `None` uses the simulator's default.
    #[serde(default, rename = "latency_ms", with = "opt_ms")]
    pub latency: Option<Duration>,
}

impl Script {
    /// `steps` in order, then success.
    pub fn new(steps: impl IntoIterator<Item = Outcome>) -> Self {
        Self { steps: steps.into_iter().collect(), ..Self::default() }
    }

    /// The same outcome for every request, e.g. `Script::always(Outcome::Status(500))`.
    pub fn always(outcome: Outcome) -> Self {
        Self { then: outcome, ..Self::default() }
    }

    /// Replace the outcome used after the steps.
    pub fn then(mut self, outcome: Outcome) -> Self {
        self.then = outcome;
        self
    }

    /// Set this token's latency.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }
}

impl From<Vec<Outcome>> for Script {
    fn from(steps: Vec<Outcome>) -> Self {
        Script::new(steps)
    }
}

impl<const N: usize> From<[Outcome; N]> for Script {
    fn from(steps: [Outcome; N]) -> Self {
        Script::new(steps)
    }
}

impl From<Outcome> for Script {
    /// One step, then success.
    fn from(step: Outcome) -> Self {
        Script::new([step])
    }
}

/// A script being played.
#[derive(Debug, Default)]
pub(crate) struct Playing {
    steps: VecDeque<Outcome>,
    then: Outcome,
    pub(crate) latency: Option<Duration>,
}

impl From<Script> for Playing {
    fn from(s: Script) -> Self {
        Self { steps: s.steps.into(), then: s.then, latency: s.latency }
    }
}

impl Playing {
    /// The outcome for the next valid request.
    pub(crate) fn next(&mut self) -> Outcome {
        self.steps.pop_front().unwrap_or_else(|| self.then.clone())
    }
}

mod opt_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_then_default_success() {
        let mut p = Playing::from(Script::new([Outcome::Status(503), Outcome::Hang]));
        assert_eq!(p.next(), Outcome::Status(503));
        assert_eq!(p.next(), Outcome::Hang);
        assert_eq!(p.next(), Outcome::Ok);
        assert_eq!(p.next(), Outcome::Ok);
        let mut forever = Playing::from(Script::always(Outcome::Status(500)));
        assert_eq!(forever.next(), Outcome::Status(500));
        assert_eq!(forever.next(), Outcome::Status(500));
    }

    #[test]
    fn json_round_trip() {
        let json = r#"{"steps":[{"kind":"retry_after","status":429,"after_ms":3000},
            {"kind":"reason","status":400,"reason":"BadTopic"},{"kind":"unregistered"}],
            "latency_ms":50}"#;
        let s: Script = serde_json::from_str(json).unwrap();
        assert_eq!(s.steps[0], Outcome::RetryAfter(429, Duration::from_secs(3)));
        assert_eq!(s.steps[1], Outcome::Reason(400, "BadTopic".into()));
        assert_eq!(s.then, Outcome::Ok);
        assert_eq!(s.latency, Some(Duration::from_millis(50)));
        let back: Script = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(Outcome::RetryAfter(429, Duration::from_millis(2001)).retry_after_secs(), Some(3));
    }
}
