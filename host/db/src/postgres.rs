//! The shared engine: a pool of PostgreSQL connections, driven by a runtime thread of their
//! own. Callers block on their queries as they would on SQLite; the connection tasks run on that
//! thread, so a caller on an async worker never waits for work its own runtime must do.
//!
//! Every write transaction first takes one advisory lock, the writer lock: writers from every
//! replica take turns as SQLite's do, so a check and the write it guards (a budget reservation,
//! a rate admission, the next link of the audit chain) are one step, exact under contention,
//! and no transaction ever needs retrying for a serialization failure. Reads take no lock.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::StreamExt;
use futures::executor::block_on;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, Statement};

use crate::target::PostgresUrl;
use crate::value::Value;
use crate::{
    DbError, Durability, Migrated, OpenError, Options, Param, Row, Schema, Target, Tx, Wait,
};

/// What begins a write transaction: its commit does not wait for the disk, and it holds the
/// writer lock, the advisory lock 29380541684216691 (`0x68_6172_6e65_7373`, "harness" in
/// ASCII).
const OPENING: &str =
    "BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_advisory_xact_lock(29380541684216691)";

/// What begins a write transaction that takes no writer lock ([`Db::update`](crate::Db::update)).
const OPENING_UNLOCKED: &str = "BEGIN; SET LOCAL synchronous_commit = off";

/// A commit, then an empty transaction whose commit waits for the disk and with it every commit
/// before it, in one round trip (the writer lock goes with the first commit).
const COMMIT_AND_FLUSH: &str =
    "COMMIT; BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT";

/// A pool of connections to one database.
#[derive(Debug)]
pub(crate) struct Postgres {
    config: tokio_postgres::Config,
    location: String,
    durability: Durability,
    max: usize,
    wait: Duration,
    statement_timeout: Duration,
    pool: Mutex<Pool>,
    freed: Condvar,
    runtime: Option<tokio::runtime::Runtime>,
}

#[derive(Debug, Default)]
struct Pool {
    idle: Vec<Conn>,
    open: usize,
}

/// One connection, with the statements it has prepared.
#[derive(Debug)]
pub(crate) struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
    /// The start of a transaction, sent with the next statement.
    opening: Option<&'static str>,
    in_transaction: bool,
}

/// A connection taken from the pool, put back (or closed, if it may be mid-transaction) when
/// dropped.
struct Checkout<'a> {
    conn: Option<Conn>,
    pool: &'a Postgres,
}

