//! `speak`: text-to-speech is simulated as a duration (60 ms per character, 0.5–30 s). Consecutive speaks
//! on a leg queue up; each yields `call.speak.started` then `call.speak.ended` (`completed`), or
//! `call.speak.ended` with `call_hangup` if the leg ends while it plays. Speaks not started yet are dropped
//! silently when the leg ends.

use super::{Action, World};
use crate::ids;
use crate::timeline::SimMs;

pub(crate) struct Speak {
    pub id: String,
    pub started: bool,
}

impl World {
    /// Queues a speak of `chars` characters; returns its `speak_id`.
    pub(super) fn queue_speak(&mut self, ccid: &str, chars: usize) -> Option<String> {
        let id = ids::alnum(&mut self.rng, 10);
        let now = self.now;
        let leg = self.legs.get_mut(ccid)?;
        let duration = (chars as SimMs * 60).clamp(500, 30_000);
        let start = leg.speak_busy_until.max(now);
        let end = start + duration;
        leg.speak_busy_until = end;
        leg.speaks.push(Speak { id: id.clone(), started: false });
        self.schedule(start, Action::SpeakStart { ccid: ccid.to_owned(), speak_id: id.clone() });
        self.schedule(end, Action::SpeakEnd { ccid: ccid.to_owned(), speak_id: id.clone() });
        Some(id)
    }

    pub(super) fn speak_start(&mut self, ccid: &str, speak_id: &str) {
        let Some(leg) = self.legs.get_mut(ccid).filter(|l| l.alive()) else { return };
        let Some(sp) = leg.speaks.iter_mut().find(|s| s.id == speak_id) else { return };
        sp.started = true;
        self.emit_speak(ccid, speak_id, None);
    }

    pub(super) fn speak_end(&mut self, ccid: &str, speak_id: &str) {
        let Some(leg) = self.legs.get_mut(ccid).filter(|l| l.alive()) else { return };
        let Some(i) = leg.speaks.iter().position(|s| s.id == speak_id && s.started) else { return };
        leg.speaks.remove(i);
        self.emit_speak(ccid, speak_id, Some("completed"));
    }

    /// The leg is ending: the speak in progress ends with `call_hangup`; queued ones are dropped.
    pub(super) fn speaks_interrupted(&mut self, ccid: &str) {
        let Some(leg) = self.legs.get_mut(ccid) else { return };
        let playing: Vec<String> = leg.speaks.drain(..).filter(|s| s.started).map(|s| s.id).collect();
        for id in playing {
            self.emit_speak(ccid, &id, Some("call_hangup"));
        }
    }
}
