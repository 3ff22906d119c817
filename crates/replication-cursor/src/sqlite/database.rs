//! The cursor database itself: opening (with the schema, integrity and recovery checks),
//! reading every cursor and writing a batch of cursors in one transaction.
//!
//! Everything here blocks; only the store's writer thread calls it.

use std::path::Path;

use replication_core::{Cursor, CursorError};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::busy::{is_busy, retry_busy, retry_retriable};
use super::recovery;
use super::row::CursorRow;
use super::schema::{self, SchemaError, SCHEMA_VERSION};
use crate::SqliteOptions;

const SELECT_ALL: &str =
    "SELECT peer_id, stream_id, entries_added, updated_at_ms FROM cursors ORDER BY peer_id";
const UPSERT: &str = "
INSERT INTO cursors (peer_id, stream_id, entries_added, updated_at_ms) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (peer_id) DO UPDATE SET
    stream_id = excluded.stream_id,
    entries_added = excluded.entries_added,
    updated_at_ms = excluded.updated_at_ms
";

/// An open cursor database.
pub(super) struct Database {
    conn: Connection,
    location: String,
    busy_retries: u32,
}

/// Why one attempt at opening failed.
enum OpenFailure {
    /// The file is not a sound SQLite database: move it aside and start afresh.
    Corrupt(String),
    /// Another connection holds a lock we need: try again later.
    Busy(CursorError),
    /// Anything else, reported as is (I/O and permission errors included: a file we cannot
    /// read for those reasons may hold good cursors, so it is never moved aside).
    Fatal(CursorError),
}

impl replication_core::Retriable for OpenFailure {
    /// Only a lock another connection holds goes away by itself.
    fn is_retriable(&self) -> bool {
        matches!(self, OpenFailure::Busy(_))
    }
}

impl std::fmt::Display for OpenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenFailure::Corrupt(detail) => write!(f, "corrupt: {detail}"),
            OpenFailure::Busy(e) | OpenFailure::Fatal(e) => e.fmt(f),
        }
    }
}

/// A `CursorError::Unavailable` for `location`, saying what was being done.
pub(super) fn unavailable(
    location: &str,
    what: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> CursorError {
    CursorError::Unavailable {
        location: location.to_owned(),
        message: format!("{what}: {source}"),
        source: Some(Box::new(source)),
    }
}

impl Database {
    /// Opens (creating if needed) the database at `path`, ready for use.
    ///
    /// A corrupt file is moved aside (see [`recovery`]) and a fresh one created; a file
    /// from a newer schema, or another application's database, is refused untouched.
    pub(super) fn open(path: &Path, options: &SqliteOptions) -> Result<Self, CursorError> {
        let location = path.display().to_string();
        let detail = match open_retrying(path, &location, options) {
            Ok(db) => return Ok(db),
            Err(OpenFailure::Busy(e) | OpenFailure::Fatal(e)) => return Err(e),
            Err(OpenFailure::Corrupt(detail)) => detail,
        };
        match recovery::move_aside(path)
            .map_err(|e| unavailable(&location, "moving the corrupt database aside", e))?
        {
            Some(aside) => tracing::error!(
                path = %location,
                moved_to = %aside.display(),
                %detail,
                "cursor database is corrupt: moved it aside and starting an empty one; peers without a \
                 cursor are read afresh and the cold path repairs any gap"
            ),
            None => tracing::warn!(
                path = %location,
                %detail,
                "cursor database was corrupt and another process moved it aside first"
            ),
        }
        match open_retrying(path, &location, options) {
            Ok(db) => Ok(db),
            Err(OpenFailure::Busy(e) | OpenFailure::Fatal(e)) => Err(e),
            Err(OpenFailure::Corrupt(detail)) => Err(CursorError::Unavailable {
                location,
                message: format!("the fresh database is unusable too: {detail}"),
                source: None,
            }),
        }
    }

    /// Every stored cursor, sorted by peer id. A row that does not decode is logged and
    /// skipped: that peer simply has no cursor until the next flush writes one.
    pub(super) fn load(&mut self) -> Result<Vec<Cursor>, CursorError> {
        let conn = &self.conn;
        let rows = retry_busy(self.busy_retries, "loading cursors", || read_rows(conn))
            .map_err(|e| unavailable(&self.location, "reading cursors", e))?;
        let mut cursors = Vec::with_capacity(rows.len());
        for row in rows {
            let peer_id = row.peer_id.clone();
            match row.into_cursor() {
                Ok(cursor) => cursors.push(cursor),
                Err(bad) => tracing::error!(
                    path = %self.location,
                    %peer_id,
                    %bad,
                    "skipping an unreadable cursor row; the peer has no cursor until the next flush"
                ),
            }
        }
        Ok(cursors)
    }

    /// Writes `cursors` in one transaction: all of them are durable when this returns, or
    /// none (the transaction rolled back).
    pub(super) fn write(&mut self, cursors: &[Cursor]) -> Result<(), CursorError> {
        let rows: Vec<CursorRow> = cursors.iter().map(CursorRow::from_cursor).collect();
        let conn = &mut self.conn;
        retry_busy(self.busy_retries, "writing cursors", || {
            write_rows(conn, &rows)
        })
        .map_err(|e| unavailable(&self.location, "writing cursors", e))
    }

    /// Closes the connection (checkpointing the WAL when it is the last one).
    pub(super) fn close(self) -> Result<(), CursorError> {
        let location = self.location;
        self.conn
            .close()
            .map_err(|(_, e)| unavailable(&location, "closing", e))
    }
}

fn read_rows(conn: &Connection) -> rusqlite::Result<Vec<CursorRow>> {
    let mut stmt = conn.prepare_cached(SELECT_ALL)?;
    let rows = stmt.query_map([], |row| {
        Ok(CursorRow {
            peer_id: row.get(0)?,
            stream_id: row.get(1)?,
            entries_added: row.get(2)?,
            updated_at_ms: row.get(3)?,
        })
    })?;
    rows.collect()
}

fn write_rows(conn: &mut Connection, rows: &[CursorRow]) -> rusqlite::Result<()> {
    // IMMEDIATE takes the write lock up front (waiting through busy_timeout), instead of
    // failing at the first write when another connection wrote since our read snapshot.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut upsert = tx.prepare_cached(UPSERT)?;
        for row in rows {
            upsert.execute(rusqlite::params![
                row.peer_id,
                row.stream_id,
                row.entries_added,
                row.updated_at_ms
            ])?;
        }
    }
    // A failed commit drops `tx`, which rolls back, so the retry starts clean.
    tx.commit()
}

