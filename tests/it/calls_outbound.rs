//! Outbound calls placed by devices (credential connection), end to end against the simulator:
//! the caller id is forced to one of the organization's numbers, blocked destinations are refused,
//! and the call is stored as the user's active call for as long as it lasts.

use std::time::Duration;

use fleet_domain::call::{CallDirection, CallState, EndReason};
use fleet_sim::{Caller, CallerScript, RingBehaviour};
use fleet_store::{Engine, OrgSettings};

use crate::on_both;
use crate::support::calls::CallEnv;

on_both! {
    device_calls_go_out_with_the_org_number => device_calls_go_out_with_the_org_number_postgres, device_calls_go_out_with_the_org_number_sqlite;
    an_outbound_call_is_the_active_call_while_it_lasts => an_outbound_call_is_the_active_call_while_it_lasts_postgres, an_outbound_call_is_the_active_call_while_it_lasts_sqlite;
}

fn out(to: &str, hangup_after: u64) -> CallerScript {
    CallerScript {
        from: Caller::Device("android-1".into()),
        to: to.into(),
        at: Duration::ZERO,
        hangup_after: Some(Duration::from_secs(hangup_after)),
    }
}

async fn env_with_one_phone(engine: Engine) -> CallEnv {
    let env = CallEnv::start(engine).await;
    env.org("o1", OrgSettings::default()).await;
    env.user("u1", &["o1"], false).await;
    env.number("+13125550100", "o1", Some("u1"), 30).await;
    env.phone("android-1", "u1", "o1", "android", true, RingBehaviour::Never).await;
    env
}

async fn device_calls_go_out_with_the_org_number(engine: Engine) {
    let env = env_with_one_phone(engine).await;

    env.sim.place_call(out("+13125557777", 5)).unwrap();
    env.run_for(Duration::from_secs(2)).await;
    let transfers = env.requests("transfer");
    assert_eq!(transfers.len(), 1, "{transfers:#?}");
    assert_eq!(transfers[0].body["to"], "+13125557777");
    assert_eq!(transfers[0].body["from"], "+13125550100", "the caller id is the org's number");

    env.store().block_number("o1", "+13125558888").await.unwrap();
    let blocked = env.sim.place_call(out("+13125558888", 5)).unwrap();
    env.run_for(Duration::from_secs(2)).await;
    assert_eq!(env.requests("transfer").len(), 1, "a blocked destination is not connected");
    assert_eq!(env.requests("reject").len(), 1, "it is rejected");
    let call = env.call(&blocked.call_session_id).await;
    assert_eq!((call.state, call.end_reason), (CallState::Ended, Some(EndReason::Blocked)));
    env.run_for(Duration::from_secs(10)).await;
    assert!(env.sim.anomalies().is_empty(), "{:#?}", env.sim.anomalies());
}

async fn an_outbound_call_is_the_active_call_while_it_lasts(engine: Engine) {
    let env = env_with_one_phone(engine).await;
    let active = || async { env.store().live_call_of_user("u1").await.unwrap().map(|c| c.id) };

    // The far end answers after 2 s (the simulator's default); the device hangs up at 30 s.
    let placed = env.sim.place_call(out("+13125557777", 30)).unwrap();
    let session = placed.call_session_id.clone();
    env.run_for(Duration::from_secs(1)).await;
    let call = env.call(&session).await;
    assert_eq!(call.direction, CallDirection::Outbound);
    assert_eq!((call.org_id.as_str(), call.user_id.as_deref()), ("o1", Some("u1")));
    assert_eq!((call.from.as_str(), call.to.as_str()), ("+13125550100", "+13125557777"));
    assert_eq!(call.state, CallState::Ringing);
    assert_eq!(active().await.as_deref(), Some(session.as_str()), "active while the far end rings");
    assert!(env.events("call.incoming", &session).is_empty(), "a placed call is not an incoming one");

    env.run_for(Duration::from_secs(5)).await;
    let call = env.call(&session).await;
    assert_eq!(call.state, CallState::Answered);
    assert!(call.bridged, "call.bridged of the far end is the call's");
    assert_eq!(call.answered_by_device_id(), Some("android-1"));
    let answered = env.events("call.answered", &session);
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].body["data"]["direction"], "outbound");
    assert_eq!(active().await.as_deref(), Some(session.as_str()));

    env.run_for(Duration::from_secs(30)).await;
    let call = env.call(&session).await;
    assert_eq!((call.state, call.end_reason), (CallState::Ended, Some(EndReason::Completed)));
    assert_eq!(active().await, None, "cleared when it ends");
    assert_eq!(env.events("call.ended", &session).len(), 1);

    // A busy far end ends the device's leg too (Telnyx leaves it up after a failed transfer).
    env.sim.set_pstn_behaviour("+13125556666", RingBehaviour::Busy { after: Duration::from_secs(1) });
    let busy = env.sim.place_call(out("+13125556666", 60)).unwrap();
    env.run_for(Duration::from_secs(5)).await;
    let call = env.call(&busy.call_session_id).await;
    assert_eq!((call.state, call.end_reason), (CallState::Ended, Some(EndReason::AllDeclined)));
    assert_eq!(active().await, None);
    assert!(
        env.requests("hangup").iter().any(|r| r.target.as_deref() == Some(busy.call_control_id.as_str())),
        "the device's leg is hung up"
    );
    env.run_for(Duration::from_secs(60)).await;
    assert!(env.sim.anomalies().is_empty(), "{:#?}", env.sim.anomalies());
}
