//! Load: 500 concurrent inbound calls, each ringing 10 device legs, through the whole API and webhook
//! path. What it asserts is correctness under that load — no anomaly, every webhook delivered once,
//! every leg's event sequence and hangup cause — not speed: tests never assert timings (the machines
//! are noisy). It prints its wall time for a person to read; the simulator's throughput is measured,
//! against a baseline of the same run, by `cargo bench --bench sim` (`docs/benchmarks.md`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fleet_sim::{Caller, CallerScript, CredentialRef, DevicePlatform, DeviceScript, RingBehaviour};
use futures::StreamExt;
use serde_json::json;

use crate::support::Env;

const CALLS: usize = 500;
const LEGS: usize = 10;
const PAR: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_calls_with_ten_legs_each() {
    let env = Env::start(|c| {
        c.dial_limit = None;
        c.seed = 11;
    })
    .await;
    let env = &env;
    env.sim.add_number("+13125550199");
    let t0 = Instant::now();

    let users: Vec<String> = futures::stream::iter(0..CALLS * LEGS)
        .map(|i| async move {
            let (s, v) = env
                .post("/telephony_credentials", json!({"connection_id": "c", "name": format!("dev-{i}")}))
                .await;
            assert_eq!(s, 201);
            v["data"]["sip_username"].as_str().unwrap().to_owned()
        })
        .buffered(PAR)
        .collect()
        .await;
    for (i, user) in users.iter().enumerate() {
        let after = Duration::from_millis(1_000 + (i % LEGS) as u64 * 100);
        env.sim
            .add_device(DeviceScript {
                id: format!("d{i}"),
                platform: DevicePlatform::Android,
                push_token: None,
                credential: CredentialRef::SipUsername(user.clone()),
                online: true,
                register_after_push: None,
                on_ring: RingBehaviour::Answer { after },
            })
            .unwrap();
    }
    let t_setup = t0.elapsed();

    let calls: Vec<String> = (0..CALLS)
        .map(|i| {
            let script = CallerScript {
                from: Caller::Pstn(format!("+1312{i:07}")),
                to: "+13125550199".into(),
                at: Duration::ZERO,
                hangup_after: Some(Duration::from_secs(60)),
            };
            env.sim.place_call(script).unwrap().call_control_id
        })
        .collect();
    env.sim.settle().await;

    let t1 = Instant::now();
    let legs: Vec<Vec<String>> = futures::stream::iter(calls.iter().enumerate())
        .map(|(i, a)| {
            let users = &users;
            async move {
                env.act(a, "answer", json!({"command_id": format!("ans-{i}")})).await;
                let mut legs = Vec::with_capacity(LEGS);
                for l in 0..LEGS {
                    let to = format!("sip:{}@sip.telnyx.com", users[i * LEGS + l]);
                    legs.push(
                        env.dial(&to, json!({"link_to": a, "command_id": format!("dial-{i}-{l}")})).await,
                    );
                }
                legs
            }
        })
        .buffered(PAR)
        .collect()
        .await;
    env.sim.settle().await;
    env.advance_ms(1_000).await;
    futures::stream::iter(calls.iter().zip(&legs))
        .map(|(a, legs)| async move {
            env.act(a, "bridge", json!({"call_control_id": legs[0]})).await;
            for b in &legs[1..] {
                env.act(b, "hangup", json!({})).await;
            }
        })
        .buffered(PAR)
        .collect::<Vec<_>>()
        .await;
    env.advance_ms(60_000).await;
    let t_calls = t1.elapsed();

    let hooks = env.sim.webhooks();
    let requests = env.sim.requests().len();
    eprintln!(
        "load: setup {t_setup:?} ({} credentials), calls {t_calls:?}: {requests} API requests, {} webhooks",
        CALLS * LEGS,
        hooks.len()
    );
    assert!(env.sim.anomalies().is_empty(), "{:?}", &env.sim.anomalies()[..1]);
    let got = env.rx.got();
    assert_eq!(got.len(), hooks.len(), "every webhook delivered once");
    let mut by_leg: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut causes: HashMap<&str, &str> = HashMap::new();
    for r in &got {
        by_leg.entry(r.ccid()).or_default().push(r.event_type());
        if r.event_type() == "call.hangup" {
            causes.insert(r.ccid(), r.payload()["hangup_cause"].as_str().unwrap());
        }
    }
    for (a, legs) in calls.iter().zip(&legs) {
        assert_eq!(by_leg[a.as_str()].last(), Some(&"call.hangup"));
        assert_eq!(
            by_leg[legs[0].as_str()],
            ["call.initiated", "call.answered", "call.bridged", "call.hangup"]
        );
        assert_eq!(causes[legs[LEGS - 1].as_str()], "originator_cancel");
    }
}
