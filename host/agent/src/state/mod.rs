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
pub mod records;
pub mod switches;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

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

/// Why the state database could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the agent state {}: {message}", path.display())]
pub struct OpenError {
    /// The database file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// The state database of one data directory.
#[derive(Debug)]
pub struct StateStore {
    db: Mutex<Connection>,
    path: PathBuf,
}

impl StateStore {
    /// Opens (creating if needed) `state.sqlite3` in `data_dir`: mode 700 for a directory it
    /// creates and 600 for a new file (SQLite gives its journals the same), write-ahead logged and
    /// fully synced on commit.
    pub fn open(data_dir: &Path) -> Result<StateStore, OpenError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let path = data_dir.join("state.sqlite3");
        let fail = |message: String| OpenError {
            path: path.clone(),
            message,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|e| fail(e.to_string()))?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| fail(e.to_string()))?;
        let db = Connection::open(&path).map_err(|e| fail(e.to_string()))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(|e| fail(e.to_string()))?;
        migrate(&db).map_err(fail)?;
        Ok(StateStore {
            db: Mutex::new(db),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version this build reads and writes (SQLite's `user_version`).
    pub const VERSION: i32 = 3;

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

/// Brings the database to [`StateStore::VERSION`], in one transaction: version 1 (the tables,
/// also what a new file starts from) then each migration. A file from a newer version is
/// refused rather than read wrongly.
fn migrate(db: &Connection) -> Result<(), String> {
    let version: i32 = db
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| e.to_string())?;
    if version > StateStore::VERSION {
        return Err(format!(
            "it was written by a newer harness (state version {version}; this one knows up to {})",
            StateStore::VERSION
        ));
    }
    if version == StateStore::VERSION {
        return Ok(());
    }
    let mut steps = vec![
        audit::SCHEMA,
        switches::SCHEMA,
        ledger::SCHEMA,
        approvals::SCHEMA,
    ];
    if version < 2 {
        steps.push(audit::MIGRATE_TO_2);
    }
    if version < 3 {
        steps.push(approvals::MIGRATE_TO_3);
    }
    let batch = format!(
        "BEGIN IMMEDIATE; {} PRAGMA user_version = {}; COMMIT;",
        steps.concat(),
        StateStore::VERSION
    );
    db.execute_batch(&batch).map_err(|e| {
        let _ = db.execute_batch("ROLLBACK");
        format!("migrating from state version {version}: {e}")
    })
}
