//! The transitions: one handler per input, each guarded by the state it is valid in.
//!
//! A handler that finds its input stale (the call moved on, the leg already ended, a timer of an
//! older round) does nothing. Handlers never hang legs up themselves; they set the reason and
//! leave it to the sweep ([`super::sweep`]), so there is one place that decides who is hung up.

use chrono::{DateTime, Duration, Utc};

use super::command::{AppEvent, Command, Effect, HEADER_CALL_ID, HEADER_ORG_ID, HangupTarget, Push};
use super::input::{CallInput, Route, Timer, is_decline};
use super::model::{Call, CallDirection, CallState, EndReason, Leg, LegId, LegState, Rung};

/// How long after a failed or missing registration a device is dialed again.
pub const REDIAL_INTERVAL: Duration = Duration::seconds(2);
/// How long after the winner's answer `call.bridged` is expected before asking Telnyx.
pub const BRIDGE_RECONCILE_AFTER: Duration = Duration::seconds(10);
/// Interval of the reconcile checks on a live (answered or voicemail) call.
pub const LIVE_RECONCILE_EVERY: Duration = Duration::minutes(10);
/// Slack after the longest voicemail recording before the first reconcile check.
pub const VOICEMAIL_RECONCILE_SLACK: Duration = Duration::seconds(60);
/// How long an outbound call's far end may ring (the transfer's `timeout_secs`).
pub const OUTBOUND_RING_SECS: u32 = 30;
/// When an outbound call whose far end never answered nor hung up is first checked with Telnyx.
pub const OUTBOUND_RECONCILE_AFTER: Duration = Duration::seconds(OUTBOUND_RING_SECS as i64 + 30);

/// One step in progress: the working copy of the call and the effects so far.
pub(super) struct Tx {
    pub(super) call: Call,
    pub(super) now: DateTime<Utc>,
    effects: Vec<Effect>,
}

impl Tx {
    pub(super) fn new(call: Call, now: DateTime<Utc>) -> Self {
        Self { call, now, effects: Vec::new() }
    }

    pub(super) fn finish(self) -> (Call, Vec<Effect>) {
        (self.call, self.effects)
    }

    /// Records `command` under `"{call}:{suffix}"` unless that key was produced before.
    pub(super) fn emit(&mut self, suffix: &str, command: Command) -> bool {
        let key = self.call.effect_key(suffix);
        if !self.call.emitted.insert(key.clone()) {
            return false;
        }
        self.effects.push(Effect { key, command });
        true
    }

    pub(super) fn apply(&mut self, input: &CallInput) {
        match input {
            CallInput::Routed(route) => self.routed(route),
            CallInput::DialAccepted { leg, call_control_id } => {
                self.learn(leg, call_control_id);
            }
            CallInput::DialFailed { leg } => self.dial_failed(leg),
            CallInput::LegInitiated { leg, call_control_id } => {
                if let Some(i) = self.learn(leg, call_control_id) {
                    self.advance(i, LegState::Ringing);
                }
            }
            CallInput::LegAnswered { leg, call_control_id } => self.leg_answered(leg, call_control_id),
            CallInput::LegHangup { leg, call_control_id, cause } => {
                self.leg_hangup(leg, call_control_id.as_deref(), cause);
            }
            CallInput::StrayLeg { call_control_id } => self.hang_up_stray(call_control_id),
            CallInput::ParentHangup { cause } => self.parent_hangup(cause),
            CallInput::Bridged => self.bridged(),
            CallInput::FarEndAnswered => self.far_end_answered(),
            CallInput::FarEndHangup { cause } => self.far_end_hangup(cause),
            CallInput::BridgeFailed => {
                if self.call.state == CallState::Answered && !self.call.bridged {
                    self.end(EndReason::BridgeFailed);
                }
            }
            CallInput::GreetingEnded => {
                if self.call.state == CallState::Voicemail {
                    let max_length_secs = self.call.voicemail.max_secs;
                    self.emit("voicemail:record", Command::RecordVoicemail { max_length_secs });
                }
            }
            CallInput::IncomingPushDelivered { device_id } => {
                if let Some(rung) = self.rung_mut(device_id) {
                    rung.incoming_delivered = true;
                }
            }
            CallInput::DeviceRegistered { device_id, sip_target } => {
                self.redial(device_id, None, Some(sip_target));
            }
            CallInput::RedialDue { device_id, round, sip_target } => {
                self.redial(device_id, Some(*round), sip_target.as_ref());
            }
            CallInput::RingTimeout => {
                if self.call.is_ringing() {
                    self.voicemail(EndReason::NoAnswer);
                }
            }
            CallInput::ReconcileDue { round } => self.reconcile_due(*round),
            CallInput::Reconciled { parent_alive, legs } => {
                if !parent_alive {
                    self.parent_hangup("gone");
                }
                for (leg, _) in legs.iter().filter(|(_, alive)| !alive) {
                    self.leg_hangup(leg, None, "gone");
                }
            }
        }
    }

