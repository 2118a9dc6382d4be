//! The database under Harness's state: one transaction interface, [`Tx`], over either an
//! embedded SQLite file (the default: one process, no server) or a shared PostgreSQL (several
//! `harness serve` replicas behind a load balancer), with versioned [`Schema`] migrations for
//! both.
//!
//! Code above this crate writes each query once, with PostgreSQL's `$1` placeholders (rewritten
//! for SQLite) and the portable SQL both engines share; the few places where they differ (JSON
//! fields, the DDL of each migration) ask the [`Dialect`]. A write transaction ([`Db::write`])
//! takes the database's single writer lock — SQLite's `BEGIN IMMEDIATE`, a PostgreSQL advisory
//! lock — so a check and the write it guards are one step for every process sharing the
//! database, and the audit chain has one total order; writes that check nothing
//! ([`Db::update`]) leave PostgreSQL's writers alone.
//!
//! Calls block the calling thread for the duration of the query, as SQLite always did; the
//! PostgreSQL connections are driven by a runtime thread of their own, so a caller on an async
//! worker never waits for itself.
//!
//! ```
//! use harness_db::{Db, Dialect, Migration, Options, Schema, Target, Wait, params};
//!
//! static NOTES: Schema = Schema {
//!     name: "notes",
//!     migrations: &[Migration {
//!         version: 1,
//!         sqlite: "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);",
//!         postgres: "CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, text TEXT NOT NULL);",
//!     }],
//! };
//!
//! let dir = tempfile::tempdir()?;
//! let db = Db::open(&Target::sqlite(dir.path().join("notes.sqlite3")), &NOTES, Options::default())?;
//! let id = db.write(Wait::Disk, |tx| {
//!     tx.query_one("INSERT INTO notes (text) VALUES ($1) RETURNING id", params!["hello"])?.int(0)
//! })?;
//! let text = db.read(|tx| tx.query_one("SELECT text FROM notes WHERE id = $1", params![id])?.text(0))?;
//! assert_eq!(text, "hello");
//! assert_eq!(db.dialect(), Dialect::Sqlite);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod migrate;
mod postgres;
mod sqlite;
mod target;
mod tx;
mod value;

use std::time::Duration;

pub use error::{DbError, OpenError};
pub use migrate::{Migrated, Migration, Schema};
pub use target::Target;
pub use tx::{Dialect, Tx};
pub use value::{Param, Row};

/// Builds the parameter list of a query: `params![name, 3, None::<&str>]`.
#[macro_export]
macro_rules! params {
    ($($param:expr),* $(,)?) => {
        &[$($crate::Param::from($param)),*][..]
    };
}

/// How long a committed write waits for the disk: what a power loss or an operating-system
/// crash (not a crash of the process, which loses nothing) can take back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Durability {
    /// Every write is on disk before it returns: one disk flush per record.
    EveryRecord,
    /// Writes made with [`Wait::Disk`] are on disk before they return; those made with
    /// [`Wait::Later`] reach the disk with the next write that waits, or at a checkpoint. One
    /// disk flush per waiting write, shared by the writes committed while it runs (group
    /// commit).
    #[default]
    Admissions,
    /// No write waits for the disk; records reach it at checkpoints. For disks that survive
    /// power loss, or state that may lose its last records.
    Os,
}

/// Whether a write must be on disk before [`Db::write`] returns (under
/// [`Durability::Admissions`]; the other durabilities decide alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// It must: it lets something happen (a call runs, a budget is spent).
    Disk,
    /// It records what already happened and may reach the disk with the next waiting write.
    Later,
}

/// How a database is opened.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long commits wait for the disk.
    pub durability: Durability,
    /// PostgreSQL: the most connections this process opens.
    pub max_connections: usize,
    /// PostgreSQL: how long to wait for a connection, from the pool or from the server.
    pub connect_timeout: Duration,
    /// PostgreSQL: the longest one statement may run (`statement_timeout`).
    pub statement_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::default(),
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

/// An open database: a SQLite file or a PostgreSQL connection pool.
#[derive(Debug)]
pub struct Db {
    backend: Backend,
}

#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per open database, never moved after opening"
)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

impl Db {
    /// Opens `target` for `schema`. A SQLite file is created if needed and migrated to the
    /// schema's newest version (one process owns it); a PostgreSQL database must already be at
    /// that version ([`Db::migrate`], `harness state migrate`), so replicas of different
    /// versions never change the schema under each other. A newer schema is refused on both.
    pub fn open(target: &Target, schema: &Schema, options: Options) -> Result<Db, OpenError> {
        let backend = match target {
            Target::Sqlite(path) => {
                let db = sqlite::Sqlite::open(path, options.durability)?;
                db.migrate(schema, schema.newest())
                    .map_err(|e| OpenError::from_db(target, e))?;
                Backend::Sqlite(db)
            }
            Target::Postgres(url) => {
                let db = postgres::Postgres::open(url, &options)?;
                let db = Db {
                    backend: Backend::Postgres(db),
                };
                db.check_schema(schema)
                    .map_err(|e| OpenError::from_db(target, e))?;
                return Ok(db);
            }
        };
        Ok(Db { backend })
    }

