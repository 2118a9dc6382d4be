//! What can go wrong, each error naming the database (a file, or a URL without its password).

use std::path::PathBuf;

use crate::Target;

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// SQLite failed.
    #[error("database {location}: {source}")]
    Sqlite {
        /// The file.
        location: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// PostgreSQL refused or failed a statement.
    #[error("database {location}: {}", postgres_message(source))]
    Postgres {
        /// The URL, without its password.
        location: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// PostgreSQL cannot be reached, or no connection came free in time.
    #[error("database {location} is unreachable: {message}")]
    Unreachable {
        /// The URL, without its password.
        location: String,
        /// What happened.
        message: String,
    },
    /// The write-ahead log could not be flushed to the disk.
    #[error("database {location}: flushing {}: {source}", wal.display())]
    Flush {
        /// The file.
        location: String,
        /// Its write-ahead log.
        wal: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The schema is not the one this build knows.
    #[error("database {location}: {message}")]
    Schema {
        /// The file or URL.
        location: String,
        /// What is wrong, and what to run.
        message: String,
    },
    /// A column did not hold what the query expects: a bug, or a database changed by hand.
    #[error("column {index} holds {found}, not {expected}")]
    Column {
        /// The column, from 0.
        index: usize,
        /// What the caller asked for.
        expected: &'static str,
        /// What it holds.
        found: &'static str,
    },
}

/// A PostgreSQL error with the server's own message, detail and SQLSTATE when it sent one.
fn postgres_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut message = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                message.push_str(": ");
                message.push_str(detail);
            }
            message
        }
        None => match std::error::Error::source(error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        },
    }
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the database {location}: {message}")]
pub struct OpenError {
    /// The file, or the URL without its password.
    pub location: String,
    /// What went wrong.
    pub message: String,
}

impl OpenError {
    pub(crate) fn new(target: &Target, error: impl std::fmt::Display) -> OpenError {
        OpenError {
            location: target.location(),
            message: error.to_string(),
        }
    }

    /// `error` met while opening `target`, without naming the database twice.
    pub(crate) fn from_db(target: &Target, error: DbError) -> OpenError {
        let message = match error {
            DbError::Schema { message, .. } => message,
            DbError::Unreachable { message, .. } => format!("unreachable: {message}"),
            other => other.to_string(),
        };
        OpenError {
            location: target.location(),
            message,
        }
    }
}