    fn routed(&mut self, route: &Route) {
        if self.call.state != CallState::Routing {
            return;
        }
        match route {
            Route::Reject { reason } => {
                self.emit("parent:reject", Command::Reject { reason: *reason });
                self.call.parent_ended = true;
                self.call.state = CallState::Ended;
                self.call.end_reason = Some(*reason);
                self.call.ended_at = Some(self.now);
                self.emit("log", Command::LogCall);
            }
            Route::Voicemail { reason } => self.voicemail(*reason),
            Route::AiAgent { sip_uri, reason } => {
                let custom_headers = vec![
                    (HEADER_ORG_ID.to_owned(), self.call.org_id.clone()),
                    (HEADER_CALL_ID.to_owned(), self.call.id.clone()),
                ];
                self.emit("parent:transfer", Command::Transfer { sip_uri: sip_uri.clone(), custom_headers });
                self.call.state = CallState::AiAgent;
                self.call.end_reason = Some(*reason);
            }
            Route::Ring { devices, ring_timeout_secs } => {
                let reachable: Vec<_> =
                    devices.iter().filter(|d| d.push || d.sip_target.is_some()).cloned().collect();
                if reachable.is_empty() {
                    return self.voicemail(EndReason::NoDevices);
                }
                let deadline = self.now + Duration::seconds(i64::from(*ring_timeout_secs));
                self.call.state = CallState::Ringing;
                self.call.ring_deadline = Some(deadline);
                self.emit("event:call.incoming", Command::Emit(AppEvent::Incoming));
                for device in &reachable {
                    if device.push {
                        let push = Push::IncomingCall { ring_ends_at: deadline };
                        let key = format!("push:{}:incoming_call", device.device_id);
                        self.emit(&key, Command::Push { device_id: device.device_id.clone(), push });
                    }
                }
                self.call.devices = reachable
                    .into_iter()
                    .map(|device| Rung { device, incoming_delivered: false, declined: false, redials: 0 })
                    .collect();
                for i in 0..self.call.devices.len() {
                    let device = self.call.devices[i].device.clone();
                    match device.sip_target {
                        Some(target) => self.dial(&device.device_id, &target),
                        None => self.schedule_redial(&device.device_id),
                    }
                }
                self.emit(
                    "timer:ring_timeout",
                    Command::Schedule { timer: Timer::RingTimeout, at: deadline },
                );
            }
            Route::Outbound => {
                self.call.state = CallState::Ringing;
                let (to, from) = (self.call.to.clone(), self.call.from.clone());
                self.emit("parent:connect", Command::ConnectOutbound { to, from });
                if let Some(user_id) = self.call.user_id.clone() {
                    self.emit("active_call:set", Command::ActiveCall { user_id, active: true });
                }
                self.schedule_reconcile(OUTBOUND_RECONCILE_AFTER);
            }
            Route::Direct => {
                // Telnyx rings the far end itself; we only follow the call (and log it).
                self.call.state = CallState::Ringing;
                if let Some(user_id) = self.call.user_id.clone() {
                    self.emit("active_call:set", Command::ActiveCall { user_id, active: true });
                }
                self.schedule_reconcile(OUTBOUND_RECONCILE_AFTER);
            }
        }
    }

