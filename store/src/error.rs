//! The store's one error type, and the single conversion from sqlx errors into it.

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, is overloaded or is shutting down: try again later
    /// (the ingress answers 503).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A payload in the store could not be decoded: a bug or a manual edit, not worth retrying.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The request refers to something that does not exist or does not fit (unknown user, user
    /// not in that organization): the caller's mistake, nothing was changed.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Anything else the database reported.
    #[error("store error: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
                Self::Unavailable(e.to_string())
            }
            E::Database(db) => {
                let code = db.code().unwrap_or_default();
                // 08xxx connection exceptions, 57P0x shutdown/cannot connect, 53xxx out of resources,
                // SQLite 5/6 (busy/locked).
                if code.starts_with("08")
                    || code.starts_with("57P")
                    || code.starts_with("53")
                    || code == "5"
                    || code == "6"
                {
                    Self::Unavailable(e.to_string())
                } else {
                    Self::Other(e.to_string())
                }
            }
            E::Decode(_) | E::ColumnDecode { .. } => Self::Corrupt(e.to_string()),
            _ => Self::Other(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Other(format!("migration failed: {e}"))
    }
}
