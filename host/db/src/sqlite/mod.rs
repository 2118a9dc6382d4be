//! The embedded engine: one SQLite file, write-ahead logged, one connection behind a mutex.
//! Writes take SQLite's writer lock (`BEGIN IMMEDIATE`), which also serializes them with every
//! other process that opens the file.

mod checkpoint;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql, TransactionBehavior};

use crate::value::Value;
use crate::{DbError, Durability, Migrated, OpenError, Param, Row, Schema, Target, Tx, Wait};

/// An open SQLite file.
#[derive(Debug)]
pub(crate) struct Sqlite {
    db: Mutex<Connection>,
    path: PathBuf,
    location: String,
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

impl Sqlite {
    /// Opens (creating if needed) the file at `path`: mode 700 for a directory it creates and
    /// 600 for a new file (SQLite gives its journals the same), write-ahead logged, commits
    /// waiting for the disk as `durability` says.
    pub(crate) fn open(path: &Path, durability: Durability) -> Result<Sqlite, OpenError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let target = Target::sqlite(path);
        let fail = |message: String| OpenError::new(&target, message);
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| fail(e.to_string()))?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| fail(e.to_string()))?;
        let db = Connection::open(path).map_err(|e| fail(e.to_string()))?;
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
        let checkpointer = checkpoint::Checkpointer::start(&db, path).map_err(fail)?;
        Ok(Sqlite {
            db: Mutex::new(db),
            path: path.to_owned(),
            location: target.location(),
            durability,
            flushes: Flushes::default(),
            _checkpointer: checkpointer,
        })
    }

    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    pub(crate) fn durability(&self) -> Durability {
        self.durability
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn read<T, E: From<DbError>>(
        &self,
        read: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let db = self.lock();
        read(&mut Tx::sqlite(&db, &self.location))
    }

    pub(crate) fn write<T, E: From<DbError>>(
        &self,
        wait: Wait,
        write: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let fail = |source| error(&self.location, source);
        let (written, commit) = {
            let mut db = self.lock();
            let tx = db
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail)?;
            let mut statements = Tx::sqlite(&tx, &self.location);
            let written = write(&mut statements)?;
            let wrote = statements.wrote();
            tx.commit().map_err(fail)?;
            let commit = wrote.then(|| self.flushes.committed.fetch_add(1, Ordering::SeqCst) + 1);
            (written, commit)
        };
        if let Some(commit) = commit
            && wait == Wait::Disk
            && self.durability == Durability::Admissions
        {
            self.flush_through(commit)?;
        }
        Ok(written)
    }

    /// Waits until commit number `commit` is on disk: flushes the write-ahead log, with every
    /// commit made so far in it, unless a flush that began after that commit already did.
    fn flush_through(&self, commit: u64) -> Result<(), DbError> {
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
            .map_err(|source| DbError::Flush {
                location: self.location.clone(),
                wal,
                source,
            })?;
        #[cfg(test)]
        self.flushes.made.fetch_add(1, Ordering::SeqCst);
        *flushed = through;
        Ok(())
    }

    /// The file's schema version (SQLite's `user_version`).
    pub(crate) fn version(&self) -> Result<u32, DbError> {
        let version: i64 = self
            .lock()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| error(&self.location, e))?;
        Ok(u32::try_from(version).unwrap_or(u32::MAX))
    }

    /// Applies the migrations of `schema` past the file's version up to `to`, all in one
    /// transaction.
    pub(crate) fn migrate(&self, schema: &Schema, to: u32) -> Result<Migrated, DbError> {
        let from = self.version()?;
        let steps = schema.pending(from, to, &self.location)?;
        let Some(to) = steps.last().map(|m| m.version) else {
            return Ok(Migrated { from, to: from });
        };
        let batch = format!(
            "BEGIN IMMEDIATE; {} PRAGMA user_version = {to}; COMMIT;",
            steps.iter().map(|m| m.sqlite).collect::<String>()
        );
        let db = self.lock();
        db.execute_batch(&batch).map_err(|e| {
            let _ = db.execute_batch("ROLLBACK");
            DbError::Schema {
                location: self.location.clone(),
                message: format!("migrating {} from version {from}: {e}", schema.name),
            }
        })?;
        Ok(Migrated { from, to })
    }
}