    /// Outbound or direct: the call rings a far end, not our devices.
    fn is_outbound(&self) -> bool {
        matches!(self.call.direction, CallDirection::Outbound | CallDirection::Direct)
    }

    /// An outbound call's far end answered (or was bridged, which implies it).
    fn far_end_answered(&mut self) {
        if !self.is_outbound() || self.call.state != CallState::Ringing {
            return;
        }
        self.call.state = CallState::Answered;
        self.call.answered_at = Some(self.now);
        if let Some(device_id) = self.call.placed_by.clone() {
            self.emit("event:call.answered", Command::Emit(AppEvent::Answered { device_id }));
        }
        // A direct call is recorded when its browser asks (`POST /v1/calls/{id}/recording`).
        if self.call.direction == CallDirection::Outbound {
            self.emit("record:call", Command::RecordCall);
        }
        self.schedule_reconcile(BRIDGE_RECONCILE_AFTER);
    }

    /// An outbound call's far end is gone: the call ends (the device's leg is hung up).
    fn far_end_hangup(&mut self, cause: &str) {
        if !self.is_outbound() {
            return;
        }
        match self.call.state {
            CallState::Ringing if is_decline(cause) => self.end(EndReason::AllDeclined),
            CallState::Routing | CallState::Ringing => self.end(EndReason::NoAnswer),
            _ => self.end(EndReason::Completed),
        }
    }

    /// Dials the next attempt of a device for the rest of the ring.
    fn dial(&mut self, device_id: &str, target: &str) {
        let attempt = self.call.legs.iter().filter(|leg| leg.id.device_id == device_id).count() + 1;
        let id = LegId::new(device_id, u32::try_from(attempt).unwrap_or(u32::MAX));
        let timeout_secs = self
            .call
            .ring_deadline
            .map_or(0, |deadline| (deadline - self.now).num_seconds().max(1))
            .try_into()
            .unwrap_or(u32::MAX);
        self.call.legs.push(Leg {
            id: id.clone(),
            call_control_id: None,
            state: LegState::Dialing,
            hangup_cause: None,
            hangup_reason: None,
            dial_failed: false,
        });
        let key = format!("leg:{id}:dial");
        self.emit(&key, Command::Dial { leg: id, to: target.to_owned(), timeout_secs });
    }

    /// Schedules the next redial round of a device that has a push token, within the ring.
    fn schedule_redial(&mut self, device_id: &str) {
        let at = self.now + REDIAL_INTERVAL;
        if !self.call.is_ringing() || self.call.ring_deadline.is_none_or(|d| at >= d) {
            return;
        }
        let Some(rung) = self.rung_mut(device_id).filter(|r| r.device.push && !r.declined) else { return };
        rung.redials += 1;
        let round = rung.redials;
        let key = format!("timer:redial:{device_id}:{round}");
        let timer = Timer::Redial { device_id: device_id.to_owned(), round };
        self.emit(&key, Command::Schedule { timer, at });
    }

    /// A registration or a redial timer: dial the device if it is still worth ringing.
    /// `round` is `None` for a registration; a timer of an older round is stale.
    fn redial(&mut self, device_id: &str, round: Option<u32>, target: Option<&String>) {
        if !self.call.is_ringing() {
            return;
        }
        let Some(rung) = self.call.rung(device_id) else { return };
        if rung.declined || round.is_some_and(|r| r != rung.redials) {
            return;
        }
        if self.call.legs.iter().any(|leg| leg.id.device_id == device_id && leg.is_live()) {
            return;
        }
        match target {
            Some(target) => {
                if let Some(rung) = self.rung_mut(device_id) {
                    rung.device.sip_target = Some(target.clone());
                }
                self.dial(device_id, target);
            }
            None => self.schedule_redial(device_id),
        }
    }