impl Postgres {
    /// Connects to `url` once, so an unreachable or misconfigured server fails here, naming
    /// the URL without its password.
    pub(crate) fn open(url: &PostgresUrl, options: &Options) -> Result<Postgres, OpenError> {
        let target = Target::Postgres(url.clone());
        let mut config: tokio_postgres::Config = url
            .secret()
            .parse()
            .map_err(|e| OpenError::new(&target, e))?;
        config
            .connect_timeout(options.connect_timeout)
            .application_name("harness");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("harness-postgres")
            .enable_all()
            .build()
            .map_err(|e| OpenError::new(&target, e))?;
        let postgres = Postgres {
            config,
            location: target.location(),
            durability: options.durability,
            max: options.max_connections.max(1),
            wait: options.connect_timeout,
            statement_timeout: options.statement_timeout,
            pool: Mutex::default(),
            freed: Condvar::new(),
            runtime: Some(runtime),
        };
        let first = postgres
            .connect()
            .map_err(|e| OpenError::from_db(&target, e))?;
        let mut pool = postgres.lock();
        pool.open = 1;
        pool.idle.push(first);
        drop(pool);
        Ok(postgres)
    }

    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    pub(crate) fn durability(&self) -> Durability {
        self.durability
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn unreachable(&self, message: impl Into<String>) -> DbError {
        DbError::Unreachable {
            location: self.location.clone(),
            message: message.into(),
        }
    }

    /// Opens a new connection on the runtime thread, with this pool's statement timeout.
    fn connect(&self) -> Result<Conn, DbError> {
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the pool");
        let config = self.config.clone();
        let settings = format!(
            "SET statement_timeout = {}",
            self.statement_timeout.as_millis()
        );
        let location = self.location.clone();
        let connected = block_on(runtime.spawn(async move {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(target: "harness::db", database = %location, %error, "a database connection failed");
                }
            });
            client.batch_execute(&settings).await?;
            Ok::<_, tokio_postgres::Error>(client)
        }));
        match connected {
            Ok(Ok(client)) => Ok(Conn {
                client,
                statements: HashMap::new(),
                opening: None,
                in_transaction: false,
            }),
            Ok(Err(error)) => Err(match error.as_db_error() {
                Some(_) => postgres_error(&self.location, error),
                None => self.unreachable(cause_chain(&error)),
            }),
            Err(join) => Err(self.unreachable(format!("connecting was interrupted: {join}"))),
        }
    }

    /// A connection: an idle one, a new one while fewer than the maximum are open, or the
    /// first one freed within the pool's wait.
    fn checkout(&self) -> Result<Checkout<'_>, DbError> {
        let deadline = Instant::now() + self.wait;
        let mut pool = self.lock();
        loop {
            if let Some(conn) = pool.idle.pop() {
                if conn.client.is_closed() {
                    pool.open -= 1;
                    continue;
                }
                return Ok(Checkout {
                    conn: Some(conn),
                    pool: self,
                });
            }
            if pool.open < self.max {
                pool.open += 1;
                drop(pool);
                return match self.connect() {
                    Ok(conn) => Ok(Checkout {
                        conn: Some(conn),
                        pool: self,
                    }),
                    Err(error) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(error)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.unreachable(format!(
                    "no connection came free within {:?} ({} open, the most this process opens)",
                    self.wait, self.max
                )));
            }
            pool = self
                .freed
                .wait_timeout(pool, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    pub(crate) fn read<T, E: From<DbError>>(
        &self,
        read: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        off_workers(|| {
            let mut conn = self.checkout()?;
            read(&mut Tx::postgres(conn.get(), &self.location))
        })
    }

    pub(crate) fn write<T, E: From<DbError>>(
        &self,
        wait: Wait,
        write: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.run(OPENING, wait, write)
    }

    pub(crate) fn update<T, E: From<DbError>>(
        &self,
        wait: Wait,
        update: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.run(OPENING_UNLOCKED, wait, update)
    }

    /// Runs `body` in a transaction begun with `opening`.
    fn run<T, E: From<DbError>>(
        &self,
        opening: &'static str,
        wait: Wait,
        body: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let durable = match self.durability {
            Durability::EveryRecord => true,
            Durability::Admissions => wait == Wait::Disk,
            _ => false,
        };
        off_workers(|| {
            self.transaction(opening, durable, |conn| {
                let mut tx = Tx::postgres(conn, &self.location);
                let written = body(&mut tx)?;
                Ok((written, tx.wrote()))
            })
        })
    }

    /// Runs `body` in a transaction begun with `opening`, and when it wrote something that
    /// must be `durable`, waits for it to reach the disk — after the commit, once the lock is
    /// released, so writers never queue behind one another's disk flushes.
    ///
    /// Each transaction commits without waiting for the disk (`synchronous_commit = off`); the
    /// wait is a second, empty transaction that does (`txid_current()` gives it a commit record
    /// to flush), sent with the commit, and PostgreSQL's log is one sequence, so flushing it
    /// flushes the first. A
    /// later transaction that saw the first is flushed after it, so a crash of the server never
    /// keeps a record without the ones it was linked to. `BEGIN` and the lock go out with the
    /// body's first statement, in one round trip; a body that sends none begins nothing.
    fn transaction<T, E: From<DbError>>(
        &self,
        opening: &'static str,
        durable: bool,
        body: impl FnOnce(&mut Conn) -> Result<(T, bool), E>,
    ) -> Result<T, E> {
        let mut checkout = self.checkout()?;
        let conn = checkout.get();
        conn.in_transaction = true;
        conn.opening = Some(opening);
        match body(conn) {
            Ok((value, wrote)) => {
                if conn.opening.take().is_none() {
                    let flush = durable && wrote;
                    conn.batch(
                        if flush { COMMIT_AND_FLUSH } else { "COMMIT" },
                        &self.location,
                    )?;
                }
                conn.in_transaction = false;
                Ok(value)
            }
            Err(error) => {
                if conn.opening.take().is_some() || conn.batch("ROLLBACK", &self.location).is_ok() {
                    conn.in_transaction = false;
                }
                Err(error)
            }
        }
    }

    /// The version of `schema` in `harness_schema` (0 when the table or its row is missing).
    pub(crate) fn version(&self, schema: &Schema) -> Result<u32, DbError> {
        self.read(|tx| {
            let exists = tx
                .query_one("SELECT to_regclass('harness_schema') IS NOT NULL", &[])?
                .int(0)?;
            if exists == 0 {
                return Ok(0);
            }
            stored_version(tx, schema)
        })
    }

    /// Applies the migrations of `schema` past the database's version up to `to`, each in a
    /// transaction of its own under the writer lock, so replicas migrating at once apply each
    /// step once.
    pub(crate) fn migrate(&self, schema: &Schema, to: u32) -> Result<Migrated, DbError> {
        let from = self.version(schema)?;
        let mut now = from;
        loop {
            let done = self.transaction(OPENING, true, |conn| {
                conn.batch(
                    "CREATE TABLE IF NOT EXISTS harness_schema (name TEXT PRIMARY KEY, version BIGINT NOT NULL)",
                    &self.location,
                )?;
                let version = stored_version(&mut Tx::postgres(conn, &self.location), schema)?;
                let Some(step) = schema.pending(version, to, &self.location)?.first() else {
                    return Ok::<_, DbError>((None, false));
                };
                conn.batch(step.postgres, &self.location)
                    .map_err(|e| DbError::Schema {
                        location: self.location.clone(),
                        message: format!(
                            "migrating {} to version {}: {e}",
                            schema.name, step.version
                        ),
                    })?;
                Tx::postgres(conn, &self.location).execute(
                    "INSERT INTO harness_schema (name, version) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET version = excluded.version",
                    crate::params![schema.name, step.version],
                )?;
                Ok((Some(step.version), true))
            })?;
            match done {
                Some(version) => now = version,
                None => {
                    return Ok(Migrated {
                        from,
                        to: now.max(from),
                    });
                }
            }
        }
    }
}

/// The version of `schema` that `harness_schema` holds (0 without a row).
fn stored_version(tx: &mut Tx<'_>, schema: &Schema) -> Result<u32, DbError> {
    let version = tx
        .query_opt(
            "SELECT version FROM harness_schema WHERE name = $1",
            crate::params![schema.name],
        )?
        .map(|row| row.int(0))
        .transpose()?
        .unwrap_or(0);
    Ok(u32::try_from(version).unwrap_or(u32::MAX))
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.lock().idle.clear();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Checkout<'_> {
    fn get(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a checkout holds its connection until dropped")
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let mut pool = self.pool.lock();
        if conn.in_transaction || conn.client.is_closed() {
            pool.open -= 1;
        } else {
            pool.idle.push(conn);
        }
        drop(pool);
        self.pool.freed.notify_one();
    }
}

impl Conn {
    /// Runs `sql` (several statements, no parameters) in one round trip.
    fn batch(&mut self, sql: &str, location: &str) -> Result<(), DbError> {
        let opening = self.opening.take();
        send(
            &self.client,
            opening,
            self.client.batch_execute(sql),
            location,
        )
    }

    /// The prepared form of `sql`, prepared on first use.
    fn statement(&mut self, sql: &str, location: &str) -> Result<Statement, DbError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement =
            block_on(self.client.prepare(sql)).map_err(|e| postgres_error(location, e))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(crate) fn execute(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        location: &str,
    ) -> Result<u64, DbError> {
        let statement = self.statement(sql, location)?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let opening = self.opening.take();
        send(
            &self.client,
            opening,
            self.client.execute(&statement, &params),
            location,
        )
    }

    pub(crate) fn for_each<E: From<DbError>>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        location: &str,
        mut each: impl FnMut(Row) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), E> {
        let statement = self.statement(sql, location)?;
        let fail = |e| postgres_error(location, e);
        let params = params.iter().map(|p| p as &(dyn ToSql + Sync));
        let opening = self.opening.take();
        let rows = send(
            &self.client,
            opening,
            self.client.query_raw(&statement, params),
            location,
        )?;
        let mut rows = std::pin::pin!(rows);
        while let Some(row) = block_on(rows.next()) {
            let row = convert(&row.map_err(fail)?).map_err(|e| e.at(location))?;
            if each(row)?.is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// Runs `wait`, which waits for the database, letting the runtime move its other tasks to
/// another thread when called on a worker of a multi-threaded tokio runtime (an agent run's
/// records are written from its task): the workers go on serving while queries are in flight.
fn off_workers<T>(wait: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

/// Waits for `request`, sending `opening` (the start of a transaction) ahead of it in the same
/// round trip.
fn send<T>(
    client: &Client,
    opening: Option<&str>,
    request: impl Future<Output = Result<T, tokio_postgres::Error>>,
    location: &str,
) -> Result<T, DbError> {
    let fail = |e| postgres_error(location, e);
    let Some(opening) = opening else {
        return block_on(request).map_err(fail);
    };
    let (opened, answer) = block_on(futures::future::join(
        client.batch_execute(opening),
        request,
    ));
    opened.map_err(fail)?;
    answer.map_err(fail)
}

/// Why a column could not be read.
enum ColumnError {
    Driver(tokio_postgres::Error),
    Unsupported(usize),
}

impl ColumnError {
    fn at(self, location: &str) -> DbError {
        match self {
            ColumnError::Driver(error) => postgres_error(location, error),
            ColumnError::Unsupported(index) => DbError::Column {
                index,
                expected: "an integer, a number, text or bytes",
                found: "another PostgreSQL type (cast it in the query)",
            },
        }
    }
}

/// A row read off PostgreSQL, as [`Value`]s.
fn convert(row: &tokio_postgres::Row) -> Result<Row, ColumnError> {
    let mut values = Vec::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        let get = |e| ColumnError::Driver(e);
        let value = match *column.type_() {
            Type::BOOL => row
                .try_get::<_, Option<bool>>(index)
                .map_err(get)?
                .map(|b| Value::Int(b.into())),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(index)
                .map_err(get)?
                .map(|v| Value::Int(v.into())),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(index)
                .map_err(get)?
                .map(|v| Value::Int(v.into())),
            Type::INT8 => row
                .try_get::<_, Option<i64>>(index)
                .map_err(get)?
                .map(Value::Int),
            Type::FLOAT4 => row
                .try_get::<_, Option<f32>>(index)
                .map_err(get)?
                .map(|v| Value::Real(v.into())),
            Type::FLOAT8 => row
                .try_get::<_, Option<f64>>(index)
                .map_err(get)?
                .map(Value::Real),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => row
                .try_get::<_, Option<String>>(index)
                .map_err(get)?
                .map(Value::Text),
            Type::BYTEA => row
                .try_get::<_, Option<Vec<u8>>>(index)
                .map_err(get)?
                .map(Value::Bytes),
            _ => return Err(ColumnError::Unsupported(index)),
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

fn postgres_error(location: &str, source: tokio_postgres::Error) -> DbError {
    if source.as_db_error().is_none() && source.is_closed() {
        return DbError::Unreachable {
            location: location.to_owned(),
            message: cause_chain(&source),
        };
    }
    DbError::Postgres {
        location: location.to_owned(),
        source,
    }
}

/// An error and its causes, `: `-separated (the driver's own message is often only "error
/// connecting to server").
fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        message.push_str(": ");
        message.push_str(&next.to_string());
        cause = next.source();
    }
    message
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(value) => match *ty {
                Type::INT2 => i16::try_from(value)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(value)?.to_sql(ty, out),
                Type::BOOL => (value != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => value.to_string().to_sql(ty, out),
                _ => value.to_sql(ty, out),
            },
            Param::Text(text) => text.to_sql(ty, out),
            Param::Bytes(bytes) => bytes.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
