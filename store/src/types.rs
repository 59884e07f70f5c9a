//! Rows and requests exchanged through the [`crate::Store`] port.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_jobs::Envelope;
use serde::Serialize;
use sqlx::FromRow;

use crate::sql::{OptTs, Ts};

/// The two engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Sqlite,
}

/// Which endpoint a delivery came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Primary,
    Failover,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Failover => "failover",
        }
    }
}

/// A verified, parsed webhook delivery about to be stored.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub event_id: String,
    pub event_type: String,
    pub call_session_id: Option<String>,
    pub source: Source,
    pub attempt: Option<u32>,
    /// The raw body, verbatim (valid UTF-8 JSON: the ingress parsed it).
    pub body: String,
    pub received_at: DateTime<Utc>,
    /// W3C `traceparent` of the ingress span that took it: its processing job continues it.
    pub trace_parent: Option<String>,
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// First time this event id was seen: stored and its job enqueued.
    Stored,
    /// Already stored (a retry, a failover delivery, a replay by the sender): nothing enqueued.
    Duplicate,
}

/// A stored webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct StoredWebhook {
    pub event_id: String,
    pub event_type: String,
    pub call_session_id: Option<String>,
    pub source: String,
    pub body: String,
    #[sqlx(try_from = "Ts")]
    pub received_at: DateTime<Utc>,
    #[sqlx(try_from = "OptTs")]
    pub processed_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
}

/// Which stored webhooks an operator wants to re-run.
#[derive(Debug, Clone)]
pub enum ReplaySelector {
    Ids(Vec<String>),
    /// Every stored event of one call session.
    Session(String),
    /// Received in `[from, to)`.
    Range {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
}

/// One webhook selected for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayTarget {
    pub event_id: String,
    pub call_session_id: Option<String>,
}

/// A lifecycle fact about one leg; `None` fields leave the row as it is.
#[derive(Debug, Clone, Default)]
pub struct LegUpdate {
    pub call_control_id: String,
    pub call_session_id: Option<String>,
    pub call_leg_id: Option<String>,
    pub direction: Option<String>,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub initiated_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub bridged_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub hangup_cause: Option<String>,
    pub hangup_source: Option<String>,
}

/// A leg row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct CallLeg {
    pub call_control_id: String,
    pub call_session_id: Option<String>,
    pub direction: Option<String>,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    #[sqlx(try_from = "OptTs")]
    pub initiated_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "OptTs")]
    pub answered_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "OptTs")]
    pub bridged_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "OptTs")]
    pub ended_at: Option<DateTime<Utc>>,
    pub hangup_cause: Option<String>,
    pub hangup_source: Option<String>,
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub envelope: Envelope,
    /// Run no earlier than this far from now (whole seconds on both engines).
    pub delay: Duration,
    /// Pushing the same key twice enqueues once (e.g. `"<work id>#<attempt>"`).
    pub unique_key: Option<String>,
}

impl NewJob {
    pub fn now(envelope: Envelope) -> Self {
        Self { envelope, delay: Duration::ZERO, unique_key: None }
    }

    /// Due now and keyed by its attempt (`<work id>#<attempt>`): pushing the same attempt of the
    /// same work again enqueues nothing.
    pub fn once(envelope: Envelope) -> Self {
        Self::once_after(envelope, Duration::ZERO)
    }

    /// As [`Self::once`], due `delay` from now (the next attempt of a persisted backoff).
    pub fn once_after(envelope: Envelope, delay: Duration) -> Self {
        let key = envelope.attempt_key();
        Self { envelope, delay, unique_key: Some(key) }
    }
}

/// This process's database connection pool: how close it is to its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionUse {
    /// Connections open (in use and idle).
    pub open: u32,
    /// Open connections nobody holds.
    pub idle: u32,
    /// The pool's bound.
    pub max: u32,
}

/// Depth and age of one pool's queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueStats {
    pub pool: String,
    /// Ready to run now.
    pub ready: u64,
    /// Waiting for their run time (persisted backoff, delayed retries).
    pub scheduled: u64,
    pub running: u64,
    pub dead: u64,
    /// Seconds the oldest ready job has waited (0 when none).
    pub oldest_ready_age_secs: f64,
}

/// A job in the dead set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadJob {
    pub id: String,
    pub pool: String,
    pub kind: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub died_at: Option<DateTime<Utc>>,
    pub payload: serde_json::Value,
}
