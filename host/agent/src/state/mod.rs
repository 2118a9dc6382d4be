//! The agent's durable state, one SQLite file (`state.sqlite3`) in the data directory. Every
//! write is its own transaction, so a crash of the process loses no committed record; how long a
//! commit waits for the disk, against a power loss, is the whitelist's [`Durability`].
//!
//! - [`audit`]: the audit log as a hash chain, and its verification;
//! - [`switches`]: kill switches for tools and agents;
//! - [`ledger`]: token and fuel budgets, reserved before each call and settled after;
//! - [`approvals`]: pending human approvals and the paused runs waiting for them;
//! - [`runs`]: runs as the audit log tells them, and the feedback people give on them;
//! - [`metrics`]: counters per prompt version, tool and gate, read from the audit log.

pub mod approvals;
pub mod audit;
mod checkpoint;
pub mod ledger;
pub mod metrics;
pub mod records;
pub mod runs;
pub mod switches;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// A state operation run off the async workers did not finish (it panicked, or the
    /// runtime is shutting down).
    #[error("agent state {}: {message}", path.display())]
    Interrupted {
        /// The database file.
        path: PathBuf,
        /// What was interrupted, and how.
        message: String,
    },
    /// The write-ahead log could not be flushed to the disk.
    #[error("agent state {}: flushing {}: {source}", path.display(), wal.display())]
    Flush {
        /// The database file.
        path: PathBuf,
        /// Its write-ahead log.
        wal: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
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

/// How long a committed write waits for the disk: what a power loss or an operating-system
/// crash (not a crash of the process, which loses nothing) can take back. `[state] durability`
/// in the whitelist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Durability {
    /// Every write is on disk before it returns: one disk flush per record.
    EveryRecord,
    /// Every write is on disk before it returns except the [outcome
    /// records](records::AuditRecord::is_outcome) and fuel settlements, which reach the disk with
    /// the next write that waits (a call's admission, at the latest) or at a checkpoint. A call's
    /// admission is on disk before the tool runs, so a power loss can take back the outcome of
    /// the last calls but never hide that a call was made. One disk flush per call, shared by
    /// the calls admitted while it runs (group commit).
    #[default]
    Admissions,
    /// No write waits for the disk; records reach it at checkpoints (SQLite's `synchronous =
    /// NORMAL` in write-ahead mode). For disks that survive power loss, or state that may lose
    /// its last records.
    Os,
}

/// The state database of one data directory.
#[derive(Debug)]
pub struct StateStore {
    db: Mutex<Connection>,
    path: PathBuf,
    durability: Durability,
    flushes: Flushes,
    _checkpointer: checkpoint::Checkpointer,
}

/// Group commit under [`Durability::Admissions`]: a write that must be on disk commits without
/// waiting (SQLite's `synchronous = NORMAL`), then waits for a flush of the write-ahead log that
/// began after its commit. Writes that commit while one flush runs share the next, so calls in
/// flight together wait for the disk once, not once each.
#[derive(Debug, Default)]
struct Flushes {
    /// Commits so far, numbered under the connection's lock once they are written.
    committed: AtomicU64,
    /// The last commit known to be on disk; held while the log is flushed.
    flushed: Mutex<u64>,
    /// Flushes made, for the tests.
    #[cfg(test)]
    made: AtomicU64,
}

impl StateStore {
    /// Opens (creating if needed) `state.sqlite3` in `data_dir` with the default
    /// [`Durability`]; see [`StateStore::open_with`].
    pub fn open(data_dir: &Path) -> Result<StateStore, OpenError> {
        StateStore::open_with(data_dir, Durability::default())
    }

    /// Opens the state of the whitelist `config`: its data directory, its `[state]` settings.
    pub fn for_config(config: &crate::config::Config) -> Result<StateStore, OpenError> {
        StateStore::open_with(config.policy().host().data_dir(), config.durability())
    }

