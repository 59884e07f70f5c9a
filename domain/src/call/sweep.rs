//! Ending a call, and the sweep that keeps "nobody is left ringing" true after every input.
//!
//! The sweep is a function of the state only, so it gives the same effects whatever order the
//! inputs came in: once the ring is over, every leg but the winner whose `call_control_id` is
//! known gets one hangup (with the ring's reason), including a leg whose dial response arrives
//! later, and a leg that already hung up itself (a hangup of a gone leg is harmless: Telnyx
//! answers `90018`, which the client counts as done); once the call is over, the winner and the
//! parent are hung up too, unless they are known to be gone. Every rung device but the winner's
//! gets one `call_ended` push: Android always, iOS only if its `incoming_call` was delivered
//! (even when that news arrives after the call ended).

use super::command::{AppEvent, Command, HangupTarget, Push};
use super::model::{CallState, EndReason, LegState, Platform};
use super::step::Tx;
use crate::push::CallEndedReason;

impl Tx {
    /// Ends the call (once): hangs up the parent, clears the active call, emits `call.ended`, and
    /// asks for its call log and ledger entry.
    pub(super) fn end(&mut self, reason: EndReason) {
        if self.call.state == CallState::Ended {
            return;
        }
        let active_set = self.call.has_emitted("active_call:set");
        self.call.state = CallState::Ended;
        self.call.ended_at = Some(self.now);
        let reason = *self.call.end_reason.get_or_insert(reason);
        self.call.legs_end_reason.get_or_insert(reason);
        if !self.call.parent_ended {
            self.call.parent_ended = true;
            self.emit("parent:hangup", Command::Hangup { target: HangupTarget::Parent, reason });
        }
        if let Some(user_id) = self.call.user_id.clone().filter(|_| active_set) {
            self.emit("active_call:clear", Command::ActiveCall { user_id, active: false });
        }
        let duration_secs = self.call.duration_secs();
        self.emit("event:call.ended", Command::Emit(AppEvent::Ended { reason, duration_secs }));
        self.emit("log", Command::LogCall);
    }

    /// Hangs up whoever must not ring on and dismisses rung devices; see the module header.
    pub(super) fn sweep(&mut self) {
        if self.call.state.rank() < CallState::Answered.rank() {
            return;
        }
        let ended = self.call.state == CallState::Ended;
        let others = self.call.legs_end_reason.unwrap_or(EndReason::Completed);
        let own = self.call.end_reason.unwrap_or(EndReason::Completed);
        for i in 0..self.call.legs.len() {
            let leg = &self.call.legs[i];
            let is_winner = self.call.winner.as_ref() == Some(&leg.id);
            if is_winner && (!ended || leg.state == LegState::Ended) {
                continue;
            }
            let Some(call_control_id) = leg.call_control_id.clone() else { continue };
            let reason = if is_winner { own } else { others };
            let key = format!("leg:{}:hangup", leg.id);
            let target = HangupTarget::Leg { leg: leg.id.clone(), call_control_id };
            if self.emit(&key, Command::Hangup { target, reason }) {
                self.call.legs[i].hangup_reason.get_or_insert(reason);
            }
        }
        let winner_device = self.call.winner.as_ref().map(|leg| leg.device_id.clone());
        let push_reason = match others {
            EndReason::AnsweredElsewhere => CallEndedReason::AnsweredElsewhere,
            EndReason::CallerCancelled => CallEndedReason::CallerCancelled,
            EndReason::Completed => CallEndedReason::Completed,
            _ => CallEndedReason::Missed,
        };
        for i in 0..self.call.devices.len() {
            let rung = &self.call.devices[i];
            let eligible =
                rung.device.push && (rung.device.platform != Platform::Ios || rung.incoming_delivered);
            if !eligible || winner_device.as_deref() == Some(rung.device.device_id.as_str()) {
                continue;
            }
            let device_id = rung.device.device_id.clone();
            let push = Push::CallEnded { reason: push_reason };
            self.emit(&format!("push:{device_id}:call_ended"), Command::Push { device_id, push });
        }
    }
}