pub(crate) fn error(location: &str, source: rusqlite::Error) -> DbError {
    DbError::Sqlite {
        location: location.to_owned(),
        source,
    }
}

/// A row read off SQLite, as [`Value`]s.
pub(crate) fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let columns = row.as_ref().column_count();
    let mut values = Vec::with_capacity(columns);
    for index in 0..columns {
        values.push(match row.get_ref(index)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(value) => Value::Int(value),
            ValueRef::Real(value) => Value::Real(value),
            ValueRef::Text(text) => Value::Text(String::from_utf8_lossy(text).into_owned()),
            ValueRef::Blob(bytes) => Value::Bytes(bytes.to_vec()),
        });
    }
    Ok(Row(values))
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Param::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Param::Int(value) => ToSqlOutput::Borrowed(ValueRef::Integer(value)),
            Param::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Param::Bytes(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        })
    }
}

/// A one-table schema for this engine's tests.
#[cfg(test)]
static TEST_LOG: Schema = Schema {
    name: "log",
    migrations: &[crate::Migration {
        version: 1,
        sqlite: "CREATE TABLE log (n INTEGER NOT NULL, text TEXT NOT NULL DEFAULT '');",
        postgres: "",
    }],
};

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::params;

    fn open(dir: &Path, durability: Durability) -> Sqlite {
        let db = Sqlite::open(&dir.join("log.sqlite3"), durability).unwrap();
        db.migrate(&TEST_LOG, 1).unwrap();
        db
    }

    fn insert(db: &Sqlite, wait: Wait, n: i64) {
        db.write(wait, |tx| {
            tx.execute("INSERT INTO log (n) VALUES ($1)", params![n])
        })
        .unwrap();
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
            let db = open(dir.path(), durability);
            let set: i64 = db
                .lock()
                .query_row("PRAGMA synchronous", [], |row| row.get(0))
                .unwrap();
            assert_eq!(set, synchronous, "{durability:?}");
        }
    }

    #[test]
    fn writes_in_flight_together_share_flushes_and_later_ones_wait_for_none() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), Durability::Admissions);
        insert(&db, Wait::Disk, 0);
        assert_eq!(db.flushes.made.load(Ordering::SeqCst), 1);
        for n in 0..10 {
            insert(&db, Wait::Later, n);
        }
        assert_eq!(
            db.flushes.made.load(Ordering::SeqCst),
            1,
            "later writes do not flush"
        );

        let (threads, each) = (8, 40);
        std::thread::scope(|scope| {
            for t in 0..threads {
                let db = &db;
                scope.spawn(move || {
                    for n in 0..each {
                        insert(db, Wait::Disk, t * each + n);
                        let flushed = *db.flushes.flushed.lock().unwrap();
                        let committed = db.flushes.committed.load(Ordering::SeqCst);
                        assert!(flushed >= 1 && flushed <= committed);
                    }
                });
            }
        });
        let made = db.flushes.made.load(Ordering::SeqCst);
        assert!(
            made < 1 + (threads * each) as u64,
            "{made} flushes for {} writes",
            threads * each
        );
        assert_eq!(
            *db.flushes.flushed.lock().unwrap(),
            db.flushes.committed.load(Ordering::SeqCst),
            "every commit is on disk, the later ones with the waiting ones after them"
        );

        let before = db.flushes.made.load(Ordering::SeqCst);
        let read_only = db.write(Wait::Disk, |tx| {
            tx.query_one("SELECT COUNT(*) FROM log", &[])?.count(0)
        });
        assert_eq!(read_only.unwrap(), 11 + (threads * each) as u64);
        assert_eq!(
            db.flushes.made.load(Ordering::SeqCst),
            before,
            "a write transaction that changed nothing waits for no flush"
        );

        let os = open(&dir.path().join("os"), Durability::Os);
        insert(&os, Wait::Disk, 0);
        assert_eq!(os.flushes.made.load(Ordering::SeqCst), 0);
    }
}
