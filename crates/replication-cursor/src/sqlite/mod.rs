//! `SqliteCursorStore`: the durable cursor store, one SQLite file in WAL mode with one
//! row per peer, written by a dedicated thread (see [`worker`]).
//!
//! # Durability
//! `flush` returns once the transaction holding every dirty cursor has committed. The
//! commit is in the WAL file through the operating system, so it survives SIGKILL of the
//! process with either [`Synchronous`](crate::Synchronous) level; with the default
//! `Full`, SQLite also fsyncs the WAL, so it survives power loss on a disk that honours
//! fsync. Note that after a power loss the local store may itself have lost its last
//! writes (Redis `appendfsync everysec`), leaving a cursor past data the store no longer
//! holds: the cold path's Merkle comparison repairs that.
//!
//! # Sharing the file
//! Several connections, in this process or others, may open the same file: SQLite's
//! locks keep it consistent, writers wait for each other (`busy_timeout`, then bounded
//! retries), and schema creation happens once. Two engines sharing one cursor file would
//! still overwrite each other's cursors; give each engine its own file.

mod busy;
mod database;
mod recovery;
mod row;
mod schema;
mod worker;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;

use replication_core::{Cursor, CursorConfig, CursorError, CursorStore};
use tokio::sync::oneshot;

use self::database::unavailable;
use self::worker::{Command, Reply, Shared};
use crate::SqliteOptions;

/// A [`CursorStore`] in a SQLite file.
///
/// `set` only records the cursor in memory (latest per peer); `flush` writes every
/// recorded cursor in one transaction and is durable when it returns; a background flush
/// runs [`SqliteOptions::flush_interval`] after the first unflushed `set`. `close` flushes
/// and closes the file. Dropping the store without `close` flushes in the background,
/// with nobody to wait for it or hear of a failure.
pub struct SqliteCursorStore {
    location: String,
    shared: Arc<Shared>,
    commands: Sender<Command>,
    /// Whether the writer thread needs `Command::Dirty` to start its flush clock.
    auto_flush: bool,
}

impl fmt::Debug for SqliteCursorStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteCursorStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Opens the store named by the engine's `[cursor]` config: `sqlite_path`, with the
/// background flush every `flush_interval` and the other [`SqliteOptions`] defaults.
pub async fn open_from_config(config: &CursorConfig) -> Result<SqliteCursorStore, CursorError> {
    SqliteCursorStore::open(&config.sqlite_path, SqliteOptions::from_config(config)).await
}

impl SqliteCursorStore {
    /// Opens the database at `path`, creating it (not its directory) if needed.
    ///
    /// Async because the file work runs on the store's own thread, not on the caller's
    /// executor. A corrupt file is renamed to `<path>.corrupt-<unix-ms>` (with its `-wal`
    /// and `-shm`), logged at error level, and a fresh empty store starts in its place.
    ///
    /// # Errors
    /// - [`CursorError::FutureSchema`] if a newer build wrote the file (left untouched).
    /// - [`CursorError::Unavailable`] if the file cannot be opened (directory missing,
    ///   permissions, I/O error, still locked after the retries), or is another
    ///   application's SQLite database (left untouched).
    pub async fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, CursorError> {
        let path = path.as_ref().to_path_buf();
        let location = path.display().to_string();
        let shared = Arc::new(Shared::default());
        let (commands, receiver) = mpsc::channel();
        let (opened, opened_reply) = oneshot::channel();
        let auto_flush = options.flush_interval.is_some();
        worker::spawn(path, options, Arc::clone(&shared), receiver, opened)
            .map_err(|e| unavailable(&location, "starting the writer thread", e))?;
        match opened_reply.await {
            Ok(Ok(())) => Ok(Self {
                location,
                shared,
                commands,
                auto_flush,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(CursorError::Unavailable {
                location,
                message: "the writer thread stopped while opening".to_owned(),
                source: None,
            }),
        }
    }

    /// The database path, as shown in errors and logs.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn closed_error(&self) -> CursorError {
        CursorError::Closed {
            location: self.location.clone(),
        }
    }

    fn ensure_open(&self) -> Result<(), CursorError> {
        if self.shared.lock().closed {
            return Err(self.closed_error());
        }
        Ok(())
    }

    /// The error when the writer thread is gone: `Closed` after `close` (which stops it),
    /// else it died.
    fn writer_gone(&self) -> CursorError {
        if self.shared.lock().closed {
            return self.closed_error();
        }
        self.writer_died()
    }

    fn writer_died(&self) -> CursorError {
        CursorError::Unavailable {
            location: self.location.clone(),
            message: "the writer thread has stopped".to_owned(),
            source: None,
        }
    }

    /// Sends a request to the writer thread and waits for its reply; `gone` is the error
    /// if the thread is not there to answer.
    async fn request<T>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
        gone: impl Fn() -> CursorError,
    ) -> Result<T, CursorError> {
        let (reply, response) = oneshot::channel();
        self.commands.send(command(reply)).map_err(|_| gone())?;
        response.await.map_err(|_| gone())?
    }
}

#[async_trait::async_trait]
impl CursorStore for SqliteCursorStore {
    async fn load_all(&self) -> Result<Vec<Cursor>, CursorError> {
        self.ensure_open()?;
        self.request(Command::LoadAll, || self.writer_gone()).await
    }

    async fn set(&self, cursor: Cursor) -> Result<(), CursorError> {
        let was_clean = {
            let mut pending = self.shared.lock();
            if pending.closed {
                return Err(self.closed_error());
            }
            let was_clean = pending.dirty.is_empty();
            pending.dirty.insert(cursor.peer_id.clone(), cursor);
            was_clean
        };
        // Only the first unflushed cursor starts the flush clock; later ones ride along.
        if was_clean && self.auto_flush {
            self.commands
                .send(Command::Dirty)
                .map_err(|_| self.writer_gone())?;
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), CursorError> {
        self.ensure_open()?;
        self.request(Command::Flush, || self.writer_gone()).await
    }

    async fn close(&self) -> Result<(), CursorError> {
        {
            let mut pending = self.shared.lock();
            if pending.closed {
                return Err(self.closed_error());
            }
            pending.closed = true;
        }
        // `closed` is already set, so a dead thread must not be reported as `Closed`.
        self.request(Command::Close, || self.writer_died()).await
    }
}
