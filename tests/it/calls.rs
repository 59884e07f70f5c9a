//! The call engine end to end, against the simulator, on both engines: inbound routing,
//! simultaneous ring, first answer wins, nobody left ringing, and the races around them.

use std::time::Duration;

use fleet_domain::call::{CallState, EndReason};
use fleet_sim::RingBehaviour;
use fleet_store::{Engine, OrgSettings};

use crate::on_both;
use crate::support::calls::CallEnv;

on_both! {
    two_phones_ring_one_answers_the_other_is_dismissed => two_phones_ring_one_answers_the_other_is_dismissed_postgres, two_phones_ring_one_answers_the_other_is_dismissed_sqlite;
}

const NUMBER: &str = "+13125550100";
const CALLER: &str = "+13125559876";

fn answer_after(ms: u64) -> RingBehaviour {
    RingBehaviour::Answer { after: Duration::from_millis(ms) }
}

async fn env_with_user(engine: Engine) -> CallEnv {
    let env = CallEnv::start(engine).await;
    env.org("o1", OrgSettings::default()).await;
    env.user("u1", &["o1"], false).await;
    env.number(NUMBER, "o1", Some("u1"), 30).await;
    env
}

async fn two_phones_ring_one_answers_the_other_is_dismissed(engine: Engine) {
    let env = env_with_user(engine).await;
    env.phone("android-1", "u1", "o1", "android", true, answer_after(1_500)).await;
    env.phone("ios-1", "u1", "o1", "ios", true, RingBehaviour::Never).await;
    let placed = env.call_from(CALLER, NUMBER);
    env.run_for(Duration::from_secs(5)).await;

    let call = env.call(&placed.call_session_id).await;
    assert_eq!(call.state, CallState::Answered, "{call:#?}");
    assert_eq!(call.answered_by_device_id(), Some("android-1"));
    assert_eq!(env.requests("dial").len(), 2, "both phones dialed");
    assert_eq!(env.requests("bridge").len(), 1, "one bridge");
    assert_eq!(env.events("call.answered", &placed.call_session_id).len(), 1);
    assert_eq!(env.events("call.incoming", &placed.call_session_id).len(), 1);
    let ios_leg = call.legs.iter().find(|l| l.id.device_id == "ios-1").unwrap();
    assert_eq!(ios_leg.hangup_reason, Some(EndReason::AnsweredElsewhere));

    // The caller hangs up after a while: the answering phone's leg is ended too.
    env.sim.remote_hangup(&placed.call_control_id).unwrap();
    env.run_for(Duration::from_secs(3)).await;
    let call = env.call(&placed.call_session_id).await;
    assert_eq!(call.state, CallState::Ended, "{call:#?}");
    assert_eq!(env.events("call.ended", &placed.call_session_id).len(), 1);
    assert!(env.sim.anomalies().is_empty(), "{:#?}", env.sim.anomalies());
}
