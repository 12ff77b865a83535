//! The two database engines behind one small executor: SQL is written once with `?` placeholders
//! (numbered `$1, $2, …` for PostgreSQL), parameters and columns are typed, and rows come back as
//! typed values. Migrations are versioned SQL files per engine, applied forward-only on open.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, PgPool, Postgres, Row as _, Sqlite, SqlitePool, Transaction};

use crate::error::StoreError;

/// Migrations: version, SQLite text, PostgreSQL text. Append only.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_initial.sql"), include_str!("../migrations/postgres/0001_initial.sql")),
    (
        2,
        include_str!("../migrations/sqlite/0002_datasets.sql"),
        include_str!("../migrations/postgres/0002_datasets.sql"),
    ),
    (3, include_str!("../migrations/sqlite/0003_ledger.sql"), include_str!("../migrations/postgres/0003_ledger.sql")),
    (
        4,
        include_str!("../migrations/sqlite/0004_usage_by_time.sql"),
        include_str!("../migrations/postgres/0004_usage_by_time.sql"),
    ),
    (
        5,
        include_str!("../migrations/sqlite/0005_token_expiry.sql"),
        include_str!("../migrations/postgres/0005_token_expiry.sql"),
    ),
    (
        6,
        include_str!("../migrations/sqlite/0006_metering.sql"),
        include_str!("../migrations/postgres/0006_metering.sql"),
    ),
    (7, include_str!("../migrations/sqlite/0007_limits.sql"), include_str!("../migrations/postgres/0007_limits.sql")),
];

/// The newest schema version this code knows.
pub const SCHEMA_VERSION: i64 = 7;

/// Session advisory lock key held by the one server that schedules (the leader).
const LEADER_LOCK: i64 = 0x5357_4c45_4144_4552;

/// Advisory lock key that serialises writers across servers sharing one PostgreSQL database (so
/// the audit chain has one order).
const WRITE_LOCK: i64 = 0x5357_5354_4f52_4531;

/// A query parameter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum P {
    I(i64),
    OI(Option<i64>),
    T(String),
    OT(Option<String>),
}

/// The type of a result column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum K {
    I,
    OI,
    T,
    OT,
}

/// A result value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum V {
    I(i64),
    OI(Option<i64>),
    T(String),
    OT(Option<String>),
}

impl V {
    pub(crate) fn i(&self) -> i64 {
        match self {
            V::I(v) => *v,
            V::OI(v) => v.unwrap_or(0),
            _ => 0,
        }
    }

    pub(crate) fn oi(&self) -> Option<i64> {
        match self {
            V::I(v) => Some(*v),
            V::OI(v) => *v,
            _ => None,
        }
    }

    pub(crate) fn t(&self) -> String {
        match self {
            V::T(v) => v.clone(),
            V::OT(v) => v.clone().unwrap_or_default(),
            _ => String::new(),
        }
    }

    pub(crate) fn ot(&self) -> Option<String> {
        match self {
            V::T(v) => Some(v.clone()),
            V::OT(v) => v.clone(),
            _ => None,
        }
    }
}

/// `?` → `$1, $2, …` (no `?` may appear in string literals of our SQL).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for p in $params {
            query = match p {
                P::I(v) => query.bind(v),
                P::OI(v) => query.bind(v),
                P::T(v) => query.bind(v),
                P::OT(v) => query.bind(v),
            };
        }
        query
    }};
}

macro_rules! decode {
    ($row:expr, $kinds:expr) => {{
        let mut values = Vec::with_capacity($kinds.len());
        for (i, kind) in $kinds.iter().enumerate() {
            values.push(match kind {
                K::I => V::I($row.try_get::<i64, _>(i)?),
                K::OI => V::OI($row.try_get::<Option<i64>, _>(i)?),
                K::T => V::T($row.try_get::<String, _>(i)?),
                K::OT => V::OT($row.try_get::<Option<String>, _>(i)?),
            });
        }
        values
    }};
}

/// A connection pool of either engine.
#[derive(Clone, Debug)]
pub(crate) enum Db {
    /// The pool and the file whose lock makes a server the leader (`<database>.leader`).
    Sqlite(SqlitePool, std::sync::Arc<std::path::PathBuf>),
    Pg(PgPool, Locks),
}

