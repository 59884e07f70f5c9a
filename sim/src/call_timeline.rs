//! The merged per-call timeline: everything the simulator saw of one call session — webhooks it sent,
//! commands it received, pushes delivered, app events the fleet sent it, anomalies — in the order the
//! effects happened, with their times. Served as JSON (`GET /sim/calls/{call_session_id}/timeline`) and
//! as a page for people (`GET /sim/timeline/{call_session_id}`, index at `GET /sim/timeline`; see
//! [`html`]).
//!
//! Built on demand from the logs (nothing extra is stored): every log entry carries a `seq` drawn from
//! one counter under the world lock, so sorting by `seq` is the order of effects. A request belongs to a
//! call through the leg in its path, or, for a dial, through the `call_session_id` it answered. Entries
//! of cleared logs are gone from the timeline too.

pub mod html;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::log::DeliveryOutcome;
use crate::world::{CallView, World};

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A webhook delivery attempt the simulator made.
    Webhook,
    /// A `/v2` request the simulator received (Call Control command, call status, dial).
    Command,
    /// A push delivered to a device.
    Push,
    /// A signed app event the fleet sent to `POST /sim/events`.
    AppEvent,
    /// Something the fleet's guarantees forbid.
    Anomaly,
}

/// One line of a call's timeline.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineEntry {
    pub seq: u64,
    /// Sim time (ms since the simulator started).
    pub at_ms: u64,
    /// Wall-clock equivalent of `at_ms` (epoch + sim time), RFC 3339 with microseconds.
    pub at: String,
    pub kind: EntryKind,
    /// The leg it concerns, if any.
    pub call_control_id: Option<String>,
    /// One line for people, e.g. `call.answered attempt 1 → 200`.
    pub summary: String,
    /// The entry's data (payload, request and answer bodies, push data, event body, …).
    pub detail: Value,
}

/// One call's legs and timeline.
#[derive(Clone, Debug, Serialize)]
pub struct CallTimeline {
    pub call_session_id: String,
    /// The call's legs, oldest first.
    pub legs: Vec<CallView>,
    pub entries: Vec<TimelineEntry>,
}

/// One call of the index.
#[derive(Clone, Debug, Serialize)]
pub struct CallSummary {
    pub call_session_id: String,
    pub start_ms: u64,
    /// `from` and `to` of the call's first leg.
    pub from: String,
    pub to: String,
    pub legs: usize,
    /// Legs not ended yet.
    pub live_legs: usize,
    pub anomalies: usize,
}

fn outcome(o: &DeliveryOutcome) -> String {
    match o {
        DeliveryOutcome::Pending => "pending".into(),
        DeliveryOutcome::Delivered { status } | DeliveryOutcome::Rejected { status } => status.to_string(),
        DeliveryOutcome::Error { message } => format!("error: {message}"),
        DeliveryOutcome::Dropped => "dropped".into(),
    }
}

impl World {
    fn session_of_leg(&self, ccid: &str) -> Option<&str> {
        self.legs.get(ccid).map(|l| l.session_id.as_str())
    }

