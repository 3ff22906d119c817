//! `MemoryCursorStore`: cursors in a map, for tests and standalone runs that need no
//! persistence. It keeps what a crash would have left apart from the latest values, so
//! tests can check that the engine flushes when it should.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use replication_core::{Cursor, CursorError, CursorStore};

/// Where the errors of this store say it lives.
const LOCATION: &str = "memory";

/// An in-memory [`CursorStore`]. Nothing survives the process; `flush` only moves the
/// latest cursors into [`durable_cursors`](Self::durable_cursors).
#[derive(Debug, Default)]
pub struct MemoryCursorStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Latest cursor set per peer: what `load_all` returns.
    latest: BTreeMap<String, Cursor>,
    /// Cursors as of the last flush: what a durable backend would hold after a crash.
    flushed: BTreeMap<String, Cursor>,
    closed: bool,
}

impl MemoryCursorStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cursors as of the last `flush` (or `close`), sorted by peer id: what a durable
    /// backend would return after a crash now. Readable after `close` too.
    pub fn durable_cursors(&self) -> Vec<Cursor> {
        self.lock().flushed.values().cloned().collect()
    }

    /// Locks the state; a panic while holding the lock cannot leave the maps half-updated
    /// (each critical section is a single insert or clone), so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state, or `Closed` after `close`.
    fn open_state(&self) -> Result<MutexGuard<'_, State>, CursorError> {
        let state = self.lock();
        if state.closed {
            return Err(CursorError::Closed {
                location: LOCATION.to_owned(),
            });
        }
        Ok(state)
    }
}

#[async_trait::async_trait]
impl CursorStore for MemoryCursorStore {
    async fn load_all(&self) -> Result<Vec<Cursor>, CursorError> {
        Ok(self.open_state()?.latest.values().cloned().collect())
    }

    async fn set(&self, cursor: Cursor) -> Result<(), CursorError> {
        self.open_state()?
            .latest
            .insert(cursor.peer_id.clone(), cursor);
        Ok(())
    }

    async fn flush(&self) -> Result<(), CursorError> {
        let mut state = self.open_state()?;
        state.flushed = state.latest.clone();
        Ok(())
    }

    async fn close(&self) -> Result<(), CursorError> {
        let mut state = self.open_state()?;
        state.flushed = state.latest.clone();
        state.closed = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{self, Backend};
    use replication_core::StreamId;

    /// Each slot is a new store: nothing in memory outlives `close`.
    struct Memory;

    impl Backend for Memory {
        type Store = MemoryCursorStore;

        async fn open(&self, _slot: &str) -> Result<MemoryCursorStore, CursorError> {
            Ok(MemoryCursorStore::new())
        }

        fn durable(&self) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        conformance::run_conformance(&Memory).await;
    }

    fn cursor(peer: &str, ms: u64) -> Cursor {
        Cursor {
            peer_id: peer.to_owned(),
            stream_id: StreamId::new(ms, 0),
            entries_added: None,
            updated_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn durable_cursors_hold_only_what_was_flushed() {
        let store = MemoryCursorStore::new();
        store.set(cursor("a", 1)).await.unwrap();
        assert!(
            store.durable_cursors().is_empty(),
            "a set alone is not durable"
        );
        store.flush().await.unwrap();
        store.set(cursor("a", 2)).await.unwrap();
        store.set(cursor("b", 1)).await.unwrap();
        assert_eq!(store.durable_cursors(), vec![cursor("a", 1)]);
        store.close().await.unwrap();
        assert_eq!(
            store.durable_cursors(),
            vec![cursor("a", 2), cursor("b", 1)],
            "close flushes"
        );
    }
}
