//! Focused tests: one per race of issue 11, plus the routes and the timers.

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::push::CallEndedReason;

pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 3, 30, 0).unwrap()
}

pub(super) fn new_call() -> Call {
    let setup = CallSetup {
        id: "s1".into(),
        direction: CallDirection::Inbound,
        placed_by: None,
        org_id: "org1".into(),
        user_id: Some("u1".into()),
        parent_call_control_id: "v3:parent".into(),
        from: "+13125550101".into(),
        to: "+13125550199".into(),
        caller_name: None,
        org_name: None,
        voicemail: VoicemailSettings::default(),
    };
    Call::new(setup, t0())
}

pub(super) fn device(id: &str, platform: Platform, push: bool, online: bool) -> RingDevice {
    RingDevice {
        device_id: id.into(),
        platform,
        push,
        sip_target: online.then(|| format!("sip:{id}@sip.telnyx.com")),
    }
}

pub(super) fn ring(devices: Vec<RingDevice>) -> CallInput {
    CallInput::Routed(Route::Ring { devices, ring_timeout_secs: 30 })
}

pub(super) fn leg(device: &str) -> LegId {
    LegId::new(device, 1)
}

pub(super) fn ccid(leg: &LegId) -> String {
    format!("v3:{leg}")
}

pub(super) fn answered(device: &str) -> CallInput {
    let leg = leg(device);
    CallInput::LegAnswered { call_control_id: ccid(&leg), leg }
}

fn accepted(device: &str) -> CallInput {
    let leg = leg(device);
    CallInput::DialAccepted { call_control_id: ccid(&leg), leg }
}

fn initiated(device: &str) -> CallInput {
    let leg = leg(device);
    CallInput::LegInitiated { call_control_id: ccid(&leg), leg }
}

fn hangup(device: &str, cause: &str) -> CallInput {
    let leg = leg(device);
    CallInput::LegHangup { call_control_id: Some(ccid(&leg)), leg, cause: cause.into() }
}

/// Applies inputs one by one, keeping the state and every effect, like the worker and store.
pub(super) struct Run {
    pub call: Call,
    pub effects: Vec<Effect>,
    pub now: DateTime<Utc>,
}

impl Run {
    pub fn new() -> Self {
        Self { call: new_call(), effects: Vec::new(), now: t0() }
    }

    /// A call `device` placed (outbound or direct) on its leg `parent`, from `from` to
    /// +13125557777, in org1 for u1.
    pub fn placed(direction: CallDirection, device: &str, parent: &str, from: &str) -> Self {
        let setup = CallSetup {
            id: "s1".into(),
            direction,
            placed_by: Some(device.into()),
            org_id: "org1".into(),
            user_id: Some("u1".into()),
            parent_call_control_id: parent.into(),
            from: from.into(),
            to: "+13125557777".into(),
            caller_name: None,
            org_name: None,
            voicemail: VoicemailSettings::default(),
        };
        Self { call: Call::new(setup, t0()), ..Self::new() }
    }

    /// Steps and returns this step's effects.
    pub fn feed(&mut self, input: CallInput) -> Vec<Effect> {
        let decision = step(&self.call, &input, self.now);
        if let Some(next) = decision.next {
            assert_eq!(next.version, self.call.version + 1);
            self.call = next;
        } else {
            assert!(decision.effects.is_empty());
        }
        self.effects.extend(decision.effects.clone());
        decision.effects
    }

    pub fn at(&mut self, after: Duration) -> &mut Self {
        self.now = t0() + after;
        self
    }

    pub fn count(&self, pred: impl Fn(&Command) -> bool) -> usize {
        self.effects.iter().filter(|e| pred(&e.command)).count()
    }

    pub fn has_key(&self, suffix: &str) -> bool {
        self.effects.iter().any(|e| e.key == format!("s1:{suffix}"))
    }
}

fn is_bridge(c: &Command) -> bool {
    matches!(c, Command::Bridge { .. })
}

fn is_event(c: &Command, ty: &str) -> bool {
    matches!(c, Command::Emit(e) if e.event_type() == ty)
}

fn call_ended_to(run: &Run, device: &str) -> Option<CallEndedReason> {
    run.effects.iter().find_map(|e| match &e.command {
        Command::Push { device_id, push: Push::CallEnded { reason } } if device_id == device => Some(*reason),
        _ => None,
    })
}