    /// Takes a leg's `call_control_id` from any source; an unknown leg is a stray (hung up).
    fn learn(&mut self, id: &LegId, call_control_id: &str) -> Option<usize> {
        let Some(i) = self.call.legs.iter().position(|leg| &leg.id == id) else {
            self.hang_up_stray(call_control_id);
            return None;
        };
        self.call.legs[i].call_control_id.get_or_insert_with(|| call_control_id.to_owned());
        Some(i)
    }

    fn advance(&mut self, i: usize, to: LegState) {
        let leg = &mut self.call.legs[i];
        leg.state = leg.state.max(to);
    }

    fn dial_failed(&mut self, id: &LegId) {
        let Some(leg) = self.call.legs.iter_mut().find(|leg| &leg.id == id) else { return };
        if leg.dial_failed || leg.call_control_id.is_some() {
            return;
        }
        leg.dial_failed = true;
        let device_id = id.device_id.clone();
        self.schedule_redial(&device_id);
        self.check_all_failed();
    }

    fn leg_answered(&mut self, id: &LegId, call_control_id: &str) {
        let Some(i) = self.learn(id, call_control_id) else { return };
        if self.call.legs[i].state == LegState::Ended {
            return;
        }
        self.advance(i, LegState::Answered);
        let can_win = self.call.is_ringing() && self.call.legs[i].is_live();
        if !can_win {
            return; // a late answer: the sweep hangs it up
        }
        self.call.state = CallState::Answered;
        self.call.winner = Some(id.clone());
        self.call.answered_at = Some(self.now);
        self.call.legs_end_reason = Some(EndReason::AnsweredElsewhere);
        self.emit("parent:answer", Command::AnswerParent);
        let bridge = Command::Bridge { leg: id.clone(), call_control_id: call_control_id.to_owned() };
        self.emit("bridge", bridge);
        let device_id = id.device_id.clone();
        self.emit("event:call.answered", Command::Emit(AppEvent::Answered { device_id }));
        if let Some(user_id) = self.call.user_id.clone() {
            self.emit("active_call:set", Command::ActiveCall { user_id, active: true });
        }
        self.schedule_reconcile(BRIDGE_RECONCILE_AFTER);
    }

    fn leg_hangup(&mut self, id: &LegId, call_control_id: Option<&str>, cause: &str) {
        let Some(i) = self.call.legs.iter().position(|leg| &leg.id == id) else { return };
        let leg = &mut self.call.legs[i];
        if let Some(ccid) = call_control_id {
            leg.call_control_id.get_or_insert_with(|| ccid.to_owned());
        }
        if leg.state == LegState::Ended {
            return;
        }
        leg.state = LegState::Ended;
        leg.hangup_cause.get_or_insert_with(|| cause.to_owned());
        if self.call.winner.as_ref() == Some(id) {
            if matches!(self.call.state, CallState::Answered) {
                self.end(EndReason::Completed);
            }
            return;
        }
        let device_id = id.device_id.clone();
        let declined = is_decline(cause);
        if let Some(rung) = self.rung_mut(&device_id).filter(|_| declined) {
            rung.declined = true; // a fact in any state, so the order of inputs does not matter
        }
        if !self.call.is_ringing() {
            return;
        }
        if !declined {
            self.schedule_redial(&device_id);
        }
        self.check_all_failed();
    }

    /// While ringing: no live leg and no device that may still come → voicemail.
    fn check_all_failed(&mut self) {
        if !self.call.is_ringing() || self.call.legs.iter().any(Leg::is_live) {
            return;
        }
        let waiting = self.call.devices.iter().any(|r| r.device.push && !r.declined);
        if waiting {
            return;
        }
        let all_declined = self.call.devices.iter().all(|r| r.declined);
        self.voicemail(if all_declined { EndReason::AllDeclined } else { EndReason::NoAnswer });
    }