    /// Opens `target` without checking its schema, for [`Db::migrate`] and [`Db::version`].
    pub fn connect(target: &Target, options: Options) -> Result<Db, OpenError> {
        let backend = match target {
            Target::Sqlite(path) => {
                Backend::Sqlite(sqlite::Sqlite::open(path, options.durability)?)
            }
            Target::Postgres(url) => Backend::Postgres(postgres::Postgres::open(url, &options)?),
        };
        Ok(Db { backend })
    }

    /// Where the database is: the file, or the URL without its password.
    pub fn location(&self) -> &str {
        match &self.backend {
            Backend::Sqlite(db) => db.location(),
            Backend::Postgres(db) => db.location(),
        }
    }

    /// Which SQL the database speaks.
    pub fn dialect(&self) -> Dialect {
        match &self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// How long this database's commits wait for the disk.
    pub fn durability(&self) -> Durability {
        match &self.backend {
            Backend::Sqlite(db) => db.durability(),
            Backend::Postgres(db) => db.durability(),
        }
    }

    /// Runs `read` outside any write lock; each statement sees what was committed when it ran.
    pub fn read<T, E: From<DbError>>(
        &self,
        read: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match &self.backend {
            Backend::Sqlite(db) => db.read(read),
            Backend::Postgres(db) => db.read(read),
        }
    }

    /// Runs `write` in one transaction holding the database's writer lock: committed if it
    /// returns `Ok`, rolled back if it returns `Err`. A write that changed rows and `wait`s for
    /// the disk returns once it is there (see [`Durability`]).
    pub fn write<T, E: From<DbError>>(
        &self,
        wait: Wait,
        write: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match &self.backend {
            Backend::Sqlite(db) => db.write(wait, write),
            Backend::Postgres(db) => db.write(wait, write),
        }
    }

    /// Runs `update`, whose statements are each atomic on their own (an upsert, an update or a
    /// delete of known rows) and check nothing they do not write, in one transaction without
    /// the writer lock: on PostgreSQL it waits only for the rows it changes, so it never holds up
    /// the writers that check before they write; on SQLite it is [`Db::write`].
    pub fn update<T, E: From<DbError>>(
        &self,
        wait: Wait,
        update: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match &self.backend {
            Backend::Sqlite(db) => db.write(wait, update),
            Backend::Postgres(db) => db.update(wait, update),
        }
    }

    /// Whether the database answers now (for readiness checks).
    pub fn ping(&self) -> Result<(), DbError> {
        self.read(|tx| tx.query_one("SELECT 1", &[]).map(drop))
    }

    /// The version of `schema` the database holds (0 when it holds none).
    pub fn version(&self, schema: &Schema) -> Result<u32, DbError> {
        match &self.backend {
            Backend::Sqlite(db) => db.version(),
            Backend::Postgres(db) => db.version(schema),
        }
    }

    /// Brings `schema` to its newest version under the writer lock (so concurrent migrators
    /// apply each step once). A newer schema is refused.
    pub fn migrate(&self, schema: &Schema) -> Result<Migrated, DbError> {
        self.migrate_to(schema, schema.newest())
    }

    /// Brings `schema` to `version` (no further), as [`Db::migrate`] does: for tests of a
    /// database left at an older version.
    pub fn migrate_to(&self, schema: &Schema, version: u32) -> Result<Migrated, DbError> {
        match &self.backend {
            Backend::Sqlite(db) => db.migrate(schema, version),
            Backend::Postgres(db) => db.migrate(schema, version),
        }
    }

    /// Refuses a database whose `schema` is not at the version this build knows.
    fn check_schema(&self, schema: &Schema) -> Result<(), DbError> {
        let found = self.version(schema)?;
        let known = schema.newest();
        if found == known {
            return Ok(());
        }
        Err(DbError::Schema {
            location: self.location().to_owned(),
            message: if found > known {
                format!(
                    "its {} schema is at version {found}, newer than this harness knows ({known}); run a newer harness",
                    schema.name
                )
            } else {
                format!(
                    "its {} schema is at version {found} and this harness needs {known}; run `harness state migrate` first",
                    schema.name
                )
            },
        })
    }
}
