//! The agent's durable state, one SQLite file (`state.sqlite3`) in the data directory. Every
//! write is its own fully synced transaction, so a crash mid-run loses no committed record.
//!
//! - [`audit`]: the audit log as a hash chain, and its verification;
//! - [`switches`]: kill switches for tools and agents;
//! - [`ledger`]: token and fuel budgets, reserved before each call and settled after;
//! - [`approvals`]: pending human approvals and the paused runs waiting for them;
//! - [`metrics`]: counters per prompt version, tool and gate, read from the audit log.

pub mod approvals;
pub mod audit;
pub mod ledger;
pub mod metrics;
pub mod switches;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

use crate::sqlite::OpenError;

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite failed.
    #[error("agent state {}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A stored record is not what this version wrote.
    #[error("agent state {}: {message}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The state database of one data directory.
#[derive(Debug)]
pub struct StateStore {
    db: Mutex<Connection>,
    path: PathBuf,
}

impl StateStore {
    /// Opens (creating if needed) `state.sqlite3` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<StateStore, OpenError> {
        let (db, path) = crate::sqlite::open_private(data_dir, "state.sqlite3")?;
        db.execute_batch(
            &[
                audit::SCHEMA,
                switches::SCHEMA,
                ledger::SCHEMA,
                approvals::SCHEMA,
            ]
            .concat(),
        )
        .map_err(|e| OpenError {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(StateStore {
            db: Mutex::new(db),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sqlite(&self, source: rusqlite::Error) -> StateError {
        StateError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}
