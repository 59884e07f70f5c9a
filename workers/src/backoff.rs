//! Capped exponential backoff that forgets a streak once things ran well (pure; unit-tested below),
//! and the one way a synchronous callback waits it out ([`pause`]).

use std::time::{Duration, Instant};

/// The wait before trying again after a failure: 100 ms doubling to 5 s over a streak of
/// failures, and back to 100 ms once what was restarted has run for [`Backoff::CALM`] before
/// failing again. Used for a worker pool's restarts (apalis's own restart count never resets)
/// and the NOTIFY listener's reconnects.
///
/// Calm is measured from the end of the last wait (the restart), not from the last failure: a
/// fleet whose database blinks every few seconds starts each outage's streak afresh, instead of
/// keeping every pool down up to 5 s past each outage (measured in the chaos test with network
/// partitions). [`Backoff::CALM`] is above the 2 s connection timeout, so an attempt that fails
/// after waiting for a connection during an outage does not count as calm.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    streak: u32,
    restarted_at: Option<Instant>,
}

impl Backoff {
    pub(crate) const CALM: Duration = Duration::from_secs(5);

    pub(crate) fn next(&mut self, now: Instant) -> Duration {
        let calm = self.restarted_at.is_none_or(|at| now.saturating_duration_since(at) >= Self::CALM);
        self.streak = if calm { 0 } else { self.streak + 1 };
        let wait = Duration::from_millis(100u64 << self.streak.min(6)).min(Duration::from_secs(5));
        self.restarted_at = Some(now + wait);
        wait
    }
}

/// Waits out a restart backoff inside a synchronous callback (apalis's `should_restart` cannot
/// await) without taking a runtime thread from every other task: `block_in_place` hands this
/// thread's queued tasks to another worker thread while it sleeps. Every role runs on the
/// multi-threaded runtime; on a current-thread runtime this panics rather than stall every task.
pub(crate) fn pause(wait: Duration) {
    tokio::task::block_in_place(|| std::thread::sleep(wait));
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Backoff, pause};

    /// A pool's restart pause must not take a runtime thread from other tasks: with a plain
    /// `std::thread::sleep` here and one worker thread, nothing else would run until it ended
    /// (checked: this test then fails). Ordering, not timing: the other task must finish while
    /// the pause is still going on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_restart_pause_leaves_the_runtime_to_other_tasks() {
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let paused = tokio::spawn(async move {
            started_tx.send(()).unwrap();
            pause(Duration::from_secs(3));
        });
        started.await.unwrap();
        let other = tokio::spawn(async { 42 });
        assert_eq!(other.await.unwrap(), 42);
        assert!(!paused.is_finished(), "the other task had to wait for the pause to end");
        paused.await.unwrap();
    }

    #[test]
    fn backoff_doubles_over_a_streak_and_resets_after_a_calm_run() {
        let mut b = Backoff::default();
        let t = Instant::now();
        // Failing at once after every restart: the waits double up to the cap.
        let mut now = t;
        let waits: Vec<u128> = (0..8)
            .map(|_| {
                let wait = b.next(now);
                now += wait;
                wait.as_millis()
            })
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        // Running 4 s after the restart is not calm yet; 5 s is.
        assert_eq!(b.next(now + Duration::from_secs(4)), Duration::from_secs(5));
        let restarted = now + Duration::from_secs(4) + Duration::from_secs(5);
        assert_eq!(b.next(restarted + Backoff::CALM), Duration::from_millis(100), "calm for 5 s");
        assert_eq!(b.next(restarted + Backoff::CALM), Duration::from_millis(200));
    }
}
