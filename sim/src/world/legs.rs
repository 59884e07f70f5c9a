//! Call legs and their lifecycle: ringing, answer, bridge, hangup, with the causes and sources Telnyx
//! reports (`hangup_causes.json`).
//!
//! Cause/source conventions (the observed ones are from real captures; the others follow SIP convention and
//! are unverified against Telnyx, as the reference notes):
//! - remote party hangs up an answered leg: `normal_clearing`, source = the remote (`caller` on incoming
//!   legs, `callee` on outgoing legs), SIP `200`;
//! - the app hangs up: `normal_clearing` from our side (`callee` on incoming, `caller` on outgoing legs),
//!   or `originator_cancel`/`caller`/`487` for an outgoing leg still ringing;
//! - the caller gives up before answer: `originator_cancel`, `caller`, `487`;
//! - decline / busy / unknown SIP user / unregistered SIP user: `call_rejected` 603, `user_busy` 486,
//!   `not_found` 404, `unspecified` 480, all source `callee`;
//! - `timeout_secs`: `timeout` (or `no_answer` with `retry_on_timeout: false`), `unknown`, `487`;
//!   `time_limit_secs`: `time_limit`, `unknown`, `unspecified`;
//! - a bridged leg ends → its partner ends `normal_clearing` from our side, unless it has
//!   `park_after_unbridge: "self"`; a transfer's new leg still ringing when the original leg ends is cancelled.

use serde::Serialize;

use super::{Action, World, recording, speak};
use crate::timeline::SimMs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// Where a leg is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegState {
    /// Incoming, not answered yet.
    Parked,
    /// Outgoing, ringing its destination(s).
    Ringing,
    Answered,
    Ended,
}

/// Why a leg ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hangup {
    pub cause: &'static str,
    pub source: &'static str,
    pub sip: &'static str,
}

impl Hangup {
    pub const fn new(cause: &'static str, source: &'static str, sip: &'static str) -> Self {
        Self { cause, source, sip }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum TargetKind {
    Pstn(String),
    /// `sip:<user>@sip.telnyx.com` (a telephony credential).
    Credential(String),
    /// Any other SIP URI; behaves like a default PSTN callee.
    External,
}

/// One destination of an outgoing leg (`to` may be an array).
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub kind: TargetKind,
    pub failed: Option<Hangup>,
}

/// What the far end does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RemoteAct {
    Answer,
    Decline,
    Busy,
    Hangup,
    NotFound,
    Unregistered,
}

/// A scripted inbound call waiting for its start time.
pub(crate) struct PendingInbound {
    pub ccid: String,
    pub leg_id: String,
    pub session_id: String,
    pub from: String,
    pub to: String,
    pub connection_id: String,
    pub sip_party: bool,
    pub from_sip_uri: String,
    pub to_sip_uri: String,
    pub hangup_after: Option<SimMs>,
    /// A browser's direct WebRTC call: an outgoing leg to `to` instead of an incoming one.
    pub direct: bool,
}

pub(crate) struct Leg {
    pub ccid: String,
    pub leg_id: String,
    pub session_id: String,
    pub connection_id: String,
    pub direction: Direction,
    /// `calling_party_type` is `sip` (else `pstn`).
    pub sip_party: bool,
    pub from: String,
    pub to: String,
    pub from_sip_uri: Option<String>,
    pub to_sip_uri: Option<String>,
    pub state: LegState,
    pub client_state: Option<String>,
    pub start: SimMs,
    pub answered_at: Option<SimMs>,
    pub ended_at: Option<SimMs>,
    pub bridged_with: Option<String>,
    pub link_to: Option<String>,
    pub bridge_on_answer: bool,
    pub prevent_double_bridge: bool,
    /// Set on the new leg a `transfer` created: the leg it was transferred from.
    pub transfer_of: Option<String>,
    /// Legs created by transferring this one.
    pub children: Vec<String>,
    pub park_after_unbridge: bool,
    pub targets: Vec<Target>,
    pub answered_target: Option<usize>,
    pub retry_on_timeout: bool,
    pub webhook_url: Option<String>,
    pub recording: Option<recording::ActiveRecording>,
    pub record_on_answer: Option<recording::RecordSpec>,
    pub speaks: Vec<speak::Speak>,
    pub speak_busy_until: SimMs,
    pub hangup: Option<Hangup>,
}