    fn parent_hangup(&mut self, cause: &str) {
        let was = self.call.state;
        self.call.parent_ended = true;
        match was {
            // A direct call's parent is the browser's leg to the far end: its hangup says how
            // the far end's ring went.
            CallState::Routing | CallState::Ringing if self.call.direction == CallDirection::Direct => {
                let reason = if is_decline(cause) {
                    EndReason::AllDeclined
                } else if cause == "originator_cancel" {
                    EndReason::CallerCancelled
                } else {
                    EndReason::NoAnswer
                };
                self.end(reason);
            }
            CallState::Routing | CallState::Ringing => {
                self.call.legs_end_reason.get_or_insert(EndReason::CallerCancelled);
                if was == CallState::Ringing && !self.is_outbound() {
                    let reason = EndReason::CallerCancelled;
                    self.emit("event:call.missed", Command::Emit(AppEvent::Missed { reason }));
                }
                self.end(EndReason::CallerCancelled);
            }
            CallState::Answered | CallState::Voicemail | CallState::AiAgent => self.end(EndReason::Completed),
            CallState::Ended => {}
        }
    }

    fn bridged(&mut self) {
        self.far_end_answered();
        if self.call.state != CallState::Answered {
            return;
        }
        self.call.bridged = true;
        if self.call.direction != CallDirection::Direct {
            self.emit("record:call", Command::RecordCall);
        }
        if let Some(i) = self.call.legs.iter().position(|leg| Some(&leg.id) == self.call.winner.as_ref()) {
            self.advance(i, LegState::Bridged);
        }
    }

    /// Answers the caller with the org's greeting; the recording starts when it ends.
    pub(super) fn voicemail(&mut self, reason: EndReason) {
        if self.call.state.rank() >= CallState::Voicemail.rank() {
            return;
        }
        self.call.state = CallState::Voicemail;
        self.call.end_reason.get_or_insert(reason);
        self.call.legs_end_reason.get_or_insert(reason);
        self.call.answered_at = Some(self.now);
        self.emit("parent:answer", Command::AnswerParent);
        let vm = &self.call.voicemail;
        let speak = Command::SpeakGreeting {
            text: vm.greeting.clone(),
            voice: vm.voice.clone(),
            language: vm.language.clone(),
        };
        let slack = Duration::seconds(i64::from(vm.max_secs)) + VOICEMAIL_RECONCILE_SLACK;
        self.emit("voicemail:greeting", speak);
        self.emit("event:voicemail.started", Command::Emit(AppEvent::VoicemailStarted { reason }));
        self.schedule_reconcile(slack);
    }

    fn schedule_reconcile(&mut self, after: Duration) {
        self.call.reconciles += 1;
        let round = self.call.reconciles;
        let at = self.now + after;
        self.emit(
            &format!("timer:reconcile:{round}"),
            Command::Schedule { timer: Timer::Reconcile { round }, at },
        );
    }

    fn reconcile_due(&mut self, round: u32) {
        let live = matches!(self.call.state, CallState::Answered | CallState::Voicemail)
            || (self.is_outbound() && self.call.state == CallState::Ringing);
        if !live || round != self.call.reconciles {
            return;
        }
        self.emit(&format!("reconcile:{round}"), Command::QueryStatus);
        self.schedule_reconcile(LIVE_RECONCILE_EVERY);
    }

    fn hang_up_stray(&mut self, call_control_id: &str) {
        let reason = self.call.legs_end_reason.unwrap_or(EndReason::Completed);
        let target = HangupTarget::Stray { call_control_id: call_control_id.to_owned() };
        self.emit(&format!("stray:{call_control_id}:hangup"), Command::Hangup { target, reason });
    }

    fn rung_mut(&mut self, device_id: &str) -> Option<&mut Rung> {
        self.call.devices.iter_mut().find(|rung| rung.device.device_id == device_id)
    }
}