fn three() -> Vec<RingDevice> {
    vec![
        device("a", Platform::Android, true, true),
        device("b", Platform::Ios, true, true),
        device("c", Platform::Android, true, true),
    ]
}

#[test]
fn ringing_alerts_every_device_and_dials_in_one_decision() {
    let mut run = Run::new();
    let effects = run.feed(ring(three()));
    assert_eq!(run.call.state, CallState::Ringing);
    assert_eq!(effects.iter().filter(|e| matches!(e.command, Command::Dial { .. })).count(), 3);
    assert_eq!(run.count(|c| matches!(c, Command::Push { push: Push::IncomingCall { .. }, .. })), 3);
    assert_eq!(run.count(|c| is_event(c, "call.incoming")), 1);
    assert!(run.has_key("leg:a/1:dial") && run.has_key("timer:ring_timeout"));
    assert!(run.call.is_ringing());
}

#[test]
fn two_answers_within_a_millisecond_make_one_bridge() {
    let mut run = Run::new();
    run.feed(ring(three()));
    for d in ["a", "b", "c"] {
        run.feed(accepted(d));
    }
    run.at(Duration::milliseconds(4000));
    let win = run.feed(answered("a"));
    run.at(Duration::milliseconds(4001));
    let late = run.feed(answered("b"));
    assert_eq!(run.count(is_bridge), 1);
    assert_eq!(run.count(|c| is_event(c, "call.answered")), 1);
    assert_eq!(run.call.answered_by_device_id(), Some("a"));
    // The winning decision already hangs up b and c (one outbox, so a crash cannot split it).
    assert!(
        win.iter().any(|e| e.key == "s1:leg:b/1:hangup") && win.iter().any(|e| e.key == "s1:leg:c/1:hangup")
    );
    assert!(late.is_empty(), "b was hung up already: {late:?}");
    assert_eq!(call_ended_to(&run, "c"), Some(CallEndedReason::AnsweredElsewhere));
    assert_eq!(call_ended_to(&run, "b"), None, "iOS without a delivered incoming_call gets none");
    assert_eq!(call_ended_to(&run, "a"), None, "the winner is not dismissed");
}

#[test]
fn answer_before_initiated_and_before_the_dial_response() {
    let mut run = Run::new();
    run.feed(ring(three()));
    run.feed(answered("b"));
    assert_eq!(run.call.state, CallState::Answered);
    assert!(run.effects.iter().any(
        |e| matches!(&e.command, Command::Bridge { call_control_id, .. } if call_control_id == "v3:b/1")
    ));
    assert!(run.feed(initiated("b")).is_empty());
    assert!(run.feed(accepted("b")).is_empty());
    assert_eq!(run.call.leg(&leg("b")).unwrap().state, LegState::Answered);
    // Dial responses of the losers arrive after the decision: each is hung up then.
    let late = run.feed(accepted("a"));
    assert_eq!(late.len(), 1);
    assert!(matches!(&late[0].command, Command::Hangup { reason: EndReason::AnsweredElsewhere, .. }));
    assert!(run.feed(accepted("a")).is_empty());
}

#[test]
fn caller_cancels_after_three_seconds() {
    let mut run = Run::new();
    run.feed(ring(three()));
    run.feed(accepted("a"));
    run.feed(accepted("b"));
    run.feed(CallInput::IncomingPushDelivered { device_id: "b".into() });
    run.at(Duration::seconds(3)).feed(CallInput::ParentHangup { cause: "originator_cancel".into() });
    assert_eq!((run.call.state, run.call.end_reason), (CallState::Ended, Some(EndReason::CallerCancelled)));
    assert!(run.has_key("leg:a/1:hangup") && run.has_key("leg:b/1:hangup"));
    assert!(!run.has_key("parent:hangup"), "the caller is gone already");
    for d in ["a", "b", "c"] {
        assert_eq!(call_ended_to(&run, d), Some(CallEndedReason::CallerCancelled), "{d}");
    }
    assert_eq!(run.count(|c| is_event(c, "call.missed")), 1);
    // c's dial response comes after the cancel: hung up too; nothing rings on.
    let late = run.feed(accepted("c"));
    assert!(matches!(&late[0].command, Command::Hangup { reason: EndReason::CallerCancelled, .. }));
    assert!(run.call.legs.iter().all(|l| l.hangup_reason.is_some()));
}

