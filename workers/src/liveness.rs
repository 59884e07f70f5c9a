//! This worker process's liveness lock, and the rescue of jobs whose worker process is gone
//! (Postgres; see `fleet_store::liveness` for the mechanism).
//!
//! Two tasks per worker process, stopped with its workers ([`Liveness`] aborts them on drop):
//! - the **holder** keeps the process's advisory lock on a connection of its own, checks that
//!   connection every [`PING`], and takes the lock again after losing it;
//! - the **rescuer** looks every [`SCAN`] for processes that have claimed jobs but no lock, and
//!   returns their jobs to the queue once the same process has been seen gone for [`GRACE`] (a
//!   live process whose connection blinked takes its lock again well within that). From a kill
//!   to its jobs being fetched elsewhere: at most `SCAN + GRACE + SCAN` ≈ 1 s, where apalis's
//!   heartbeat would take the orphan window (12 s).
//!
//! After this process lost its lock and took it again — typically Postgres restarted or failed
//! over, which drops every lock at once — it does not rescue for [`SETTLE`], the time other live
//! processes need to take theirs again (the store also refuses while the server itself is
//! younger than that). Store errors are logged and the next round tries again.

use std::collections::HashMap;
use std::time::Duration;

use fleet_store::postgres::PgStore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often the rescuer looks.
pub const SCAN: Duration = Duration::from_millis(200);
/// How long a process must be seen without its lock before its jobs are taken back.
pub const GRACE: Duration = Duration::from_millis(600);
/// How long after taking its lock again this process waits before rescuing.
pub const SETTLE: Duration = Duration::from_secs(5);
/// How often the holder checks its connection.
const PING: Duration = Duration::from_secs(1);
/// Longest wait for the lock's connection to open or answer a ping.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before trying to take the lock again.
const RETRY: Duration = Duration::from_millis(200);

/// A random lock key for this process (positive, so it reads the same in SQL and in names).
pub fn process_key() -> i32 {
    (rand::random::<u32>() >> 1) as i32
}

/// The holder and the rescuer of one worker process; both stop when this is dropped.
pub struct Liveness {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Liveness {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

impl Liveness {
    pub fn start(store: PgStore, key: i32) -> Self {
        let (settled_tx, settled) = tokio::sync::watch::channel(None::<Instant>);
        let holder = tokio::spawn(hold(store.clone(), key, settled_tx));
        let rescuer = tokio::spawn(rescue(store, settled));
        Self { tasks: vec![holder, rescuer] }
    }
}

/// Keeps the lock; publishes from when this process may rescue (`None` while it holds no lock).
async fn hold(store: PgStore, key: i32, settled: tokio::sync::watch::Sender<Option<Instant>>) {
    let mut first = true;
    loop {
        match within(store.take_process_lock(key)).await {
            Ok(Some(mut lock)) => {
                let wait = if first { Duration::ZERO } else { SETTLE };
                first = false;
                settled.send_replace(Some(Instant::now() + wait));
                tracing::debug!(key, "Worker process lock held.");
                loop {
                    tokio::time::sleep(PING).await;
                    if let Err(error) = within(lock.check()).await {
                        tracing::warn!(key, %error, "Lost the worker process lock's connection; taking it again. Meanwhile other processes may run this process's jobs a second time.");
                        break;
                    }
                }
                settled.send_replace(None);
            }
            Ok(None) => tracing::warn!(key, "Another session holds this process's lock key; retrying."),
            Err(error) => tracing::debug!(key, %error, "Cannot take the worker process lock yet."),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// `op` within [`TIMEOUT`]; a timeout is an error like the store's own (as text: only logged).
async fn within<T>(op: impl Future<Output = Result<T, fleet_store::StoreError>>) -> Result<T, String> {
    match tokio::time::timeout(TIMEOUT, op).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {TIMEOUT:?}")),
    }
}

async fn rescue(store: PgStore, settled: tokio::sync::watch::Receiver<Option<Instant>>) {
    let mut absent = Absences::default();
    let mut tick = tokio::time::interval(SCAN);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if settled.borrow().is_none_or(|at| Instant::now() < at) {
            continue;
        }
        let gone = match store.gone_processes().await {
            Ok(gone) => gone,
            Err(error) => {
                tracing::debug!(%error, "Cannot look for jobs of gone worker processes.");
                continue;
            }
        };
        let due = absent.observe(&gone, Instant::now(), GRACE);
        if due.is_empty() {
            continue;
        }
        match store.rescue_jobs_of(&due).await {
            Ok(rescued) => {
                for (pool, n) in rescued {
                    metrics::counter!("callfleet_jobs_rescued_total", "pool" => pool.as_str()).increment(n);
                    tracing::warn!(pool = pool.as_str(), jobs = n, processes = ?due, "Re-enqueued the claimed jobs of a worker process that is gone.");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "Re-enqueueing the jobs of a gone worker process failed; retrying.")
            }
        }
    }
}

/// Since when each process key has been seen without its lock, on consecutive looks (pure).
#[derive(Default)]
struct Absences {
    since: HashMap<i64, Instant>,
}

impl Absences {
    /// Records the keys `absent` at `now`; returns those absent on every look for `grace` or more.
    fn observe(&mut self, absent: &[i64], now: Instant, grace: Duration) -> Vec<i64> {
        self.since.retain(|key, _| absent.contains(key));
        for key in absent {
            self.since.entry(*key).or_insert(now);
        }
        let mut due: Vec<i64> =
            self.since.iter().filter(|(_, at)| now - **at >= grace).map(|(key, _)| *key).collect();
        due.sort_unstable();
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_due_only_after_being_absent_on_every_look_for_the_grace() {
        let mut absent = Absences::default();
        let t0 = Instant::now();
        let grace = Duration::from_millis(600);
        assert!(absent.observe(&[7], t0, grace).is_empty());
        assert!(absent.observe(&[7, 9], t0 + Duration::from_millis(400), grace).is_empty());
        assert_eq!(absent.observe(&[7, 9], t0 + Duration::from_millis(600), grace), vec![7]);
        // 7 came back (its lock, or it has no running job any more); seen gone again later, it
        // starts from scratch.
        assert!(absent.observe(&[9], t0 + Duration::from_millis(800), grace).is_empty());
        assert_eq!(absent.observe(&[9], t0 + Duration::from_millis(1000), grace), vec![9]);
        assert_eq!(absent.observe(&[7, 9], t0 + Duration::from_millis(1100), grace), vec![9]);
    }

    #[test]
    fn process_keys_are_positive() {
        assert!((0..1000).map(|_| process_key()).all(|k| k >= 0));
    }
}
