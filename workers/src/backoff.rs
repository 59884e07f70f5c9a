//! Capped exponential backoff that forgets old failures (pure; unit-tested below).

use std::time::Duration;

/// The wait before trying again after a failure: 100 ms doubling to 5 s over a streak of
/// failures, and back to 100 ms once [`Backoff::CALM`] has passed since the last failure. Used for a worker pool's
/// restarts (apalis's own restart count never resets: after a few database restarts over a day,
/// every later one would keep the pool down 5 s longer than the outage) and the NOTIFY
/// listener's reconnects.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    streak: u32,
    last: Option<std::time::Instant>,
}

impl Backoff {
    pub(crate) const CALM: Duration = Duration::from_secs(30);

    pub(crate) fn next(&mut self, now: std::time::Instant) -> Duration {
        let calm = self.last.is_none_or(|last| now.duration_since(last) >= Self::CALM);
        self.streak = if calm { 0 } else { self.streak + 1 };
        self.last = Some(now);
        Duration::from_millis(100u64 << self.streak.min(6)).min(Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Backoff;

    #[test]
    fn backoff_doubles_over_a_streak_and_resets_after_a_calm_run() {
        let mut b = Backoff::default();
        let t = Instant::now();
        let waits: Vec<u128> = (0..8).map(|i| b.next(t + Duration::from_secs(i)).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(b.next(t + Duration::from_secs(7 + 30)), Duration::from_millis(100), "calm for 30 s");
        assert_eq!(b.next(t + Duration::from_secs(38)), Duration::from_millis(200));
    }
}
