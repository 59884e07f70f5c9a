//! Opening the configured engine.

use std::sync::Arc;

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::wake::QueueWaker;
use crate::{Store, StoreError};

/// The configured database: one of the two adapters, known concretely so the workers can build
/// the matching apalis backend, and usable as `Arc<dyn Store>` everywhere else.
#[derive(Clone)]
pub enum Db {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

impl Db {
    /// Opens the database named by `url` (`postgres://…` or `sqlite:…`). Postgres connects lazily,
    /// so a fleet process starts even while the database is down and becomes ready when it is up.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(PgStore::connect(url, 16)?))
        } else {
            Ok(Self::Sqlite(SqliteStore::connect(url).await?))
        }
    }

    /// Runs the migrations of the engine (apalis's and ours).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Self::Postgres(s) => s.migrate().await,
            Self::Sqlite(s) => s.migrate().await,
        }
    }

    /// The same database with record times and delayed-job due times read from `clock`.
    pub fn with_clock(self, clock: crate::sql::Clock) -> Self {
        match self {
            Self::Postgres(s) => Self::Postgres(s.with_clock(clock)),
            Self::Sqlite(s) => Self::Sqlite(s.with_clock(clock)),
        }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Postgres(s) => Arc::new(s.clone()),
            Self::Sqlite(s) => Arc::new(s.clone()),
        }
    }

    pub fn waker(&self) -> &QueueWaker {
        match self {
            Self::Postgres(s) => s.waker(),
            Self::Sqlite(s) => s.waker(),
        }
    }
}
