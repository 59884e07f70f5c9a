//! NOTIFY of new due jobs (Postgres), one LISTEN connection per process.
//!
//! The job trigger (`migrations/postgres/*_statement_level_job_notify.sql`) notifies channel
//! `apalis::job::insert` with `{"job_type": <queue>, …}` once per queue per inserting statement.
//! apalis's own `Pubsub` opens one listener per worker pool, each holding a connection of the
//! pool for life (eight of sixteen for `--pool all`), and its stream ends at the first connection
//! error (a new one comes only with the worker's next restart). [`JobNotifications`] is the one
//! listener of a process: its connection
//! lives in a pool of its own (one connection, the main pool's options), so jobs never wait on
//! it, and it reconnects by itself (sqlx's `PgListener` re-issues the LISTEN).
//!
//! Failure behaviour: [`JobNotifications::next`] returns [`Notice::Reconnected`] after the
//! connection was lost and taken again — notifications sent in between are gone, so the caller
//! wakes every pool once — and an error while the database is unreachable; the caller retries
//! with backoff.

use std::time::Duration;

use fleet_jobs::Pool as JobPool;
use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::StoreError;
use crate::postgres::PgStore;

const CHANNEL: &str = "apalis::job::insert";

/// What the listener heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Jobs of this queue were inserted and are due.
    Jobs(JobPool),
    /// The connection was lost and is back: anything may have been inserted meanwhile.
    Reconnected,
}

/// This process's LISTEN for new jobs.
pub struct JobNotifications {
    listener: PgListener,
}

#[derive(serde::Deserialize)]
struct Payload {
    job_type: String,
}

impl PgStore {
    /// Connects a listener of its own for new due jobs.
    pub async fn listen_for_jobs(&self) -> Result<JobNotifications, StoreError> {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with((*self.pool().connect_options()).clone());
        let mut listener = PgListener::connect_with(&own).await?;
        // A lost connection is taken again before `try_recv` reports it, so nothing is missed
        // between the report and the reconnect.
        listener.eager_reconnect(true);
        listener.listen(CHANNEL).await?;
        Ok(JobNotifications { listener })
    }
}

impl JobNotifications {
    /// The next notice. Payloads of unknown queues or another shape are skipped.
    pub async fn next(&mut self) -> Result<Notice, StoreError> {
        loop {
            let Some(notification) = self.listener.try_recv().await? else {
                return Ok(Notice::Reconnected);
            };
            let Ok(payload) = serde_json::from_str::<Payload>(notification.payload()) else { continue };
            if let Ok(pool) = payload.job_type.parse::<JobPool>() {
                return Ok(Notice::Jobs(pool));
            }
        }
    }
}
