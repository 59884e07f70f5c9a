//! Per-call device behaviours and the race anomalies: which devices rang for which call, whether each
//! was dismissed, and whether a leg kept ringing after its call was decided.
//!
//! A *call* is a call session (legs dialed with `link_to` join the linked leg's session); its *first
//! leg* is the first one the simulator saw (the caller's leg of an inbound call). The call is
//! *answered* when one of its outgoing legs (a device, a PSTN callee) is first answered, and *ended* when
//! its first leg ends. The fleet answering the caller's leg (voicemail) also checks the legs ringing at
//! that moment, but not legs dialed after it (answer first, then dial, is a legitimate pattern). A device *rang* for a call when a leg of the call
//! rang it over SIP or when it received an `incoming_call` push carrying the call's `call_session_id`;
//! it is *dismissed* when a leg that rang it ended or failed (unless it ignores hangups), when it
//! answered, or when it received a `call_ended` push for the call. Pushes to tokens of no scripted
//! device count under `token:<token>`.
//!
//! Checks run `grace` (sim time, [`crate::SimConfig::anomaly_grace`]) after the facts, so the fleet has
//! time to react: `leg_still_ringing` for each outgoing leg still ringing `grace` after its call was
//! answered or ended (or after it started, if it started later), once per leg; `device_not_dismissed`
//! for each device that rang and was not dismissed `grace` after the call ended. On a manual clock the
//! checks fire while the clock is advanced past them, so advance in steps a real fleet can keep up with.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::legs::{Direction, LegState};
use super::{Action, World};
use crate::log::PushRecord;
use crate::observer::DeliveredPush;
use crate::scenario::{DeviceBehaviour, RingBehaviour};
use crate::timeline::SimMs;

/// What one device saw of one call.
#[derive(Clone, Debug, Default)]
struct Seen {
    pushed: bool,
    /// Legs that rang it over SIP.
    legs: Vec<String>,
    dismissed: bool,
}

/// One call's race facts.
#[derive(Default)]
struct CallFacts {
    legs: Vec<String>,
    /// An outgoing leg (a callee, a device) answered.
    callee_answered: bool,
    /// An incoming leg (the caller's) was answered by the fleet.
    caller_answered: bool,
    ended: bool,
}

pub(crate) struct Rings {
    pub grace: SimMs,
    /// Per-call behaviours: (call_session_id, device id) → behaviour.
    overrides: HashMap<(String, String), DeviceBehaviour>,
    /// Devices (index) that register late for a call: device → (call_session_id, delay).
    late: HashMap<usize, (String, SimMs)>,
    /// (call_session_id, device key) → what it saw. Ordered, so anomalies come in a stable order.
    seen: BTreeMap<(String, String), Seen>,
    /// Outgoing legs ringing devices: ccid → (target, device index, ignores hangups).
    leg_devices: HashMap<String, Vec<(usize, usize, bool)>>,
    calls: HashMap<String, CallFacts>,
    flagged: HashSet<String>,
}

impl Rings {
    pub fn new(grace: std::time::Duration) -> Self {
        Self {
            grace: grace.as_millis() as SimMs,
            overrides: HashMap::new(),
            late: HashMap::new(),
            seen: BTreeMap::new(),
            leg_devices: HashMap::new(),
            calls: HashMap::new(),
            flagged: HashSet::new(),
        }
    }
}

/// The first string under `key` in `v`, searching objects breadth-first down to three levels (FCM
/// `data` is flat; an APNs payload may nest custom keys).
fn find_str(v: &Value, key: &str) -> Option<String> {
    let mut level = vec![v];
    for _ in 0..3 {
        let mut next = Vec::new();
        for v in level {
            let Value::Object(m) = v else { continue };
            if let Some(Value::String(s)) = m.get(key) {
                return Some(s.clone());
            }
            next.extend(m.values());
        }
        level = next;
    }
    None
}

impl World {
    /// The behaviour a device shows when leg `ccid` rings it: its per-call behaviour, else its own.
    pub(super) fn ring_behaviour(&self, ccid: &str, device: usize) -> RingBehaviour {
        let d = &self.devices.list[device];
        let session = self.legs.get(ccid).map(|l| l.session_id.clone()).unwrap_or_default();
        self.rings
            .overrides
            .get(&(session, d.script.id.clone()))
            .and_then(|b| b.on_ring.clone())
            .unwrap_or_else(|| d.script.on_ring.clone())
    }

    fn device_index(&self, id: &str) -> Result<usize, crate::SimError> {
        self.devices.index_of(id).ok_or_else(|| crate::SimError::UnknownDevice(id.to_owned()))
    }

