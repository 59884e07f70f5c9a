//! The simulator's agenda: actions keyed by sim time, run in (time, insertion order).
//!
//! Determinism rests on this ordering: actions due at the same millisecond run by (key, insertion order).
//! Ordinary actions use key 0, so they run in the order they were scheduled; actions scheduled from
//! nondeterministic contexts (a delivery lane finishing) carry an explicit key (the event's sequence number),
//! so their order does not depend on which HTTP exchange finished first. Entries are never
//! cancelled; an action that became moot (a ring timeout of an answered leg) checks state and does nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Sim time in milliseconds since the simulator started.
pub type SimMs = u64;

struct Entry<A> {
    due: SimMs,
    key: u64,
    seq: u64,
    action: A,
}

impl<A> PartialEq for Entry<A> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.key, self.seq) == (other.due, other.key, other.seq)
    }
}
impl<A> Eq for Entry<A> {}
impl<A> PartialOrd for Entry<A> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<A> Ord for Entry<A> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.key, self.seq).cmp(&(other.due, other.key, other.seq))
    }
}

/// A min-heap of actions by (due, seq).
pub struct Timeline<A> {
    heap: BinaryHeap<Reverse<Entry<A>>>,
    next_seq: u64,
}

impl<A> Default for Timeline<A> {
    fn default() -> Self {
        Self { heap: BinaryHeap::new(), next_seq: 0 }
    }
}

impl<A> Timeline<A> {
    /// Schedules `action` at `due` (key 0: after earlier-scheduled actions of the same time).
    pub fn schedule(&mut self, due: SimMs, action: A) {
        self.schedule_keyed(due, 0, action);
    }

    /// Schedules `action` at `due`, ordered by `key` among actions of the same time.
    pub fn schedule_keyed(&mut self, due: SimMs, key: u64, action: A) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Entry { due, key, seq, action }));
    }

    /// Due time of the earliest entry.
    pub fn next_due(&self) -> Option<SimMs> {
        self.heap.peek().map(|Reverse(e)| e.due)
    }

    /// Removes and returns the earliest entry if it is due at or before `now`.
    pub fn pop_due(&mut self, now: SimMs) -> Option<(SimMs, A)> {
        if self.next_due()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(e)| (e.due, e.action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut t = Timeline::default();
        t.schedule(5, "c");
        t.schedule(1, "a");
        t.schedule(5, "d");
        t.schedule(1, "b");
        assert_eq!(t.pop_due(0), None);
        let order: Vec<_> = std::iter::from_fn(|| t.pop_due(10)).map(|(_, a)| a).collect();
        assert_eq!(order, ["a", "b", "c", "d"]);
        t.schedule_keyed(3, 9, "z");
        t.schedule_keyed(3, 2, "y");
        t.schedule(3, "x");
        let order: Vec<_> = std::iter::from_fn(|| t.pop_due(10)).map(|(_, a)| a).collect();
        assert_eq!(order, ["x", "y", "z"]);
    }
}
