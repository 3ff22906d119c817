//! `PeerManager`: the configured peers, their backends, tasks and cached status.
//!
//! It holds state only; starting and stopping a peer's tasks is `lifecycle.rs`'s job
//! (it is generic over the store, the manager is not, so users can hold it without the
//! store's type).

use crate::health::PeerHealth;
use crate::status::PeerStatus;
use crate::stop::StopSwitch;
use replication_core::{PeerBackend, PeerConfig};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The peers of a running engine.
#[derive(Default)]
pub struct PeerManager {
    slots: Mutex<BTreeMap<String, PeerSlot>>,
}

impl std::fmt::Debug for PeerManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerManager")
            .field("peers", &self.node_ids())
            .finish()
    }
}

/// One configured peer.
pub(crate) struct PeerSlot {
    pub(crate) config: PeerConfig,
    pub(crate) status: Arc<PeerStatus>,
    pub(crate) running: Option<RunningPeer>,
}

/// The live parts of an enabled peer.
pub(crate) struct RunningPeer {
    pub(crate) backend: Arc<dyn PeerBackend>,
    pub(crate) switch: StopSwitch,
    pub(crate) tasks: Vec<JoinHandle<()>>,
    pub(crate) repair_now: Arc<Notify>,
}

impl PeerManager {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, PeerSlot>> {
        // Slots are replaced whole; a panic elsewhere cannot leave one half-written.
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Node ids of every configured peer, sorted.
    pub fn node_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Number of configured peers (enabled or not).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no peer is configured.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Health of every peer, sorted by node id; cached state only.
    pub fn health(&self) -> Vec<PeerHealth> {
        self.lock()
            .values()
            .map(|slot| {
                slot.status
                    .health(&slot.config, slot.running.as_ref().map(|r| &*r.backend))
            })
            .collect()
    }

    /// Runs a repair cycle for `node_id` now. False when the peer is unknown or idle.
    pub fn trigger_repair(&self, node_id: &str) -> bool {
        match self.lock().get(node_id).and_then(|s| s.running.as_ref()) {
            Some(running) => {
                running.repair_now.notify_one();
                true
            }
            None => false,
        }
    }

    /// The backend of an enabled peer.
    pub fn backend(&self, node_id: &str) -> Option<Arc<dyn PeerBackend>> {
        self.lock()
            .get(node_id)
            .and_then(|s| s.running.as_ref())
            .map(|r| r.backend.clone())
    }

    /// Per configured peer, the start of its latest completed repair cycle.
    pub(crate) fn synced_since_all(&self) -> Vec<Option<i64>> {
        self.lock()
            .values()
            .map(|s| s.status.synced_since_ms())
            .collect()
    }

    pub(crate) fn insert(&self, slot: PeerSlot) -> Option<PeerSlot> {
        self.lock().insert(slot.config.node_id.clone(), slot)
    }

    /// Takes the live parts of a peer out of its slot, which stays (configured, with its
    /// status) while they are stopped.
    pub(crate) fn take_running(&self, node_id: &str) -> Option<RunningPeer> {
        self.lock()
            .get_mut(node_id)
            .and_then(|slot| slot.running.take())
    }

    /// Gives a peer a fresh status: nothing known of it (no cursor, no completed cycle).
    pub(crate) fn reset_status(&self, node_id: &str) {
        if let Some(slot) = self.lock().get_mut(node_id) {
            slot.status = Arc::new(PeerStatus::default());
        }
    }

    pub(crate) fn remove(&self, node_id: &str) -> Option<PeerSlot> {
        self.lock().remove(node_id)
    }

    pub(crate) fn take_all(&self) -> Vec<PeerSlot> {
        std::mem::take(&mut *self.lock()).into_values().collect()
    }

    pub(crate) fn status_of(&self, node_id: &str) -> Option<Arc<PeerStatus>> {
        self.lock().get(node_id).map(|s| s.status.clone())
    }
}