    /// Changes a device's behaviour for every later call.
    pub(crate) fn set_device_behaviour(
        &mut self,
        id: &str,
        b: DeviceBehaviour,
    ) -> Result<(), crate::SimError> {
        let i = self.device_index(id)?;
        let d = &mut self.devices.list[i];
        if let Some(r) = b.on_ring {
            d.script.on_ring = r;
        }
        if let Some(after) = b.register_after_push {
            d.script.register_after_push = Some(after);
            d.registered = false;
            d.registering = false;
        }
        Ok(())
    }

    /// Changes a device's behaviour for the legs of one call.
    pub(crate) fn set_call_device_behaviour(
        &mut self,
        session: &str,
        id: &str,
        b: DeviceBehaviour,
    ) -> Result<(), crate::SimError> {
        let i = self.device_index(id)?;
        if let Some(after) = b.register_after_push {
            let d = &mut self.devices.list[i];
            d.registered = false;
            d.registering = false;
            self.rings.late.insert(i, (session.to_owned(), after.as_millis() as SimMs));
        }
        self.rings.overrides.insert((session.to_owned(), id.to_owned()), b);
        Ok(())
    }

    /// A leg started: remember it under its call; a leg starting in a decided call gets its own check.
    pub(super) fn rings_leg_started(&mut self, ccid: &str) {
        let Some(leg) = self.legs.get(ccid) else { return };
        let (session, outgoing) = (leg.session_id.clone(), leg.direction == Direction::Outgoing);
        let facts = self.rings.calls.entry(session).or_default();
        facts.legs.push(ccid.to_owned());
        let decided = if facts.ended { Some("ended") } else { facts.callee_answered.then_some("answered") };
        if let (true, Some(why)) = (outgoing, decided) {
            let due = self.now + self.rings.grace;
            self.schedule(due, Action::RingCheck { ccid: ccid.to_owned(), why });
        }
    }

    /// Target `target` of leg `ccid` rings device `device`.
    pub(super) fn rings_device_rang(&mut self, ccid: &str, target: usize, device: usize, b: &RingBehaviour) {
        let Some(session) = self.legs.get(ccid).map(|l| l.session_id.clone()) else { return };
        let ignores = matches!(b, RingBehaviour::IgnoreHangup);
        self.rings.leg_devices.entry(ccid.to_owned()).or_default().push((target, device, ignores));
        let key = (session, self.devices.list[device].script.id.clone());
        self.rings.seen.entry(key).or_default().legs.push(ccid.to_owned());
        if let RingBehaviour::UnregisterAfter { after } = b {
            let due = self.now + after.as_millis() as SimMs;
            self.schedule(due, Action::Unregister { ccid: ccid.to_owned(), target, device });
        }
    }

    pub(super) fn unregister_mid_ring(&mut self, ccid: &str, target: usize, device: usize) {
        if self.legs.get(ccid).is_none_or(|l| l.state != LegState::Ringing) {
            return;
        }
        if let Some(d) = self.devices.list.get_mut(device) {
            d.registered = false;
            d.registering = false;
        }
        self.remote(ccid, target, super::legs::RemoteAct::Unregistered);
    }

    /// Marks the devices leg `ccid` rang (or only the one at `target`) as dismissed, except those that
    /// ignore hangups (unless `answered`: a device that answered is done with the call).
    pub(super) fn rings_dismiss(&mut self, ccid: &str, target: Option<usize>, answered: bool) {
        let Some(session) = self.legs.get(ccid).map(|l| l.session_id.clone()) else { return };
        let Some(list) = self.rings.leg_devices.get(ccid) else { return };
        let ids: Vec<String> = list
            .iter()
            .filter(|(t, _, ignores)| target.is_none_or(|x| x == *t) && (answered || !ignores))
            .map(|(_, d, _)| self.devices.list[*d].script.id.clone())
            .collect();
        for id in ids {
            if let Some(s) = self.rings.seen.get_mut(&(session.clone(), id)) {
                s.dismissed = true;
            }
        }
    }

    /// A leg was answered: the first answer in a call schedules the ringing checks of its other legs.
    pub(super) fn rings_leg_answered(&mut self, ccid: &str) {
        let Some(leg) = self.legs.get(ccid) else { return };
        let (session, target) = (leg.session_id.clone(), leg.answered_target);
        let outgoing = leg.direction == Direction::Outgoing;
        self.rings_dismiss(ccid, target, true);
        let Some(facts) = self.rings.calls.get_mut(&session) else { return };
        let first = if outgoing { &mut facts.callee_answered } else { &mut facts.caller_answered };
        if *first || facts.ended {
            return;
        }
        *first = true;
        self.schedule_ring_checks(&session, "answered");
    }

