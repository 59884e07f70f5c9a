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
//! event id makes the retry harmless even if the slow commit did land).

use std::sync::Arc;
use std::time::Duration;

use fleet_store::{Accepted, Engine, NewWebhook, Store};
use tokio::sync::{mpsc, oneshot};

type Reply = oneshot::Sender<Result<Accepted, AckError>>;

/// Why a delivery was not (or may not have been) stored: the caller must not acknowledge it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AckError {
    #[error("the ingress is saturated; retry")]
    Saturated,
    #[error("the writer stopped")]
    WriterStopped,
    #[error("the store did not commit in time")]
    CommitTimeout,
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
    tx: mpsc::Sender<(NewWebhook, Reply)>,
}

impl AckBatcher {
    /// Starts the writers. They stop when every handle is dropped.
    pub fn start(store: Arc<dyn Store>, config: BatcherConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..config.writers.max(1) {
            tokio::spawn(writer(store.clone(), rx.clone(), config));
        }
        Self { tx }
    }

    /// Stores one webhook (with its job) and returns what became of it. `Err` means it was not
    /// stored, or may not have been: the caller must not acknowledge it.
    pub async fn submit(&self, webhook: NewWebhook) -> Result<Accepted, AckError> {
        let (reply, outcome) = oneshot::channel();
        self.tx.try_send((webhook, reply)).map_err(|_| AckError::Saturated)?;
        outcome.await.map_err(|_| AckError::WriterStopped)?
    }
}

async fn writer(
    store: Arc<dyn Store>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<(NewWebhook, Reply)>>>,
    config: BatcherConfig,
) {
    let mut batch = Vec::with_capacity(config.max_batch);
    loop {
        {
            let mut rx = rx.lock().await;
            if rx.recv_many(&mut batch, config.max_batch).await == 0 {
                return;
            }
        }
        let (webhooks, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        metrics::histogram!("callfleet_webhook_batch_size").record(webhooks.len() as f64);
        let result = tokio::time::timeout(config.commit_timeout, store.accept_webhooks(&webhooks)).await;
        match result {
            Ok(Ok(outcomes)) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), batch = replies.len(),
                    "Webhook batch not stored; answering 503.");
                let why = if e.is_transient() { "unavailable" } else { "refused the batch" };
                fail_all(replies, AckError::Store(why))
            }
            Err(_) => fail_all(replies, AckError::CommitTimeout),
        }
    }
}

fn fail_all(replies: Vec<Reply>, why: AckError) {
    for reply in replies {
        let _ = reply.send(Err(why.clone()));
    }
}
