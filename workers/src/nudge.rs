//! The wake-up stream each apalis worker polls with: new jobs, plus nudges that keep apalis's
//! bookkeeping moving.
//!
//! Why: apalis 1.0 records a job's completion (`Done`, or the `Failed`/`Killed` outcome) and its
//! worker's heartbeat only from `poll_ready`, and only while the backend is idle between fetches.
//! When a job finishes, or the heartbeat timer fires, while a fetch is in flight and that fetch
//! comes back empty, the worker parks with the completion unwritten and the timer's one wake-up
//! spent — until something else wakes it (measured: a finished dial stayed `Running` for 60 s on
//! SQLite, and a worker silent that long has its jobs re-enqueued by other processes, so they run
//! twice). Every yield of this stream makes the worker poll again, which flushes what is pending.
//!
//! A wake-up is lost the same way: apalis consumes the stream's item even while a fetch is in
//! flight, and that fetch (its snapshot older than the new job's commit) comes back empty
//! (measured: enqueue → start p99 0.96 s in process and 2.35 s across processes on Postgres, the
//! backstop below, against a p50 of 4–9 ms).
//!
//! What it yields:
//! - each wake of the pool from this process's [`QueueWaker`](fleet_store::wake::QueueWaker)
//!   (jobs committed here), or from NOTIFY (Postgres);
//! - for [`BURST`] after such a wake, and after a job of the pool finished here
//!   ([`Finished::signal`]), every [`BURST_TICK`]: the new job is fetched, and the completion
//!   flushed, within milliseconds whatever the worker was doing when the first yield came;
//! - every `backstop` (half a heartbeat) otherwise, so a heartbeat due during a fetch is sent.
//!
//! Cost: an idle pool polls once per backstop (one empty fetch); an active one at most once per
//! tick on top of its own fetches (≤ 100 a second per pool).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};

use tokio::sync::Notify;
use tokio::time::Instant;

/// How long after a wake or a finished job the worker keeps being nudged.
pub const BURST: Duration = Duration::from_millis(100);

/// The nudge interval during a burst.
pub const BURST_TICK: Duration = Duration::from_millis(10);

/// A wake-up stream, as apalis's `poll_with_stream` takes it.
pub type WakeStream = Pin<Box<dyn Stream<Item = ()> + Send>>;

/// "A job of this pool finished in this process"; cheap to clone.
#[derive(Clone, Default)]
pub struct Finished(Arc<Notify>);

impl Finished {
    pub fn signal(&self) {
        // Stores a permit when the stream is not waiting, so no finish is missed.
        self.0.notify_one();
    }
}

struct State {
    wakes: WakeStream,
    finished: Finished,
    backstop: Duration,
    burst_until: Option<Instant>,
    next_backstop: Instant,
}

/// `wakes`, plus the nudges described in the module header.
pub fn stream(wakes: WakeStream, finished: Finished, backstop: Duration) -> WakeStream {
    let backstop = backstop.max(BURST_TICK);
    let state =
        State { wakes, finished, backstop, burst_until: None, next_backstop: Instant::now() + backstop };
    let mut nudges = Box::pin(futures::stream::unfold(state, |mut s| async move {
        loop {
            let now = Instant::now();
            let in_burst = s.burst_until.is_some_and(|until| now < until);
            let tick_at = if in_burst { (now + BURST_TICK).min(s.next_backstop) } else { s.next_backstop };
            let State { wakes, finished, .. } = &mut s;
            tokio::select! {
                woken = wakes.next() => match woken {
                    Some(()) => {
                        s.burst_until = Some(Instant::now() + BURST);
                        return Some(((), s));
                    }
                    // The waker is gone (its store dropped): keep nudging on time alone.
                    None => s.wakes = Box::pin(futures::stream::pending()),
                },
                () = finished.0.notified() => s.burst_until = Some(Instant::now() + BURST),
                () = tokio::time::sleep_until(tick_at) => {
                    if Instant::now() >= s.next_backstop {
                        s.next_backstop = Instant::now() + s.backstop;
                    }
                    return Some(((), s));
                }
            }
        }
    }));
    // apalis polls this stream once per fetch and drops a ready item without polling again, so
    // after a yield nothing would wake the worker until its heartbeat (measured: enqueue → start
    // p50 3 s across processes). Waking the task with each item makes apalis poll once more,
    // which leaves the stream pending with its next wake-up registered.
    Box::pin(futures::stream::poll_fn(move |cx| {
        let polled = nudges.as_mut().poll_next(cx);
        if polled.is_ready() {
            cx.waker().wake_by_ref();
        }
        polled
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> WakeStream {
        Box::pin(futures::stream::pending())
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_pool_is_nudged_once_per_backstop() {
        let start = Instant::now();
        let mut s = stream(quiet(), Finished::default(), Duration::from_secs(5));
        s.next().await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        s.next().await;
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_job_is_followed_by_a_burst_of_nudges() {
        let finished = Finished::default();
        let mut s = stream(quiet(), finished.clone(), Duration::from_secs(5));
        finished.signal();
        let start = Instant::now();
        let mut ticks = 0;
        while start.elapsed() < BURST {
            s.next().await;
            ticks += 1;
        }
        assert_eq!(ticks, (BURST.as_millis() / BURST_TICK.as_millis()) as usize);
        // Then back to the backstop.
        let after = Instant::now();
        s.next().await;
        assert!(after.elapsed() > Duration::from_secs(4), "{:?}", after.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn wakes_pass_through_at_once_and_survive_the_waker_going_away() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<()>();
        let mut s = stream(Box::pin(rx), Finished::default(), Duration::from_secs(5));
        tx.unbounded_send(()).unwrap();
        let start = Instant::now();
        s.next().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        // A burst follows (the first yield may have come while a fetch was in flight).
        s.next().await;
        assert_eq!(start.elapsed(), BURST_TICK);
        drop(tx);
        while start.elapsed() < BURST {
            s.next().await;
        }
        s.next().await;
        assert!(start.elapsed() >= Duration::from_secs(5), "{:?}", start.elapsed());
    }
}
