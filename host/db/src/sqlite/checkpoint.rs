//! Copying the write-ahead log back into the database, mostly on a thread of its own.
//!
//! SQLite checkpoints inside the commit that takes the log past its threshold: that call holds
//! the connection, and every call behind it waits, while the pages are copied and the database
//! file is synced — the milliseconds of the state's p99. Here a second connection copies the log
//! back every [`INTERVAL`] in `PASSIVE` mode, which never blocks a writer, and the store's own
//! threshold is raised to [`BACKSTOP_PAGES`]: under sustained writes the log is never wholly
//! copied back, so never restarted, and that commit's checkpoint bounds it (finding most pages
//! copied already). A larger backstop lets the log grow until reads, which look pages up in it,
//! slow down.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// How often the log is copied back.
const INTERVAL: Duration = Duration::from_millis(50);

/// The log size (4 KiB pages) at which a commit checkpoints itself.
const BACKSTOP_PAGES: u32 = 3_000;

/// The checkpointing thread of one database, stopped when dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Raises `db`'s own checkpoint threshold and starts checkpointing `path` on a thread.
    pub(super) fn start(db: &Connection, path: &Path) -> Result<Self, String> {
        let own = Connection::open(path).map_err(|e| e.to_string())?;
        db.execute_batch(&format!("PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES};"))
            .map_err(|e| e.to_string())?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let thread = std::thread::Builder::new()
            .name("harness-checkpoint".into())
            .spawn(move || run(&own, &signal))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

fn run(db: &Connection, stop: &(Mutex<bool>, Condvar)) {
    let (stopped, wake) = stop;
    let mut done = stopped.lock().unwrap_or_else(|p| p.into_inner());
    while !*done {
        let (guard, timeout) = wake
            .wait_timeout(done, INTERVAL)
            .unwrap_or_else(|p| p.into_inner());
        done = guard;
        if timeout.timed_out()
            && let Err(e) = db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::warn!(error = %e, "checkpointing the state database failed; retrying");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        *self.stop.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.1.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::TEST_LOG;
    use crate::{Db, Durability, Options, Target, Wait, params};

    #[test]
    fn the_log_is_copied_back_without_a_commit_doing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite3");
        let options = Options {
            durability: Durability::Os,
            ..Options::default()
        };
        let db = Db::open(&Target::sqlite(&path), &TEST_LOG, options).unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        let text = "x".repeat(200);
        for n in 0..200_i64 {
            db.write(Wait::Disk, |tx| {
                tx.execute(
                    "INSERT INTO log (n, text) VALUES ($1, $2)",
                    params![n, &text],
                )
            })
            .unwrap();
        }
        // Far below the backstop: only the checkpointing thread copies these pages back.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while size() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing was checkpointed"
            );
            std::thread::sleep(super::INTERVAL);
        }
        let rows = db
            .read(|tx| tx.query_one("SELECT COUNT(*) FROM log", &[])?.count(0))
            .unwrap();
        assert_eq!(rows, 200);
    }
}
