//! In-process wake-ups for queue workers.
//!
//! An idle apalis worker only looks for new jobs when something wakes it (Postgres: LISTEN/NOTIFY
//! on insert; SQLite: nothing) or at its next heartbeat. The store calls [`QueueWaker::pushed`]
//! after every commit that enqueued jobs, which wakes this process's workers of those pools at
//! once — and again when a delayed job falls due, because NOTIFY never fires for those. Workers in
//! other processes still have NOTIFY (Postgres) and their heartbeat as the backstop.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use fleet_jobs::Pool;
use futures::Stream;
use tokio::sync::broadcast;

use crate::NewJob;

/// Cheap to clone; one per store.
#[derive(Clone)]
pub struct QueueWaker {
    channels: Arc<HashMap<Pool, broadcast::Sender<()>>>,
}

impl Default for QueueWaker {
    fn default() -> Self {
        let channels = Pool::ALL.iter().map(|p| (*p, broadcast::channel(16).0)).collect();
        Self { channels: Arc::new(channels) }
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
        let pool = job.envelope.pool();
        if job.delay.is_zero() {
            self.notify(pool);
        } else if tokio::runtime::Handle::try_current().is_ok() {
            // Run times are whole seconds: wake just after the due second, and once more a
            // second later in case the database rounded the other way.
            let waker = self.clone();
            let due = Duration::from_secs(job.delay.as_millis().div_ceil(1000) as u64);
            tokio::spawn(async move {
                for extra in [Duration::from_millis(50), Duration::from_millis(1050)] {
                    tokio::time::sleep(due + extra).await;
                    waker.notify(pool);
                }
            });
        }
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
