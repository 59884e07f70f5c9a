//! Refusing webhooks at once while the store is unreachable (pure; unit-tested below).
//!
//! With the database gone, every acknowledgement would otherwise wait out the pool's connection
//! timeout (2 s) before its 503, and Telnyx, which retries after a delay and moves to the failover
//! URL after failed attempts, would learn it only that late — a 2 s outage delayed every call's
//! webhooks by several seconds (the chaos report in `docs/benchmarks.md`). After a batch fails
//! because the store is unreachable, the gate is **closed**: requests are refused at once, except
//! one **probe** every [`Gate::PROBE_EVERY`], which goes to the store like any request. The first
//! batch that commits opens the gate again.
//!
//! Failure behaviour: a refusal is a 503, so nothing acknowledged is lost and Telnyx retries; the
//! cost of the gate is at most one probe interval of refusals after the store is back. A store
//! that refuses a batch for another reason (a bug, a constraint) does not close the gate.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What the gate says to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// The store was last seen working: go ahead.
    Pass,
    /// The store was unreachable; this request finds out whether it is back.
    Probe,
    /// The store is unreachable and a probe is under way or was sent moments ago: 503 now.
    Refuse,
}

#[derive(Debug, Default)]
pub struct Gate {
    /// Fast path: false while the store works, so open requests never take the lock.
    closed: AtomicBool,
    state: Mutex<Closed>,
}

#[derive(Debug, Default)]
struct Closed {
    probing: bool,
    next_probe: Option<Instant>,
}

impl Gate {
    /// Longest time between two probes while the store is unreachable.
    pub const PROBE_EVERY: Duration = Duration::from_millis(250);

    pub fn admit(&self, now: Instant) -> Admit {
        if !self.closed.load(Ordering::Acquire) {
            return Admit::Pass;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let due = state.next_probe.is_none_or(|at| now >= at);
        if state.probing || !due {
            return Admit::Refuse;
        }
        state.probing = true;
        Admit::Probe
    }

    /// A batch committed: the store works.
    pub fn stored(&self) {
        if self.closed.swap(false, Ordering::AcqRel) {
            *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Closed::default();
        }
    }

    /// A batch failed because the store was unreachable (or too slow to commit).
    pub fn unreachable(&self, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.probing = false;
        state.next_probe = Some(now + Self::PROBE_EVERY);
        self.closed.store(true, Ordering::Release);
    }

    /// A probe ended without an answer from the store either way (it was refused before the
    /// store was asked, or its caller went away): another request may probe at once.
    pub fn probe_abandoned(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).probing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_store_is_probed_by_one_request_at_a_time_until_a_batch_commits() {
        let gate = Gate::default();
        let t = Instant::now();
        assert_eq!(gate.admit(t), Admit::Pass);
        gate.unreachable(t);
        assert_eq!(gate.admit(t), Admit::Refuse, "refused at once");
        assert_eq!(gate.admit(t + Duration::from_millis(249)), Admit::Refuse);
        let later = t + Gate::PROBE_EVERY;
        assert_eq!(gate.admit(later), Admit::Probe);
        assert_eq!(gate.admit(later), Admit::Refuse, "one probe at a time");
        gate.unreachable(later + Duration::from_secs(2));
        assert_eq!(gate.admit(later + Duration::from_secs(2)), Admit::Refuse);
        let again = later + Duration::from_secs(2) + Gate::PROBE_EVERY;
        assert_eq!(gate.admit(again), Admit::Probe);
        gate.stored();
        assert_eq!(gate.admit(again), Admit::Pass, "open once a batch commits");
        assert_eq!(gate.admit(again), Admit::Pass);
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_request_probe() {
        let gate = Gate::default();
        let t = Instant::now();
        gate.unreachable(t);
        let later = t + Gate::PROBE_EVERY;
        assert_eq!(gate.admit(later), Admit::Probe);
        gate.probe_abandoned();
        assert_eq!(gate.admit(later), Admit::Probe);
    }

    #[test]
    fn a_batch_stored_by_a_request_let_through_before_the_close_opens_the_gate() {
        let gate = Gate::default();
        let t = Instant::now();
        gate.unreachable(t);
        gate.stored();
        assert_eq!(gate.admit(t), Admit::Pass);
    }
}