impl Leg {
    pub fn new(
        ccid: String,
        leg_id: String,
        session_id: String,
        connection_id: String,
        dir: Direction,
    ) -> Self {
        Self {
            ccid,
            leg_id,
            session_id,
            connection_id,
            state: if dir == Direction::Incoming { LegState::Parked } else { LegState::Ringing },
            direction: dir,
            sip_party: false,
            from: String::new(),
            to: String::new(),
            from_sip_uri: None,
            to_sip_uri: None,
            client_state: None,
            start: 0,
            answered_at: None,
            ended_at: None,
            bridged_with: None,
            link_to: None,
            bridge_on_answer: false,
            prevent_double_bridge: false,
            transfer_of: None,
            children: Vec::new(),
            park_after_unbridge: false,
            targets: Vec::new(),
            answered_target: None,
            retry_on_timeout: true,
            webhook_url: None,
            recording: None,
            record_on_answer: None,
            speaks: Vec::new(),
            speak_busy_until: 0,
            hangup: None,
        }
    }

    pub fn alive(&self) -> bool {
        self.state != LegState::Ended
    }

    /// Hangup as seen when our side (the app or Telnyx) ends an answered leg.
    fn our_side(&self) -> &'static str {
        if self.direction == Direction::Incoming { "callee" } else { "caller" }
    }

    /// Hangup source when the far end ends the leg.
    fn remote_side(&self) -> &'static str {
        if self.direction == Direction::Incoming { "caller" } else { "callee" }
    }

    /// Cause of a hangup command from the app.
    pub fn app_hangup(&self) -> Hangup {
        match self.state {
            LegState::Ringing => Hangup::new("originator_cancel", "caller", "487"),
            _ => Hangup::new("normal_clearing", self.our_side(), "200"),
        }
    }

    pub fn view(&self) -> CallView {
        CallView {
            call_control_id: self.ccid.clone(),
            call_leg_id: self.leg_id.clone(),
            call_session_id: self.session_id.clone(),
            connection_id: self.connection_id.clone(),
            direction: self.direction,
            from: self.from.clone(),
            to: self.to.clone(),
            state: self.state,
            client_state: self.client_state.clone(),
            bridged_with: self.bridged_with.clone(),
            hangup_cause: self.hangup.map(|h| h.cause.to_owned()),
            hangup_source: self.hangup.map(|h| h.source.to_owned()),
            start_ms: self.start,
            answered_ms: self.answered_at,
            ended_ms: self.ended_at,
            recording: self.recording.as_ref().map(|r| r.id.clone()),
        }
    }
}

/// A snapshot of one call leg, for assertions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallView {
    pub call_control_id: String,
    pub call_leg_id: String,
    pub call_session_id: String,
    pub connection_id: String,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    pub state: LegState,
    pub client_state: Option<String>,
    pub bridged_with: Option<String>,
    pub hangup_cause: Option<String>,
    pub hangup_source: Option<String>,
    pub start_ms: u64,
    pub answered_ms: Option<u64>,
    pub ended_ms: Option<u64>,
    /// Id of the recording in progress.
    pub recording: Option<String>,
}

impl World {
    pub(super) fn start_inbound(&mut self, p: PendingInbound) {
        if p.direct {
            return self.start_direct(p);
        }
        let mut leg = Leg::new(p.ccid, p.leg_id, p.session_id, p.connection_id, Direction::Incoming);
        leg.from = p.from;
        leg.to = p.to;
        leg.sip_party = p.sip_party;
        leg.from_sip_uri = Some(p.from_sip_uri);
        leg.to_sip_uri = Some(p.to_sip_uri);
        leg.start = self.now;
        let ccid = leg.ccid.clone();
        self.legs.insert(ccid.clone(), leg);
        self.rings_leg_started(&ccid);
        self.emit_initiated(&ccid);
        if let Some(after) = p.hangup_after {
            self.schedule(self.now + after, Action::Remote { ccid, target: 0, act: RemoteAct::Hangup });
        }
    }

