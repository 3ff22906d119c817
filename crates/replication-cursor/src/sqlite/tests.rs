//! Tests of the SQLite store on real files: conformance, recovery from corrupt files,
//! refusal of newer or foreign databases, lock contention, background flushing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use replication_core::{Cursor, CursorConfig, CursorError, CursorStore};
use tempfile::TempDir;

use super::recovery::suffixed;
use super::schema::SCHEMA_VERSION;
use super::{open_from_config, SqliteCursorStore};
use crate::conformance::{self, sample_cursor, Backend};
use crate::{SqliteOptions, Synchronous};

/// Each slot is a file in one temp dir.
struct Sqlite {
    dir: TempDir,
    options: SqliteOptions,
}

impl Sqlite {
    fn new(options: SqliteOptions) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            options,
        }
    }
}

impl Backend for Sqlite {
    type Store = SqliteCursorStore;

    async fn open(&self, slot: &str) -> Result<SqliteCursorStore, CursorError> {
        SqliteCursorStore::open(
            self.dir.path().join(format!("{slot}.db")),
            self.options.clone(),
        )
        .await
    }

    fn durable(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn passes_the_conformance_suite_with_defaults() {
    conformance::run_conformance(&Sqlite::new(SqliteOptions::default())).await;
}

#[tokio::test]
async fn passes_the_conformance_suite_with_normal_sync_and_no_background_flush() {
    let options = SqliteOptions::default()
        .with_synchronous(Synchronous::Normal)
        .with_flush_interval(None);
    conformance::run_conformance(&Sqlite::new(options)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite_with_background_flush_racing_explicit_ones() {
    // A zero interval flushes right after every first unflushed set, so background and
    // explicit flushes interleave as much as they can.
    let options = SqliteOptions::default().with_flush_interval(Some(Duration::ZERO));
    conformance::run_conformance(&Sqlite::new(options)).await;
}

/// Options for tests that flush explicitly.
fn manual() -> SqliteOptions {
    SqliteOptions::default().with_flush_interval(None)
}

async fn open(path: &Path, options: SqliteOptions) -> SqliteCursorStore {
    SqliteCursorStore::open(path, options).await.unwrap()
}

/// Cursors in the file, read by a connection of our own (peer id, stream id).
fn rows(path: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT peer_id, stream_id FROM cursors ORDER BY peer_id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Files in `dir` whose name contains `.corrupt-`.
fn corrupt_copies(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains(".corrupt-")
        })
        .collect();
    found.sort();
    found
}

/// Polls `check` until it holds. The bound only stops a broken build from hanging; it
/// is far beyond anything the checked behaviour needs, even on a loaded machine.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < give_up, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A file with one flushed cursor, closed (so the WAL is checkpointed into it).
async fn closed_store_with(path: &Path, cursors: &[Cursor]) {
    let store = open(path, manual()).await;
    for cursor in cursors {
        store.set(cursor.clone()).await.unwrap();
    }
    store.close().await.unwrap();
    assert!(
        !suffixed(path, "-wal").exists(),
        "closing the last connection checkpoints and removes the WAL"
    );
}

#[tokio::test]
async fn uses_the_wal_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let store = open(&path, manual()).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    store.close().await.unwrap();
}

#[tokio::test]
async fn garbage_file_is_moved_aside_and_a_fresh_store_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cursors.db");
    closed_store_with(&path, &[sample_cursor("a", 1)]).await;
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(7) + 3) as u8)
        .collect();
    std::fs::write(&path, &garbage).unwrap();
    // A WAL left next to the garbage must move with it, never be replayed into the new file.
    std::fs::write(suffixed(&path, "-wal"), b"stale wal").unwrap();

    let store = open(&path, manual()).await;
    assert!(
        store.load_all().await.unwrap().is_empty(),
        "the fresh store starts empty"
    );
    store.set(sample_cursor("b", 2)).await.unwrap();
    store.close().await.unwrap();
    assert_eq!(
        open(&path, manual()).await.load_all().await.unwrap(),
        vec![sample_cursor("b", 2)]
    );

    let main = only_corrupt_copy(dir.path());
    let name = main.file_name().unwrap().to_str().unwrap();
    let millis = name.strip_prefix("cursors.db.corrupt-").unwrap();
    assert!(
        millis.parse::<u64>().is_ok(),
        "named <name>.corrupt-<unix-ms>: {name}"
    );
    assert_eq!(
        std::fs::read(&main).unwrap(),
        garbage,
        "the bad file is kept as it was"
    );
    assert_eq!(
        std::fs::read(suffixed(&main, "-wal")).unwrap(),
        b"stale wal",
        "its WAL moved with it"
    );
}

