//! Outbound calls placed by devices (credential connection), end to end against the simulator:
//! the caller id is forced to one of the organization's numbers, blocked destinations are refused.

use std::time::Duration;

use fleet_sim::{Caller, CallerScript, RingBehaviour};
use fleet_store::{Engine, OrgSettings};

use crate::on_both;
use crate::support::calls::CallEnv;

on_both! {
    device_calls_go_out_with_the_org_number => device_calls_go_out_with_the_org_number_postgres, device_calls_go_out_with_the_org_number_sqlite;
}

async fn device_calls_go_out_with_the_org_number(engine: Engine) {
    let env = CallEnv::start(engine).await;
    env.org("o1", OrgSettings::default()).await;
    env.user("u1", &["o1"], false).await;
    env.number("+13125550100", "o1", Some("u1"), 30).await;
    env.phone("android-1", "u1", "o1", "android", true, RingBehaviour::Never).await;
    let out = |to: &str| CallerScript {
        from: Caller::Device("android-1".into()),
        to: to.into(),
        at: Duration::ZERO,
        hangup_after: Some(Duration::from_secs(5)),
    };

    env.sim.place_call(out("+13125557777")).unwrap();
    env.run_for(Duration::from_secs(2)).await;
    let transfers = env.requests("transfer");
    assert_eq!(transfers.len(), 1, "{transfers:#?}");
    assert_eq!(transfers[0].body["to"], "+13125557777");
    assert_eq!(transfers[0].body["from"], "+13125550100", "the caller id is the org's number");

    env.store().block_number("o1", "+13125558888").await.unwrap();
    env.sim.place_call(out("+13125558888")).unwrap();
    env.run_for(Duration::from_secs(2)).await;
    assert_eq!(env.requests("transfer").len(), 1, "a blocked destination is not connected");
    assert_eq!(env.requests("reject").len(), 1, "it is rejected");
}
