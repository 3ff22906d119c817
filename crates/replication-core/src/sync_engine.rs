//! `SyncEngineRef`: what the replication engine needs from the local store.
//!
//! Methods return `Send` futures so the engine can run them on a multi-threaded runtime,
//! while implementors simply write `async fn`. Only seven methods are required (`submit`,
//! `delete`, `delete_replicated`, `is_current`, `get_merkle_root`, `get_merkle_children`,
//! `get`); every other method has a default, so that a minimal implementor keeps
//! compiling; stores that can do better (batching, tombstones, conflict checks) override them.

use crate::merkle::Hash;
use crate::{LocalState, SyncItem, Tombstone};
use std::future::Future;

/// An error from the local store.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SyncError {
    message: String,
    retriable: bool,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl SyncError {
    /// A transient failure (store unreachable, overloaded): the engine retries with backoff.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retriable: true,
            source: None,
        }
    }

    /// A failure retrying cannot fix (e.g. payload over the store's limit): the engine
    /// counts the change as rejected and moves on.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retriable: false,
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Whether retrying may succeed.
    pub fn is_retriable(&self) -> bool {
        self.retriable
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// One replicated change for [`SyncEngineRef::apply_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Store this item unless the store holds a newer stamp (or tombstone) for its key.
    Put(SyncItem),
    /// Delete the key, leaving this tombstone, unless the store holds a newer stamp.
    Delete {
        /// Object id.
        key: String,
        /// The delete's stamp.
        tombstone: Tombstone,
    },
}

impl Change {
    /// The object id.
    pub fn key(&self) -> &str {
        match self {
            Change::Put(item) => &item.key,
            Change::Delete { key, .. } => key,
        }
    }

    /// The change's place in the conflict order.
    pub fn stamp(&self) -> crate::Stamp {
        match self {
            Change::Put(item) => item.stamp(),
            Change::Delete { tombstone, .. } => tombstone.stamp(),
        }
    }
}