    /// A browser's direct call: an outgoing leg that rings `to` like a dial would (30 s, 4 h limit).
    fn start_direct(&mut self, p: PendingInbound) {
        let mut leg = Leg::new(p.ccid, p.leg_id, p.session_id, p.connection_id, Direction::Outgoing);
        leg.from = p.from;
        leg.sip_party = p.sip_party;
        leg.from_sip_uri = Some(p.from_sip_uri);
        leg.to_sip_uri = Some(p.to_sip_uri);
        leg.targets = vec![Target { kind: TargetKind::Pstn(p.to.clone()), failed: None }];
        leg.to = p.to;
        leg.start = self.now;
        let ccid = leg.ccid.clone();
        self.start_outgoing(leg, 30_000, 4 * 3_600_000);
        if let Some(after) = p.hangup_after {
            self.schedule(self.now + after, Action::BrowserHangup(ccid));
        }
    }

    /// The browser of a direct call hangs up (cancels while it rings).
    pub(super) fn browser_hangup(&mut self, ccid: &str) {
        let h = self.legs.get(ccid).filter(|l| l.alive()).map(Leg::app_hangup);
        if let Some(h) = h {
            self.end_leg(ccid, h);
        }
    }

    /// Inserts a new outgoing leg, announces it and starts ringing its targets.
    pub(super) fn start_outgoing(&mut self, leg: Leg, timeout_ms: SimMs, time_limit_ms: SimMs) {
        let ccid = leg.ccid.clone();
        self.legs.insert(ccid.clone(), leg);
        self.rings_leg_started(&ccid);
        self.emit_initiated(&ccid);
        self.schedule(self.now + timeout_ms, Action::RingTimeout(ccid.clone()));
        self.schedule(self.now + time_limit_ms, Action::TimeLimit(ccid.clone()));
        self.ring_targets(&ccid);
    }

    pub(super) fn remote(&mut self, ccid: &str, target: usize, act: RemoteAct) {
        let Some(leg) = self.legs.get_mut(ccid) else { return };
        match (leg.state, act) {
            (LegState::Ended, _) => {}
            (LegState::Parked, RemoteAct::Hangup) => {
                self.end_leg(ccid, Hangup::new("originator_cancel", "caller", "487"));
            }
            (LegState::Answered, RemoteAct::Hangup) => {
                let ours = leg.direction == Direction::Incoming || leg.answered_target == Some(target);
                if ours {
                    let h = Hangup::new("normal_clearing", leg.remote_side(), "200");
                    self.end_leg(ccid, h);
                }
            }
            (LegState::Ringing, RemoteAct::Answer)
                if leg.targets.get(target).is_some_and(|t| t.failed.is_none()) =>
            {
                leg.answered_target = Some(target);
                self.answer_leg(ccid);
            }
            (LegState::Ringing, RemoteAct::Decline | RemoteAct::Busy | RemoteAct::NotFound)
            | (LegState::Ringing, RemoteAct::Unregistered) => {
                let h = match act {
                    RemoteAct::Decline => Hangup::new("call_rejected", "callee", "603"),
                    RemoteAct::Busy => Hangup::new("user_busy", "callee", "486"),
                    RemoteAct::NotFound => Hangup::new("not_found", "callee", "404"),
                    _ => Hangup::new("unspecified", "callee", "480"),
                };
                if let Some(t) = leg.targets.get_mut(target) {
                    t.failed.get_or_insert(h);
                }
                let all_failed = leg.targets.iter().all(|t| t.failed.is_some());
                // The device itself declined, was busy or went away: it is done with this call.
                self.rings_dismiss(ccid, Some(target), false);
                if all_failed {
                    self.end_leg(ccid, h);
                }
            }
            _ => {}
        }
    }

    pub(super) fn ring_timeout(&mut self, ccid: &str) {
        if let Some(leg) = self.legs.get(ccid).filter(|l| l.state == LegState::Ringing) {
            let cause = if leg.retry_on_timeout { "timeout" } else { "no_answer" };
            self.end_leg(ccid, Hangup::new(cause, "unknown", "487"));
        }
    }

    pub(super) fn time_limit(&mut self, ccid: &str) {
        if self.legs.get(ccid).is_some_and(Leg::alive) {
            self.end_leg(ccid, Hangup::new("time_limit", "unknown", "unspecified"));
        }
    }

