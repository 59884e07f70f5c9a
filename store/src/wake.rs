//! In-process wake-ups for queue workers.
//!
//! An idle apalis worker only looks for new jobs when something wakes it (Postgres: LISTEN/NOTIFY
//! on insert; SQLite: nothing) or at its next heartbeat. The store calls [`QueueWaker::pushed`]
//! after every commit that enqueued jobs, which wakes this process's workers of those pools at
//! once. A delayed job waits in `scheduled_jobs`; committing one wakes this process's promoter
//! ([`QueueWaker::scheduled`]), which recomputes when to look next, and the promotion that moves
//! it into its queue wakes the workers like any enqueue. Workers in other processes have NOTIFY
//! (Postgres) and a periodic nudge (`fleet_workers`'s wake stream) as the backstop; promoters in
//! other processes poll.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use fleet_jobs::Pool;
use futures::Stream;
use tokio::sync::{Notify, broadcast};

use crate::NewJob;

/// Cheap to clone; one per store.
#[derive(Clone)]
pub struct QueueWaker {
    channels: Arc<HashMap<Pool, broadcast::Sender<()>>>,
    scheduled: Arc<Notify>,
}

impl Default for QueueWaker {
    fn default() -> Self {
        let channels = Pool::ALL.iter().map(|p| (*p, broadcast::channel(16).0)).collect();
        Self { channels: Arc::new(channels), scheduled: Arc::new(Notify::new()) }
    }
}

impl QueueWaker {
    /// Wakes the workers of `pool` in this process.
    pub fn notify(&self, pool: Pool) {
        if let Some(tx) = self.channels.get(&pool) {
            let _ = tx.send(());
        }
    }

    /// Called after a commit: wakes now for due jobs, later for delayed ones. `inserted[i]` says
    /// whether `jobs[i]` was actually enqueued (a duplicate unique key was not).
    pub fn pushed(&self, jobs: &[NewJob], inserted: &[bool]) {
        for (job, _) in jobs.iter().zip(inserted).filter(|(_, ok)| **ok) {
            self.wake_for(job);
        }
    }

    /// As [`Self::pushed`], when every job was enqueued.
    pub fn pushed_all(&self, jobs: &[NewJob]) {
        jobs.iter().for_each(|job| self.wake_for(job));
    }

    fn wake_for(&self, job: &NewJob) {
        if job.delay.is_zero() {
            self.notify(job.envelope.pool());
        } else {
            // Stores a permit if the promoter is busy, so the wake-up is never lost.
            self.scheduled.notify_one();
        }
    }

    /// Resolves when a delayed job was committed by this process since the last call (the
    /// promoter's cue to look again before its planned time).
    pub async fn scheduled(&self) {
        self.scheduled.notified().await;
    }

    /// A stream that yields each time `pool` is woken.
    pub fn stream(&self, pool: Pool) -> Pin<Box<dyn Stream<Item = ()> + Send>> {
        let rx = self.channels.get(&pool).map(|tx| tx.subscribe());
        Box::pin(futures::stream::unfold(rx, |rx| async move {
            let mut rx = rx?;
            match rx.recv().await {
                Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => Some(((), Some(rx))),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        }))
    }
}
