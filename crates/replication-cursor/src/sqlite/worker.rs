//! The writer thread: owns the SQLite connection and runs every database call, one at a
//! time, so blocking SQLite work never lands on an async executor thread and writes are
//! serialized.
//!
//! `set` never reaches this thread: it only updates the shared dirty map, latest cursor
//! per peer. A flush (explicit, on the auto-flush timer, at `close`, or when the store is
//! dropped) takes the whole map and writes it in one transaction, which is what
//! coalesces writes: however many `set`s and queued `flush`es came before, each dirty
//! peer costs one row write, and a flush finding the map empty costs nothing.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use replication_core::{Cursor, CursorError};
use tokio::sync::oneshot;

use super::database::Database;
use crate::SqliteOptions;

/// State shared by the store handle and its writer thread.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pending: Mutex<Pending>,
}

/// What the handle has recorded and the thread has not written yet.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// Latest unflushed cursor per peer.
    pub(super) dirty: HashMap<String, Cursor>,
    /// Set by `close`: every later call fails with `Closed`.
    pub(super) closed: bool,
}

impl Shared {
    /// Locks the pending state. Each critical section is a single map operation that
    /// cannot leave the map half-updated, so a poisoned lock is still consistent.
    pub(super) fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A reply channel for one request.
pub(super) type Reply<T> = oneshot::Sender<Result<T, CursorError>>;

/// Requests from the store handle.
pub(super) enum Command {
    /// A `set` made the dirty map non-empty: start the auto-flush clock.
    Dirty,
    /// Write every dirty cursor.
    Flush(Reply<()>),
    /// Read every cursor, unflushed ones included.
    LoadAll(Reply<Vec<Cursor>>),
    /// Flush, close the connection and stop.
    Close(Reply<()>),
}

/// Starts the writer thread, which opens the database at `path`, reports the outcome on
/// `opened` and, if it opened, serves `commands` until `Close` or until every sender is
/// dropped (then it flushes and closes by itself).
pub(super) fn spawn(
    path: PathBuf,
    options: SqliteOptions,
    shared: Arc<Shared>,
    commands: Receiver<Command>,
    opened: Reply<()>,
) -> io::Result<()> {
    thread::Builder::new()
        .name("cursor-sqlite".to_owned())
        .spawn(move || {
            let db = match Database::open(&path, &options) {
                Ok(db) => db,
                Err(e) => {
                    // The caller may have stopped waiting; then nobody needs the error.
                    let _ = opened.send(Err(e));
                    return;
                }
            };
            let _ = opened.send(Ok(()));
            Worker {
                db,
                shared,
                flush_interval: options.flush_interval,
                location: path.display().to_string(),
            }
            .run(&commands);
        })?;
    Ok(())
}

struct Worker {
    db: Database,
    shared: Arc<Shared>,
    flush_interval: Option<Duration>,
    location: String,
}

impl Worker {
    fn run(mut self, commands: &Receiver<Command>) {
        // When the auto-flush is due; `None` while nothing is dirty (or it is disabled).
        let mut flush_due: Option<Instant> = None;
        loop {
            let received = match flush_due {
                None => commands.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(due) => commands.recv_timeout(due.saturating_duration_since(Instant::now())),
            };
            match received {
                Ok(Command::Dirty) => {
                    if flush_due.is_none() {
                        flush_due = self
                            .flush_interval
                            .map(|interval| Instant::now() + interval);
                    }
                }
                Ok(Command::Flush(reply)) => {
                    let result = self.flush();
                    flush_due = self.next_flush_due(&result);
                    // The caller may have been cancelled; the cursors are written anyway.
                    let _ = reply.send(result);
                }
                Ok(Command::LoadAll(reply)) => {
                    let _ = reply.send(self.load_all());
                }
                Ok(Command::Close(reply)) => {
                    let _ = reply.send(self.finish());
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let result = self.flush();
                    if let Err(error) = &result {
                        tracing::warn!(path = %self.location, %error, "background cursor flush failed; will retry");
                    }
                    flush_due = self.next_flush_due(&result);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let location = self.location.clone();
                    if let Err(error) = self.finish() {
                        tracing::error!(
                            path = %location,
                            %error,
                            "cursor store dropped without close, and its final flush failed"
                        );
                    }
                    return;
                }
            }
        }
    }

    /// After a flush: nothing is due when it succeeded (cursors set meanwhile send their
    /// own `Dirty`); after a failure, the restored cursors are retried an interval later.
    fn next_flush_due(&self, result: &Result<(), CursorError>) -> Option<Instant> {
        match result {
            Ok(()) => None,
            Err(_) => self
                .flush_interval
                .map(|interval| Instant::now() + interval),
        }
    }

    /// Writes every dirty cursor in one transaction. On failure the cursors go back into
    /// the dirty map, except for peers that got a newer `set` meanwhile.
    fn flush(&mut self) -> Result<(), CursorError> {
        let batch: Vec<Cursor> = std::mem::take(&mut self.shared.lock().dirty)
            .into_values()
            .collect();
        if batch.is_empty() {
            return Ok(());
        }
        let result = self.db.write(&batch);
        if result.is_err() {
            let mut pending = self.shared.lock();
            for cursor in batch {
                pending
                    .dirty
                    .entry(cursor.peer_id.clone())
                    .or_insert(cursor);
            }
        }
        result
    }

    /// Stored cursors overlaid with the unflushed ones, sorted by peer id.
    fn load_all(&mut self) -> Result<Vec<Cursor>, CursorError> {
        let stored = self.db.load()?;
        // No flush can run between the read and the overlay (this thread does both), so a
        // cursor is either still dirty here or already in `stored`.
        let pending = self.shared.lock();
        if pending.dirty.is_empty() {
            return Ok(stored);
        }
        let mut by_peer: BTreeMap<String, Cursor> =
            stored.into_iter().map(|c| (c.peer_id.clone(), c)).collect();
        for cursor in pending.dirty.values() {
            by_peer.insert(cursor.peer_id.clone(), cursor.clone());
        }
        Ok(by_peer.into_values().collect())
    }

    /// Final flush, then close the connection (the close reply is sent only after it).
    fn finish(mut self) -> Result<(), CursorError> {
        let flushed = self.flush();
        let closed = self.db.close();
        flushed.and(closed)
    }
}
