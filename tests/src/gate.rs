//! A local store that can be told to refuse writes: it delegates to the real store and,
//! while closed, reports backpressure (`should_accept_writes` false) and fails every write
//! with a retriable error, as a store whose disk or Redis is unavailable would.

use replication_core::merkle::Hash;
use replication_core::{Change, LocalState, SyncEngineRef, SyncError, SyncItem, Tombstone};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A switchable wrapper around a [`SyncEngineRef`].
#[derive(Debug)]
pub struct Gate<S> {
    inner: S,
    open: AtomicBool,
    refused: AtomicU64,
}

impl<S> Gate<S> {
    /// An open gate over `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            open: AtomicBool::new(true),
            refused: AtomicU64::new(0),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Opens (accept writes) or closes (refuse them) the gate.
    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }

    /// Writes refused while closed.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), SyncError> {
        if self.open.load(Ordering::SeqCst) {
            Ok(())
        } else {
            self.refused.fetch_add(1, Ordering::SeqCst);
            Err(SyncError::new(
                "test gate closed: the local store refuses writes",
            ))
        }
    }
}

impl<S: SyncEngineRef> SyncEngineRef for Gate<S> {
    fn should_accept_writes(&self) -> bool {
        self.open.load(Ordering::SeqCst) && self.inner.should_accept_writes()
    }

    fn connection(&self) -> Option<replication_core::ConnectionStatus> {
        self.inner.connection()
    }

    async fn submit(&self, item: SyncItem) -> Result<(), SyncError> {
        self.check()?;
        self.inner.submit(item).await
    }

    async fn delete(&self, key: String) -> Result<bool, SyncError> {
        self.check()?;
        self.inner.delete(key).await
    }

    async fn delete_replicated(&self, key: String) -> Result<bool, SyncError> {
        self.check()?;
        self.inner.delete_replicated(key).await
    }

    async fn is_current(&self, key: &str, content_hash: &str) -> Result<bool, SyncError> {
        self.inner.is_current(key, content_hash).await
    }

    async fn get_merkle_root(&self) -> Result<Option<Hash>, SyncError> {
        self.inner.get_merkle_root().await
    }

    async fn get_merkle_children(&self, path: &str) -> Result<Vec<(String, Hash)>, SyncError> {
        self.inner.get_merkle_children(path).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SyncError> {
        self.inner.get(key).await
    }

    async fn local_states(&self, keys: &[String]) -> Result<Vec<Option<LocalState>>, SyncError> {
        self.inner.local_states(keys).await
    }

    async fn apply_batch(&self, changes: Vec<Change>) -> Result<(), SyncError> {
        self.check()?;
        self.inner.apply_batch(changes).await
    }

    async fn delete_replicated_with(
        &self,
        key: String,
        tombstone: Tombstone,
    ) -> Result<bool, SyncError> {
        self.check()?;
        self.inner.delete_replicated_with(key, tombstone).await
    }

    async fn get_merkle_children_many(
        &self,
        paths: &[String],
    ) -> Result<Vec<Vec<(String, Hash)>>, SyncError> {
        self.inner.get_merkle_children_many(paths).await
    }

    async fn get_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, SyncError> {
        self.inner.get_tombstones(keys).await
    }

    async fn purge_tombstones(&self, deleted_before_ms: i64) -> Result<u64, SyncError> {
        self.check()?;
        self.inner.purge_tombstones(deleted_before_ms).await
    }
}
