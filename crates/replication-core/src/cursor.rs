//! `CursorStore`: where the engine checkpoints how far it has applied each peer's stream.
//!
//! Contract the engine relies on:
//! - `set` records a cursor (it may only buffer it); `flush` makes every cursor set before
//!   it durable when it returns, surviving SIGKILL of the process. Whether it also survives
//!   power loss is the backend's to document (the SQLite store does by default).
//! - The engine calls `set` only after the entries up to that cursor are applied to the
//!   local store, so a flushed cursor never points past unapplied data. After a crash the
//!   engine re-reads at most what was applied after the last flush; re-applying is idempotent.
//! - Backends coalesce writes, so a `set` per batch stays cheap: the latest cursor per peer
//!   wins, and a `flush` writes all of them at once.
//! - Stores keep what they are given and never enforce monotonicity: after a peer's stream
//!   was recreated the engine legitimately sets an older cursor.
//! - `load_all` returns the latest cursor set per peer, flushed or not.
//! - After `close`, every call (a second `close` included) fails with `Closed`.

use crate::StreamId;

/// How far one peer's stream has been applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The peer's node id.
    pub peer_id: String,
    /// Id of the last entry applied (or deliberately rejected); reads resume after it.
    pub stream_id: StreamId,
    /// The peer stream's `entries-added` counter when last observed. It only grows for one
    /// stream, so a smaller value later means the stream was recreated.
    pub entries_added: Option<u64>,
    /// When this cursor was recorded, ms since the epoch.
    pub updated_at_ms: i64,
}

/// A cursor store failure.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    /// The store could not be opened, read or written.
    #[error("cursor store {location}: {message}")]
    Unavailable {
        /// Where the store lives (file path, or `memory`).
        location: String,
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// The database was written by a newer version of this software.
    #[error(
        "cursor store {location} has schema version {found}; this build supports up to {supported}"
    )]
    FutureSchema {
        /// Where the store lives.
        location: String,
        /// Version found in the file.
        found: i64,
        /// Newest version this build understands.
        supported: i64,
    },
    /// The store was closed.
    #[error("cursor store {location} is closed")]
    Closed {
        /// Where the store lives.
        location: String,
    },
}

impl CursorError {
    /// Whether retrying the same call may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, CursorError::Unavailable { .. })
    }
}

/// A durable map from peer id to [`Cursor`].
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait CursorStore: Send + Sync + 'static {
    /// The latest cursor of every peer, including cursors set but not yet flushed.
    async fn load_all(&self) -> Result<Vec<Cursor>, CursorError>;

    /// Records a cursor, replacing the peer's previous one even if it was newer; durable
    /// after the next `flush`.
    async fn set(&self, cursor: Cursor) -> Result<(), CursorError>;

    /// Makes every cursor set so far durable.
    async fn flush(&self) -> Result<(), CursorError>;

    /// Flushes and releases the store; later calls fail with `Closed`.
    async fn close(&self) -> Result<(), CursorError>;
}
