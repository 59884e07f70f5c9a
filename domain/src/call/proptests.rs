//! Property tests: random interleavings and duplications of one call's inputs.
//!
//! Inputs are generated as a story in causal phases (a hangup we caused cannot precede the
//! decision that caused it); inside a phase any order is possible, and any input may be
//! delivered again at any later point. Invariants: the final state and the set of effects do not
//! depend on the order; no effect key is produced twice; exactly one winner; at the end nobody
//! is left ringing.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::tests::{Run, answered, ccid, device, leg, ring};
use super::*;

#[derive(Debug, Clone, Copy)]
enum Fate {
    Decline,
    Silent,
}

#[derive(Debug, Clone)]
struct Story {
    devices: Vec<(Platform, bool, Fate)>,
    winner: usize,
}

fn story() -> impl Strategy<Value = Story> {
    let one = (
        prop_oneof![Just(Platform::Ios), Just(Platform::Android), Just(Platform::Web)],
        any::<bool>(),
        prop_oneof![Just(Fate::Decline), Just(Fate::Silent)],
    );
    prop::collection::vec(one, 1..6).prop_flat_map(|devices| {
        let n = devices.len();
        (Just(devices), 0..n).prop_map(|(devices, winner)| Story { devices, winner })
    })
}

fn name(i: usize) -> String {
    format!("d{i}")
}

/// The phases of the story: ring-time facts, what follows the decision, and the end.
fn phases(story: &Story) -> (CallInput, Vec<Vec<CallInput>>) {
    let routed = ring(
        story.devices.iter().enumerate().map(|(i, (p, push, _))| device(&name(i), *p, *push, true)).collect(),
    );
    let mut ringing = Vec::new();
    let mut after = vec![CallInput::Bridged];
    for (i, (_, push, fate)) in story.devices.iter().enumerate() {
        let id = leg(&name(i));
        let cc = ccid(&id);
        ringing.push(CallInput::DialAccepted { leg: id.clone(), call_control_id: cc.clone() });
        ringing.push(CallInput::LegInitiated { leg: id.clone(), call_control_id: cc.clone() });
        if *push {
            ringing.push(CallInput::IncomingPushDelivered { device_id: name(i) });
        }
        let hangup = |cause: &str| CallInput::LegHangup {
            leg: id.clone(),
            call_control_id: Some(cc.clone()),
            cause: cause.into(),
        };
        match (i == story.winner, fate) {
            (true, _) => ringing.push(answered(&name(i))),
            (false, Fate::Decline) => ringing.push(hangup("call_rejected")),
            (false, Fate::Silent) => after.push(hangup("normal_clearing")),
        }
    }
    let winner = leg(&name(story.winner));
    let end = vec![
        CallInput::ParentHangup { cause: "normal_clearing".into() },
        CallInput::LegHangup {
            call_control_id: Some(ccid(&winner)),
            leg: winner,
            cause: "normal_clearing".into(),
        },
    ];
    (routed, vec![ringing, after, end])
}

/// One delivery order: each phase shuffled (except the end), then copies inserted later on.
fn deliveries(routed: CallInput, phases: Vec<Vec<CallInput>>, seed: &[usize]) -> Vec<CallInput> {
    let mut rng = seed.iter().copied().cycle();
    let mut next = move |n: usize| rng.next().unwrap_or(0) % n.max(1);
    let mut out = vec![routed];
    let last = phases.len() - 1;
    for (p, mut phase) in phases.into_iter().enumerate() {
        if p != last {
            for i in (1..phase.len()).rev() {
                phase.swap(i, next(i + 1));
            }
        }
        out.extend(phase);
    }
    let copies = next(out.len() + 1);
    for _ in 0..copies {
        let from = next(out.len());
        let to = from + 1 + next(out.len() - from);
        let copy = out[from].clone();
        out.insert(to, copy);
    }
    out
}

fn play(inputs: &[CallInput]) -> Run {
    let mut run = Run::new();
    for input in inputs {
        run.feed(input.clone());
    }
    run
}

fn effect_set(run: &Run) -> BTreeSet<String> {
    run.effects.iter().map(|e| format!("{} {}", e.key, serde_json::to_string(&e.command).unwrap())).collect()
}

fn assert_no_key_twice(run: &Run) {
    let keys: BTreeSet<_> = run.effects.iter().map(|e| &e.key).collect();
    assert_eq!(keys.len(), run.effects.len(), "an effect key was produced twice");
}

/// Every leg Telnyx named is the winner or was hung up (by us or by itself).
fn assert_nobody_rings_on(run: &Run) {
    for l in &run.call.legs {
        let winner = run.call.winner.as_ref() == Some(&l.id);
        let hung_up = run.effects.iter().any(|e| e.key == format!("s1:leg:{}:hangup", l.id));
        assert!(winner || hung_up || l.call_control_id.is_none(), "leg {} left ringing", l.id);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any two delivery orders (with duplicates) of one story end in one state with one set of effects.
    #[test]
    fn interleavings_converge(
        story in story(),
        a in prop::collection::vec(any::<usize>(), 1..64),
        b in prop::collection::vec(any::<usize>(), 1..64),
    ) {
        let (routed, phases) = phases(&story);
        let one = play(&deliveries(routed.clone(), phases.clone(), &a));
        let two = play(&deliveries(routed, phases, &b));
        let winner = name(story.winner);
        for run in [&one, &two] {
            assert_no_key_twice(run);
            assert_nobody_rings_on(run);
            prop_assert_eq!(run.call.state, CallState::Ended);
            prop_assert_eq!(run.call.end_reason, Some(EndReason::Completed));
            prop_assert_eq!(run.call.answered_by_device_id(), Some(winner.as_str()));
            prop_assert!(run.call.bridged);
        }
        let (mut x, mut y) = (one.call.clone(), two.call.clone());
        x.version = 0;
        y.version = 0;
        prop_assert_eq!(x, y);
        prop_assert_eq!(effect_set(&one), effect_set(&two));
    }

    /// Several legs answering in any order (and twice): exactly one winner, one bridge, one
    /// `call.answered`, every other answered leg hung up.
    #[test]
    fn exactly_one_winner(
        n in 2usize..7,
        seed in prop::collection::vec(any::<usize>(), 1..64),
    ) {
        let devices = (0..n).map(|i| device(&name(i), Platform::Android, true, true)).collect();
        let answers: Vec<_> = (0..n).map(|i| answered(&name(i))).collect();
        let inputs = deliveries(ring(devices), vec![answers, vec![]], &seed);
        let run = play(&inputs);
        assert_no_key_twice(&run);
        assert_nobody_rings_on(&run);
        let bridges = run.count(|c| matches!(c, Command::Bridge { .. }));
        let events = run.count(|c| matches!(c, Command::Emit(AppEvent::Answered { .. })));
        prop_assert_eq!((bridges, events), (1, 1));
        let first = inputs.iter().find_map(|i| match i {
            CallInput::LegAnswered { leg, .. } => Some(leg.clone()),
            _ => None,
        });
        prop_assert_eq!(run.call.winner.clone(), first);
    }
}
