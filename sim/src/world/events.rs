//! Webhook payloads, shaped like the real captures in `reference/telnyx/webhooks/` (field sets per event and
//! direction, `client_state: null` when unset, `calling_party_type` on incoming legs, timestamps with
//! microseconds), and their scheduling for delivery.
//!
//! Keys are emitted in alphabetical order (serde_json's map), as in every real capture.

use std::sync::Arc;

use rand::Rng;
use serde_json::{Map, Value, json};

use super::legs::{Direction, Leg};
use super::{Action, World};
use crate::config::LaneScope;
use crate::delivery::{Delivery, EventData};
use crate::ids;

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

impl World {
    /// Fields every call event carries.
    fn base_payload(&self, leg: &Leg) -> Map<String, Value> {
        let mut p = Map::new();
        p.insert("call_control_id".into(), s(&leg.ccid));
        p.insert("call_leg_id".into(), s(&leg.leg_id));
        p.insert("call_session_id".into(), s(&leg.session_id));
        p.insert("client_state".into(), leg.client_state.as_deref().map_or(Value::Null, s));
        p.insert("connection_id".into(), s(&leg.connection_id));
        if leg.direction == Direction::Incoming {
            p.insert("calling_party_type".into(), s(if leg.sip_party { "sip" } else { "pstn" }));
        }
        p
    }

    fn with_leg(
        &mut self,
        ccid: &str,
        event_type: &'static str,
        fill: impl FnOnce(&World, &Leg, &mut Map<String, Value>),
    ) {
        let Some(leg) = self.legs.get(ccid) else { return };
        let mut p = self.base_payload(leg);
        fill(self, leg, &mut p);
        let url = leg.webhook_url.clone();
        let session = leg.session_id.clone();
        self.enqueue_event(event_type, p, Some(ccid.to_owned()), Some(session), url);
    }

    pub(super) fn emit_initiated(&mut self, ccid: &str) {
        self.with_leg(ccid, "call.initiated", |w, leg, p| {
            p.insert(
                "direction".into(),
                s(if leg.direction == Direction::Incoming { "incoming" } else { "outgoing" }),
            );
            p.insert("from".into(), s(&leg.from));
            p.insert("to".into(), s(&leg.to));
            if leg.direction == Direction::Incoming {
                p.insert("caller_id_name".into(), s(&leg.from));
                p.insert("connection_codecs".into(), s("PCMA,PCMU,VP8,H264"));
                p.insert("offered_codecs".into(), s("PCMU,G729"));
                p.insert("start_time".into(), s(&ids::micros(w.utc_at(leg.start))));
                p.insert("state".into(), s("parked"));
                if let Some(u) = &leg.from_sip_uri {
                    p.insert("from_sip_uri".into(), s(u));
                }
                if let Some(u) = &leg.to_sip_uri {
                    p.insert("to_sip_uri".into(), s(u));
                }
            } else {
                p.insert("state".into(), s("bridging"));
            }
        });
    }

    pub(super) fn emit_answered(&mut self, ccid: &str) {
        self.with_leg(ccid, "call.answered", |w, leg, p| {
            p.insert("from".into(), s(&leg.from));
            p.insert("to".into(), s(&leg.to));
            p.insert("start_time".into(), s(&ids::micros(w.utc_at(leg.start))));
            if leg.direction == Direction::Incoming {
                p.insert("codec".into(), s("PCMU"));
                p.insert("sampling_rate".into(), json!(8000));
            }
        });
    }

    pub(super) fn emit_bridged(&mut self, ccid: &str) {
        self.with_leg(ccid, "call.bridged", |_, leg, p| {
            p.insert("from".into(), s(&leg.from));
            p.insert("to".into(), s(&leg.to));
        });
    }

    pub(super) fn emit_hangup(&mut self, ccid: &str) {
        self.with_leg(ccid, "call.hangup", |w, leg, p| {
            let Some(h) = leg.hangup else { return };
            if let Some(answered) = leg.answered_at {
                let secs = (leg.ended_at.unwrap_or(w.now).saturating_sub(answered)) / 1000;
                // 50 packets per second of audio, as in the captures' magnitudes.
                let packets = (secs * 50).to_string();
                p.insert(
                    "call_quality_stats".into(),
                    json!({
                        "inbound": {"jitter_max_variance": "0.00", "jitter_packet_count": "0", "mos": "4.50",
                                    "packet_count": packets, "skip_packet_count": "0"},
                        "outbound": {"packet_count": packets, "skip_packet_count": "0"},
                    }),
                );
            }
            p.insert("end_time".into(), s(&ids::micros(w.utc_at(leg.ended_at.unwrap_or(w.now)))));
            p.insert("from".into(), s(&leg.from));
            p.insert("hangup_cause".into(), s(h.cause));
            p.insert("hangup_source".into(), s(h.source));
            p.insert("sip_hangup_cause".into(), s(h.sip));
            p.insert("start_time".into(), s(&ids::micros(w.utc_at(leg.start))));
            p.insert("to".into(), s(&leg.to));
        });
    }

    pub(super) fn emit_speak(&mut self, ccid: &str, speak_id: &str, ended_status: Option<&'static str>) {
        let event = if ended_status.is_some() { "call.speak.ended" } else { "call.speak.started" };
        self.with_leg(ccid, event, |_, _, p| {
            p.insert("speak_id".into(), s(speak_id));
            if let Some(st) = ended_status {
                p.insert("status".into(), s(st));
            }
        });
    }

    /// `call.recording.saved` (with `urls`) or `call.recording.error` (with `error`).
    pub(super) fn emit_recording(&mut self, ccid: &str, fields: Map<String, Value>, error: bool) {
        let event = if error { "call.recording.error" } else { "call.recording.saved" };
        self.with_leg(ccid, event, |_, _, p| p.extend(fields));
    }

    /// Wraps a payload into an event and schedules its first delivery attempt, applying latency, jitter and
    /// reordering from the delivery RNG.
    pub(super) fn enqueue_event(
        &mut self,
        event_type: &'static str,
        payload: Map<String, Value>,
        ccid: Option<String>,
        session: Option<String>,
        url: Option<String>,
    ) {
        let id = ids::uuid(&mut self.rng);
        let occurred_at = ids::micros(self.now_utc());
        let lane: Arc<str> = match self.knobs.lane_scope {
            LaneScope::Leg => ccid.as_deref().or(session.as_deref()),
            LaneScope::Session => session.as_deref().or(ccid.as_deref()),
        }
        .unwrap_or_default()
        .into();
        let k = &self.knobs;
        let mut delay = k.latency.as_millis() as u64;
        let jitter = k.jitter.as_millis() as u64;
        if jitter > 0 {
            delay += self.drng.gen_range(0..=jitter);
        }
        let reorder = k.reorder_rate > 0.0 && self.drng.r#gen::<f64>() < k.reorder_rate;
        if reorder {
            delay += self.knobs.reorder_delay.as_millis() as u64;
        }
        self.event_seq += 1;
        let seq = self.event_seq;
        let event = Arc::new(EventData { seq, id, event_type, occurred_at, payload, ccid, session });
        let primary: Arc<str> = url.unwrap_or_else(|| self.config.webhook_url.clone()).into();
        let d = Delivery::first(event, primary, lane);
        self.schedule(self.now + delay, Action::Deliver(Box::new(d)));
    }
}
