//! Cold-path anti-entropy: find what differs between the local Merkle tree and a peer's,
//! reading only differing branches in batched calls, and repair the local store with the
//! peer's writes that win the conflict order.
//!
//! The engine calls [`repair_cycle`] periodically per peer with a [`RepairState`] it keeps
//! between cycles, and feeds each [`CycleReport`] into metrics and, through
//! [`gc_horizon`], into tombstone collection. Costs grow with the size of the difference:
//! one batched call per side per tree level (per `batch_size` differing nodes), then one
//! per batch of differing keys. [`plan_repair`] walks and decides the same way but only
//! reports, key by key, what a cycle would do (the daemon's `diff` command).
//!
//! Rules (docs/PROTOCOL.md):
//! - the conflict order decides every key; an older write never replaces a newer one, and
//!   the peer's version and `updated_at` are kept as they came;
//! - a key only we have is deleted only when the peer holds a tombstone that beats it;
//! - a store without `local_states` is described by its tree and content
//!   ([`derive_states`]), never taken as "anything goes";
//! - a key only the peer has is applied only when it beats our tombstone (if any);
//! - a peer that cannot be read never causes a local change: every read of a cycle happens
//!   before its first write;
//! - the self segment under `p` is the item `p` itself (ids that are both item and parent).

mod cycle;
mod derive;
mod error;
mod fit;
mod gc;
mod plan;
mod report;
mod resolve;
mod settings;
mod source;
mod state;
mod walk;

pub use cycle::{repair_cycle, repair_cycle_with};
pub use derive::derive_states;
pub use error::{ReadStage, RepairError, Side};
pub use gc::gc_horizon;
pub use plan::{plan_repair, KeyDifference, PlanScope, RepairAction, RepairPlan, Winner};
pub use report::CycleReport;
pub use resolve::PeerView;
pub use settings::RepairSettings;
pub use source::{LocalStore, LocalView, PeerSource, RepairPeer, RepairTarget, TreeSource};
pub use state::RepairState;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests;
