//! Call Control commands: dial (`POST /v2/calls`), the call actions, `client_state_update` and call status,
//! with Telnyx's validation errors and `command_id` de-duplication.
//!
//! De-duplication (documented: "commands with duplicate command_ids within 60 seconds will be ignored"):
//! per `call_control_id` for actions and per account for dial, 60 s of sim time, successful commands only.
//! A repeat answers exactly what the first one answered (for dial: the first call's object) and changes
//! nothing. What Telnyx really answers to a repeat is unverified; answering the same 200 is the reading that
//! makes client retries harmless, which is what `command_id` is for.

use std::collections::{HashMap, VecDeque};

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::World;
use super::legs::{Direction, Hangup, Leg, LegState, TargetKind};
use super::params::{client_state, destination, int_in, one_of, opt_bool, opt_str, req_str, targets_of};
use super::recording::RecordSpec;
use crate::ids;
use crate::telnyx_errors::ApiError;
use crate::timeline::SimMs;

const DEDUPE_WINDOW_MS: SimMs = 60_000;

/// A response body.
#[derive(Clone, Debug)]
pub(crate) enum ReplyBody {
    Json(Value),
    Text(String),
}

/// A successful API answer.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    pub status: StatusCode,
    pub body: ReplyBody,
    pub deduplicated: bool,
}

impl Outcome {
    fn data(data: Value) -> Self {
        Self { status: StatusCode::OK, body: ReplyBody::Json(json!({ "data": data })), deduplicated: false }
    }
}

/// `command_id`s seen in the last 60 s, with the answer they got.
#[derive(Default)]
pub(crate) struct Dedupe {
    seen: HashMap<(String, String), Value>,
    order: VecDeque<(SimMs, (String, String))>,
}

impl Dedupe {
    fn get(&mut self, now: SimMs, scope: &str, id: &str) -> Option<Value> {
        while self.order.front().is_some_and(|(t, _)| t + DEDUPE_WINDOW_MS <= now) {
            if let Some((_, key)) = self.order.pop_front() {
                self.seen.remove(&key);
            }
        }
        self.seen.get(&(scope.to_owned(), id.to_owned())).cloned()
    }

    fn put(&mut self, now: SimMs, scope: &str, id: &str, data: Value) {
        let key = (scope.to_owned(), id.to_owned());
        self.order.push_back((now, key.clone()));
        self.seen.insert(key, data);
    }
}

impl World {
    /// The `Call` resource (`GET /v2/calls/{id}`, and the dial answer with `is_alive: false`).
    fn call_json(&self, leg: &Leg, dial: bool, recording_id: Option<&str>) -> Value {
        let mut v = json!({
            "call_control_id": leg.ccid,
            "call_leg_id": leg.leg_id,
            "call_session_id": leg.session_id,
            "is_alive": !dial && leg.alive(),
            "record_type": "call",
            "start_time": ids::millis(self.utc_at(leg.start)),
        });
        if let Some(cs) = &leg.client_state {
            v["client_state"] = json!(cs);
        }
        if let Some(a) = leg.answered_at {
            v["call_duration"] = json!((leg.ended_at.unwrap_or(self.now).saturating_sub(a)) / 1000);
        }
        if let Some(e) = leg.ended_at {
            v["end_time"] = json!(ids::millis(self.utc_at(e)));
        }
        if let Some(r) = recording_id {
            v["recording_id"] = json!(r);
        }
        v
    }

    pub(crate) fn retrieve_call(&self, ccid: &str) -> Result<Outcome, ApiError> {
        let leg = self.legs.get(ccid).ok_or_else(|| ApiError::invalid_call_control_id("/call_control_id"))?;
        Ok(Outcome::data(self.call_json(leg, false, None)))
    }

    fn take_dial_slot(&mut self) -> Result<(), ApiError> {
        let Some(limit) = self.config.dial_limit else { return Ok(()) };
        let window = limit.window.as_millis() as u64;
        while self.dials.front().is_some_and(|t| t + window <= self.now) {
            self.dials.pop_front();
        }
        if self.dials.len() >= limit.max_dials as usize {
            return Err(ApiError::dial_rate_limited());
        }
        self.dials.push_back(self.now);
        Ok(())
    }

