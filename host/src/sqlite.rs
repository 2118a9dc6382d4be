//! The SQLite files the host keeps in its data directory (tool key-value storage, agent state):
//! private to the host's user, write-ahead logged, and fully synced on commit, so a crash loses
//! no committed row.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {}: {message}", path.display())]
pub struct OpenError {
    /// The database file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// Opens (creating if needed) `data_dir/file`. A directory the host creates is mode 700 and a
/// new database file mode 600 (SQLite gives its journal files the same mode); an existing
/// directory's mode is left alone.
pub fn open_private(data_dir: &Path, file: &str) -> Result<(Connection, PathBuf), OpenError> {
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
