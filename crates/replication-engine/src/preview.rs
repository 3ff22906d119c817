//! The repair preview for a host (the daemon's `diff` command): what a repair cycle from a
//! peer would do, key by key, computed by the same walk and decisions and never written.

pub use replication_core::{Derived, HeldState};
use replication_core::{PeerBackend, Settings, SyncEngineRef};
use replication_merkle::{plan_repair, LocalStore, PeerSource, RepairSettings};
pub use replication_merkle::{
    KeyDifference, PeerView, PlanScope, RepairAction, RepairError, RepairPlan, Winner,
};

/// Compares `store` with `peer` within `scope`, batching reads as the cold path does.
pub async fn preview_repair<S: SyncEngineRef>(
    store: &S,
    peer: &dyn PeerBackend,
    settings: &Settings,
    scope: &PlanScope,
) -> Result<RepairPlan, RepairError> {
    plan_repair(
        &LocalStore(store),
        &PeerSource(peer),
        &RepairSettings::from(&settings.cold_path),
        scope,
    )
    .await
}
