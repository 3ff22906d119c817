//! `MemoryMesh`: node stores by id, and a peer connector over them, so an engine can be
//! wired to in-memory peers. Each connect makes a fresh [`MemoryPeer`] over the store (as
//! the Redis connector makes fresh connections) and is recorded, so tests can count
//! connects and read the latest one's config and counters.
//!
//! The connector is a closure over core types only: the facade implements its
//! `PeerConnector` for such closures, so this crate needs no edge to the facade.

use crate::{MemoryPeer, MemoryStore};
use replication_core::{PeerBackend, PeerConfig, PeerError, Settings};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// One call of the connector: the config it got and the backend it made.
type Connect = (PeerConfig, Arc<MemoryPeer>);

/// Node stores by id and every connect made to them. Clones share both.
#[derive(Clone, Debug, Default)]
pub struct MemoryMesh {
    stores: Arc<Mutex<HashMap<String, MemoryStore>>>,
    connects: Arc<Mutex<Vec<Connect>>>,
}

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryMesh {
    /// A mesh of these `(node id, store)` pairs.
    pub fn new(stores: &[(&str, &MemoryStore)]) -> Self {
        let mesh = Self::default();
        for (id, store) in stores {
            mesh.add(id, store);
        }
        mesh
    }

    /// Adds (or replaces) node `id`.
    pub fn add(&self, id: &str, store: &MemoryStore) {
        lock(&self.stores).insert(id.to_owned(), store.clone());
    }

    /// A peer connector: `Arc::new(mesh.connector())` is the engine's `PeerConnector`.
    /// Connecting to an id the mesh does not hold fails with `PeerError::Closed`.
    pub fn connector(
        &self,
    ) -> impl Fn(&PeerConfig, &Settings) -> Result<Arc<dyn PeerBackend>, PeerError> + Send + Sync + 'static
    {
        let mesh = self.clone();
        move |peer: &PeerConfig, _: &Settings| {
            let store = lock(&mesh.stores)
                .get(&peer.node_id)
                .cloned()
                .ok_or_else(|| PeerError::Closed {
                    peer: peer.node_id.clone(),
                })?;
            let backend = Arc::new(MemoryPeer::new(peer.node_id.clone(), store));
            lock(&mesh.connects).push((peer.clone(), backend.clone()));
            Ok(backend as Arc<dyn PeerBackend>)
        }
    }

    /// How many times the connector was called for `id`.
    pub fn connects(&self, id: &str) -> usize {
        lock(&self.connects)
            .iter()
            .filter(|(p, _)| p.node_id == id)
            .count()
    }

    /// The latest connect of `id`: the config it used and the backend it made.
    fn last_connect(&self, id: &str) -> Option<Connect> {
        lock(&self.connects)
            .iter()
            .rev()
            .find(|(p, _)| p.node_id == id)
            .cloned()
    }

    /// The config the latest connect of `id` used.
    pub fn last_config(&self, id: &str) -> Option<PeerConfig> {
        self.last_connect(id).map(|(config, _)| config)
    }

    /// The backend of the latest connect of `id`.
    pub fn last_peer(&self, id: &str) -> Option<Arc<MemoryPeer>> {
        self.last_connect(id).map(|(_, peer)| peer)
    }

    /// The backend of the latest connect to any node.
    pub fn latest_peer(&self) -> Option<Arc<MemoryPeer>> {
        lock(&self.connects).last().map(|(_, peer)| peer.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connects_are_made_over_the_named_store_and_recorded() {
        let store = MemoryStore::new();
        let mesh = MemoryMesh::new(&[("b", &store)]);
        let connect = mesh.connector();
        let settings = Settings::default();
        assert!(connect(&PeerConfig::new("b", "redis://127.0.0.1:1"), &settings).is_ok());
        assert!(matches!(
            connect(&PeerConfig::new("c", "redis://127.0.0.1:1"), &settings),
            Err(PeerError::Closed { .. })
        ));
        assert_eq!(mesh.connects("b"), 1);
        assert_eq!(mesh.connects("c"), 0);
        assert_eq!(
            mesh.last_config("b").map(|c| c.node_id),
            Some("b".to_owned())
        );
        assert!(mesh.last_peer("b").is_some());
        assert!(mesh.latest_peer().is_some());
    }
}
