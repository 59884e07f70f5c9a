//! Scripted devices and callers: SIP registration (online, or N ms after a push), what a device does when a
//! leg rings it, PSTN callees, and scripted inbound calls.
//!
//! A device finds its credential lazily through a [`CredentialRef`]; the `sip_username → device` index is
//! rebuilt only when devices or credentials changed (`dirty`), so ringing stays O(1) with thousands of
//! devices. A leg to a SIP user fails after `unreachable_delay` with `not_found` if no such credential
//! exists, or `unspecified`/480 if it exists but no registered device uses it (expired credentials are never
//! registered, and dialing one is logged as an `expired_credential_dialed` anomaly).

use std::collections::HashMap;

use super::legs::{Direction, LegState, PendingInbound, RemoteAct, TargetKind};
use super::{Action, World};
use crate::error::SimError;
use crate::ids;
use crate::observer::DeliveredPush;
use crate::scenario::{Caller, CallerScript, CredentialRef, DeviceScript, PlacedCall, RingBehaviour};

pub(crate) struct DeviceState {
    pub script: DeviceScript,
    pub registered: bool,
    /// A registration triggered by a push is scheduled.
    pub registering: bool,
    pub resolved: Option<String>,
}

#[derive(Default)]
pub(crate) struct Devices {
    pub list: Vec<DeviceState>,
    by_id: HashMap<String, usize>,
    by_token: HashMap<String, usize>,
    by_user: HashMap<String, usize>,
    /// Devices or credentials changed since the last index rebuild.
    pub dirty: bool,
}

/// What ringing a target leads to: its behaviour, and the scripted device it rings (if any).
enum Reach {
    Rings(RingBehaviour, Option<usize>),
    Fails(RemoteAct),
}

impl Devices {
    /// Index of the device with this id.
    pub(crate) fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }
}

impl World {
    pub(crate) fn add_device(&mut self, script: DeviceScript) -> Result<(), SimError> {
        if self.devices.by_id.contains_key(&script.id) {
            return Err(SimError::DuplicateDevice(script.id));
        }
        let i = self.devices.list.len();
        self.devices.by_id.insert(script.id.clone(), i);
        if let Some(t) = &script.push_token {
            self.devices.by_token.insert(t.clone(), i);
        }
        let registered = script.online;
        self.devices.list.push(DeviceState { script, registered, registering: false, resolved: None });
        self.devices.dirty = true;
        Ok(())
    }

    pub(crate) fn set_device_online(&mut self, id: &str, online: bool) -> Result<(), SimError> {
        let i = *self.devices.by_id.get(id).ok_or_else(|| SimError::UnknownDevice(id.to_owned()))?;
        let d = &mut self.devices.list[i];
        d.registered = online;
        d.registering = false;
        Ok(())
    }

    pub(crate) fn device_registered(&self, id: &str) -> Option<bool> {
        self.devices.by_id.get(id).map(|&i| self.devices.list[i].registered)
    }

    fn resolve(&self, r: &CredentialRef) -> Option<String> {
        let c = match r {
            CredentialRef::SipUsername(u) => self.creds.by_username(u),
            CredentialRef::Name(n) => self.creds.newest_named(n),
            CredentialRef::Token(t) => self.creds.tokens.get(t).and_then(|id| self.creds.get(id)),
        };
        c.map(|c| c.sip_username.clone())
    }

    fn refresh_devices(&mut self) {
        if !self.devices.dirty {
            return;
        }
        let resolved: Vec<Option<String>> =
            self.devices.list.iter().map(|d| self.resolve(&d.script.credential)).collect();
        self.devices.by_user.clear();
        for (i, (d, r)) in self.devices.list.iter_mut().zip(resolved).enumerate() {
            if let Some(u) = &r {
                self.devices.by_user.entry(u.clone()).or_insert(i);
            }
            d.resolved = r;
        }
        self.devices.dirty = false;
    }