/// PostgreSQL advisory lock keys of one schema (advisory locks are database-wide, so each schema
/// gets its own keys, and two platforms in two schemas of one database do not block each other).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Locks {
    leader: i64,
    write: i64,
}

impl Locks {
    fn for_schema(schema: Option<&str>) -> Locks {
        // FNV-1a over the schema's name.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in schema.unwrap_or("").bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        let hash = hash.cast_signed();
        Locks { leader: LEADER_LOCK ^ hash, write: WRITE_LOCK ^ hash }
    }
}

/// A transaction of either engine.
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Pg(Transaction<'static, Postgres>, i64),
}

impl Db {
    /// Opens (creating if needed) an SQLite database file, durable against crashes: WAL with a
    /// full sync at every commit.
    pub(crate) async fn sqlite(path: &Path) -> Result<Db, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await.map_err(StoreError::open)?;
        let mut leader_file = path.as_os_str().to_owned();
        leader_file.push(".leader");
        let db = Db::Sqlite(pool, std::sync::Arc::new(leader_file.into()));
        db.migrate().await?;
        Ok(db)
    }

    /// Connects to PostgreSQL. With `schema`, everything lives in that schema (created if
    /// missing), which lets tests and tenants of one database keep apart.
    pub(crate) async fn postgres(url: &str, schema: Option<&str>) -> Result<Db, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(StoreError::open)?;
        let schema = schema.map(str::to_owned);
        if let Some(schema) = &schema
            && !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(StoreError::Invalid(format!("schema name {schema:?} must be letters, digits and _")));
        }
        let after_schema = schema.clone();
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .after_connect(move |conn, _| {
                let schema = after_schema.clone();
                Box::pin(async move {
                    // Plans made while a table was empty would stay (a sequential scan of what
                    // becomes millions of rows); plan every statement for the table as it is now.
                    conn.execute("SET plan_cache_mode = force_custom_plan").await?;
                    if let Some(schema) = schema {
                        conn.execute(
                            format!("CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}").as_str(),
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(StoreError::open)?;
        let db = Db::Pg(pool, Locks::for_schema(schema.as_deref()));
        db.migrate().await?;
        Ok(db)
    }

    /// Applies the migrations this database has not seen, each in its own transaction.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.exec("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)", vec![]).await?;
        let rows = tx.rows("SELECT version FROM schema_version", vec![], &[K::I]).await?;
        let current = rows.first().map_or(0, |r| r[0].i());
        if rows.is_empty() {
            tx.exec("INSERT INTO schema_version (version) VALUES (0)", vec![]).await?;
        }
        tx.commit().await?;
        if current > SCHEMA_VERSION {
            return Err(StoreError::Invalid(format!(
                "the database has schema version {current}, newer than this program's {SCHEMA_VERSION}; upgrade suanwang"
            )));
        }
        for &(version, sqlite, postgres) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            let mut tx = self.begin().await?;
            match &mut tx {
                Tx::Sqlite(t) => {
                    sqlx::raw_sql(sqlite).execute(&mut **t).await?;
                }
                Tx::Pg(t, _) => {
                    sqlx::raw_sql(postgres).execute(&mut **t).await?;
                }
            }
            tx.exec("UPDATE schema_version SET version = ?", vec![P::I(version)]).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Starts a transaction. On PostgreSQL a write transaction also takes the cluster-wide write
    /// lock (see [`Tx::lock_for_writing`]).
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            // Every transaction here writes: take SQLite's write lock at once, so a transaction
            // that reads first cannot find its snapshot stale when it writes (SQLITE_BUSY_SNAPSHOT);
            // the busy timeout makes a second writer wait instead.
            Db::Sqlite(pool, _) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Pg(pool, locks) => Tx::Pg(pool.begin().await?, locks.write),
        })
    }

    /// Runs a read query outside a transaction.
    pub(crate) async fn rows(&self, sql: &str, params: Vec<P>, kinds: &[K]) -> Result<Vec<Vec<V>>, StoreError> {
        Ok(match self {
            Db::Sqlite(pool, _) => {
                let rows = bind_all!(sqlx::query(sql), params).fetch_all(pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(decode!(row, kinds));
                }
                out
            }
            Db::Pg(pool, _) => {
                let sql = numbered(sql);
                let rows = bind_all!(sqlx::query(&sql), params).fetch_all(pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(decode!(row, kinds));
                }
                out
            }
        })
    }

    /// Closes every connection.
    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite(pool, _) => pool.close().await,
            Db::Pg(pool, _) => pool.close().await,
        }
    }

    /// `true` for PostgreSQL.
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Db::Pg(..))
    }

    /// Tries to become the leader. On PostgreSQL that is a session advisory lock on a connection
    /// of its own, held until the connection closes (or the process dies). On SQLite it is an
    /// exclusive lock on the file `<database>.leader`, held until the file is closed (or the
    /// process dies), so two servers on one data directory behave as on PostgreSQL.
    pub(crate) async fn try_lead(&self) -> Result<Option<Leadership>, StoreError> {
        match self {
            Db::Sqlite(_, leader_file) => {
                let mut options = std::fs::OpenOptions::new();
                options.create(true).truncate(false).write(true);
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let file = options
                    .open(leader_file.as_path())
                    .map_err(|e| StoreError::Invalid(format!("cannot open {}: {e}", leader_file.display())))?;
                match file.try_lock() {
                    Ok(()) => Ok(Some(Leadership(Held::File(file)))),
                    Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                    Err(std::fs::TryLockError::Error(e)) => {
                        Err(StoreError::Invalid(format!("cannot lock {}: {e}", leader_file.display())))
                    }
                }
            }
            Db::Pg(pool, locks) => {
                let mut conn = pool.acquire().await?.detach();
                let row =
                    sqlx::query("SELECT pg_try_advisory_lock($1)").bind(locks.leader).fetch_one(&mut conn).await?;
                let held: bool = row.try_get(0)?;
                Ok(held.then_some(Leadership(Held::Connection(Box::new(conn)))))
            }
        }
    }
}

