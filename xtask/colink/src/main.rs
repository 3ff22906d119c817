//! The facade and sync-engine in one process: the cursor store (rusqlite) and sync-engine's
//! SQL store (sqlx) each open a SQLite file. That this builds at all is the check that
//! matters (both crates link the native `sqlite3` library, so cargo accepts exactly one
//! `libsqlite3-sys` for both); running it shows the shared library serves both.

use replication_engine::{CursorStore, SqliteCursorStore};
use sync_engine::storage::traits::ArchiveStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let cursors =
        SqliteCursorStore::open(dir.path().join("cursors.db"), Default::default()).await?;
    let loaded = cursors.load_all().await?.len();
    cursors.close().await?;
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("sync.db").display());
    let archive = sync_engine::storage::sql::SqlStore::new(&url).await?;
    let items = archive.count_all().await?;
    println!(
        "replication-engine and sync-engine share one SQLite: {loaded} cursors, {items} items"
    );
    Ok(())
}
