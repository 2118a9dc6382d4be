//! The database behind `harness:tool/kv`: one table of values keyed by (tool, key), one row of
//! usage per tool kept in the same transaction as every write, so quotas hold under any number
//! of concurrent calls — on every replica sharing a PostgreSQL database — and survive restarts.

use harness_db::{Db, DbError, Migration, OpenError, Options, Schema, Target, Tx, Wait, params};

use super::KvError;
use crate::policy::KvGrant;

/// The key-value schema, version by version (`harness state migrate` applies it to a shared
/// PostgreSQL database; a SQLite file migrates when it is opened).
pub static SCHEMA: Schema = Schema {
    name: "kv",
    migrations: &[Migration {
        version: 1,
        sqlite: "
CREATE TABLE IF NOT EXISTS kv (
    tool TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (tool, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv_usage (
    tool TEXT PRIMARY KEY, bytes INTEGER NOT NULL, keys INTEGER NOT NULL);",
        postgres: "
CREATE TABLE kv (
    tool TEXT NOT NULL, key TEXT NOT NULL, value BYTEA NOT NULL,
    PRIMARY KEY (tool, key));
CREATE TABLE kv_usage (
    tool TEXT PRIMARY KEY, bytes BIGINT NOT NULL, keys BIGINT NOT NULL);",
    }],
};

impl From<DbError> for KvError {
    fn from(e: DbError) -> Self {
        KvError::Storage(e.to_string())
    }
}

/// The key-value database of one host, shared by every tool's namespace.
#[derive(Debug)]
pub(crate) struct KvStore {
    db: Db,
}

impl KvStore {
    /// Opens the store in `target`, every commit on disk before it returns (a file is created
    /// private to the host's user if needed).
    pub(crate) fn open(target: &Target) -> Result<Self, OpenError> {
        let options = Options {
            durability: harness_db::Durability::EveryRecord,
            ..Options::default()
        };
        Ok(Self {
            db: Db::open(target, &SCHEMA, options)?,
        })
    }

    /// The value of `key` in `tool`'s namespace.
    pub(crate) fn get(&self, tool: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.db.read(|tx| {
            tx.query_opt(
                "SELECT value FROM kv WHERE tool = $1 AND key = $2",
                params![tool, key],
            )?
            .map(|row| Ok(row.bytes(0)?))
            .transpose()
        })
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
        self.db.write(Wait::Disk, |tx| {
            let old = tx
                .query_opt(
                    "SELECT CAST(length(value) AS BIGINT) FROM kv WHERE tool = $1 AND key = $2",
                    params![tool, key],
                )?
                .map(|row| row.count(0))
                .transpose()?;
            let (bytes, keys) = usage(tx, tool)?;
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
                "INSERT INTO kv (tool, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (tool, key) DO UPDATE SET value = excluded.value",
                params![tool, key, value],
            )?;
            set_usage(tx, tool, bytes, keys)?;
            Ok(())
        })
    }

    /// Removes `key`; returns whether it existed.
    pub(crate) fn delete(&self, tool: &str, key: &str) -> Result<bool, KvError> {
        self.db.write(Wait::Disk, |tx| {
            let old = tx
                .query_opt(
                    "DELETE FROM kv WHERE tool = $1 AND key = $2
                     RETURNING CAST(length(value) AS BIGINT)",
                    params![tool, key],
                )?
                .map(|row| row.count(0))
                .transpose()?;
            if let Some(len) = old {
                let (bytes, keys) = usage(tx, tool)?;
                set_usage(tx, tool, bytes - (key.len() as u64 + len), keys - 1)?;
            }
            Ok(old.is_some())
        })
    }

    /// The keys of `tool` starting with `prefix`, in byte order.
    pub(crate) fn keys(&self, tool: &str, prefix: &str) -> Result<Vec<String>, KvError> {
        self.db.read(|tx| {
            tx.query(
                "SELECT key FROM kv WHERE tool = $1 AND substr(key, 1, length($2)) = $2
                 ORDER BY key",
                params![tool, prefix],
            )?
            .iter()
            .map(|row| Ok(row.text(0)?))
            .collect()
        })
    }
}

fn usage(tx: &mut Tx<'_>, tool: &str) -> Result<(u64, u64), DbError> {
    match tx.query_opt(
        "SELECT bytes, keys FROM kv_usage WHERE tool = $1",
        params![tool],
    )? {
        Some(row) => Ok((row.count(0)?, row.count(1)?)),
        None => Ok((0, 0)),
    }
}

fn set_usage(tx: &mut Tx<'_>, tool: &str, bytes: u64, keys: u64) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO kv_usage (tool, bytes, keys) VALUES ($1, $2, $3)
         ON CONFLICT (tool) DO UPDATE SET bytes = excluded.bytes, keys = excluded.keys",
        params![tool, bytes, keys],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::policy::Bytes;

    fn grant(quota: u64, max_keys: u64, max_value: u64) -> KvGrant {
        KvGrant {
            quota: Bytes(quota),
            max_keys,
            max_value: Bytes(max_value),
        }
    }

    fn open(dir: &Path) -> KvStore {
        KvStore::open(&Target::sqlite(dir.join("kv.sqlite3"))).unwrap()
    }

    #[test]
    fn usage_follows_overwrites_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
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
        let _store = open(&data);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("kv.sqlite3")), 0o600);
    }

    #[test]
    fn prefixes_match_literally() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let g = grant(1000, 100, 100);
        for key in ["a%", "a_b", "ab", "b"] {
            store.set("t", &g, key, b"").unwrap();
        }
        assert_eq!(store.keys("t", "a%").unwrap(), ["a%"]);
        assert_eq!(store.keys("t", "a").unwrap(), ["a%", "a_b", "ab"]);
    }
}
