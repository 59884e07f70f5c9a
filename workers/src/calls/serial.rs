//! One call's transitions, one at a time within a process.
//!
//! A call with N ringing legs receives about 3N webhooks and N dial responses within a second,
//! and the jobs that carry them run concurrently. Left to the compare-and-set alone, every input
//! that loses reloads the whole call, steps it again and retries: measured on the simring bench,
//! conflicts grew with the square of N (≈ 1,240 per call at N = 25 against ≈ 88 committed
//! transitions) and the winning answer waited its turn in that storm for hundreds of
//! milliseconds. Here the inputs of one call queue on an in-memory mutex (tokio's is FIFO), so
//! each one reads the state its predecessor committed and wins on the first try; waiting holds no
//! database connection.
//!
//! This is an optimisation, not the arbiter: processes do not share it, and the store's
//! compare-and-set on the call's version still decides between processes (and between a holder
//! of a stripe and a call that hashes to it in another process). Calls are spread over a fixed
//! set of stripes by a keyed hash, so unrelated calls rarely share one; when they do they only
//! wait for each other's few-millisecond commits. A panic while holding a stripe cannot poison
//! it (tokio's mutex does not poison).

use std::hash::BuildHasher;

use tokio::sync::{Mutex, MutexGuard};

/// Enough stripes that the calls in flight in one process (hundreds at most) rarely collide.
const STRIPES: usize = 1024;

pub struct CallSerializer {
    stripes: Box<[Mutex<()>]>,
    hasher: std::hash::RandomState,
}

impl Default for CallSerializer {
    fn default() -> Self {
        Self { stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(), hasher: Default::default() }
    }
}

impl CallSerializer {
    /// Waits for the turn of `call_session_id`; the turn lasts as long as the guard.
    pub async fn turn(&self, call_session_id: &str) -> MutexGuard<'_, ()> {
        self.stripes[self.stripe(call_session_id)].lock().await
    }

    fn stripe(&self, call_session_id: &str) -> usize {
        (self.hasher.hash_one(call_session_id) % self.stripes.len() as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn one_call_runs_one_turn_at_a_time_in_arrival_order() {
        let serial = Arc::new(CallSerializer::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let first = serial.turn("v3:a").await;
        let mut waiting = Vec::new();
        for i in 0..5 {
            let (serial, inside, order) = (serial.clone(), inside.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = serial.turn("v3:a").await;
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two turns of one call at once");
                order.lock().unwrap().push(i);
                tokio::task::yield_now().await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
            // On this single-threaded runtime the task runs until it queues on the mutex.
            tokio::task::yield_now().await;
        }
        drop(first);
        for task in waiting {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn calls_on_different_stripes_do_not_wait_for_each_other() {
        let serial = CallSerializer::default();
        let a = "v3:a".to_owned();
        let b = (0..).map(|i| format!("v3:b{i}")).find(|b| serial.stripe(b) != serial.stripe(&a)).unwrap();
        let _held = serial.turn(&a).await;
        let other = tokio::time::timeout(std::time::Duration::from_secs(5), serial.turn(&b)).await;
        assert!(other.is_ok(), "a call on another stripe waited");
    }
}