#[test]
fn bridge_failing_for_good_ends_both_sides() {
    let mut run = Run::new();
    run.feed(ring(three()));
    run.feed(answered("a"));
    run.feed(CallInput::BridgeFailed);
    assert_eq!((run.call.state, run.call.end_reason), (CallState::Ended, Some(EndReason::BridgeFailed)));
    assert!(run.has_key("parent:hangup") && run.has_key("leg:a/1:hangup"));
    assert!(run.has_key("active_call:clear"));
    assert_eq!(run.count(|c| is_event(c, "call.ended")), 1);
}

#[test]
fn a_bridge_failure_after_call_bridged_is_stale() {
    let mut run = Run::new();
    run.feed(ring(three()));
    run.feed(answered("a"));
    run.feed(CallInput::Bridged);
    assert!(run.feed(CallInput::BridgeFailed).is_empty());
    assert_eq!(run.call.leg(&leg("a")).unwrap().state, LegState::Bridged);
}

#[test]
fn every_input_twice_changes_nothing_the_second_time() {
    let inputs = vec![
        ring(three()),
        accepted("a"),
        initiated("a"),
        CallInput::IncomingPushDelivered { device_id: "b".into() },
        answered("a"),
        answered("b"),
        CallInput::Bridged,
        hangup("b", "normal_clearing"),
        CallInput::ParentHangup { cause: "normal_clearing".into() },
        hangup("a", "normal_clearing"),
    ];
    let mut run = Run::new();
    for input in inputs {
        run.feed(input.clone());
        let version = run.call.version;
        assert!(run.feed(input.clone()).is_empty(), "{input:?}");
        assert_eq!(run.call.version, version);
    }
    let mut keys: Vec<_> = run.effects.iter().map(|e| &e.key).collect();
    let all = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), all);
    assert_eq!(run.call.state, CallState::Ended);
}

#[test]
fn a_late_registration_is_dialed_by_its_redial_and_can_win() {
    let mut run = Run::new();
    let first = run.feed(ring(vec![device("a", Platform::Ios, true, false)]));
    let at = first.iter().find_map(|e| match &e.command {
        Command::Schedule { timer: Timer::Redial { round: 1, .. }, at } => Some(*at),
        _ => None,
    });
    assert_eq!(at, Some(t0() + Duration::seconds(2)));
    // Registered 1.5 s after the push: the registration itself dials it.
    let dial = run
        .at(Duration::milliseconds(1500))
        .feed(CallInput::DeviceRegistered { device_id: "a".into(), sip_target: "sip:a@x".into() });
    assert!(matches!(&dial[0].command, Command::Dial { to, timeout_secs: 28, .. } if to == "sip:a@x"));
    // The redial timer fires anyway: the live leg makes it a no-op.
    let due = CallInput::RedialDue { device_id: "a".into(), round: 1, sip_target: Some("sip:a@x".into()) };
    assert!(run.at(Duration::seconds(2)).feed(due).is_empty());
    run.feed(answered("a"));
    assert_eq!(run.call.answered_by_device_id(), Some("a"));
}

#[test]
fn redial_timers_dial_a_device_that_registers_later() {
    let mut run = Run::new();
    run.feed(ring(vec![device("a", Platform::Android, true, false)]));
    let due = |round, target: Option<&str>| CallInput::RedialDue {
        device_id: "a".into(),
        round,
        sip_target: target.map(str::to_owned),
    };
    run.at(Duration::seconds(2)).feed(due(1, None));
    assert!(run.has_key("timer:redial:a:2"));
    assert!(run.feed(due(1, None)).is_empty(), "a stale round starts no second chain");
    let dial = run.at(Duration::seconds(4)).feed(due(2, Some("sip:a@x")));
    assert!(matches!(&dial[0].command, Command::Dial { leg, .. } if leg == &LegId::new("a", 1)));
}

#[test]
fn a_three_hour_call_still_ends_the_other_side() {
    let mut run = Run::new();
    run.feed(ring(three()));
    run.feed(answered("c"));
    run.feed(CallInput::Bridged);
    let end = run.at(Duration::hours(3)).feed(CallInput::ParentHangup { cause: "normal_clearing".into() });
    assert!(end.iter().any(|e| e.key == "s1:leg:c/1:hangup"));
    assert_eq!(run.call.state, CallState::Ended);
    assert!(run.effects.iter().any(|e| matches!(
        e.command,
        Command::Emit(AppEvent::Ended { reason: EndReason::Completed, duration_secs: 10800 })
    )));
}

