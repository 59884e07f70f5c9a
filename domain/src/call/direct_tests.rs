//! A direct WebRTC call: a browser's own leg to the PSTN that callfleet only follows. It is never
//! connected, hung up or recorded by the machine (its recording is asked for separately), and it
//! ends with a reason that says how the far end's ring went; its log bills the connected time.

use chrono::Duration;

use super::tests::Run;
use super::*;

fn direct_run() -> Run {
    let mut run = Run::placed(CallDirection::Direct, "browser-1", "v3:browser-leg", "gencred1");
    run.feed(CallInput::Routed(Route::Direct));
    run
}

fn telnyx_commands(run: &Run) -> usize {
    run.count(|c| {
        matches!(
            c,
            Command::Hangup { .. }
                | Command::Dial { .. }
                | Command::Bridge { .. }
                | Command::AnswerParent
                | Command::ConnectOutbound { .. }
                | Command::RecordCall
                | Command::Reject { .. }
        )
    })
}

#[test]
fn a_direct_call_is_followed_and_logged_without_a_command() {
    let mut run = direct_run();
    assert_eq!(run.call.state, CallState::Ringing);
    assert!(!run.call.is_ringing(), "none of our devices is alerted");
    assert!(run.has_key("active_call:set"), "the browser's user is on a call");

    run.at(Duration::seconds(3)).feed(CallInput::FarEndAnswered);
    run.feed(CallInput::Bridged);
    assert_eq!(run.call.state, CallState::Answered);
    assert_eq!(run.call.answered_by_device_id(), Some("browser-1"));
    run.at(Duration::milliseconds(3_000 + 42_500))
        .feed(CallInput::ParentHangup { cause: "normal_clearing".into() });
    assert_eq!((run.call.state, run.call.end_reason), (CallState::Ended, Some(EndReason::Completed)));
    assert_eq!(telnyx_commands(&run), 0, "callfleet never acts on a direct call's leg: {:?}", run.effects);
    assert!(run.has_key("active_call:clear") && run.has_key("log"));

    let (log, entry) = settle(&run.call).unwrap();
    assert_eq!(
        (log.direction, log.status, log.device_id.as_deref()),
        (CallDirection::Direct, CallStatus::Answered, Some("browser-1"))
    );
    assert_eq!((entry.billable_secs, entry.billed_minutes), (43, 1));
}

#[test]
fn an_unanswered_direct_call_ends_with_what_the_far_end_did() {
    for (cause, reason) in [
        ("user_busy", EndReason::AllDeclined),
        ("call_rejected", EndReason::AllDeclined),
        ("originator_cancel", EndReason::CallerCancelled),
        ("timeout", EndReason::NoAnswer),
    ] {
        let mut run = direct_run();
        run.at(Duration::seconds(5)).feed(CallInput::ParentHangup { cause: cause.into() });
        assert_eq!(run.call.end_reason, Some(reason), "{cause}");
        assert_eq!(telnyx_commands(&run), 0, "{cause}: the leg is already gone");
        let (log, entry) = settle(&run.call).unwrap();
        assert_eq!((log.status, entry.billable_secs), (CallStatus::Missed, 0), "{cause}");
        assert!(!run.has_key("event:call.missed"), "missed is for calls to us");
    }
}

#[test]
fn a_lost_hangup_is_found_by_the_reconciler() {
    let mut run = direct_run();
    run.at(Duration::seconds(2)).feed(CallInput::FarEndAnswered);
    let round = run.call.reconciles;
    run.feed(CallInput::ReconcileDue { round });
    assert_eq!(run.count(|c| matches!(c, Command::QueryStatus)), 1);
    run.feed(CallInput::Reconciled { parent_alive: false, legs: Vec::new() });
    assert_eq!((run.call.state, run.call.end_reason), (CallState::Ended, Some(EndReason::Completed)));
    assert_eq!(telnyx_commands(&run), 0);
}
