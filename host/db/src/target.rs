//! Where a database is: a SQLite file, or a PostgreSQL server named by a URL.

use std::fmt;
use std::path::PathBuf;

/// A database to open.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// A SQLite file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PostgresUrl),
}

/// A `postgres://` URL, shown without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    url: String,
    shown: String,
}

impl Target {
    /// The SQLite file `path`.
    pub fn sqlite(path: impl Into<PathBuf>) -> Target {
        Target::Sqlite(path.into())
    }

    /// Reads a `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?OPTIONS]` URL (`postgresql://`
    /// too); the error names what is wrong without repeating the password.
    pub fn postgres(url: &str) -> Result<Target, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(format!(
                "`{}:` is not a database URL; write postgres://USER@HOST:PORT/DATABASE",
                parsed.scheme()
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err("the URL names no host".into());
        }
        url.parse::<tokio_postgres::Config>()
            .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
        let mut shown = parsed.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        Ok(Target::Postgres(PostgresUrl {
            url: url.to_owned(),
            shown: shown.to_string(),
        }))
    }

    /// The file, or the URL without its password.
    pub fn location(&self) -> String {
        self.to_string()
    }
}

impl PostgresUrl {
    /// The URL as given, password included: for connecting only.
    pub(crate) fn secret(&self) -> &str {
        &self.url
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Sqlite(path) => write!(f, "{}", path.display()),
            Target::Postgres(url) => f.write_str(&url.shown),
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_shown_without_their_password() {
        let target = Target::postgres("postgres://harness:s3cret@127.0.0.1:5433/state").unwrap();
        assert_eq!(
            target.to_string(),
            "postgres://harness:***@127.0.0.1:5433/state"
        );
        assert!(!format!("{target:?}").contains("s3cret"));
        let err = Target::postgres("mysql://u:s3cret@host/db").unwrap_err();
        assert!(err.contains("`mysql:` is not a database URL"), "{err}");
        assert!(!err.contains("s3cret"));
        assert!(
            Target::postgres("postgres:///db")
                .unwrap_err()
                .contains("no host")
        );
        assert!(Target::postgres("not a url").is_err());
    }
}
