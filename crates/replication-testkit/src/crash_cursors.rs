//! `CrashCursorStore`: an in-memory `CursorStore` with a process's crash semantics, for
//! simulations that kill and restart engines.
//!
//! Cursors set since the last flush live only in the handle (the process's memory); a
//! flush moves them into the durable part, which every handle opened on the same store
//! shares (the file). [`CrashCursorStore::crash`] loses the unflushed cursors, and
//! [`CrashCursorStore::reopen`] opens a new handle on what was durable, as a restarted
//! process reopens its file. The durable part is flushed by the engine (shutdown) or by
//! the host calling [`CrashCursorStore::flush_now`], as a backend's flush timer would.

use replication_core::{Cursor, CursorError, CursorStore};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Where the errors of this store say it lives.
const LOCATION: &str = "crash-memory";

type Durable = Arc<Mutex<BTreeMap<String, Cursor>>>;

/// See the module docs. Not `Clone`: each handle is one process's view.
#[derive(Debug, Default)]
pub struct CrashCursorStore {
    durable: Durable,
    state: Mutex<Handle>,
}

#[derive(Debug, Default)]
struct Handle {
    /// Latest cursor set per peer, flushed or not: what `load_all` returns.
    latest: BTreeMap<String, Cursor>,
    /// Peers whose latest cursor is not durable yet.
    unflushed: Vec<String>,
    /// Closed by the engine, or dead after a crash: every call fails.
    closed: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is one insert or clone: a panic cannot leave it half-done.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CrashCursorStore {
    /// An empty store (no durable cursors yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// A new handle on this store's durable cursors, as a restarted process sees them.
    pub fn reopen(&self) -> Self {
        let latest = lock(&self.durable).clone();
        Self {
            durable: self.durable.clone(),
            state: Mutex::new(Handle {
                latest,
                ..Handle::default()
            }),
        }
    }

    /// The process dies: unflushed cursors are lost and this handle fails every call.
    pub fn crash(&self) {
        let mut handle = lock(&self.state);
        handle.unflushed.clear();
        handle.closed = true;
    }

    /// Makes every cursor set so far durable, as a background flush does. Does nothing on
    /// a closed or crashed handle.
    pub fn flush_now(&self) {
        let mut handle = lock(&self.state);
        if handle.closed {
            return;
        }
        let mut durable = lock(&self.durable);
        for peer in std::mem::take(&mut handle.unflushed) {
            if let Some(cursor) = handle.latest.get(&peer) {
                durable.insert(peer, cursor.clone());
            }
        }
    }

    /// The durable cursors, sorted by peer: what a restart would load now.
    pub fn durable_cursors(&self) -> Vec<Cursor> {
        lock(&self.durable).values().cloned().collect()
    }

    /// The latest cursor set for `peer` through this handle (or loaded when it opened).
    pub fn latest(&self, peer: &str) -> Option<Cursor> {
        lock(&self.state).latest.get(peer).cloned()
    }

    fn open(&self) -> Result<MutexGuard<'_, Handle>, CursorError> {
        let handle = lock(&self.state);
        if handle.closed {
            return Err(CursorError::Closed {
                location: LOCATION.to_owned(),
            });
        }
        Ok(handle)
    }
}

#[async_trait::async_trait]
impl CursorStore for CrashCursorStore {
    async fn load_all(&self) -> Result<Vec<Cursor>, CursorError> {
        Ok(self.open()?.latest.values().cloned().collect())
    }

    async fn set(&self, cursor: Cursor) -> Result<(), CursorError> {
        let mut handle = self.open()?;
        if !handle.unflushed.contains(&cursor.peer_id) {
            handle.unflushed.push(cursor.peer_id.clone());
        }
        handle.latest.insert(cursor.peer_id.clone(), cursor);
        Ok(())
    }

    async fn flush(&self) -> Result<(), CursorError> {
        drop(self.open()?);
        self.flush_now();
        Ok(())
    }

    async fn close(&self) -> Result<(), CursorError> {
        drop(self.open()?);
        self.flush_now();
        lock(&self.state).closed = true;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;
    use replication_core::StreamId;

    fn cursor(peer: &str, ms: u64) -> Cursor {
        Cursor {
            peer_id: peer.into(),
            stream_id: StreamId::new(ms, 0),
            entries_added: None,
            updated_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn a_crash_loses_what_was_not_flushed_and_a_reopen_sees_the_rest() {
        let store = CrashCursorStore::new();
        store.set(cursor("a", 1)).await.unwrap();
        store.flush_now();
        store.set(cursor("a", 2)).await.unwrap();
        store.set(cursor("b", 3)).await.unwrap();
        assert_eq!(
            store.load_all().await.unwrap().len(),
            2,
            "unflushed cursors load"
        );
        store.crash();
        assert!(store.set(cursor("a", 4)).await.is_err(), "a dead handle");
        let again = store.reopen();
        assert_eq!(again.load_all().await.unwrap(), [cursor("a", 1)]);
        again.set(cursor("b", 5)).await.unwrap();
        again.close().await.unwrap();
        assert_eq!(
            store.reopen().durable_cursors(),
            [cursor("a", 1), cursor("b", 5)],
            "close flushes"
        );
        assert!(matches!(
            again.flush().await,
            Err(CursorError::Closed { .. })
        ));
    }
}
