//! The store's one error type, and the single conversion from sqlx errors into it.
//!
//! Every variant that wraps a failure keeps it as its `source()`, so logs can show the whole
//! chain. The `Display` text of a database failure is our own sentence, never the database's: a
//! caller that answers an HTTP request shows `to_string()` without leaking table names,
//! statements or connection details.

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, is overloaded or is shutting down: try again later
    /// (the ingress answers 503).
    #[error("the store is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Something in the store could not be decoded or encoded: a bug or a manual edit, not
    /// worth retrying.
    #[error("corrupt stored data ({what})")]
    Corrupt {
        what: &'static str,
        #[source]
        source: BoxError,
    },
    /// The request refers to something that does not exist or does not fit (unknown user, user
    /// not in that organization): the caller's mistake, nothing was changed. The text is ours.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database refused the statement (a constraint, a bug in our SQL).
    #[error("the database refused the operation")]
    Database(#[source] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("the migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database file's directory could not be created.
    #[error("cannot create the database directory {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    pub(crate) fn corrupt(what: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Corrupt { what, source: source.into() }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => Self::Unavailable(e),
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
                    Self::Unavailable(e)
                } else {
                    Self::Database(e)
                }
            }
            E::Decode(_) | E::ColumnDecode { .. } => Self::corrupt("a column", e),
            _ => Self::Database(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn database_text_stays_in_the_source() {
        let e = StoreError::from(sqlx::Error::Protocol("relation \"secret_table\" does not exist".into()));
        assert_eq!(e.to_string(), "the database refused the operation");
        assert!(e.source().unwrap().to_string().contains("secret_table"));
        let down = StoreError::from(sqlx::Error::PoolTimedOut);
        assert!(down.is_transient());
        assert_eq!(down.to_string(), "the store is unavailable");
    }
}
