//! What a failed command means for the job that sent it, decided per command.
//!
//! Order: failures where Telnyx gave no verdict (timeout, transport, breaker open, rate budget,
//! undecodable 2xx) are `Wait`; then status 429 / 408 / 5xx are `Wait` whatever the code; then the
//! first Telnyx code with a rule below; then 404 is `Gone`; anything else is `Permanent`.
//!
//! Per code (source in the reference folder → outcome):
//! - `90018` SPEC 422 "Call has already ended" → `Done` on hangup, reject, playback_stop and
//!   record_stop (the goal — nothing alive, playing or recording — holds); `Gone` on every other
//!   command.
//! - `90034` SPEC 422 "Call not answered yet" → `NotYetAnswered`.
//! - `90020` SPEC 422 "Call recording triggered before audio started" → `NotYetAnswered` on
//!   record_start (the same race: media is not up yet), else `Permanent`.
//! - `90042` **not in the reference**: the simulator's choice for a `prevent_double_bridge`
//!   refusal → `AlreadyBridged` on bridge and dial, else `Permanent`.
//! - `90103` DPS docs, 429 on the dials-per-second limit → `Wait` (the 429 rule covers it too).
//! - `10011` rate-limiting docs, 429 "Too many requests"; the SPEC also uses it as a 422 (SRTP on
//!   PSTN) → by status: 429 `Wait`, 422 `Permanent`.
//! - `10005` SPEC "Resource not found", also "Audio file not found" in a playback example →
//!   `Gone`, except `Permanent` on playback_start (the audio, not the call, is missing).
//! - `90015` SPEC 422 "Invalid Call Control ID", what the simulator answers for an unknown call →
//!   `Gone` (the call is unknown or expired; retrying will not bring it back).
//! - `10007` SPEC 500/503 → `Wait` (by status).
//!
//! The reference is silent on: the code of a real "already bridged" refusal (90042 above is the
//! simulator's), whether a hangup of a call that ended long ago answers 90018 or 90015/10005 (both
//! end as `Done`/`Gone`, neither retried), whether Telnyx sends `Retry-After` on 429 (we honour it
//! and `x-ratelimit-reset` when present), and what a duplicate `command_id` answers (assumed 200).

use std::time::Duration;

use super::{CallControlError, CommandKind, Failure};

/// What the job should do after a failed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command's goal already holds (e.g. hangup of an ended call): complete the job.
    Done,
    /// The call has not been answered (or has no media) yet: wait for `call.answered`, then retry.
    NotYetAnswered,
    /// The target is bridged to another call: the race is lost; do not retry.
    AlreadyBridged,
    /// Try again later with the same `command_id` (after `retry_after` if given, else backoff).
    Wait { retry_after: Option<Duration> },
    /// The call (or resource) does not exist any more: drop the command, do not retry.
    Gone,
    /// The request is wrong (validation, auth): retrying will not help; dead-letter it.
    Permanent,
}

pub(crate) fn classify(e: &CallControlError) -> Outcome {
    let wait = Outcome::Wait { retry_after: e.retry_after };
    let status = match e.failure {
        Failure::Http { status } => status,
        Failure::Timeout
        | Failure::Transport
        | Failure::CircuitOpen
        | Failure::RateBudget
        | Failure::Decode => return wait,
    };
    if status == 429 || status == 408 || status >= 500 {
        return wait;
    }
    for code in e.codes() {
        if let Some(outcome) = by_code(e.command, code) {
            return outcome;
        }
    }
    if status == 404 { Outcome::Gone } else { Outcome::Permanent }
}

fn by_code(command: CommandKind, code: &str) -> Option<Outcome> {
    use CommandKind as C;
    Some(match code {
        "90018" => match command {
            C::Hangup | C::Reject | C::PlaybackStop | C::RecordStop => Outcome::Done,
            _ => Outcome::Gone,
        },
        "90034" => Outcome::NotYetAnswered,
        "90020" if command == C::RecordStart => Outcome::NotYetAnswered,
        "90042" if matches!(command, C::Bridge | C::Dial) => Outcome::AlreadyBridged,
        "90103" => Outcome::Wait { retry_after: None },
        "10005" if command == C::PlaybackStart => Outcome::Permanent,
        "10005" | "90015" => Outcome::Gone,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call_control::ApiErrorObject;

    fn err(command: CommandKind, status: u16, code: &str) -> CallControlError {
        let mut e = CallControlError::local(command, Failure::Http { status }, None);
        if !code.is_empty() {
            e.errors.push(ApiErrorObject {
                code: code.into(),
                title: String::new(),
                detail: None,
                source: None,
            });
        }
        e
    }

    #[test]
    fn table() {
        use CommandKind as C;
        let wait = Outcome::Wait { retry_after: None };
        let cases = [
            (C::Hangup, 422, "90018", Outcome::Done),
            (C::Reject, 422, "90018", Outcome::Done),
            (C::RecordStop, 422, "90018", Outcome::Done),
            (C::PlaybackStop, 422, "90018", Outcome::Done),
            (C::Bridge, 422, "90018", Outcome::Gone),
            (C::Speak, 422, "90018", Outcome::Gone),
            (C::Bridge, 422, "90034", Outcome::NotYetAnswered),
            (C::Gather, 422, "90034", Outcome::NotYetAnswered),
            (C::RecordStart, 422, "90020", Outcome::NotYetAnswered),
            (C::Speak, 422, "90020", Outcome::Permanent),
            (C::Bridge, 422, "90042", Outcome::AlreadyBridged),
            (C::Dial, 422, "90042", Outcome::AlreadyBridged),
            (C::Hangup, 422, "90042", Outcome::Permanent),
            (C::Dial, 429, "90103", wait),
            (C::Dial, 422, "90103", wait),
            (C::Hangup, 429, "10011", wait),
            (C::Dial, 422, "10011", Outcome::Permanent),
            (C::Hangup, 404, "10005", Outcome::Gone),
            (C::CallStatus, 404, "10005", Outcome::Gone),
            (C::PlaybackStart, 404, "10005", Outcome::Permanent),
            (C::Hangup, 422, "90015", Outcome::Gone),
            (C::Answer, 500, "10007", wait),
            (C::Answer, 503, "10007", wait),
            (C::Answer, 502, "", wait),
            (C::Answer, 408, "", wait),
            (C::Answer, 404, "", Outcome::Gone),
            (C::Dial, 422, "10016", Outcome::Permanent),
            (C::Dial, 401, "10009", Outcome::Permanent),
            (C::Dial, 400, "10015", Outcome::Permanent),
        ];
        for (command, status, code, want) in cases {
            assert_eq!(err(command, status, code).outcome(), want, "{command} {status} {code}");
        }
    }

    #[test]
    fn the_first_code_with_a_rule_wins() {
        let mut e = err(CommandKind::Hangup, 422, "10032");
        e.errors.push(ApiErrorObject {
            code: "90018".into(),
            title: String::new(),
            detail: None,
            source: None,
        });
        assert_eq!(e.outcome(), Outcome::Done);
    }

    #[test]
    fn local_failures_wait_with_their_hint() {
        for f in
            [Failure::Timeout, Failure::Transport, Failure::CircuitOpen, Failure::RateBudget, Failure::Decode]
        {
            let e = CallControlError::local(CommandKind::Bridge, f, Some(Duration::from_secs(1)));
            assert_eq!(e.outcome(), Outcome::Wait { retry_after: Some(Duration::from_secs(1)) });
        }
    }
}
