//! The SQLite file behind `harness:tool/kv`: one table of values keyed by (tool, key), one row of
//! usage per tool kept in the same transaction as every write, so quotas hold under any number of
//! concurrent calls and survive restarts.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{KvError, OpenError};
use crate::policy::KvGrant;

impl From<rusqlite::Error> for KvError {
    fn from(e: rusqlite::Error) -> Self {
        KvError::Storage(e.to_string())
    }
}

/// The key-value database of one host, shared by every tool's namespace.
#[derive(Debug)]
pub(crate) struct KvStore {
    db: Mutex<Connection>,
}

impl KvStore {
    /// Opens (creating if needed) `kv.sqlite3` in `data_dir`, private to the host's user.
    pub(crate) fn open(data_dir: &Path) -> Result<Self, OpenError> {
        let (db, path) = open_private(data_dir, "kv.sqlite3")?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (
                 tool TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                 PRIMARY KEY (tool, key)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS kv_usage (
                 tool TEXT PRIMARY KEY, bytes INTEGER NOT NULL, keys INTEGER NOT NULL);",
        )
        .map_err(|e| OpenError {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(Self { db: Mutex::new(db) })
    }

    /// The value of `key` in `tool`'s namespace.
    pub(crate) fn get(&self, tool: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let db = self.lock();
        Ok(db
            .query_row(
                "SELECT value FROM kv WHERE tool = ?1 AND key = ?2",
                params![tool, key],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Stores `value` under `key` if the namespace stays within `grant`.
    pub(crate) fn set(
        &self,
        tool: &str,
        grant: &KvGrant,
        key: &str,
        value: &[u8],
    ) -> Result<(), KvError> {
        if value.len() as u64 > grant.max_value.0 {
            return Err(KvError::TooLarge);
        }
        let mut db = self.lock();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old: Option<u64> = tx
            .query_row(
                "SELECT length(value) FROM kv WHERE tool = ?1 AND key = ?2",
                params![tool, key],
                |row| row.get(0),
            )
            .optional()?;
        let (bytes, keys) = usage(&tx, tool)?;
        let entry = |value_len: u64| key.len() as u64 + value_len;
        let keys = keys + u64::from(old.is_none());
        let bytes = bytes - old.map_or(0, entry) + entry(value.len() as u64);
        if keys > grant.max_keys {
            return Err(KvError::TooManyKeys);
        }
        if bytes > grant.quota.0 {
            return Err(KvError::QuotaExceeded);
        }
        tx.execute(
            "INSERT INTO kv (tool, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (tool, key) DO UPDATE SET value = excluded.value",
            params![tool, key, value],
        )?;
        set_usage(&tx, tool, bytes, keys)?;
        tx.commit()?;
        Ok(())
    }

    /// Removes `key`; returns whether it existed.
    pub(crate) fn delete(&self, tool: &str, key: &str) -> Result<bool, KvError> {
        let mut db = self.lock();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old: Option<u64> = tx
            .query_row(
                "DELETE FROM kv WHERE tool = ?1 AND key = ?2 RETURNING length(value)",
                params![tool, key],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(len) = old {
            let (bytes, keys) = usage(&tx, tool)?;
            set_usage(&tx, tool, bytes - (key.len() as u64 + len), keys - 1)?;
        }
        tx.commit()?;
        Ok(old.is_some())
    }

    /// The keys of `tool` starting with `prefix`, in byte order.
    pub(crate) fn keys(&self, tool: &str, prefix: &str) -> Result<Vec<String>, KvError> {
        let db = self.lock();
        let mut statement = db.prepare_cached(
            "SELECT key FROM kv WHERE tool = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key",
        )?;
        let keys = statement
            .query_map(params![tool, prefix], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(keys)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn usage(tx: &rusqlite::Transaction<'_>, tool: &str) -> rusqlite::Result<(u64, u64)> {
    Ok(tx
        .query_row(
            "SELECT bytes, keys FROM kv_usage WHERE tool = ?1",
            params![tool],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, 0)))
}

fn set_usage(
    tx: &rusqlite::Transaction<'_>,
    tool: &str,
    bytes: u64,
    keys: u64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO kv_usage (tool, bytes, keys) VALUES (?1, ?2, ?3)
         ON CONFLICT (tool) DO UPDATE SET bytes = excluded.bytes, keys = excluded.keys",
        params![tool, bytes, keys],
    )?;
    Ok(())
}

/// Opens (creating if needed) `data_dir/file`: mode 700 for a directory the host creates, 600
/// for a new database file (SQLite gives its journal files the same mode), write-ahead logged and
/// fully synced on commit, so a crash loses no committed write.
fn open_private(data_dir: &Path, file: &str) -> Result<(Connection, PathBuf), OpenError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = data_dir.join(file);
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
    Ok((db, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Bytes;

    fn grant(quota: u64, max_keys: u64, max_value: u64) -> KvGrant {
        KvGrant {
            quota: Bytes(quota),
            max_keys,
            max_value: Bytes(max_value),
        }
    }

    #[test]
    fn usage_follows_overwrites_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = KvStore::open(dir.path()).unwrap();
        let g = grant(10, 2, 10);
        store.set("t", &g, "ab", b"1234").unwrap();
        store.set("t", &g, "ab", b"12345678").unwrap();
        let over = store.set("t", &g, "ab", b"123456789");
        assert!(matches!(over, Err(KvError::QuotaExceeded)), "{over:?}");
        assert!(store.delete("t", "ab").unwrap());
        assert!(!store.delete("t", "ab").unwrap());
        store.set("t", &g, "c", b"").unwrap();
        store.set("t", &g, "d", b"12345678").unwrap();
        let third = store.set("t", &g, "e", b"");
        assert!(matches!(third, Err(KvError::TooManyKeys)), "{third:?}");
        assert_eq!(store.keys("t", "").unwrap(), ["c", "d"]);
        let big = store.set("t", &g, "c", &[0; 11]);
        assert!(matches!(big, Err(KvError::TooLarge)), "{big:?}");
    }

    #[test]
    fn a_new_store_is_private_to_the_host_user() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let _store = KvStore::open(&data).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("kv.sqlite3")), 0o600);
    }

    #[test]
    fn prefixes_match_literally() {
        let dir = tempfile::tempdir().unwrap();
        let store = KvStore::open(dir.path()).unwrap();
        let g = grant(1000, 100, 100);
        for key in ["a%", "a_b", "ab", "b"] {
            store.set("t", &g, key, b"").unwrap();
        }
        assert_eq!(store.keys("t", "a%").unwrap(), ["a%"]);
        assert_eq!(store.keys("t", "a").unwrap(), ["a%", "a_b", "ab"]);
    }
}
