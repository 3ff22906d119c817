//! The two sides of a repair as traits, so the algorithm runs over any local store, any
//! peer backend, or an in-memory (or counting, or scripted) test double.
//!
//! [`LocalStore`] adapts a `SyncEngineRef` and [`PeerSource`] a `PeerBackend`; the errors
//! stay the core's `SyncError` and `PeerError`, so that the repair can tell "our store
//! failed" from "the peer failed".

use replication_core::merkle::Hash;
use replication_core::{
    Change, Derived, ItemRead, LocalState, PeerBackend, PeerError, SyncEngineRef, SyncError,
    Tombstone,
};
use std::future::Future;

/// A Merkle tree that can be read in batches.
pub trait TreeSource: Send + Sync {
    /// What a failed read reports.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The root hash; `None` for an empty tree.
    fn get_merkle_root(&self) -> impl Future<Output = Result<Option<Hash>, Self::Error>> + Send;

    /// Children `(segment, hash)` of each path, one list per path in order; empty for
    /// leaves and unknown paths. One call is one round trip.
    fn children(
        &self,
        paths: &[String],
    ) -> impl Future<Output = Result<Vec<Vec<(String, Hash)>>, Self::Error>> + Send;
}

/// The local side as a repair preview sees it: a tree plus the stamps conflict
/// resolution needs. It has no way to write, so whatever takes only a `LocalView`
/// ([`crate::plan_repair`]) cannot change the store.
pub trait LocalView: TreeSource<Error = SyncError> {
    /// What the store holds for each key (item stamp or tombstone), in order; `None` for
    /// a key the store cannot describe (it implements only the required methods).
    fn local_states(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<Option<LocalState>>, SyncError>> + Send;

    /// For keys `local_states` could not describe: what the store's tree and content tell
    /// ([`crate::derive_states`]); `hints[i]` is the version `keys[i]` will be compared with.
    fn derive_states(
        &self,
        keys: &[String],
        hints: &[Option<u64>],
    ) -> impl Future<Output = Result<Vec<Derived>, SyncError>> + Send;
}

/// The local side of a repair: a view plus the writes.
pub trait RepairTarget: LocalView {
    /// False while the store wants no replicated writes (backpressure).
    fn should_accept_writes(&self) -> bool;

    /// Applies changes; the store itself keeps the newer stamp when a change loses.
    fn apply(&self, changes: Vec<Change>) -> impl Future<Output = Result<(), SyncError>> + Send;
}

/// The peer side: a tree plus its items and tombstones.
pub trait RepairPeer: TreeSource<Error = PeerError> {
    /// The peer's node id, for errors and logs.
    fn node_id(&self) -> &str;

    /// Items for keys, one result per key in order; one call is one round trip.
    fn read_items(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<ItemRead>, PeerError>> + Send;

    /// Tombstones for keys, one per key in order; one call is one round trip.
    fn read_tombstones(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<Option<Tombstone>>, PeerError>> + Send;

    /// Sizes of the items at keys without transferring them, as
    /// [`PeerBackend::item_sizes`] says. This default cannot size any (no call), so the
    /// cycle reads such a peer's items one at a time; override it where the peer can.
    fn item_sizes(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<Option<Vec<Option<u64>>>, PeerError>> + Send {
        let _ = keys;
        std::future::ready(Ok(None))
    }
}

/// Any `SyncEngineRef` as the local side of a repair.
#[derive(Debug)]
pub struct LocalStore<'a, S>(pub &'a S);

impl<S: SyncEngineRef> TreeSource for LocalStore<'_, S> {
    type Error = SyncError;

    async fn get_merkle_root(&self) -> Result<Option<Hash>, SyncError> {
        self.0.get_merkle_root().await
    }

    async fn children(&self, paths: &[String]) -> Result<Vec<Vec<(String, Hash)>>, SyncError> {
        self.0.get_merkle_children_many(paths).await
    }
}

impl<S: SyncEngineRef> LocalView for LocalStore<'_, S> {
    async fn local_states(&self, keys: &[String]) -> Result<Vec<Option<LocalState>>, SyncError> {
        self.0.local_states(keys).await
    }

    async fn derive_states(
        &self,
        keys: &[String],
        hints: &[Option<u64>],
    ) -> Result<Vec<Derived>, SyncError> {
        crate::derive_states(self.0, keys, hints).await
    }
}

impl<S: SyncEngineRef> RepairTarget for LocalStore<'_, S> {
    fn should_accept_writes(&self) -> bool {
        self.0.should_accept_writes()
    }

    async fn apply(&self, changes: Vec<Change>) -> Result<(), SyncError> {
        self.0.apply_batch(changes).await
    }
}

/// Any `PeerBackend` as the peer side of a repair.
pub struct PeerSource<'a>(pub &'a dyn PeerBackend);

impl std::fmt::Debug for PeerSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PeerSource")
            .field(&self.0.node_id())
            .finish()
    }
}

impl TreeSource for PeerSource<'_> {
    type Error = PeerError;

    async fn get_merkle_root(&self) -> Result<Option<Hash>, PeerError> {
        self.0.get_merkle_root().await
    }

    async fn children(&self, paths: &[String]) -> Result<Vec<Vec<(String, Hash)>>, PeerError> {
        self.0.merkle_children(paths).await
    }
}

impl RepairPeer for PeerSource<'_> {
    fn node_id(&self) -> &str {
        self.0.node_id()
    }

    async fn read_items(&self, keys: &[String]) -> Result<Vec<ItemRead>, PeerError> {
        self.0.read_items(keys).await
    }

    async fn read_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, PeerError> {
        self.0.read_tombstones(keys).await
    }

    async fn item_sizes(&self, keys: &[String]) -> Result<Option<Vec<Option<u64>>>, PeerError> {
        self.0.item_sizes(keys).await
    }
}