    /// The timeline of `session`, or `None` if no leg of it exists.
    pub(crate) fn call_timeline(&self, session: &str) -> Option<CallTimeline> {
        let mut legs: Vec<CallView> =
            self.legs.values().filter(|l| l.session_id == session).map(|l| l.view()).collect();
        if legs.is_empty() {
            return None;
        }
        legs.sort_by(|a, b| (a.start_ms, &a.call_control_id).cmp(&(b.start_ms, &b.call_control_id)));
        let mut entries = Vec::new();
        let mut add = |seq, at_ms, kind, ccid: Option<String>, summary: String, detail| {
            let at = crate::ids::micros(self.utc_at(at_ms));
            entries.push(TimelineEntry { seq, at_ms, at, kind, call_control_id: ccid, summary, detail });
        };
        for w in self.log.webhooks.iter().filter(|w| w.call_session_id.as_deref() == Some(session)) {
            let to = if w.failover { " (failover)" } else { "" };
            let summary = format!("{} attempt {}{to} → {}", w.event_type, w.attempt, outcome(&w.outcome));
            let detail =
                json!({"event_id": w.event_id, "url": w.url, "payload": w.payload(), "outcome": w.outcome});
            add(w.seq, w.at_ms, EntryKind::Webhook, w.call_control_id.clone(), summary, detail);
        }
        for r in &self.log.requests {
            let by_target = r.target.as_deref().and_then(|t| self.session_of_leg(t));
            let by_answer = r.response["data"]["call_session_id"].as_str();
            if by_target.or(by_answer) != Some(session) {
                continue;
            }
            let ccid = if by_target.is_some() {
                r.target.clone()
            } else {
                r.response["data"]["call_control_id"].as_str().map(str::to_owned)
            };
            let mut summary = format!("{} → {}", r.operation, r.status);
            if r.deduplicated {
                summary.push_str(" (repeated command_id, ignored)");
            }
            if let Some(f) = &r.fault {
                summary.push_str(&format!(" (injected {f})"));
            }
            let detail = json!({"method": r.method, "path": r.path, "body": r.body, "response": r.response});
            add(r.seq, r.at_ms, EntryKind::Command, ccid, summary, detail);
        }
        for p in self.log.pushes.iter().filter(|p| p.call_session_id.as_deref() == Some(session)) {
            let to = p.device_id.clone().unwrap_or_else(|| format!("token {}", p.token));
            let what = p.push_type.as_deref().unwrap_or("push");
            let platform = match p.platform {
                crate::observer::PushPlatform::Fcm => "FCM",
                crate::observer::PushPlatform::Apns => "APNs",
            };
            let summary = format!("{what} push to {to} ({platform})");
            add(p.seq, p.at_ms, EntryKind::Push, None, summary, p.data.clone());
        }
        for e in self.log.app_events.iter().filter(|e| e.call_session_id.as_deref() == Some(session)) {
            let dup =
                if e.duplicates > 0 { format!(" (+{} duplicates)", e.duplicates) } else { String::new() };
            let summary = format!("app event {}{dup}", e.event_type.as_deref().unwrap_or("?"));
            add(e.seq, e.at_ms, EntryKind::AppEvent, None, summary, e.body.clone());
        }
        for a in self.log.anomalies.iter().filter(|a| a.call_session_id.as_deref() == Some(session)) {
            let summary = format!("ANOMALY {}: {}", a.kind, a.detail);
            add(
                a.seq,
                a.at_ms,
                EntryKind::Anomaly,
                a.call_control_id.clone(),
                summary,
                json!({"kind": a.kind}),
            );
        }
        entries.sort_by_key(|e| e.seq);
        Some(CallTimeline { call_session_id: session.to_owned(), legs, entries })
    }

    /// Every call session the simulator has legs of, oldest first.
    pub(crate) fn call_summaries(&self) -> Vec<CallSummary> {
        let mut by_session: BTreeMap<&str, Vec<&crate::world::Leg>> = BTreeMap::new();
        for l in self.legs.values() {
            by_session.entry(l.session_id.as_str()).or_default().push(l);
        }
        let mut out: Vec<CallSummary> = by_session
            .into_iter()
            .map(|(s, mut legs)| {
                legs.sort_by(|a, b| (a.start, &a.ccid).cmp(&(b.start, &b.ccid)));
                let first = legs[0];
                CallSummary {
                    call_session_id: s.to_owned(),
                    start_ms: first.start,
                    from: first.from.clone(),
                    to: first.to.clone(),
                    legs: legs.len(),
                    live_legs: legs.iter().filter(|l| l.alive()).count(),
                    anomalies: self
                        .log
                        .anomalies
                        .iter()
                        .filter(|a| a.call_session_id.as_deref() == Some(s))
                        .count(),
                }
            })
            .collect();
        out.sort_by(|a, b| (a.start_ms, &a.call_session_id).cmp(&(b.start_ms, &b.call_session_id)));
        out
    }
}
