//! Every simulator-served command, end to end: accepted, spec-conformant, idempotent by
//! `command_id`, and the state races classified per command.

use fleet_telnyx::call_control::{
    Answer, Bridge, CustomHeader, Dial, DialTo, Hangup, Outcome, RecordChannels, RecordFormat, RecordStart,
    RecordStop, Reject, RejectCause, Speak, Transfer,
};

use crate::support::{Env, NUMBER, assert_conforms, id, settings};

fn dial(env: &Env, to: DialTo, step: &str) -> Dial {
    Dial::new(to, NUMBER, env.connection_id(), id(step))
}

#[tokio::test]
async fn every_command_is_accepted_and_matches_the_spec() {
    let env = Env::start(settings(), |_| {}).await;
    let a = env.inbound().await;

    let mut answer = Answer::new(id("answer-a"));
    answer.client_state = Some("YQ==".into());
    answer.custom_headers.push(CustomHeader::new("X-Callfleet", "1"));
    env.cc.answer(&a, &answer).await.unwrap();

    let mut d = dial(&env, DialTo::One("+13125550150".into()), "dial-b");
    d.link_to = Some(a.clone());
    d.client_state = Some("Yg==".into());
    d.timeout_secs = Some(30);
    d.prevent_double_bridge = Some(true);
    d.custom_headers.push(CustomHeader::new("X-Leg", "b"));
    let b = env.cc.dial(&d).await.unwrap().leg().call_control_id.clone();
    env.advance_ms(2_500).await; // the simulated PSTN callee answers after 2 s

    let mut bridge = Bridge::new(&b, id("bridge-a-b"));
    bridge.prevent_double_bridge = Some(true);
    env.cc.bridge(&a, &bridge).await.unwrap();

    let mut speak = Speak::new("Connecting you now.", "female", id("speak-a"));
    speak.service_level = Some("basic".into());
    env.cc.speak(&a, &speak).await.unwrap();

    let mut rec = RecordStart::new(RecordFormat::Wav, RecordChannels::Dual, id("rec-a"));
    rec.max_length = Some(600);
    rec.play_beep = Some(true);
    env.cc.record_start(&a, &rec).await.unwrap();
    env.cc.record_stop(&a, &RecordStop::new(id("rec-stop-a"))).await.unwrap();

    let status = env.cc.call_status(&a).await.unwrap();
    assert!(status.is_alive);
    assert_eq!(status.call_control_id, a);

    let mut transfer = Transfer::new("+13125550151", id("transfer-b"));
    transfer.timeout_secs = Some(20);
    transfer.custom_headers.push(CustomHeader::new("X-Transfer", "1"));
    transfer.target_leg_client_state = Some("Yw==".into());
    env.cc.transfer(&b, &transfer).await.unwrap();

    let many = dial(&env, DialTo::Many(vec!["+13125550152".into(), "+13125550153".into()]), "dial-many");
    let dialed = env.cc.dial(&many).await.unwrap();
    assert!(!dialed.legs.is_empty());

    let c = env.inbound().await;
    env.cc.reject(&c, &Reject::new(RejectCause::UserBusy, id("reject-c"))).await.unwrap();

    let mut hangup = Hangup::new(id("hangup-a"));
    hangup.custom_headers.push(CustomHeader::new("X-Reason", "done"));
    env.cc.hangup(&a, &hangup).await.unwrap();
    env.sim.settle().await;
    assert!(!env.cc.call_status(&a).await.unwrap().is_alive);

    let checked = assert_conforms(&env);
    assert_eq!(checked, 12, "every command above was accepted");
    for op in
        ["answer", "dial", "bridge", "speak", "record_start", "record_stop", "transfer", "reject", "hangup"]
    {
        assert!(!env.requests_of(op).is_empty(), "{op} never reached the simulator");
    }
}

#[tokio::test]
async fn a_repeated_command_id_is_harmless() {
    let env = Env::start(settings(), |_| {}).await;
    let d = dial(&env, DialTo::One("+13125550160".into()), "job-7:dial");
    let first = env.cc.dial(&d).await.unwrap();
    let again = env.cc.dial(&d).await.unwrap();
    assert_eq!(first.leg().call_control_id, again.leg().call_control_id, "the repeat names the same leg");
    assert_eq!(env.sim.calls().len(), 1, "one leg, not two");

    let leg = first.leg().call_control_id.clone();
    let h = Hangup::new(id("job-7:hangup"));
    env.cc.hangup(&leg, &h).await.unwrap();
    env.cc.hangup(&leg, &h).await.unwrap();
    let hangups = env.requests_of("hangup");
    assert_eq!(hangups.len(), 2);
    assert!(!hangups[0].deduplicated && hangups[1].deduplicated, "the simulator ignored the repeat");
    assert_eq!(hangups[0].body["command_id"], hangups[1].body["command_id"]);
    env.sim.settle().await;
    let ended = env.sim.webhooks().iter().filter(|w| w.event_type == "call.hangup").count();
    assert_eq!(ended, 1, "one call.hangup");

    // A different id for the same goal reaches Telnyx and meets the ended call: still done.
    let late = env.cc.hangup(&leg, &Hangup::new(id("job-7:hangup:other"))).await.unwrap_err();
    assert_eq!((late.status(), late.has_code("90018")), (Some(422), true), "{late}");
    assert_eq!(late.outcome(), Outcome::Done);
    assert_conforms(&env);
}