    /// The push observer's entry point: wakes the device owning `push.token`.
    pub(crate) fn push_delivered(&mut self, push: &DeliveredPush) {
        let device = self.devices.by_token.get(&push.token).copied();
        self.rings_push(push, device);
        let Some(i) = device else { return };
        let d = &mut self.devices.list[i];
        let Some(after) = d.script.register_after_push else { return };
        if d.registered || d.registering {
            return;
        }
        d.registering = true;
        let id = d.script.id.clone();
        self.schedule(self.now + after.as_millis() as u64, Action::Register(id));
    }

    pub(super) fn register_device(&mut self, id: &str) {
        if let Some(&i) = self.devices.by_id.get(id) {
            let d = &mut self.devices.list[i];
            if d.registering {
                d.registering = false;
                d.registered = true;
            }
        }
    }

    fn reach_credential(&mut self, ccid: &str, user: &str) -> Reach {
        let now = self.now_utc();
        let expired = match self.creds.by_username(user) {
            None => {
                if self.creds.deleted.contains_key(user) {
                    self.anomaly("deleted_credential_dialed", Some(ccid), format!("sip:{user} was deleted"));
                }
                return Reach::Fails(RemoteAct::NotFound);
            }
            Some(c) => c.expired_at(now),
        };
        if expired {
            self.anomaly("expired_credential_dialed", Some(ccid), format!("sip:{user} has expired"));
            return Reach::Fails(RemoteAct::Unregistered);
        }
        self.refresh_devices();
        match self.devices.by_user.get(user).copied() {
            Some(i) if self.devices.list[i].registered => Reach::Rings(self.ring_behaviour(ccid, i), Some(i)),
            _ => Reach::Fails(RemoteAct::Unregistered),
        }
    }

    /// Schedules what each destination of a new outgoing leg does.
    pub(super) fn ring_targets(&mut self, ccid: &str) {
        let Some(leg) = self.legs.get(ccid) else { return };
        let kinds: Vec<TargetKind> = leg.targets.iter().map(|t| t.kind.clone()).collect();
        let now = self.now;
        for (i, kind) in kinds.into_iter().enumerate() {
            let reach = match kind {
                TargetKind::Pstn(n) => Reach::Rings(
                    self.pstn.get(&n).cloned().unwrap_or_else(|| self.config.default_pstn.clone()),
                    None,
                ),
                TargetKind::External => Reach::Rings(self.config.default_pstn.clone(), None),
                TargetKind::Credential(user) => self.reach_credential(ccid, &user),
            };
            let remote = |act| Action::Remote { ccid: ccid.to_owned(), target: i, act };
            let ms = |d: std::time::Duration| d.as_millis() as u64;
            let (behaviour, device) = match reach {
                Reach::Fails(act) => {
                    self.schedule(now + ms(self.config.unreachable_delay), remote(act));
                    continue;
                }
                Reach::Rings(b, device) => (b, device),
            };
            if let Some(d) = device {
                self.rings_device_rang(ccid, i, d, &behaviour);
            }
            match behaviour {
                RingBehaviour::Answer { after } => self.schedule(now + ms(after), remote(RemoteAct::Answer)),
                RingBehaviour::Decline { after } => {
                    self.schedule(now + ms(after), remote(RemoteAct::Decline))
                }
                RingBehaviour::Busy { after } => self.schedule(now + ms(after), remote(RemoteAct::Busy)),
                RingBehaviour::Never | RingBehaviour::IgnoreHangup => {}
                RingBehaviour::AnswerThenDrop { after, drop_after } => {
                    self.schedule(now + ms(after), remote(RemoteAct::Answer));
                    self.schedule(now + ms(after) + ms(drop_after), remote(RemoteAct::Hangup));
                }
                // Scripted devices unregister through `rings_device_rang`; a PSTN callee just fails.
                RingBehaviour::UnregisterAfter { after } if device.is_none() => {
                    self.schedule(now + ms(after), remote(RemoteAct::Unregistered))
                }
                RingBehaviour::UnregisterAfter { .. } => {}
            }
        }
    }

