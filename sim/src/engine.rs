//! The shared core: the world behind its lock, the clock, the delivery lanes and the waiting primitives.
//!
//! Locking rule: `Core::world` is a `std::sync::Mutex` taken for short, synchronous critical sections only
//! (never across `.await`); a poisoned lock is recovered (the world stays usable for assertions after a
//! panicking test thread). Every entry point follows the same pattern: lock → [`Core::sync_clock`] →
//! `run_due` (catch up) → change → `run_due` (what became due now) → unlock → wake the clock driver.
//!
//! Waiting: `pending` counts attempts handed to lanes and not finished; `idle` is notified whenever one
//! finishes. [`Core::settle`] returns once nothing is due and nothing is in flight.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{ClockMode, SimConfig};
use crate::delivery::signing::Signer;
use crate::delivery::{self, Outgoing};
use crate::error::SimError;
use crate::world::World;

pub(crate) struct Core {
    pub config: Arc<SimConfig>,
    world: Mutex<World>,
    pub signer: Signer,
    pub start: Instant,
    pub pending: Arc<AtomicUsize>,
    idle: Notify,
    wake: Notify,
    pub http: reqwest::Client,
    /// Constant `/v2` answer latency in ms (see [`SimConfig::api_latency`]).
    api_latency_ms: AtomicU64,
    /// The app-event secret and its verifier.
    pub events_secret: String,
    pub events: crate::app_events::Verifier,
}

impl Core {
    pub fn new(
        config: Arc<SimConfig>,
        world: World,
        pending: Arc<AtomicUsize>,
        http: reqwest::Client,
        start: Instant,
    ) -> Result<Self, SimError> {
        let events_secret =
            config.events_secret.clone().unwrap_or_else(|| crate::app_events::secret_for_seed(config.seed));
        let events = crate::app_events::Verifier::new(&events_secret, config.events_tolerance)?;
        Ok(Self {
            events_secret,
            events,
            signer: Signer::from_seed(config.seed),
            world: Mutex::new(world),
            start,
            pending,
            idle: Notify::new(),
            wake: Notify::new(),
            api_latency_ms: AtomicU64::new(u64::try_from(config.api_latency.as_millis()).unwrap_or(u64::MAX)),
            config,
            http,
        })
    }

    pub fn api_latency(&self) -> Duration {
        Duration::from_millis(self.api_latency_ms.load(Ordering::Relaxed))
    }

    pub fn set_api_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.api_latency_ms.store(ms, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// In real-clock mode, moves sim time up to tokio time.
    fn sync_clock(&self, w: &mut World) {
        if self.config.clock == ClockMode::Real {
            let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
            w.now = w.now.max(elapsed);
        }
    }

    /// Runs `f` on the world at the current sim time, with due actions processed before and after.
    pub fn with<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let r = {
            let mut w = self.lock();
            self.sync_clock(&mut w);
            w.run_due();
            let r = f(&mut w);
            w.run_due();
            r
        };
        self.wake.notify_one();
        r
    }

    /// Changes the world without running due actions (delivery lanes: what follows their results is run by
    /// the clock driver or by `settle`, in timeline order, never in HTTP completion order).
    fn update<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let r = {
            let mut w = self.lock();
            self.sync_clock(&mut w);
            f(&mut w)
        };
        self.wake.notify_one();
        r
    }

    /// Reads the world without running anything.
    pub fn read<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        f(&self.lock())
    }

    /// Waits until nothing is due at the current sim time and no delivery attempt is in flight.
    ///
    /// Works in waves: wait until every attempt in flight has been answered, then run what is due (retries,
    /// duplicates, …) in timeline order, and repeat. Running due work only between waves keeps the order of
    /// effects independent of which HTTP exchange finished first.
    pub async fn settle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.pending.load(Ordering::SeqCst) > 0 {
                notified.await;
                continue;
            }
            let due = self.with(|w| w.has_due());
            if !due && self.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
        }
    }

    /// Manual clock: moves sim time forward by `by`, one due time at a time, settling deliveries between
    /// steps so the receiver's answers (and retries) land at the right sim time.
    pub async fn advance(&self, by: Duration) -> Result<(), SimError> {
        if self.config.clock != ClockMode::Manual {
            return Err(SimError::NotManualClock);
        }
        let target = self.read(|w| w.now).saturating_add(u64::try_from(by.as_millis()).unwrap_or(u64::MAX));
        loop {
            self.settle().await;
            let stepped = {
                let mut w = self.lock();
                w.step_to(target)
            };
            if !stepped {
                break;
            }
        }
        self.with(|w| w.now = w.now.max(target));
        self.settle().await;
        Ok(())
    }

    /// Real clock: sleeps until the next due action (or a wake-up) and runs what is due.
    pub async fn drive(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let wake = self.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let next = {
                let mut w = self.lock();
                self.sync_clock(&mut w);
                w.run_due();
                w.timeline.next_due()
            };
            let sleep = async {
                match next {
                    Some(ms) => tokio::time::sleep_until(self.start + Duration::from_millis(ms)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = sleep => {}
                () = &mut wake => {}
            }
            self.idle.notify_waiters();
        }
    }

    /// The delivery lanes: every attempt the world dispatches arrives here, keyed by its lane (a leg, or a
    /// call session). A lane has at most one attempt in flight and sends the rest in arrival order; lanes
    /// are independent, so attempts of different legs dispatched at the same sim time are on the wire at
    /// the same moment. At most `max_in_flight` attempts are in flight overall (first come, first served).
    pub async fn lanes(
        self: Arc<Self>,
        mut rx: UnboundedReceiver<Outgoing>,
        max_in_flight: usize,
        cancel: CancellationToken,
    ) {
        // Busy lanes (one attempt in flight or ready), with the attempts waiting behind it.
        let mut busy: HashMap<Arc<str>, VecDeque<Outgoing>> = HashMap::new();
        // Attempts whose lane is free, waiting for an in-flight slot.
        let mut ready: VecDeque<Outgoing> = VecDeque::new();
        let mut in_flight = FuturesUnordered::new();
        loop {
            while in_flight.len() < max_in_flight {
                let Some(out) = ready.pop_front() else { break };
                in_flight.push(self.clone().attempt(out));
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                out = rx.recv() => match out {
                    None => return,
                    Some(out) => match busy.get_mut(&out.delivery.lane) {
                        Some(waiting) => waiting.push_back(out),
                        None => {
                            busy.insert(out.delivery.lane.clone(), VecDeque::new());
                            ready.push_back(out);
                        }
                    },
                },
                Some(lane) = in_flight.next(), if !in_flight.is_empty() => {
                    match busy.get_mut(&lane).and_then(VecDeque::pop_front) {
                        Some(next) => ready.push_back(next),
                        None => {
                            busy.remove(&lane);
                        }
                    }
                }
            }
        }
    }

    /// Sends one attempt and records its outcome; returns its lane.
    async fn attempt(self: Arc<Self>, out: Outgoing) -> Arc<str> {
        let lane = out.delivery.lane.clone();
        let outcome = delivery::send(&self.http, &self.signer, &out).await;
        self.update(|w| w.delivery_finished(out, outcome));
        self.pending.fetch_sub(1, Ordering::SeqCst);
        self.idle.notify_waiters();
        lane
    }
}
