//! `MinimalStore`: a local store that implements only the *required* `SyncEngineRef`
//! methods, over a [`MemoryStore`], so that tests run the engine against what most
//! implementors (sync-engine among them) provide.
//!
//! Every optional method (`local_states`, `apply_batch`, `delete_replicated_with`,
//! `get_merkle_children_many`, `get_tombstones`, `purge_tombstones`,
//! `should_accept_writes`) keeps the trait's default, so the engine learns no stamps, no
//! tombstones and writes one change at a time through `submit` / `delete_replicated`.
//! Wrap a store switched to [`MemoryStore::set_like_sync_engine`] (see
//! [`MinimalStore::like_sync_engine`]) to also get sync-engine's behaviour behind that
//! interface: writes stored as they come, no tombstones, replicated puts echoed on the
//! stream. Clones share the inner store.

use crate::MemoryStore;
use replication_core::merkle::Hash;
use replication_core::{SyncEngineRef, SyncError, SyncItem};

/// See the module docs.
#[derive(Clone, Debug, Default)]
pub struct MinimalStore {
    inner: MemoryStore,
}

impl MinimalStore {
    /// Only the required methods of `inner`.
    pub fn new(inner: MemoryStore) -> Self {
        Self { inner }
    }

    /// A fresh store that behaves like sync-engine's behind the minimal interface.
    pub fn like_sync_engine() -> Self {
        let inner = MemoryStore::new();
        inner.set_like_sync_engine(true);
        Self { inner }
    }

    /// The wrapped store: for local writes, inspection and failure injection.
    pub fn inner(&self) -> &MemoryStore {
        &self.inner
    }
}

impl SyncEngineRef for MinimalStore {
    async fn submit(&self, item: SyncItem) -> Result<(), SyncError> {
        self.inner.submit(item).await
    }

    async fn delete(&self, key: String) -> Result<bool, SyncError> {
        self.inner.delete(key).await
    }

    async fn delete_replicated(&self, key: String) -> Result<bool, SyncError> {
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;
    use replication_core::{Change, Tombstone};

    #[tokio::test]
    async fn only_the_required_methods_reach_the_inner_store() {
        let store = MinimalStore::new(MemoryStore::new());
        store.inner().put_local("k", b"v".to_vec());
        assert_eq!(
            store.local_states(&["k".into()]).await.unwrap(),
            [None],
            "no stamps"
        );
        store
            .apply_batch(vec![Change::Put(SyncItem::new("j", b"w".to_vec(), 1, 1))])
            .await
            .unwrap();
        let counters = store.inner().counters();
        assert_eq!((counters.applied_batches, counters.submits), (0, 1));
        assert_eq!(store.purge_tombstones(i64::MAX).await.unwrap(), 0);
        assert_eq!(store.get("j").await.unwrap().unwrap(), b"w");
        assert_eq!(store.get_merkle_root().await.unwrap(), store.inner().root());
    }

    #[tokio::test]
    async fn like_sync_engine_stores_writes_as_they_come_and_keeps_no_tombstones() {
        let store = MinimalStore::like_sync_engine();
        store
            .submit(SyncItem::new("k", b"new".to_vec(), 5, 10))
            .await
            .unwrap();
        store
            .submit(SyncItem::new("k", b"old".to_vec(), 4, 9))
            .await
            .unwrap();
        assert_eq!(
            store.inner().item("k").unwrap().version,
            4,
            "no conflict order"
        );
        store
            .delete_replicated_with(
                "k".into(),
                Tombstone {
                    version: 1,
                    deleted_at: 1,
                },
            )
            .await
            .unwrap();
        assert!(store.inner().item("k").is_none());
        assert!(store.inner().tombstones().is_empty());
        store.inner().put_local("j", b"x".to_vec());
        store.inner().delete_local("j");
        assert!(store.inner().tombstones().is_empty(), "local deletes too");
        assert!(
            store.inner().last_stream_id() > replication_core::StreamId::ZERO,
            "replicated puts are echoed"
        );
    }
}