/// The local store as the replication engine sees it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait SyncEngineRef: Send + Sync + 'static {
    /// False while the store wants no replicated writes (backpressure). Cheap, no I/O.
    fn should_accept_writes(&self) -> bool {
        true
    }

    /// The store's connection to its server, cached (no I/O), for health: which server
    /// holds the data now and how often that changed (failovers). Defaults to `None`
    /// (nothing to report); override when the store talks to a server.
    fn connection(&self) -> Option<crate::ConnectionStatus> {
        None
    }

    /// Stores a replicated item. Must not append to the CDC stream (no echo).
    fn submit(&self, item: SyncItem) -> impl Future<Output = Result<(), SyncError>> + Send;

    /// A local delete (appends to the CDC stream). Returns whether the key existed.
    fn delete(&self, key: String) -> impl Future<Output = Result<bool, SyncError>> + Send;

    /// A replicated delete, without CDC. Returns whether the key existed.
    fn delete_replicated(
        &self,
        key: String,
    ) -> impl Future<Output = Result<bool, SyncError>> + Send;

    /// True when the store holds `key` with exactly this content hash.
    fn is_current(
        &self,
        key: &str,
        content_hash: &str,
    ) -> impl Future<Output = Result<bool, SyncError>> + Send;

    /// Root of the local Merkle tree; `None` when the store is empty.
    fn get_merkle_root(&self) -> impl Future<Output = Result<Option<Hash>, SyncError>> + Send;

    /// Children `(segment, hash)` of a Merkle node, sorted by segment; empty for leaves.
    fn get_merkle_children(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Vec<(String, Hash)>, SyncError>> + Send;

    /// Content of `key`, if present.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, SyncError>> + Send;

    /// What the store knows about each key (absent, item stamp or tombstone), for conflict
    /// resolution; one entry per key, in order, in one round trip. The default knows
    /// nothing (`None`): the engine then learns each key's version from the store's Merkle
    /// leaf and content (the required methods; `HeldState`, docs/PROTOCOL.md "Stores with
    /// only the required methods"), which costs more round trips and cannot see times or
    /// tombstones.
    fn local_states(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<Option<LocalState>>, SyncError>> + Send {
        let unknown = vec![None; keys.len()];
        async move { Ok(unknown) }
    }

    /// Applies replicated changes; must be idempotent (the engine retries a failed batch
    /// whole) and must keep the newer stamp when a change loses the conflict order. The
    /// default applies them one by one through `submit` / `delete_replicated_with`.
    fn apply_batch(
        &self,
        changes: Vec<Change>,
    ) -> impl Future<Output = Result<(), SyncError>> + Send {
        async move {
            for change in changes {
                match change {
                    Change::Put(item) => self.submit(item).await?,
                    Change::Delete { key, tombstone } => {
                        self.delete_replicated_with(key, tombstone).await?;
                    }
                }
            }
            Ok(())
        }
    }

    /// A replicated delete that leaves `tombstone` behind. Defaults to `delete_replicated`.
    fn delete_replicated_with(
        &self,
        key: String,
        tombstone: Tombstone,
    ) -> impl Future<Output = Result<bool, SyncError>> + Send {
        let _ = tombstone;
        self.delete_replicated(key)
    }

    /// Children of many Merkle nodes at once, one list per path, in order.
    /// Defaults to one `get_merkle_children` call per path.
    fn get_merkle_children_many(
        &self,
        paths: &[String],
    ) -> impl Future<Output = Result<Vec<Vec<(String, Hash)>>, SyncError>> + Send {
        async move {
            let mut out = Vec::with_capacity(paths.len());
            for path in paths {
                out.push(self.get_merkle_children(path).await?);
            }
            Ok(out)
        }
    }

    /// Tombstones the store keeps for these keys, in order. Defaults to none.
    fn get_tombstones(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<Option<Tombstone>>, SyncError>> + Send {
        let none = vec![None; keys.len()];
        async move { Ok(none) }
    }

    /// Drops the tombstones this store *recorded* before `recorded_before_ms` (ms since the
    /// epoch, by the wall clock of the node: when the store wrote the tombstone, not the
    /// deleter's `deleted_at`); the engine passes a time by which every peer has been seen
    /// to hold none of those keys. A store that collects raises its version floor above the
    /// collected versions (docs/PROTOCOL.md "Versions never go backwards"). Returns how many
    /// were collected. Defaults to keeping everything.
    fn purge_tombstones(
        &self,
        recorded_before_ms: i64,
    ) -> impl Future<Output = Result<u64, SyncError>> + Send {
        let _ = recorded_before_ms;
        async { Ok(0) }
    }
}

/// A store that accepts everything and holds nothing: for tests and standalone runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoOpSyncEngine;

impl SyncEngineRef for NoOpSyncEngine {
    async fn submit(&self, _item: SyncItem) -> Result<(), SyncError> {
        Ok(())
    }

    async fn delete(&self, _key: String) -> Result<bool, SyncError> {
        Ok(false)
    }

    async fn delete_replicated(&self, _key: String) -> Result<bool, SyncError> {
        Ok(false)
    }

    async fn is_current(&self, _key: &str, _content_hash: &str) -> Result<bool, SyncError> {
        Ok(false)
    }

    async fn get_merkle_root(&self) -> Result<Option<Hash>, SyncError> {
        Ok(None)
    }

    async fn get_merkle_children(&self, _path: &str) -> Result<Vec<(String, Hash)>, SyncError> {
        Ok(Vec::new())
    }

    async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, SyncError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// A minimal implementor writes plain `async fn` and gets every default.
    struct Minimal;
    impl SyncEngineRef for Minimal {
        async fn submit(&self, _item: SyncItem) -> Result<(), SyncError> {
            Err(SyncError::new("store down"))
        }
        async fn delete(&self, _key: String) -> Result<bool, SyncError> {
            Ok(true)
        }
        async fn delete_replicated(&self, _key: String) -> Result<bool, SyncError> {
            Ok(true)
        }
        async fn is_current(&self, _key: &str, _hash: &str) -> Result<bool, SyncError> {
            Ok(false)
        }
        async fn get_merkle_root(&self) -> Result<Option<Hash>, SyncError> {
            Ok(None)
        }
        async fn get_merkle_children(&self, path: &str) -> Result<Vec<(String, Hash)>, SyncError> {
            Ok(vec![(path.to_owned(), [0; 32])])
        }
        async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, SyncError> {
            Ok(None)
        }
    }

    #[tokio::test]
    async fn defaults_delegate_and_futures_are_send() {
        let store = Minimal;
        let keys = vec!["a".to_string(), "b".to_string()];
        let fut = store.local_states(&keys);
        assert_send(&fut);
        assert_eq!(fut.await.unwrap(), vec![None, None]);
        let many = store.get_merkle_children_many(&keys).await.unwrap();
        assert_eq!(many[1][0].0, "b");
        let batch = store.apply_batch(vec![Change::Put(SyncItem::new("k", vec![], 1, 1))]);
        assert_send(&batch);
        assert!(batch.await.unwrap_err().is_retriable());
        assert_send(&NoOpSyncEngine.submit(SyncItem::new("k", vec![], 1, 1)));
        assert!(store
            .delete_replicated_with(
                "k".into(),
                Tombstone {
                    version: 1,
                    deleted_at: 1
                }
            )
            .await
            .unwrap());
        assert_eq!(store.purge_tombstones(0).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn mock_is_usable_by_other_layers() {
        let mut mock = MockSyncEngineRef::new();
        mock.expect_is_current()
            .returning(|_, _| Box::pin(async { Ok(true) }));
        assert!(mock.is_current("k", "h").await.unwrap());
    }

    #[test]
    fn permanent_errors_are_not_retriable() {
        assert!(!SyncError::permanent("too big").is_retriable());
        let e = SyncError::new("io").with_source(std::io::Error::other("reset"));
        assert!(std::error::Error::source(&e).is_some());
    }
}
