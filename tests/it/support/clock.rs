//! A clock a test moves by hand, shared by a fleet's store, timers and state machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

/// Milliseconds since the epoch, moved only by the test.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn at(t: DateTime<Utc>) -> Self {
        Self(Arc::new(AtomicI64::new(t.timestamp_millis())))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    /// Moves to `t` (never backwards).
    pub fn set(&self, t: DateTime<Utc>) {
        self.0.fetch_max(t.timestamp_millis(), Ordering::SeqCst);
    }

    pub fn clock(&self) -> fleet_store::sql::Clock {
        let ms = self.0.clone();
        Arc::new(move || Utc.timestamp_millis_opt(ms.load(Ordering::SeqCst)).unwrap())
    }
}
