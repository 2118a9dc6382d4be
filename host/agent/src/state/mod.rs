//! The agent's durable state: one SQLite file (`state.sqlite3`) in the data directory, or one
//! PostgreSQL database that several replicas share (`[host] state`). Every write is its own
//! transaction under the database's writer lock, so a crash of the process loses no committed
//! record and a check is one step with the write it guards, whatever other processes do; how
//! long a commit waits for the disk, against a power loss, is the whitelist's [`Durability`].
//!
//! - [`audit`]: the audit log as a hash chain, and its verification;
//! - [`switches`]: kill switches for tools and agents;
//! - [`ledger`]: token and fuel budgets, reserved before each call and settled after;
//! - [`approvals`]: pending human approvals and the paused runs waiting for them;
//! - [`leases`]: the runs servers drive, ended as abandoned when their server dies;
//! - [`runs`]: runs as the audit log tells them, and the feedback people give on them;
//! - [`metrics`]: counters per prompt version, tool and gate, read from the audit log.

pub mod approvals;
pub mod audit;
pub mod leases;
pub mod ledger;
pub mod metrics;
pub mod records;
pub mod runs;
mod schema;
pub mod switches;

use std::path::Path;

use harness_db::{Db, DbError, Dialect, Tx, Wait};
pub use harness_db::{Durability, Migrated, OpenError, Options, Target};
pub use schema::STATE as SCHEMA;

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The database failed (it names itself).
    #[error("agent state: {0}")]
    Database(#[from] DbError),
    /// A state operation run off the async workers did not finish (it panicked, or the
    /// runtime is shutting down).
    #[error("agent state {location}: {message}")]
    Interrupted {
        /// The database file or URL.
        location: String,
        /// What was interrupted, and how.
        message: String,
    },
    /// A stored record is not what this version wrote.
    #[error("agent state {location}: {message}")]
    Corrupt {
        /// The database file or URL.
        location: String,
        /// What is wrong.
        message: String,
    },
}

/// The agent's state: a SQLite file in the data directory, or a PostgreSQL database shared by
/// several replicas.
#[derive(Debug)]
pub struct StateStore {
    db: Db,
}

impl StateStore {
    /// The schema version this build reads and writes.
    pub const VERSION: u32 = 4;

    /// Opens (creating if needed) `state.sqlite3` in `data_dir` with the default
    /// [`Durability`]; see [`StateStore::open_with`].
    pub fn open(data_dir: &Path) -> Result<StateStore, OpenError> {
        StateStore::open_with(data_dir, Durability::default())
    }

    /// Opens the state of the whitelist `config`: its database (`[host] state`, else
    /// `state.sqlite3` in its data directory) and its `[state]` settings.
    pub fn for_config(config: &crate::config::Config) -> Result<StateStore, OpenError> {
        StateStore::open_target(&StateStore::target(config), config.db_options())
    }

    /// Opens (creating if needed) `state.sqlite3` in `data_dir`: mode 700 for a directory it
    /// creates and 600 for a new file, write-ahead logged, commits waiting for the disk as
    /// `durability` says.
    pub fn open_with(data_dir: &Path, durability: Durability) -> Result<StateStore, OpenError> {
        StateStore::open_target(
            &Target::sqlite(data_dir.join(SQLITE_FILE)),
            Options {
                durability,
                ..Options::default()
            },
        )
    }

    /// Opens the state in `target`; a PostgreSQL database must have been migrated
    /// ([`StateStore::migrate`]).
    pub fn open_target(target: &Target, options: Options) -> Result<StateStore, OpenError> {
        debug_assert_eq!(schema::STATE.newest(), StateStore::VERSION);
        Ok(StateStore {
            db: Db::open(target, &schema::STATE, options)?,
        })
    }

    /// Where the whitelist `config` keeps its state.
    pub fn target(config: &crate::config::Config) -> Target {
        config.policy().host().database(SQLITE_FILE)
    }

    /// Brings the state in `target` to [`StateStore::VERSION`] (`harness state migrate`).
    pub fn migrate(target: &Target, options: Options) -> Result<Migrated, MigrateError> {
        let db = Db::connect(target, options)?;
        Ok(db.migrate(&schema::STATE)?)
    }

    /// How long this store's commits wait for the disk.
    pub fn durability(&self) -> Durability {
        self.db.durability()
    }

    /// The database file, or its URL without the password.
    pub fn location(&self) -> &str {
        self.db.location()
    }

    /// Whether the state is shared through PostgreSQL (its writes cross the network).
    pub fn is_shared(&self) -> bool {
        self.db.dialect() == Dialect::Postgres
    }

    /// Whether the database answers now (for `/readyz`).
    pub fn ping(&self) -> Result<(), StateError> {
        Ok(self.db.ping()?)
    }

    /// Runs `read` on the database.
    fn read<T>(
        &self,
        read: impl FnOnce(&mut Tx<'_>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        self.db.read(read)
    }

    /// Runs `write` in one transaction under the writer lock; returns once it is on disk as
    /// far as the [`Durability`] asks.
    fn durable<T, E: From<DbError>>(
        &self,
        write: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.db.write(Wait::Disk, write)
    }

    /// Runs `update`, whose statements are each atomic and check nothing (an upsert, an update
    /// or a delete of known rows), without the writer lock where the database has one to spare
    /// (see [`Db::update`]).
    fn update<T>(
        &self,
        wait: Wait,
        update: impl FnOnce(&mut Tx<'_>) -> Result<T, DbError>,
    ) -> Result<T, StateError> {
        Ok(self.db.update(wait, update)?)
    }

    /// Runs `write`, whose commits record what already happened, without waiting for the disk
    /// where the durability allows it (see [`Durability::Admissions`]).
    fn after_the_fact<T, E: From<DbError>>(
        &self,
        write: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.db.write(Wait::Later, write)
    }

    /// Runs `statements` (`;`-separated) as written: for tests that tamper with the state.
    #[cfg(test)]
    fn tamper(&self, statements: &str) -> Result<(), StateError> {
        self.durable(|tx| {
            for statement in statements.split(';').filter(|s| !s.trim().is_empty()) {
                tx.execute(statement, &[])?;
            }
            Ok::<_, DbError>(())
        })?;
        Ok(())
    }

    fn corrupt(&self, message: String) -> StateError {
        StateError::Corrupt {
            location: self.location().to_owned(),
            message,
        }
    }
}

/// The state's file in a data directory, when it is kept in SQLite.
const SQLITE_FILE: &str = "state.sqlite3";

/// Why `harness state migrate` failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A migration failed (nothing of it was kept).
    #[error(transparent)]
    Database(#[from] DbError),
}
