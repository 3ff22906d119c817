//! The local store as the cold path's repair target, its writes behind the same
//! `SyncEngineCircuit` as the hot path's, so a failing store is not hammered by repairs,
//! and through the same `WriteGate`, so a repair and a hot path never race on one key.

use crate::circuit::{CircuitCallError, SyncEngineCircuit};
use crate::write_gate::WriteGate;
use replication_core::merkle::Hash;
use replication_core::{Change, Derived, LocalState, SyncEngineRef, SyncError};
use replication_merkle::{LocalStore, LocalView, RepairTarget, TreeSource};

/// `LocalStore` with its writes guarded by the circuit.
pub(crate) struct GuardedStore<'a, S> {
    store: LocalStore<'a, S>,
    gate: &'a WriteGate,
    circuit: &'a SyncEngineCircuit,
}

impl<'a, S: SyncEngineRef> GuardedStore<'a, S> {
    pub(crate) fn new(store: &'a S, gate: &'a WriteGate, circuit: &'a SyncEngineCircuit) -> Self {
        Self {
            store: LocalStore(store),
            gate,
            circuit,
        }
    }
}

impl<S: SyncEngineRef> TreeSource for GuardedStore<'_, S> {
    type Error = SyncError;

    async fn get_merkle_root(&self) -> Result<Option<Hash>, SyncError> {
        self.store.get_merkle_root().await
    }

    async fn children(&self, paths: &[String]) -> Result<Vec<Vec<(String, Hash)>>, SyncError> {
        self.store.children(paths).await
    }
}

impl<S: SyncEngineRef> LocalView for GuardedStore<'_, S> {
    async fn local_states(&self, keys: &[String]) -> Result<Vec<Option<LocalState>>, SyncError> {
        self.store.local_states(keys).await
    }

    async fn derive_states(
        &self,
        keys: &[String],
        hints: &[Option<u64>],
    ) -> Result<Vec<Derived>, SyncError> {
        self.store.derive_states(keys, hints).await
    }
}

impl<S: SyncEngineRef> RepairTarget for GuardedStore<'_, S> {
    /// An open circuit counts as backpressure: the cycle stops before reading the peer.
    fn should_accept_writes(&self) -> bool {
        self.store.should_accept_writes() && !self.circuit.is_open()
    }

    async fn apply(&self, changes: Vec<Change>) -> Result<(), SyncError> {
        self.circuit
            .call(self.gate.apply(self.store.0, changes))
            .await
            .map_err(|e| match e {
                CircuitCallError::Open(retry_after) => SyncError::new(format!(
                    "local store circuit is open (retry in {retry_after:?})"
                )),
                CircuitCallError::Store(e) => e,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replication_core::{PeerBackend, SyncEngineSettings};
    use replication_merkle::{repair_cycle_with, PeerSource, RepairSettings, RepairState};
    use replication_testkit::{MemoryPeer, MemoryStore};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn an_open_circuit_stops_repair_writes_until_it_half_opens() {
        let remote = MemoryStore::new();
        for i in 0..20 {
            remote.put_local(&format!("k.{i}"), format!("v{i}"));
        }
        let peer = MemoryPeer::new("remote", remote.clone());
        let local = MemoryStore::new();
        let settings = SyncEngineSettings {
            circuit_failure_threshold: 2,
            circuit_open_for: Duration::from_secs(5),
            ..SyncEngineSettings::default()
        };
        let circuit = SyncEngineCircuit::new(&settings);
        for _ in 0..2 {
            let _ = circuit
                .call(async { Err::<(), _>(SyncError::new("store down")) })
                .await;
        }
        assert!(circuit.is_open());

        let gate = WriteGate::default();
        let target = GuardedStore::new(&local, &gate, &circuit);
        let source = PeerSource(&peer as &dyn PeerBackend);
        let mut state = RepairState::default();
        let repair = RepairSettings::default();
        assert!(repair_cycle_with(&target, &source, &repair, &mut state)
            .await
            .is_err());
        assert!(
            local.is_empty(),
            "no repair write while the circuit is open"
        );
        assert_eq!(local.counters().applied_batches, 0);

        tokio::time::advance(Duration::from_secs(5)).await;
        let report = repair_cycle_with(&target, &source, &repair, &mut state)
            .await
            .unwrap();
        assert_eq!(report.items_applied, 20);
        assert_eq!(local.root(), remote.root());
        assert_eq!(circuit.state_name(), "closed");
    }
}