    /// Opens (creating if needed) `state.sqlite3` in `data_dir`: mode 700 for a directory it
    /// creates and 600 for a new file (SQLite gives its journals the same), write-ahead logged,
    /// commits waiting for the disk as `durability` says.
    pub fn open_with(data_dir: &Path, durability: Durability) -> Result<StateStore, OpenError> {
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
        // Under `Admissions`, the writes that must wait for the disk flush it themselves.
        let synchronous = match durability {
            Durability::EveryRecord => "FULL",
            Durability::Admissions | Durability::Os => "NORMAL",
        };
        db.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {synchronous};
             PRAGMA busy_timeout = 5000;"
        ))
        .map_err(|e| fail(e.to_string()))?;
        migrate(&db).map_err(fail)?;
        let checkpointer = checkpoint::Checkpointer::start(&db, &path).map_err(fail)?;
        Ok(StateStore {
            db: Mutex::new(db),
            path,
            durability,
            flushes: Flushes::default(),
            _checkpointer: checkpointer,
        })
    }

    /// How long this store's commits wait for the disk.
    pub fn durability(&self) -> Durability {
        self.durability
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

    /// Runs `write` on the connection; under [`Durability::Admissions`], returns once what it
    /// committed is on disk (see [`Flushes`]).
    fn durable<T, E: From<StateError>>(
        &self,
        write: impl FnOnce(&mut Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        self.durable_when(write, |_| true)
    }

    /// [`StateStore::durable`] for a `write` that may commit nothing (`committed` says from
    /// what it returned): then nothing waits for the disk.
    fn durable_when<T, E: From<StateError>>(
        &self,
        write: impl FnOnce(&mut Connection) -> Result<T, E>,
        committed: impl FnOnce(&T) -> bool,
    ) -> Result<T, E> {
        let (written, commit) = {
            let mut db = self.lock();
            let written = write(&mut db)?;
            let commit = committed(&written)
                .then(|| self.flushes.committed.fetch_add(1, Ordering::SeqCst) + 1);
            (written, commit)
        };
        if let Some(commit) = commit
            && self.durability == Durability::Admissions
        {
            self.flush_through(commit)?;
        }
        Ok(written)
    }

    /// Runs `write`, whose commits record what already happened, without waiting for the disk
    /// where the durability allows it (see [`Durability::Admissions`]).
    fn after_the_fact<T>(
        &self,
        write: impl FnOnce(&mut Connection) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        write(&mut self.lock())
    }

    /// Waits until commit number `commit` is on disk: flushes the write-ahead log, with every
    /// commit made so far in it, unless a flush that began after that commit already did.
    fn flush_through(&self, commit: u64) -> Result<(), StateError> {
        let mut flushed = self
            .flushes
            .flushed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *flushed >= commit {
            return Ok(());
        }
        let through = self.flushes.committed.load(Ordering::SeqCst);
        // Opened each time: SQLite may replace the file when the last connection closes.
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        std::fs::File::open(&wal)
            .and_then(|log| log.sync_data())
            .map_err(|source| StateError::Flush {
                path: self.path.clone(),
                wal,
                source,
            })?;
        #[cfg(test)]
        self.flushes.made.fetch_add(1, Ordering::SeqCst);
        *flushed = through;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::records::{AuditRecord, ToolAdmitted, ToolRefused};

    fn admitted(i: usize) -> AuditRecord {
        AuditRecord::ToolAdmitted(ToolAdmitted {
            call_id: format!("c{i}"),
            tool: "calc".into(),
            function: "calc.apply".into(),
            principal: "ana".into(),
        })
    }

    fn refused(i: usize) -> AuditRecord {
        AuditRecord::ToolRefused(ToolRefused {
            call_id: format!("c{i}"),
            name: "calc__apply".into(),
            gate: records::Gate::Rate,
            reason: "too often".into(),
        })
    }

    /// SQLite's `synchronous`: 1 is NORMAL (commits wait for the OS), 2 is FULL (for the disk).
    #[test]
    fn only_every_record_has_sqlite_wait_for_the_disk_on_each_commit() {
        for (durability, synchronous) in [
            (Durability::EveryRecord, 2),
            (Durability::Admissions, 1),
            (Durability::Os, 1),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = StateStore::open_with(dir.path(), durability).unwrap();
            let set: i64 = store
                .lock()
                .query_row("PRAGMA synchronous", [], |row| row.get(0))
                .unwrap();
            assert_eq!(set, synchronous, "{durability:?}");
        }
    }

    #[test]
    fn admissions_in_flight_together_share_flushes_and_outcomes_wait_for_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open_with(dir.path(), Durability::Admissions).unwrap();
        store.append_audit("r", admitted(0)).unwrap();
        assert_eq!(store.flushes.made.load(Ordering::SeqCst), 1);
        for i in 0..10 {
            store.append_audit("r", refused(i)).unwrap();
        }
        assert_eq!(
            store.flushes.made.load(Ordering::SeqCst),
            1,
            "outcomes do not flush"
        );

        let (threads, each) = (8, 40);
        std::thread::scope(|scope| {
            for t in 0..threads {
                let store = &store;
                scope.spawn(move || {
                    for i in 0..each {
                        store.append_audit("r", admitted(t * each + i)).unwrap();
                        let flushed = *store.flushes.flushed.lock().unwrap();
                        let committed = store.flushes.committed.load(Ordering::SeqCst);
                        assert!(flushed >= 1 && flushed <= committed);
                    }
                });
            }
        });
        let made = store.flushes.made.load(Ordering::SeqCst);
        assert!(
            made < 1 + (threads * each) as u64,
            "{made} flushes for {} admissions",
            threads * each
        );
        assert_eq!(
            *store.flushes.flushed.lock().unwrap(),
            store.flushes.committed.load(Ordering::SeqCst),
            "every commit is on disk, the outcomes with the admissions after them"
        );
        assert!(store.verify_audit(None).unwrap().is_ok());

        let before = store.flushes.made.load(Ordering::SeqCst);
        let refused = store
            .append_audit_if("r", admitted(999), |_| Ok(Some("over the rate")))
            .unwrap();
        assert_eq!(refused.unwrap_err(), "over the rate");
        assert_eq!(
            store.flushes.made.load(Ordering::SeqCst),
            before,
            "a refused admission commits nothing and waits for no flush"
        );

        let os = StateStore::open_with(&dir.path().join("os"), Durability::Os).unwrap();
        os.append_audit("r", admitted(0)).unwrap();
        assert_eq!(os.flushes.made.load(Ordering::SeqCst), 0);
    }
}