/// [`open_once`], retried while another connection holds a lock.
fn open_retrying(
    path: &Path,
    location: &str,
    options: &SqliteOptions,
) -> Result<Database, OpenFailure> {
    retry_retriable(options.busy_retries, "opening", || {
        open_once(path, location, options)
    })
}

/// Sorts a SQLite error raised while opening.
fn classify(location: &str, what: &str, error: rusqlite::Error) -> OpenFailure {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            OpenFailure::Corrupt(format!("{what}: {error}"))
        }
        _ if is_busy(&error) => OpenFailure::Busy(unavailable(location, what, error)),
        _ => OpenFailure::Fatal(unavailable(location, what, error)),
    }
}

fn open_once(
    path: &Path,
    location: &str,
    options: &SqliteOptions,
) -> Result<Database, OpenFailure> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn =
        Connection::open_with_flags(path, flags).map_err(|e| classify(location, "opening", e))?;
    let setup = |what: &'static str| move |e| classify(location, what, e);
    conn.busy_timeout(options.busy_timeout)
        .map_err(setup("setting busy_timeout"))?;
    // Until the file is known to be ours, closing must not checkpoint a WAL into it: a
    // refused file is left byte for byte as it was.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(setup("configuring"))?;

    schema::check(&conn).map_err(|e| schema_failure(location, e))?;
    if let Some(problems) = check_integrity(&conn).map_err(setup("checking integrity"))? {
        return Err(OpenFailure::Corrupt(format!("integrity check: {problems}")));
    }

    let journal: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(setup("enabling the WAL journal"))?;
    if !journal.eq_ignore_ascii_case("wal") {
        // Some filesystems (network mounts) cannot share the WAL index. The rollback
        // journal SQLite falls back to is just as crash-safe, only slower.
        tracing::warn!(path = %location, journal, "WAL journal unavailable for the cursor database");
    }
    conn.pragma_update(None, "synchronous", options.synchronous.pragma_value())
        .map_err(setup("setting synchronous"))?;
    schema::migrate(&mut conn).map_err(|e| schema_failure(location, e))?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)
        .map_err(setup("configuring"))?;
    tracing::debug!(path = %location, journal, synchronous = options.synchronous.pragma_value(), "cursor database open");
    Ok(Database {
        conn,
        location: location.to_owned(),
        busy_retries: options.busy_retries,
    })
}

/// `None` when `PRAGMA quick_check` finds the file sound, else the problems it lists.
/// The database holds one small row per peer, so the full scan costs little.
fn check_integrity(conn: &Connection) -> rusqlite::Result<Option<String>> {
    let mut stmt = conn.prepare("PRAGMA quick_check(20)")?;
    let problems = stmt
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if problems.len() == 1 && problems[0] == "ok" {
        Ok(None)
    } else {
        Ok(Some(problems.join("; ")))
    }
}

fn schema_failure(location: &str, error: SchemaError) -> OpenFailure {
    match error {
        SchemaError::Future(found) => OpenFailure::Fatal(CursorError::FutureSchema {
            location: location.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        }),
        SchemaError::Foreign(found) => OpenFailure::Fatal(CursorError::Unavailable {
            location: location.to_owned(),
            message: format!(
                "not a cursor database (schema version {found} with existing tables); refusing to modify it"
            ),
            source: None,
        }),
        SchemaError::Sqlite(e) => classify(location, "checking the schema", e),
    }
}