    /// A leg ended: its devices are dismissed; the end of a call's first leg ends the call.
    pub(super) fn rings_leg_ended(&mut self, ccid: &str) {
        self.rings_dismiss(ccid, None, false);
        let Some(session) = self.legs.get(ccid).map(|l| l.session_id.clone()) else { return };
        let Some(facts) = self.rings.calls.get_mut(&session) else { return };
        if facts.ended || facts.legs.first().is_none_or(|first| first != ccid) {
            return;
        }
        facts.ended = true;
        self.schedule_ring_checks(&session, "ended");
        let due = self.now + self.rings.grace;
        self.schedule(due, Action::DismissCheck(session));
    }

    fn schedule_ring_checks(&mut self, session: &str, why: &'static str) {
        let ringing: Vec<String> = self.rings.calls[session]
            .legs
            .iter()
            .filter(|c| self.legs.get(*c).is_some_and(|l| l.state == LegState::Ringing))
            .cloned()
            .collect();
        let due = self.now + self.rings.grace;
        for ccid in ringing {
            self.schedule(due, Action::RingCheck { ccid, why });
        }
    }

    pub(super) fn ring_check(&mut self, ccid: &str, why: &'static str) {
        let ringing = self.legs.get(ccid).is_some_and(|l| l.state == LegState::Ringing);
        if ringing && self.rings.flagged.insert(ccid.to_owned()) {
            let to = self.legs.get(ccid).map(|l| l.to.clone()).unwrap_or_default();
            let detail =
                format!("{ccid} to {to} still rings {} ms after its call was {why}", self.rings.grace);
            self.anomaly("leg_still_ringing", Some(ccid), detail);
        }
    }

    pub(super) fn dismiss_check(&mut self, session: &str) {
        let lo = (session.to_owned(), String::new());
        let missed: Vec<(String, Seen)> = self
            .rings
            .seen
            .range(lo..)
            .take_while(|((s, _), _)| s == session)
            .filter(|(_, seen)| (seen.pushed || !seen.legs.is_empty()) && !seen.dismissed)
            .map(|((_, d), seen)| (d.clone(), seen.clone()))
            .collect();
        for (device, seen) in missed {
            let how = match (seen.pushed, seen.legs.is_empty()) {
                (true, false) => "an incoming_call push and a ringing SIP leg",
                (true, true) => "an incoming_call push",
                _ => "a ringing SIP leg",
            };
            let detail = format!(
                "device {device} got {how} and neither a hangup it heeded nor a call_ended push by {} ms after the call ended",
                self.rings.grace
            );
            let ccid = seen.legs.last().cloned();
            self.anomaly_in("device_not_dismissed", ccid.as_deref(), Some(session.to_owned()), detail);
        }
    }

    /// Records a delivered push, and what it means for the call it names: an `incoming_call` rings the
    /// device, a `call_ended` dismisses it; a device that registers late for that call starts registering.
    pub(super) fn rings_push(&mut self, push: &DeliveredPush, device: Option<usize>) {
        let push_type = find_str(&push.data, "type");
        let session = find_str(&push.data, "call_session_id");
        let device_id = device.map(|i| self.devices.list[i].script.id.clone());
        let seq = self.log.next_seq();
        self.log.pushes.push(PushRecord {
            seq,
            at_ms: self.now,
            platform: push.platform,
            token: push.token.clone(),
            device_id: device_id.clone(),
            push_type: push_type.clone(),
            call_session_id: session.clone(),
            data: push.data.clone(),
        });
        let Some(session) = session else { return };
        let key = (session.clone(), device_id.unwrap_or_else(|| format!("token:{}", push.token)));
        match push_type.as_deref() {
            Some("call_ended") => self.rings.seen.entry(key).or_default().dismissed = true,
            Some("incoming_call") => self.rings.seen.entry(key).or_default().pushed = true,
            _ => {}
        }
        let Some(i) = device else { return };
        if self.rings.late.get(&i).is_some_and(|(s, _)| *s == session) {
            if let Some((_, after)) = self.rings.late.remove(&i) {
                let d = &mut self.devices.list[i];
                if !d.registered && !d.registering {
                    d.registering = true;
                    let id = d.script.id.clone();
                    self.schedule(self.now + after, Action::Register(id));
                }
            }
        }
    }
}
