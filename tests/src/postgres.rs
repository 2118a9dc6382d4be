//! A PostgreSQL 15 server on loopback for tests: Debian's `postgresql` package, started by
//! `scripts/postgres.sh` in a temporary folder.
//!
//! `scripts/test.sh` starts one for the whole run, stops it at the end, and names it in
//! `HARNESS_TEST_POSTGRES` (a superuser URL). Without that variable, tests share one server in
//! `target/test-postgres`, started by the first test that needs it and left running for the
//! next (`scripts/postgres.sh stop target/test-postgres` stops it). Each test takes a database
//! of its own ([`Postgres::database`]).

use std::process::Command;
use std::sync::OnceLock;

/// A server the test may create databases on.
pub struct Postgres {
    /// A superuser URL of its `postgres` database.
    url: String,
}

/// A fresh, empty database, dropped when this is.
pub struct Database {
    /// Its URL (with the password).
    pub url: String,
    name: String,
    server: &'static Postgres,
}

impl Postgres {
    /// The run's server, or the one shared under `target/`.
    pub fn get() -> &'static Postgres {
        static SERVER: OnceLock<Postgres> = OnceLock::new();
        SERVER.get_or_init(|| {
            let url = std::env::var("HARNESS_TEST_POSTGRES").unwrap_or_else(|_| shared());
            Postgres { url }
        })
    }

    /// A new database on the server.
    pub fn database(&'static self) -> Database {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "t{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        psql(&self.url, &format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("{e}"));
        let url = match self.url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("{} names no database", self.url),
        };
        Database {
            url,
            name,
            server: self,
        }
    }
}

impl Database {
    /// Runs `sql` on this database with psql (as the superuser); returns what it printed.
    pub fn psql(&self, sql: &str) -> String {
        psql(&self.url, sql).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = psql(&self.server.url, &drop);
    }
}

/// Runs `sql` at `url` with psql: its output, unaligned, or why it failed.
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-At", "-c", sql])
        .output()
        .map_err(|e| format!("running psql: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The URL of the server in `target/test-postgres`, started unless it answers.
fn shared() -> String {
    let dir = crate::repo_root().join("target/test-postgres");
    std::fs::create_dir_all(&dir).expect("creating target/test-postgres");
    let lock = std::fs::File::create(dir.with_extension("lock")).expect("creating a lock");
    lock.lock().expect("locking target/test-postgres");
    let named = dir.join("url");
    if let Ok(url) = std::fs::read_to_string(&named)
        && psql(url.trim(), "SELECT 1").is_ok()
    {
        return url.trim().to_owned();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let url = start(&dir);
    std::fs::write(&named, &url).expect("writing target/test-postgres/url");
    url
}

/// Starts a server in `dir` with `scripts/postgres.sh`; returns its superuser URL.
fn start(dir: &std::path::Path) -> String {
    crate::start_service("postgres.sh", "postgresql", dir)
}

/// A server of the test's own, to stop while something uses it; stopped when dropped.
pub struct OwnServer {
    /// Its superuser URL.
    pub url: String,
    dir: tempfile::TempDir,
}

impl OwnServer {
    /// Starts one in a temporary folder.
    pub fn start() -> OwnServer {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = start(&dir.path().join("server"));
        OwnServer { url, dir }
    }

    /// Stops it at once (`pg_ctl stop -m immediate`).
    pub fn stop(&self) {
        let _ = Command::new(crate::repo_root().join("scripts/postgres.sh"))
            .arg("stop")
            .arg(self.dir.path().join("server"))
            .status();
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.stop();
    }
}
