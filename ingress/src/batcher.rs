//! Group commit for webhook acknowledgements.
//!
//! Each request hands its verified webhook to a small set of writer tasks and waits for the
//! outcome. A writer takes whatever has queued up since its last commit (at least one, at most
//! `max_batch`) and stores the whole batch — rows and jobs — in one transaction. When traffic is
//! light a batch is one webhook and nothing waits; under load one commit (one fsync) acknowledges
//! many webhooks. Either every webhook of a batch is durable or the whole batch is answered 503:
//! there is no partial success to get wrong.
//!
//! A commit that takes longer than `commit_timeout` is answered 503 too (Telnyx retries; the
//! event id makes the retry harmless even if the slow commit did land). A batch that fails because
//! the store is unreachable closes the [`Gate`]: later requests get their 503 at once instead of
//! each waiting out the connection timeout, while one probe at a time finds out when it is back.
//!
//! Metrics: `callfleet_webhook_batch_size`, `callfleet_webhook_queue_seconds` (per webhook, from
//! its hand-over to the start of its batch's transaction) and `callfleet_webhook_commit_seconds`
//! (per batch, the transaction): with `callfleet_webhook_ack_seconds` they say where an ack's
//! time goes — waiting for a writer, in the store, or elsewhere (HTTP, the signature).

use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_store::{Accepted, Engine, NewWebhook, Store};
use tokio::sync::{mpsc, oneshot};

use crate::gate::{Admit, Gate};

type Reply = oneshot::Sender<Result<Accepted, AckError>>;

/// A webhook handed to the writers, with its reply and when it was handed over.
type Pending = (NewWebhook, Reply, Instant);

/// Why a delivery was not (or may not have been) stored: the caller must not acknowledge it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AckError {
    #[error("the ingress is saturated; retry")]
    Saturated,
    #[error("the writer stopped")]
    WriterStopped,
    #[error("the store did not commit in time")]
    CommitTimeout,
    #[error("the store is unreachable; refused at once until a probe commits")]
    StoreDown,
    /// The batch's transaction failed (the cause is logged once per batch by the writer).
    #[error("the store failed: {0}")]
    Store(&'static str),
}

/// Sizing of the group commit.
#[derive(Debug, Clone, Copy)]
pub struct BatcherConfig {
    /// Concurrent writer transactions.
    pub writers: usize,
    /// Most webhooks in one transaction.
    pub max_batch: usize,
    /// Requests that may wait for a writer before new ones are refused with 503.
    pub queue_capacity: usize,
    pub commit_timeout: Duration,
}

impl BatcherConfig {
    /// Postgres commits in parallel well; SQLite has one writer at a time anyway.
    pub fn for_engine(engine: Engine) -> Self {
        let writers = match engine {
            Engine::Postgres => 4,
            Engine::Sqlite => 1,
        };
        Self { writers, max_batch: 256, queue_capacity: 8192, commit_timeout: Duration::from_secs(5) }
    }
}

/// Handle to the writer tasks; cheap to clone.
#[derive(Clone)]
pub struct AckBatcher {
    tx: mpsc::Sender<Pending>,
    gate: Arc<Gate>,
}

impl AckBatcher {
    /// Starts the writers. They stop when every handle is dropped.
    pub fn start(store: Arc<dyn Store>, config: BatcherConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let gate = Arc::new(Gate::default());
        for _ in 0..config.writers.max(1) {
            tokio::spawn(writer(store.clone(), rx.clone(), config, gate.clone()));
        }
        Self { tx, gate }
    }

    /// Stores one webhook (with its job) and returns what became of it. `Err` means it was not
    /// stored, or may not have been: the caller must not acknowledge it.
    pub async fn submit(&self, webhook: NewWebhook) -> Result<Accepted, AckError> {
        let admit = self.gate.admit(Instant::now());
        if admit == Admit::Refuse {
            return Err(AckError::StoreDown);
        }
        let (reply, outcome) = oneshot::channel();
        if self.tx.try_send((webhook, reply, Instant::now())).is_err() {
            if admit == Admit::Probe {
                self.gate.probe_abandoned();
            }
            return Err(AckError::Saturated);
        }
        // The writer tells the gate how the batch went, whether or not this request still waits.
        outcome.await.map_err(|_| AckError::WriterStopped)?
    }
}

async fn writer(
    store: Arc<dyn Store>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>,
    config: BatcherConfig,
    gate: Arc<Gate>,
) {
    let mut batch = Vec::with_capacity(config.max_batch);
    loop {
        {
            let mut rx = rx.lock().await;
            if rx.recv_many(&mut batch, config.max_batch).await == 0 {
                return;
            }
        }
        let started = Instant::now();
        let queue_wait = metrics::histogram!("callfleet_webhook_queue_seconds");
        let (webhooks, replies): (Vec<_>, Vec<_>) = batch
            .drain(..)
            .map(|(webhook, reply, queued_at)| {
                queue_wait.record(started.duration_since(queued_at).as_secs_f64());
                (webhook, reply)
            })
            .unzip();
        metrics::histogram!("callfleet_webhook_batch_size").record(webhooks.len() as f64);
        let result = tokio::time::timeout(config.commit_timeout, store.accept_webhooks(&webhooks)).await;
        metrics::histogram!("callfleet_webhook_commit_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(Ok(outcomes)) => {
                gate.stored();
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), batch = replies.len(),
                    "Webhook batch not stored; answering 503.");
                let why = if e.is_transient() {
                    gate.unreachable(Instant::now());
                    "unavailable"
                } else {
                    gate.probe_abandoned();
                    "refused the batch"
                };
                fail_all(replies, AckError::Store(why))
            }
            Err(_) => {
                gate.unreachable(Instant::now());
                fail_all(replies, AckError::CommitTimeout)
            }
        }
    }
}

fn fail_all(replies: Vec<Reply>, why: AckError) {
    for reply in replies {
        let _ = reply.send(Err(why.clone()));
    }
}
