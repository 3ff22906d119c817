//! The cursor database schema and its version, kept in `PRAGMA user_version`.
//!
//! Version history (add a migration step and bump [`SCHEMA_VERSION`] for each change):
//! - 0: empty file, no schema yet.
//! - 1: table `cursors`, one row per peer.

use rusqlite::{Connection, TransactionBehavior};

/// Newest schema version this build reads and writes.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// Schema version 1. STRICT makes SQLite refuse values of the wrong type instead of
/// converting them; WITHOUT ROWID stores each row once, keyed by peer id.
const CREATE_V1: &str = "
CREATE TABLE cursors (
    -- The peer's node id.
    peer_id TEXT NOT NULL PRIMARY KEY,
    -- Last applied entry id, `<ms>-<seq>` in decimal (u64 parts exceed SQLite integers).
    stream_id TEXT NOT NULL,
    -- The peer stream's entries-added counter (decimal u64), NULL when unknown. A smaller
    -- value later means the stream was recreated.
    entries_added TEXT,
    -- When the cursor was recorded, ms since the epoch.
    updated_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
";

/// Why the schema could not be brought up to date.
#[derive(Debug)]
pub(super) enum SchemaError {
    /// Written by a newer build; left untouched.
    Future(i64),
    /// The file holds tables but no cursor schema version (or a negative one): another
    /// application's database. Left untouched rather than altered.
    Foreign(i64),
    /// SQLite failed.
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for SchemaError {
    fn from(error: rusqlite::Error) -> Self {
        SchemaError::Sqlite(error)
    }
}

/// The schema version recorded in the file.
pub(super) fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Checks, without writing anything, that the file is a cursor database this build can
/// use: its version is not newer than ours, and a file without a version is empty.
pub(super) fn check(conn: &Connection) -> Result<(), SchemaError> {
    // One statement reads one snapshot. Read separately, the version could predate and the
    // table count follow another process's schema creation, which looks like a foreign file.
    let (found, tables): (i64, i64) = conn.query_row(
        "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_schema)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if found > SCHEMA_VERSION {
        return Err(SchemaError::Future(found));
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    if found < 0 || tables > 0 {
        return Err(SchemaError::Foreign(found));
    }
    Ok(())
}

/// Creates or upgrades the schema to [`SCHEMA_VERSION`], in one immediate transaction so
/// that two processes opening a new file at once create it exactly once.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), SchemaError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Check again under the write lock: another process may have migrated meanwhile.
    check(&tx)?;
    if version(&tx)? == SCHEMA_VERSION {
        return Ok(());
    }
    tx.execute_batch(CREATE_V1)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_an_empty_database_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), SCHEMA_VERSION);
        migrate(&mut conn).unwrap();
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 1);
    }

    #[test]
    fn strict_table_refuses_wrong_types() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let wrong = conn.execute(
            "INSERT INTO cursors VALUES ('p', '1-0', NULL, 'not a number')",
            [],
        );
        assert!(wrong.is_err());
    }

    #[test]
    fn refuses_newer_and_foreign_databases() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(
            matches!(migrate(&mut conn), Err(SchemaError::Future(v)) if v == SCHEMA_VERSION + 1)
        );

        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE orders (id INTEGER)")
            .unwrap();
        assert!(matches!(migrate(&mut conn), Err(SchemaError::Foreign(0))));

        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", -3).unwrap();
        assert!(matches!(migrate(&mut conn), Err(SchemaError::Foreign(-3))));
    }
}