#[test]
fn the_winner_hanging_up_ends_the_caller() {
    let mut run = Run::new();
    run.feed(ring(three()));
    run.feed(answered("c"));
    run.feed(CallInput::Bridged);
    let end = run.feed(hangup("c", "normal_clearing"));
    assert!(end.iter().any(|e| e.key == "s1:parent:hangup"));
    assert!(!end.iter().any(|e| e.key == "s1:leg:c/1:hangup"), "c is gone already");
}

#[test]
fn three_devices_one_declines_one_answers() {
    let mut run = Run::new();
    run.feed(ring(three()));
    run.feed(hangup("a", "call_rejected"));
    assert_eq!(run.call.state, CallState::Ringing);
    run.feed(answered("b"));
    assert_eq!(run.call.answered_by_device_id(), Some("b"));
    assert!(run.has_key("leg:a/1:hangup"), "harmless for a gone leg, keeps effects order-free");
}

#[test]
fn all_declines_go_to_voicemail() {
    let mut run = Run::new();
    run.feed(ring(vec![device("a", Platform::Web, false, true), device("b", Platform::Android, true, true)]));
    run.feed(hangup("a", "call_rejected"));
    run.feed(hangup("b", "user_busy"));
    assert_eq!((run.call.state, run.call.end_reason), (CallState::Voicemail, Some(EndReason::AllDeclined)));
}

#[test]
fn a_failed_leg_of_a_device_without_push_is_final() {
    let mut run = Run::new();
    run.feed(ring(vec![device("a", Platform::Web, false, true)]));
    run.feed(CallInput::DialFailed { leg: leg("a") });
    assert_eq!((run.call.state, run.call.end_reason), (CallState::Voicemail, Some(EndReason::NoAnswer)));
}

#[test]
fn no_devices_go_to_voicemail() {
    let mut run = Run::new();
    run.feed(ring(vec![device("a", Platform::Web, false, false)]));
    assert_eq!((run.call.state, run.call.end_reason), (CallState::Voicemail, Some(EndReason::NoDevices)));
    assert!(run.has_key("parent:answer") && run.has_key("voicemail:greeting"));
}

#[test]
fn offline_devices_get_pushes_and_redials_until_the_timeout_then_voicemail() {
    let mut run = Run::new();
    run.feed(ring(vec![
        device("a", Platform::Android, true, false),
        device("b", Platform::Ios, true, false),
    ]));
    for round in 1..=14 {
        let secs = 2 * i64::from(round);
        for d in ["a", "b"] {
            let due = CallInput::RedialDue { device_id: d.into(), round, sip_target: None };
            run.at(Duration::seconds(secs)).feed(due);
        }
    }
    assert!(
        run.has_key("timer:redial:a:14") && !run.has_key("timer:redial:a:15"),
        "stops before the timeout"
    );
    assert_eq!(run.call.state, CallState::Ringing);
    run.at(Duration::seconds(30)).feed(CallInput::RingTimeout);
    assert_eq!((run.call.state, run.call.end_reason), (CallState::Voicemail, Some(EndReason::NoAnswer)));
    assert_eq!(call_ended_to(&run, "a"), Some(CallEndedReason::Missed));
    // iOS b: its incoming_call is confirmed only now; it gets call_ended then.
    run.feed(CallInput::IncomingPushDelivered { device_id: "b".into() });
    assert_eq!(call_ended_to(&run, "b"), Some(CallEndedReason::Missed));
    run.feed(CallInput::GreetingEnded);
    assert!(
        run.effects.iter().any(|e| matches!(e.command, Command::RecordVoicemail { max_length_secs: 120 }))
    );
    assert_eq!(run.count(|c| is_event(c, "voicemail.started")), 1);
}

#[test]
fn a_ring_timeout_after_the_answer_is_stale() {
    let mut run = Run::new();
    run.feed(ring(three()));
    run.feed(answered("a"));
    assert!(run.feed(CallInput::RingTimeout).is_empty());
}