/// The one corrupt copy of a database in `dir`; every other `.corrupt-` file must be one
/// of its companions (`-wal`, `-shm`).
fn only_corrupt_copy(dir: &Path) -> PathBuf {
    let copies = corrupt_copies(dir);
    let main = copies
        .first()
        .unwrap_or_else(|| panic!("no corrupt copy in {dir:?}"))
        .clone();
    for other in &copies[1..] {
        assert!(
            *other == suffixed(&main, "-wal") || *other == suffixed(&main, "-shm"),
            "unexpected corrupt copy {other:?} besides {main:?}"
        );
    }
    main
}

#[tokio::test]
async fn damaged_table_page_is_caught_by_the_integrity_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cursors.db");
    closed_store_with(&path, &[sample_cursor("a", 1), sample_cursor("b", 2)]).await;
    // Page 1 (header and schema) stays intact, so the file still opens and reports its
    // version; page 2, the root of the cursors table, is overwritten.
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        bytes.len(),
        2 * 4096,
        "two 4 KiB pages: schema and the cursors table"
    );
    bytes[4096..].fill(0xAB);
    std::fs::write(&path, &bytes).unwrap();

    let store = open(&path, manual()).await;
    assert!(store.load_all().await.unwrap().is_empty());
    store.close().await.unwrap();
    assert_eq!(std::fs::read(only_corrupt_copy(dir.path())).unwrap(), bytes);
}

#[tokio::test]
async fn future_schema_is_refused_and_the_file_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cursors.db");
    closed_store_with(&path, &[sample_cursor("a", 1)]).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    conn.close().unwrap();
    let before = std::fs::read(&path).unwrap();

    let error = SqliteCursorStore::open(&path, manual()).await.unwrap_err();
    match &error {
        CursorError::FutureSchema {
            found, supported, ..
        } => {
            assert_eq!((*found, *supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected FutureSchema, got {other:?}"),
    }
    assert!(!error.is_retriable());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a newer file must not be modified"
    );
    assert!(
        corrupt_copies(dir.path()).is_empty(),
        "a newer file is not corrupt"
    );
}

#[tokio::test]
async fn another_applications_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE orders (id INTEGER); INSERT INTO orders VALUES (1);")
        .unwrap();
    conn.close().unwrap();
    let before = std::fs::read(&path).unwrap();

    let error = SqliteCursorStore::open(&path, manual()).await.unwrap_err();
    assert!(
        matches!(&error, CursorError::Unavailable { message, .. } if message.contains("not a cursor database")),
        "{error:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(corrupt_copies(dir.path()).is_empty());
}

#[tokio::test]
async fn missing_directory_is_reported_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("c.db");
    let error = SqliteCursorStore::open(&path, manual()).await.unwrap_err();
    assert!(
        matches!(error, CursorError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("no-such-dir"),
        "the error names the path: {error}"
    );
    assert!(!dir.path().join("no-such-dir").exists());
}

#[tokio::test]
async fn busy_flush_is_retried_then_reported_and_the_cursors_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let options = manual()
        .with_busy_timeout(Duration::from_millis(1))
        .with_busy_retries(2);
    let store = open(&path, options).await;
    let locker = rusqlite::Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();

    store.set(sample_cursor("p1", 1)).await.unwrap();
    store.set(sample_cursor("p2", 1)).await.unwrap();
    let error = store.flush().await.unwrap_err();
    assert!(
        matches!(error, CursorError::Unavailable { .. }) && error.is_retriable(),
        "{error:?}"
    );
    // A newer set after the failure must win over the cursor the failed flush put back.
    store.set(sample_cursor("p1", 2)).await.unwrap();
    assert_eq!(
        store.load_all().await.unwrap(),
        vec![sample_cursor("p1", 2), sample_cursor("p2", 1)]
    );

    locker.execute_batch("ROLLBACK").unwrap();
    store.flush().await.unwrap();
    store.close().await.unwrap();
    let reopened = open(&path, manual()).await;
    assert_eq!(
        reopened.load_all().await.unwrap(),
        vec![sample_cursor("p1", 2), sample_cursor("p2", 1)]
    );
}