    /// Marks a leg answered, announces it, then runs the answer hooks (record-from-answer, the bridge of a
    /// transfer or of `bridge_on_answer`).
    pub(super) fn answer_leg(&mut self, ccid: &str) {
        let now = self.now;
        let Some(leg) = self.legs.get_mut(ccid) else { return };
        if !matches!(leg.state, LegState::Parked | LegState::Ringing) {
            return;
        }
        leg.state = LegState::Answered;
        leg.answered_at = Some(now);
        let record = leg.record_on_answer.take();
        self.rings_leg_answered(ccid);
        let Some(leg) = self.legs.get_mut(ccid) else { return };
        let partner = match (&leg.transfer_of, &leg.link_to) {
            (Some(a), _) => Some((a.clone(), false)),
            (None, Some(a)) if leg.bridge_on_answer => Some((a.clone(), leg.prevent_double_bridge)),
            _ => None,
        };
        self.emit_answered(ccid);
        if let Some(spec) = record {
            self.start_recording(ccid, spec);
        }
        let Some((a, prevent_double)) = partner else { return };
        let a_state = self.legs.get(&a).map(|l| (l.alive(), l.bridged_with.is_some()));
        match a_state {
            Some((true, bridged)) if !(prevent_double && bridged) => {
                if let Some(al) = self.legs.get_mut(&a).filter(|l| l.state == LegState::Parked) {
                    al.state = LegState::Answered;
                    al.answered_at = Some(now);
                }
                self.bridge_legs(&a, ccid);
            }
            _ => self.end_leg(ccid, Hangup::new("normal_clearing", "caller", "200")),
        }
    }

    /// Bridges two live legs; a leg already bridged elsewhere is first unbridged (its old partner ends or
    /// parks), which is reported as a `double_bridge` anomaly.
    pub(super) fn bridge_legs(&mut self, a: &str, b: &str) {
        for (x, other) in [(a, b), (b, a)] {
            let old = self.legs.get(x).and_then(|l| l.bridged_with.clone()).filter(|o| o != other);
            if let Some(old) = old {
                self.anomaly(
                    "double_bridge",
                    Some(x),
                    format!("{x} was bridged to {old} and is bridged again"),
                );
                if let Some(l) = self.legs.get_mut(x) {
                    l.bridged_with = None;
                }
                self.unbridged(&old);
            }
        }
        for (x, other) in [(a, b), (b, a)] {
            if let Some(l) = self.legs.get_mut(x) {
                l.bridged_with = Some(other.to_owned());
            }
        }
        self.emit_bridged(a);
        self.emit_bridged(b);
    }

    /// `leg` lost its bridge partner: it parks if asked to, else it ends from our side.
    fn unbridged(&mut self, leg: &str) {
        let Some(l) = self.legs.get_mut(leg) else { return };
        l.bridged_with = None;
        if l.alive() && !l.park_after_unbridge {
            let h = Hangup::new("normal_clearing", l.our_side(), "200");
            self.end_leg(leg, h);
        }
    }

    /// Ends a leg: speak and recording wrap-up, `call.hangup`, then the partner and transfer children.
    pub(super) fn end_leg(&mut self, ccid: &str, h: Hangup) {
        let now = self.now;
        let Some(leg) = self.legs.get_mut(ccid) else { return };
        if !leg.alive() {
            return;
        }
        leg.state = LegState::Ended;
        leg.ended_at = Some(now);
        leg.hangup = Some(h);
        let partner = leg.bridged_with.take();
        let children = std::mem::take(&mut leg.children);
        self.speaks_interrupted(ccid);
        self.emit_hangup(ccid);
        self.rings_leg_ended(ccid);
        if self.legs.get(ccid).is_some_and(|l| l.recording.is_some()) {
            self.save_recording(ccid);
        }
        if let Some(p) = partner {
            self.unbridged(&p);
        }
        for child in children {
            if self.legs.get(&child).is_some_and(|l| l.state == LegState::Ringing) {
                self.end_leg(&child, Hangup::new("originator_cancel", "caller", "487"));
            }
        }
    }
}