#[test]
fn blocked_callers_are_rejected_and_the_ai_agent_gets_no_personal_data() {
    let mut run = Run::new();
    run.feed(CallInput::Routed(Route::Reject { reason: EndReason::Blocked }));
    assert_eq!((run.call.state, run.call.end_reason), (CallState::Ended, Some(EndReason::Blocked)));
    assert!(run.has_key("parent:reject"));
    assert!(run.feed(CallInput::ParentHangup { cause: "x".into() }).is_empty());

    let mut run = Run::new();
    let route = Route::AiAgent { sip_uri: "sip:agent@ai.example".into(), reason: EndReason::AiAgent };
    let effects = run.feed(CallInput::Routed(route));
    let Command::Transfer { custom_headers, .. } = &effects[0].command else { panic!("{effects:?}") };
    let values: Vec<_> = custom_headers.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, ["org1", "s1"]);
    assert_eq!(run.call.state, CallState::AiAgent);
}

#[test]
fn a_lost_hangup_is_found_by_the_reconciler() {
    let mut run = Run::new();
    run.feed(ring(three()));
    run.feed(answered("a"));
    assert!(run.has_key("timer:reconcile:1"));
    let query = run.at(Duration::seconds(10)).feed(CallInput::ReconcileDue { round: 1 });
    assert!(matches!(query[0].command, Command::QueryStatus));
    assert!(run.has_key("timer:reconcile:2"));
    assert!(run.feed(CallInput::ReconcileDue { round: 1 }).is_empty());
    run.feed(CallInput::Reconciled { parent_alive: false, legs: vec![(leg("a"), true)] });
    assert_eq!(run.call.state, CallState::Ended);
    assert!(run.has_key("leg:a/1:hangup"));
    assert!(run.feed(CallInput::ReconcileDue { round: 2 }).is_empty());
}

#[test]
fn a_stray_leg_is_hung_up_once() {
    let mut run = Run::new();
    run.feed(ring(three()));
    let stray = CallInput::LegAnswered { leg: LegId::new("zz", 9), call_control_id: "v3:zz".into() };
    assert_eq!(run.feed(stray.clone()).len(), 1);
    assert!(run.feed(stray).is_empty());
    assert_eq!(run.call.state, CallState::Ringing);
}

#[test]
fn leg_ids_round_trip_and_state_serialises() {
    let id = LegId::new("device:ios:5f2c", 3);
    assert_eq!(LegId::parse(&id.to_string()), Some(id));
    assert_eq!(LegId::parse("x/0"), None);
    assert_eq!(LegId::parse("/1"), None);
    let mut run = Run::new();
    run.feed(ring(three()));
    let json = serde_json::to_string(&run.call).unwrap();
    assert_eq!(serde_json::from_str::<Call>(&json).unwrap(), run.call);
    assert!(json.contains(r#""state":"ringing""#));
}

#[test]
fn inputs_and_effects_survive_a_queue_round_trip() {
    let mut run = Run::new();
    let mut inputs = vec![ring(three()), answered("a"), CallInput::Bridged];
    inputs.push(CallInput::Reconciled { parent_alive: false, legs: vec![(leg("a"), false)] });
    for input in &inputs {
        let json = serde_json::to_string(input).unwrap();
        assert_eq!(&serde_json::from_str::<CallInput>(&json).unwrap(), input, "{json}");
        run.feed(input.clone());
    }
    for effect in &run.effects {
        let json = serde_json::to_string(effect).unwrap();
        assert_eq!(&serde_json::from_str::<Effect>(&json).unwrap(), effect, "{json}");
    }
    let ended = run.effects.iter().find(|e| e.key == "s1:event:call.ended").unwrap();
    let json = serde_json::to_value(&ended.command).unwrap();
    assert_eq!(json["type"], "call.ended");
    assert_eq!(json["reason"], "completed");
}

#[test]
fn a_bridged_call_is_recorded_once_and_an_unanswered_one_never() {
    let mut run = Run::new();
    run.feed(ring(three()));
    run.feed(answered("a"));
    assert_eq!(run.count(|c| matches!(c, Command::RecordCall)), 0, "not before the bridge");
    run.feed(CallInput::Bridged);
    run.feed(CallInput::Bridged);
    run.feed(CallInput::ParentHangup { cause: "normal_clearing".into() });
    run.feed(CallInput::Bridged);
    assert_eq!(run.count(|c| matches!(c, Command::RecordCall)), 1);
    assert!(run.has_key("record:call"));

    let mut missed = Run::new();
    missed.feed(ring(three()));
    missed.feed(CallInput::ParentHangup { cause: "originator_cancel".into() });
    missed.feed(CallInput::Bridged);
    assert_eq!(missed.count(|c| matches!(c, Command::RecordCall)), 0);
}
