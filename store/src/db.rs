//! Opening the configured engine.

use std::sync::Arc;

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::wake::QueueWaker;
use crate::{Store, StoreError};

/// SQLite's pool unless configured otherwise.
const SQLITE_CONNECTIONS: u32 = 8;

/// How many connections a process opens, and whether an operator chose the number
/// (`CALLFLEET_DB_MAX_CONNECTIONS`) or the role sized it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSize {
    pub max: u32,
    pub configured: bool,
}

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
        Self::open_with(url, PoolSize { max: 16, configured: false }).await
    }

    /// [`Self::open`] with `size` connections at most. SQLite keeps its own 8 (one writer at a
    /// time; more connections only wait on its lock) unless the size was configured.
    pub async fn open_with(url: &str, size: PoolSize) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(PgStore::connect(url, size.max)?))
        } else {
            let max = if size.configured { size.max } else { SQLITE_CONNECTIONS };
            Ok(Self::Sqlite(SqliteStore::connect(url, max).await?))
        }
    }

    /// The most connections this process opens.
    pub fn max_connections(&self) -> u32 {
        self.store().connections().max
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