/// Being the one server that schedules. Dropping it gives the role up.
#[derive(Debug)]
pub struct Leadership(Held);

/// What holds the role: a locked file (SQLite) or the connection holding the advisory lock.
#[derive(Debug)]
enum Held {
    File(#[expect(dead_code, reason = "held for its lock, released on drop")] std::fs::File),
    Connection(Box<sqlx::PgConnection>),
}

impl Leadership {
    /// Whether the role is still held (on PostgreSQL: the lock's connection still answers).
    pub async fn held(&mut self) -> bool {
        match &mut self.0 {
            Held::File(_) => true,
            Held::Connection(conn) => sqlx::query("SELECT 1").execute(&mut **conn).await.is_ok(),
        }
    }
}

impl Tx {
    /// On PostgreSQL, waits for the transaction-scoped advisory lock that orders all writers; on
    /// SQLite the database's own write lock does the same.
    pub(crate) async fn lock_for_writing(&mut self) -> Result<(), StoreError> {
        if let Tx::Pg(_, key) = self {
            let key = *key;
            self.rows("SELECT pg_advisory_xact_lock(?)::TEXT", vec![P::I(key)], &[K::OT]).await?;
        }
        Ok(())
    }

    /// Executes a statement; returns the rows it affected.
    pub(crate) async fn exec(&mut self, sql: &str, params: Vec<P>) -> Result<u64, StoreError> {
        Ok(match self {
            Tx::Sqlite(t) => bind_all!(sqlx::query(sql), params).execute(&mut **t).await?.rows_affected(),
            Tx::Pg(t, _) => {
                let sql = numbered(sql);
                bind_all!(sqlx::query(&sql), params).execute(&mut **t).await?.rows_affected()
            }
        })
    }

    /// Runs a query; returns typed rows.
    pub(crate) async fn rows(&mut self, sql: &str, params: Vec<P>, kinds: &[K]) -> Result<Vec<Vec<V>>, StoreError> {
        Ok(match self {
            Tx::Sqlite(t) => {
                let rows = bind_all!(sqlx::query(sql), params).fetch_all(&mut **t).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(decode!(row, kinds));
                }
                out
            }
            Tx::Pg(t, _) => {
                let sql = numbered(sql);
                let rows = bind_all!(sqlx::query(&sql), params).fetch_all(&mut **t).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(decode!(row, kinds));
                }
                out
            }
        })
    }

    /// Commits: when this returns, the writes survive a crash.
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Pg(t, _) => t.commit().await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
    }
}