#[tokio::test]
async fn commands_on_an_ended_call_are_classified_per_command() {
    let env = Env::start(settings(), |_| {}).await;
    let a = env.inbound().await;
    env.cc.reject(&a, &Reject::new(RejectCause::CallRejected, id("r1"))).await.unwrap();
    env.sim.settle().await;

    let again = env.cc.reject(&a, &Reject::new(RejectCause::CallRejected, id("r2"))).await.unwrap_err();
    assert_eq!(again.outcome(), Outcome::Done, "{again}");
    let hangup = env.cc.hangup(&a, &Hangup::new(id("h1"))).await.unwrap_err();
    assert_eq!(hangup.outcome(), Outcome::Done, "{hangup}");
    let speak = env.cc.speak(&a, &Speak::new("hi", "female", id("s1"))).await.unwrap_err();
    assert_eq!(speak.outcome(), Outcome::Gone, "speaking to an ended call is pointless: {speak}");
    assert!(speak.has_code("90018"));
    let status = env.cc.call_status(&a).await.unwrap();
    assert!(!status.is_alive);
    assert_conforms(&env);
}

#[tokio::test]
async fn a_bridge_before_answer_is_not_yet_answered() {
    let env = Env::start(settings(), |_| {}).await;
    let a = env.inbound().await;
    let b = env.cc.dial(&dial(&env, DialTo::One("+13125550170".into()), "d1")).await.unwrap();
    let err = env.cc.bridge(&a, &Bridge::new(&b.leg().call_control_id, id("b1"))).await.unwrap_err();
    assert!(err.has_code("90034"), "{err}");
    assert_eq!(err.outcome(), Outcome::NotYetAnswered);
    let rec = RecordStart::new(RecordFormat::Mp3, RecordChannels::Single, id("rec1"));
    assert_eq!(env.cc.record_start(&a, &rec).await.unwrap_err().outcome(), Outcome::NotYetAnswered);
}

#[tokio::test]
async fn a_double_bridge_is_already_bridged() {
    let env = Env::start(settings(), |_| {}).await;
    let a = env.inbound().await;
    env.cc.answer(&a, &Answer::new(id("ans"))).await.unwrap();
    let b = env.cc.dial(&dial(&env, DialTo::One("+13125550180".into()), "d-b")).await.unwrap();
    let c = env.cc.dial(&dial(&env, DialTo::One("+13125550181".into()), "d-c")).await.unwrap();
    env.advance_ms(2_500).await;
    let (b, c) = (b.leg().call_control_id.clone(), c.leg().call_control_id.clone());
    env.cc.bridge(&a, &Bridge::new(&b, id("a-b"))).await.unwrap();
    let mut second = Bridge::new(&b, id("c-b"));
    second.prevent_double_bridge = Some(true);
    let err = env.cc.bridge(&c, &second).await.unwrap_err();
    assert!(err.has_code("90042"), "{err}");
    assert_eq!(err.outcome(), Outcome::AlreadyBridged);
}

#[tokio::test]
async fn an_unknown_call_is_gone() {
    let env = Env::start(settings(), |_| {}).await;
    let err = env.cc.hangup("v3:no-such-call", &Hangup::new(id("h"))).await.unwrap_err();
    assert!(err.has_code("90015"), "the simulator answers 90015 (Invalid Call Control ID): {err}");
    assert_eq!(err.outcome(), Outcome::Gone);
    assert_eq!(env.cc.call_status("v3:no-such-call").await.unwrap_err().outcome(), Outcome::Gone);
    // An id with characters outside RFC 3986 pchars is encoded, not split into path segments.
    let odd = env.cc.call_status("abc/def==").await.unwrap_err();
    assert_eq!(odd.outcome(), Outcome::Gone, "{odd}");
    assert_eq!(
        env.requests_of("retrieve_call").last().map(|r| r.path.clone()).as_deref(),
        Some("/v2/calls/abc%2Fdef==")
    );
}
