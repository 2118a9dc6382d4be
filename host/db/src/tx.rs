//! [`Tx`]: the statements of one read or write, the same calls on either engine.

use std::borrow::Cow;
use std::ops::ControlFlow;

use crate::postgres::Conn;
use crate::{DbError, Param, Row, sqlite};

/// Which SQL a database speaks, for the few places where SQLite's and PostgreSQL's differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// SQLite 3.
    Sqlite,
    /// PostgreSQL 15 or later.
    Postgres,
}

impl Dialect {
    /// An expression for the text at `path` (object keys, outermost first) in the JSON object
    /// held as text in `column`; `NULL` when absent.
    pub fn json_text(self, column: &str, path: &[&str]) -> String {
        match self {
            Dialect::Sqlite => {
                let path: String = path.iter().map(|key| format!(".\"{key}\"")).collect();
                format!("json_extract({column}, '${path}')")
            }
            Dialect::Postgres => {
                let (last, outer) = path.split_last().expect("a JSON path names a key");
                let outer: String = outer.iter().map(|key| format!(" -> '{key}'")).collect();
                format!("(({column})::jsonb{outer} ->> '{last}')")
            }
        }
    }

    /// [`Dialect::json_text`] as a 64-bit integer.
    pub fn json_int(self, column: &str, path: &[&str]) -> String {
        format!("CAST({} AS BIGINT)", self.json_text(column, path))
    }

    /// [`Dialect::json_text`] as a floating-point number.
    pub fn json_real(self, column: &str, path: &[&str]) -> String {
        format!("CAST({} AS DOUBLE PRECISION)", self.json_text(column, path))
    }

    /// A condition: the value at `path` is JSON `true`.
    pub fn json_true(self, column: &str, path: &[&str]) -> String {
        match self {
            Dialect::Sqlite => format!("{} = 1", self.json_text(column, path)),
            Dialect::Postgres => format!("{} = 'true'", self.json_text(column, path)),
        }
    }
}

/// The statements of one [`Db::read`](crate::Db::read) or [`Db::write`](crate::Db::write).
/// Queries use PostgreSQL's `$1`, `$2`… placeholders on both engines.
pub struct Tx<'a> {
    inner: Inner<'a>,
    location: &'a str,
    wrote: bool,
}

enum Inner<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a mut Conn),
}

impl<'a> Tx<'a> {
    pub(crate) fn sqlite(db: &'a rusqlite::Connection, location: &'a str) -> Tx<'a> {
        Tx {
            inner: Inner::Sqlite(db),
            location,
            wrote: false,
        }
    }

    pub(crate) fn postgres(conn: &'a mut Conn, location: &'a str) -> Tx<'a> {
        Tx {
            inner: Inner::Postgres(conn),
            location,
            wrote: false,
        }
    }

    /// Whether a statement that may change rows ran.
    pub(crate) fn wrote(&self) -> bool {
        self.wrote
    }

    /// Which SQL the database speaks.
    pub fn dialect(&self) -> Dialect {
        match self.inner {
            Inner::Sqlite(_) => Dialect::Sqlite,
            Inner::Postgres(_) => Dialect::Postgres,
        }
    }

    fn note(&mut self, sql: &str) {
        let verb = sql.trim_start();
        if !verb
            .get(..6)
            .is_some_and(|verb| verb.eq_ignore_ascii_case("SELECT"))
        {
            self.wrote = true;
        }
    }

    /// Runs a statement; returns how many rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        self.note(sql);
        match &mut self.inner {
            Inner::Sqlite(db) => db
                .prepare_cached(&sqlite_sql(sql))
                .and_then(|mut statement| statement.execute(rusqlite::params_from_iter(params)))
                .map(|changed| changed as u64)
                .map_err(|source| sqlite::error(self.location, source)),
            Inner::Postgres(conn) => conn.execute(sql, params, self.location),
        }
    }

    /// Runs a query and calls `each` on its rows, in order, until it breaks.
    pub fn for_each<E: From<DbError>>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        mut each: impl FnMut(Row) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), E> {
        self.note(sql);
        match &mut self.inner {
            Inner::Sqlite(db) => {
                let location = self.location;
                let fail = |source| sqlite::error(location, source);
                let mut statement = db.prepare_cached(&sqlite_sql(sql)).map_err(fail)?;
                let mut rows = statement
                    .query(rusqlite::params_from_iter(params))
                    .map_err(fail)?;
                while let Some(row) = rows.next().map_err(fail)? {
                    if each(sqlite::row(row).map_err(fail)?)?.is_break() {
                        break;
                    }
                }
                Ok(())
            }
            Inner::Postgres(conn) => conn.for_each(sql, params, self.location, each),
        }
    }

    /// Runs a query and returns all its rows.
    pub fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError> {
        let mut rows = Vec::new();
        self.for_each(sql, params, |row| {
            rows.push(row);
            Ok::<_, DbError>(ControlFlow::Continue(()))
        })?;
        Ok(rows)
    }

    /// Runs a query and returns its first row, if any.
    pub fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, DbError> {
        let mut first = None;
        self.for_each(sql, params, |row| {
            first = Some(row);
            Ok::<_, DbError>(ControlFlow::Break(()))
        })?;
        Ok(first)
    }

    /// Runs a query that returns one row (an aggregate, an `INSERT … RETURNING`); with no row,
    /// every column reads as `NULL`.
    pub fn query_one(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Row, DbError> {
        Ok(self.query_opt(sql, params)?.unwrap_or(Row(Vec::new())))
    }
}

/// `sql` with PostgreSQL's `$N` placeholders written as SQLite's `?N` (SQLite reads `$N` as a
/// named parameter, numbered by first appearance rather than by `N`).
fn sqlite_sql(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '$' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_read_the_same_field_in_both_dialects() {
        assert_eq!(
            Dialect::Sqlite.json_text("record", &["prompt", "version"]),
            "json_extract(record, '$.\"prompt\".\"version\"')"
        );
        assert_eq!(
            Dialect::Postgres.json_text("record", &["prompt", "version"]),
            "((record)::jsonb -> 'prompt' ->> 'version')"
        );
        assert_eq!(
            Dialect::Postgres.json_int("record", &["fuel"]),
            "CAST(((record)::jsonb ->> 'fuel') AS BIGINT)"
        );
    }

    #[test]
    fn placeholders_become_sqlite_ones_outside_quotes() {
        assert_eq!(
            sqlite_sql("SELECT $1, '$2', json_extract(r, '$.a') WHERE x = $12"),
            "SELECT ?1, '$2', json_extract(r, '$.a') WHERE x = ?12"
        );
        assert!(matches!(sqlite_sql("SELECT 1"), Cow::Borrowed(_)));
    }
}