    /// Schedules a scripted inbound call; its ids are drawn now.
    pub(crate) fn place_call(&mut self, script: CallerScript) -> Result<PlacedCall, SimError> {
        let (from, connection_id, sip_party, from_sip_uri) = match &script.from {
            Caller::Pstn(number) => {
                let conn = self
                    .numbers
                    .get(&script.to)
                    .cloned()
                    .ok_or_else(|| SimError::UnknownNumber(script.to.clone()))?;
                (
                    number.clone(),
                    conn,
                    false,
                    format!("{}@198.51.100.10:5060", number.trim_start_matches('+')),
                )
            }
            Caller::Device(id) | Caller::Webrtc(id) => {
                self.devices.dirty = true;
                self.refresh_devices();
                let i = *self.devices.by_id.get(id).ok_or_else(|| SimError::UnknownDevice(id.clone()))?;
                let user = self.devices.list[i]
                    .resolved
                    .clone()
                    .ok_or_else(|| SimError::InvalidStep(format!("device {id} has no credential yet")))?;
                let conn = self.creds.by_username(&user).map(|c| c.connection_id.clone()).unwrap_or_default();
                (user.clone(), conn, true, format!("{user}@sip.telnyx.com"))
            }
        };
        let starts_at = self.now + script.at.as_millis() as u64;
        let p = PendingInbound {
            ccid: ids::call_control_id(&mut self.rng),
            leg_id: ids::uuid(&mut self.rng),
            session_id: ids::uuid(&mut self.rng),
            to_sip_uri: format!("{}@192.0.2.10:5060", script.to),
            from,
            to: script.to,
            connection_id,
            sip_party,
            from_sip_uri,
            hangup_after: script.hangup_after.map(|d| d.as_millis() as u64),
            direct: matches!(script.from, Caller::Webrtc(_)),
        };
        let placed = PlacedCall {
            call_control_id: p.ccid.clone(),
            call_leg_id: p.leg_id.clone(),
            call_session_id: p.session_id.clone(),
            starts_at: std::time::Duration::from_millis(starts_at),
        };
        self.schedule(starts_at, Action::StartInbound(Box::new(p)));
        Ok(placed)
    }

    /// The far end of a leg hangs up now (declines if the leg is still ringing out).
    pub(crate) fn remote_hangup_now(&mut self, ccid: &str) -> Result<(), SimError> {
        let leg = self.legs.get(ccid).ok_or_else(|| SimError::UnknownCall(ccid.to_owned()))?;
        if !leg.alive() {
            return Err(SimError::InvalidStep(format!("{ccid} has already ended")));
        }
        let (target, act) = match (leg.direction, leg.state) {
            (Direction::Outgoing, LegState::Ringing) => (0, RemoteAct::Decline),
            (Direction::Outgoing, _) => (leg.answered_target.unwrap_or(0), RemoteAct::Hangup),
            (Direction::Incoming, _) => (0, RemoteAct::Hangup),
        };
        if act == RemoteAct::Decline {
            let n = leg.targets.len();
            for t in 0..n {
                self.remote(ccid, t, act);
            }
        } else {
            self.remote(ccid, target, act);
        }
        Ok(())
    }

    /// The callee of a ringing outgoing leg answers now.
    pub(crate) fn remote_answer_now(&mut self, ccid: &str) -> Result<(), SimError> {
        let leg = self.legs.get(ccid).ok_or_else(|| SimError::UnknownCall(ccid.to_owned()))?;
        if leg.direction != Direction::Outgoing || leg.state != LegState::Ringing {
            return Err(SimError::InvalidStep(format!("{ccid} is not an outgoing leg that is ringing")));
        }
        let target = leg.targets.iter().position(|t| t.failed.is_none()).unwrap_or(0);
        self.remote(ccid, target, RemoteAct::Answer);
        Ok(())
    }

    pub(crate) fn creds_snapshot(&self) -> Vec<crate::world::Credential> {
        self.creds.all().cloned().collect()
    }
}