    /// `POST /v2/calls`.
    pub(crate) fn dial(&mut self, body: &Value) -> Result<Outcome, ApiError> {
        let command_id = opt_str(body, "command_id")?.map(str::to_owned);
        if let Some(data) = command_id.as_deref().and_then(|c| self.dedupe.get(self.now, "dial", c)) {
            return Ok(Outcome { deduplicated: true, ..Outcome::data(data) });
        }
        let connection_id = req_str(body, "connection_id")?.to_owned();
        let to: Vec<&str> = match body.get("to") {
            None | Some(Value::Null) => return Err(ApiError::missing("to")),
            Some(Value::String(s)) if s.is_empty() => return Err(ApiError::missing("to")),
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|x| x.as_str().ok_or_else(|| ApiError::not_e164("to")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(ApiError::missing("to")),
        };
        let targets = targets_of(&to, "to")?;
        let mut from = req_str(body, "from")?.to_owned();
        if destination(&from).is_none() {
            return Err(ApiError::not_e164("from"));
        }
        let timeout_ms = int_in(body, "timeout_secs", 30, 5, 600)? as u64 * 1000;
        let time_limit_ms = int_in(body, "time_limit_secs", 14_400, 30, 14_400)? as u64 * 1000;
        let retry_on_timeout = body.get("retry_on_timeout").and_then(Value::as_bool).unwrap_or(true);
        let bridge_on_answer = opt_bool(body, "bridge_on_answer")?;
        let bridge_intent = opt_bool(body, "bridge_intent")?;
        let link_to = opt_str(body, "link_to")?.map(str::to_owned);
        if (bridge_on_answer || bridge_intent) && link_to.is_none() {
            return Err(ApiError::missing("link_to"));
        }
        let linked = match &link_to {
            Some(l) => Some(self.legs.get(l).ok_or_else(|| ApiError::invalid_call_control_id("/link_to"))?),
            None => None,
        };
        if bridge_intent {
            if let Some(l) = linked {
                from = l.from.clone();
            }
        }
        let linked_session = linked.map(|l| l.session_id.clone());
        let cs = client_state(body, "client_state")?;
        let record = match opt_str(body, "record")? {
            Some("record-from-answer") => true,
            Some(_) => return Err(ApiError::enum_value("record", &["record-from-answer"])),
            None => false,
        };
        let format = one_of(body, "record_format", &["wav", "mp3"], "mp3")?;
        let channels = one_of(body, "record_channels", &["single", "dual"], "dual")?;
        let webhook_url = opt_str(body, "webhook_url")?.map(str::to_owned);
        let park = opt_str(body, "park_after_unbridge")? == Some("self");
        let prevent_double_bridge = opt_bool(body, "prevent_double_bridge")?;
        self.take_dial_slot()?;

        let ccid = ids::call_control_id(&mut self.rng);
        let leg_id = ids::uuid(&mut self.rng);
        let session_id = linked_session.unwrap_or_else(|| ids::uuid(&mut self.rng));
        let mut leg = Leg::new(ccid.clone(), leg_id, session_id, connection_id, Direction::Outgoing);
        leg.from = from;
        leg.to = to[0].to_owned();
        leg.sip_party = matches!(targets[0].kind, TargetKind::Credential(_));
        leg.targets = targets;
        leg.start = self.now;
        leg.client_state = cs;
        leg.link_to = link_to;
        leg.bridge_on_answer = bridge_on_answer;
        leg.prevent_double_bridge = prevent_double_bridge;
        leg.park_after_unbridge = park;
        leg.retry_on_timeout = retry_on_timeout;
        leg.webhook_url = webhook_url;
        let recording_id = record.then(|| ids::uuid(&mut self.rng));
        if let Some(id) = &recording_id {
            leg.record_on_answer =
                Some(RecordSpec { id: id.clone(), format, channels, initiated_by: "OutboundAPI" });
        }
        let data = self.call_json(&leg, true, recording_id.as_deref());
        self.start_outgoing(leg, timeout_ms, time_limit_ms);
        if let Some(c) = command_id {
            self.dedupe.put(self.now, "dial", &c, data.clone());
        }
        Ok(Outcome::data(data))
    }

    /// `POST /v2/calls/{id}/actions/{action}` and `PUT …/client_state_update`.
    pub(crate) fn action(&mut self, ccid: &str, action: &str, body: &Value) -> Result<Outcome, ApiError> {
        if !self.legs.contains_key(ccid) {
            return Err(ApiError::invalid_call_control_id("/call_control_id"));
        }
        let command_id = opt_str(body, "command_id")?.map(str::to_owned);
        if let Some(data) = command_id.as_deref().and_then(|c| self.dedupe.get(self.now, ccid, c)) {
            return Ok(Outcome { deduplicated: true, ..Outcome::data(data) });
        }
        let data = self.apply_action(ccid, action, body)?;
        if let Some(c) = command_id {
            self.dedupe.put(self.now, ccid, &c, data.clone());
        }
        Ok(Outcome::data(data))
    }

    fn live_leg(&self, ccid: &str) -> Result<&Leg, ApiError> {
        let leg = self.legs.get(ccid).ok_or_else(|| ApiError::invalid_call_control_id("/call_control_id"))?;
        if leg.alive() { Ok(leg) } else { Err(ApiError::call_ended()) }
    }

    fn set_client_state(&mut self, ccid: &str, cs: Option<String>) {
        if let (Some(cs), Some(leg)) = (cs, self.legs.get_mut(ccid)) {
            leg.client_state = Some(cs);
        }
    }

    fn apply_action(&mut self, ccid: &str, action: &str, body: &Value) -> Result<Value, ApiError> {
        let ok = json!({"result": "ok"});
        if action == "client_state_update" {
            let cs = client_state(body, "client_state")?.ok_or_else(|| ApiError::missing("client_state"))?;
            self.live_leg(ccid)?;
            self.set_client_state(ccid, Some(cs));
            return Ok(ok);
        }
        let leg = self.live_leg(ccid)?;
        let (state, direction) = (leg.state, leg.direction);
        let cs = client_state(body, "client_state")?;
        match action {
            "answer" => {
                if direction != Direction::Incoming {
                    return Err(ApiError::invalid_state("Only incoming calls can be answered."));
                }
                let record = opt_str(body, "record")? == Some("record-from-answer");
                let format = one_of(body, "record_format", &["wav", "mp3"], "mp3")?;
                let channels = one_of(body, "record_channels", &["single", "dual"], "dual")?;
                let webhook_url = opt_str(body, "webhook_url")?.map(str::to_owned);
                self.set_client_state(ccid, cs);
                if let (Some(u), Some(l)) = (webhook_url, self.legs.get_mut(ccid)) {
                    l.webhook_url = Some(u);
                }
                self.answer_leg(ccid);
                if record {
                    let id = ids::uuid(&mut self.rng);
                    let spec = RecordSpec { id, format, channels, initiated_by: "StartCallRecordingAPI" };
                    let id = self.start_recording(ccid, spec);
                    return Ok(json!({"recording_id": id, "result": "ok"}));
                }
                Ok(ok)
            }
            "bridge" => {
                let other = req_str(body, "call_control_id")?.to_owned();
                let o = self
                    .legs
                    .get(&other)
                    .ok_or_else(|| ApiError::invalid_call_control_id("/call_control_id"))?;
                if !o.alive() {
                    return Err(ApiError::call_ended());
                }
                if other == ccid {
                    return Err(ApiError::invalid_state("A call cannot be bridged with itself."));
                }
                if state != LegState::Answered || o.state != LegState::Answered {
                    return Err(ApiError::not_answered());
                }
                let busy = o.bridged_with.as_deref().is_some_and(|b| b != ccid);
                if opt_bool(body, "prevent_double_bridge")? && busy {
                    return Err(ApiError::already_bridged());
                }
                let park = opt_str(body, "park_after_unbridge")? == Some("self");
                self.set_client_state(ccid, cs);
                if let Some(l) = self.legs.get_mut(ccid) {
                    l.park_after_unbridge |= park;
                }
                self.bridge_legs(ccid, &other);
                Ok(ok)
            }
            "hangup" => {
                self.set_client_state(ccid, cs);
                let h = self.legs.get(ccid).map(Leg::app_hangup);
                if let Some(h) = h {
                    self.end_leg(ccid, h);
                }
                Ok(ok)
            }
            "reject" => {
                let cause = one_of(body, "cause", &["CALL_REJECTED", "USER_BUSY"], "")?;
                if cause.is_empty() {
                    return Err(ApiError::missing("cause"));
                }
                if direction != Direction::Incoming || state != LegState::Parked {
                    return Err(ApiError::invalid_state("Only unanswered incoming calls can be rejected."));
                }
                self.set_client_state(ccid, cs);
                let h = if cause == "USER_BUSY" {
                    Hangup::new("user_busy", "callee", "486")
                } else {
                    Hangup::new("call_rejected", "callee", "603")
                };
                self.end_leg(ccid, h);
                Ok(ok)
            }
            "transfer" => {
                self.transfer(ccid, body, cs)?;
                Ok(ok)
            }
            "speak" => {
                let payload = req_str(body, "payload")?;
                req_str(body, "voice")?;
                if payload.chars().count() > 3000 {
                    return Err(ApiError::out_of_range("payload", 1, 3000));
                }
                if state != LegState::Answered {
                    return Err(ApiError::not_answered());
                }
                let chars = payload.chars().count();
                self.set_client_state(ccid, cs);
                self.queue_speak(ccid, chars);
                Ok(ok)
            }
            "record_start" => {
                req_str(body, "format")?;
                req_str(body, "channels")?;
                let format = one_of(body, "format", &["wav", "mp3"], "mp3")?;
                let channels = one_of(body, "channels", &["single", "dual"], "dual")?;
                if state != LegState::Answered {
                    return Err(ApiError::not_answered());
                }
                self.set_client_state(ccid, cs);
                let id = ids::uuid(&mut self.rng);
                self.start_recording(
                    ccid,
                    RecordSpec { id, format, channels, initiated_by: "StartCallRecordingAPI" },
                );
                Ok(ok)
            }
            "record_stop" => {
                self.set_client_state(ccid, cs);
                self.save_recording(ccid);
                Ok(ok)
            }
            _ => Err(ApiError::not_found()),
        }
    }

    fn transfer(&mut self, ccid: &str, body: &Value, cs: Option<String>) -> Result<(), ApiError> {
        let to = req_str(body, "to")?.to_owned();
        let targets = targets_of(&[to.as_str()], "to")?;
        let timeout_ms = int_in(body, "timeout_secs", 30, 5, 600)? as u64 * 1000;
        let time_limit_ms = int_in(body, "time_limit_secs", 14_400, 30, 14_400)? as u64 * 1000;
        let from = opt_str(body, "from")?.map(str::to_owned);
        let target_cs = client_state(body, "target_leg_client_state")?;
        let webhook_url = opt_str(body, "webhook_url")?.map(str::to_owned);
        self.set_client_state(ccid, cs);
        let (session, a_from, conn) = match self.legs.get(ccid) {
            Some(a) => (a.session_id.clone(), a.from.clone(), a.connection_id.clone()),
            None => return Err(ApiError::invalid_call_control_id("/call_control_id")),
        };
        let b_ccid = ids::call_control_id(&mut self.rng);
        let b_leg_id = ids::uuid(&mut self.rng);
        let mut b = Leg::new(b_ccid.clone(), b_leg_id, session, conn, Direction::Outgoing);
        b.from = from.unwrap_or(a_from);
        b.sip_party = matches!(targets[0].kind, TargetKind::Credential(_));
        b.to = to;
        b.targets = targets;
        b.start = self.now;
        b.client_state = target_cs;
        b.transfer_of = Some(ccid.to_owned());
        b.webhook_url = webhook_url;
        if let Some(a) = self.legs.get_mut(ccid) {
            a.children.push(b_ccid);
        }
        self.start_outgoing(b, timeout_ms, time_limit_ms);
        Ok(())
    }
}