#[tokio::test]
async fn flush_waits_out_a_lock_released_during_its_retries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    // Retry budget far beyond the lock's lifetime, so the outcome does not depend on speed.
    let options = manual()
        .with_busy_timeout(Duration::from_millis(1))
        .with_busy_retries(10_000);
    let store = Arc::new(open(&path, options).await);
    let locker = rusqlite::Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();

    store.set(sample_cursor("p", 1)).await.unwrap();
    let flushing = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.flush().await }
    });
    // Let the flush meet the lock (how often it retries does not matter).
    tokio::time::sleep(Duration::from_millis(100)).await;
    locker.execute_batch("ROLLBACK").unwrap();
    flushing.await.unwrap().unwrap();
    assert_eq!(
        rows(&path),
        vec![("p".to_owned(), sample_cursor("p", 1).stream_id.to_string())]
    );
}

#[tokio::test]
async fn two_stores_on_one_file_see_each_others_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let (first, second) = (open(&path, manual()).await, open(&path, manual()).await);
    first.set(sample_cursor("a", 1)).await.unwrap();
    first.flush().await.unwrap();
    assert_eq!(
        second.load_all().await.unwrap(),
        vec![sample_cursor("a", 1)]
    );
    second.set(sample_cursor("b", 1)).await.unwrap();
    second.flush().await.unwrap();
    assert_eq!(
        first.load_all().await.unwrap(),
        vec![sample_cursor("a", 1), sample_cursor("b", 1)]
    );
}

#[tokio::test]
async fn stores_opening_a_new_file_at_once_all_succeed() {
    // Each open runs on its own thread, so they really race to create the file, switch it
    // to WAL and create the schema; none may mistake another's half-done work for a
    // foreign or corrupt file.
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let opens: Vec<_> = (0..6)
            .map(|_| tokio::spawn(SqliteCursorStore::open(path.clone(), manual())))
            .collect();
        for open in opens {
            let store = open
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            store.close().await.unwrap();
        }
        assert!(corrupt_copies(dir.path()).is_empty(), "round {round}");
    }
}

#[tokio::test]
async fn open_from_config_flushes_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let config = CursorConfig {
        sqlite_path: dir.path().join("from-config.db"),
        flush_interval: Duration::from_millis(20),
    };
    let store = open_from_config(&config).await.unwrap();
    store.set(sample_cursor("p", 7)).await.unwrap();
    let expected = vec![("p".to_owned(), sample_cursor("p", 7).stream_id.to_string())];
    eventually("background flush", || rows(&config.sqlite_path) == expected).await;
    store.close().await.unwrap();
}

#[tokio::test]
async fn dropping_the_store_flushes_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let store = open(&path, manual()).await;
    store.set(sample_cursor("p", 3)).await.unwrap();
    drop(store);
    let expected = vec![("p".to_owned(), sample_cursor("p", 3).stream_id.to_string())];
    eventually("flush on drop", || rows(&path) == expected).await;
}

#[tokio::test]
async fn unreadable_rows_are_skipped_and_rewritten_by_the_next_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    closed_store_with(&path, &[sample_cursor("good", 1)]).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "INSERT INTO cursors VALUES ('bad-id', 'not-an-id', NULL, 0);
         INSERT INTO cursors VALUES ('bad-count', '1-1', '+5', 0);",
    )
    .unwrap();
    conn.close().unwrap();

    let store = open(&path, manual()).await;
    assert_eq!(
        store.load_all().await.unwrap(),
        vec![sample_cursor("good", 1)]
    );
    store.set(sample_cursor("bad-id", 2)).await.unwrap();
    store.flush().await.unwrap();
    assert_eq!(
        store.load_all().await.unwrap(),
        vec![sample_cursor("bad-id", 2), sample_cursor("good", 1)]
    );
}

/// Compile-time check that the public futures can be spawned on a multi-threaded runtime.
#[allow(dead_code)]
fn public_futures_are_send(path: &Path, config: &CursorConfig, store: &SqliteCursorStore) {
    fn send<T: Send>(_: T) {}
    send(SqliteCursorStore::open(path, SqliteOptions::default()));
    send(open_from_config(config));
    send(store.flush());
}
