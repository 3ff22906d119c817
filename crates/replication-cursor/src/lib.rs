//! Cursor checkpoint stores for the mesh replication engine: where the engine records how
//! far it has applied each peer's CDC stream, so that a restart resumes instead of
//! re-reading everything.
//!
//! Two backends implement [`replication_core::CursorStore`]:
//! - [`SqliteCursorStore`]: one SQLite file (WAL journal), one row per peer, owned by a
//!   dedicated writer thread so that blocking SQLite work never runs on async executor
//!   threads. `set` only buffers; `flush` writes every buffered cursor in one transaction
//!   and is durable when it returns; a background flush runs every
//!   [`SqliteOptions::flush_interval`].
//! - [`MemoryCursorStore`]: a map in memory, for tests and standalone use.
//!
//! Both pass the same conformance suite (module `conformance`, behind the `conformance`
//! feature), which other backends can run too.
//!
//! # What the stores promise
//! - `load_all` returns the latest cursor `set` for each peer, flushed or not.
//! - A cursor is stored as given, even when older than the stored one: after a peer's
//!   stream is recreated the engine legitimately moves a cursor back.
//! - A flushed SQLite cursor survives SIGKILL of the process. With the default
//!   [`Synchronous::Full`] it also survives power loss (on a disk that honours fsync);
//!   with [`Synchronous::Normal`] the last flushes before a power loss may be lost, which
//!   only means re-reading entries already applied.
//! - After `close`, every call (a second `close` included) fails with
//!   [`CursorError::Closed`](replication_core::CursorError::Closed).

// Tests may unwrap: a panic is how a test fails. Library code never does (the workspace
// lint still checks it, since the library is linted without cfg(test) too).
#![cfg_attr(test, allow(clippy::unwrap_used))]

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod memory;
mod options;
mod sqlite;

pub use memory::MemoryCursorStore;
pub use options::{SqliteOptions, Synchronous};
pub use sqlite::{open_from_config, SqliteCursorStore};
