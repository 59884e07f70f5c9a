//! An outbound call placed by a device: connected, answered by the far end, ended from either
//! side; the user's active call is set for as long as it lasts; inputs in any order converge.

use chrono::Duration;

use super::tests::{Run, t0};
use super::*;

fn outbound_run() -> Run {
    Run::placed(CallDirection::Outbound, "phone-1", "v3:device-leg", "+13125550100")
}

fn events(run: &Run) -> Vec<&'static str> {
    run.effects
        .iter()
        .filter_map(|e| match &e.command {
            Command::Emit(event) => Some(event.event_type()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_placed_call_is_connected_with_the_org_number_and_is_the_users_active_call() {
    let mut run = outbound_run();
    run.feed(CallInput::Routed(Route::Outbound));
    assert_eq!(run.call.state, CallState::Ringing);
    assert!(!run.call.is_ringing(), "no device of ours is alerted by an outbound call");
    let connect = run.effects.iter().find(|e| e.key == "s1:parent:connect").unwrap();
    assert_eq!(
        connect.command,
        Command::ConnectOutbound { to: "+13125557777".into(), from: "+13125550100".into() }
    );
    assert!(run.has_key("active_call:set"));
    assert!(events(&run).is_empty(), "no call.incoming for a call the user placed");

    run.at(Duration::seconds(4)).feed(CallInput::FarEndAnswered);
    assert_eq!(run.call.state, CallState::Answered);
    assert_eq!(run.call.answered_by_device_id(), Some("phone-1"));
    run.feed(CallInput::Bridged);
    assert!(run.call.bridged);
    assert_eq!(run.count(|c| matches!(c, Command::RecordCall)), 1, "recorded once, from the answer");

    run.at(Duration::seconds(64)).feed(CallInput::FarEndHangup { cause: "normal_clearing".into() });
    assert_eq!(run.call.state, CallState::Ended);
    assert_eq!(run.call.end_reason, Some(EndReason::Completed));
    assert_eq!(run.call.duration_secs(), 60);
    assert!(run.has_key("parent:hangup"), "the device's leg is ended with the far end");
    assert!(run.has_key("active_call:clear"));
    assert_eq!(events(&run), ["call.answered", "call.ended"]);
}

#[test]
fn a_far_end_that_never_answers_or_declines_ends_the_call_without_a_missed_call() {
    for (cause, reason) in [("timeout", EndReason::NoAnswer), ("user_busy", EndReason::AllDeclined)] {
        let mut run = outbound_run();
        run.feed(CallInput::Routed(Route::Outbound));
        run.feed(CallInput::FarEndHangup { cause: cause.into() });
        assert_eq!(run.call.end_reason, Some(reason));
        assert!(run.has_key("parent:hangup"));
        assert_eq!(events(&run), ["call.ended"]);
    }
    let mut run = outbound_run();
    run.feed(CallInput::Routed(Route::Outbound));
    run.feed(CallInput::ParentHangup { cause: "normal_clearing".into() });
    assert_eq!(run.call.end_reason, Some(EndReason::CallerCancelled));
    assert!(!run.has_key("parent:hangup"), "the device hung up itself");
    assert!(run.has_key("active_call:clear"));
    assert_eq!(events(&run), ["call.ended"], "the user's own cancel is no call.missed");
}

#[test]
fn a_lost_far_end_webhook_is_reconciled_from_the_device_leg() {
    let mut run = outbound_run();
    run.feed(CallInput::Routed(Route::Outbound));
    let due = run.effects.iter().find_map(|e| match &e.command {
        Command::Schedule { timer: Timer::Reconcile { round }, at } => Some((*round, *at)),
        _ => None,
    });
    assert_eq!(due, Some((1, t0() + OUTBOUND_RECONCILE_AFTER)));
    run.at(OUTBOUND_RECONCILE_AFTER).feed(CallInput::ReconcileDue { round: 1 });
    assert!(run.has_key("reconcile:1"), "a ringing outbound call is asked about");
    run.feed(CallInput::Reconciled { parent_alive: false, legs: Vec::new() });
    assert_eq!(run.call.state, CallState::Ended);
}

#[test]
fn inputs_of_an_outbound_call_converge_in_any_order_and_any_number() {
    let inputs = [
        CallInput::Bridged,
        CallInput::FarEndAnswered,
        CallInput::FarEndHangup { cause: "normal_clearing".into() },
        CallInput::ParentHangup { cause: "normal_clearing".into() },
    ];
    let mut outcomes = std::collections::BTreeSet::new();
    for order in [[0, 1, 2, 3], [1, 0, 3, 2], [0, 0, 1, 2], [1, 2, 2, 3]] {
        let mut run = outbound_run();
        run.feed(CallInput::Routed(Route::Outbound));
        for i in order {
            run.feed(inputs[i].clone());
            run.feed(inputs[i].clone());
        }
        let keys: Vec<_> = run.effects.iter().map(|e| e.key.clone()).collect();
        let unique: std::collections::BTreeSet<_> = keys.iter().collect();
        assert_eq!(keys.len(), unique.len(), "no effect twice: {keys:?}");
        assert_eq!(run.call.state, CallState::Ended);
        outcomes.insert((run.call.end_reason, events(&run)));
    }
    let expected = (Some(EndReason::Completed), vec!["call.answered", "call.ended"]);
    assert_eq!(outcomes.into_iter().collect::<Vec<_>>(), [expected]);
}
