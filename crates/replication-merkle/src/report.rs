//! What one repair cycle did, for metrics, logs and the tombstone-collection horizon.

use std::time::Duration;

/// Which per-cycle budget stopped a cycle early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Budget {
    /// `max_items_per_cycle`.
    Items,
    /// `max_bytes_per_cycle`.
    Bytes,
}

/// Counts of one repair cycle. Round trips are calls made, one per batched request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// The roots were equal when the cycle started: nothing to do.
    pub in_sync: bool,
    /// Safe to count for tombstone collection: the roots were equal, or this cycle started
    /// a walk at the roots and finished it (every differing branch walked, no budget
    /// exhausted) without meeting a key the peer still holds while our tombstone beats it
    /// (or that the peer could not read). See docs/PROTOCOL.md "Deletes and tombstones".
    pub completed: bool,
    /// Everything the peer holds that we lacked was brought: the roots were equal, or this
    /// cycle started a walk at the roots and finished it within its budget. What a gap's
    /// repair needs; `completed` asks more (the peer has applied our deletes too).
    pub walked: bool,
    /// This cycle continued a walk an earlier cycle left unfinished.
    pub resumed: bool,
    /// Merkle nodes whose children were compared.
    pub nodes_compared: u64,
    /// Calls to the local store (roots, children, stamps, applied batches).
    pub local_round_trips: u64,
    /// Calls to the peer (roots, children, items, tombstones).
    pub peer_round_trips: u64,
    /// Differing keys resolved by this cycle.
    pub keys_resolved: u64,
    /// Items read from the peer (present ones).
    pub items_fetched: u64,
    /// Content bytes of the items read.
    pub bytes_fetched: u64,
    /// Peer items that beat the local state and were applied.
    pub items_applied: u64,
    /// Peer items skipped because the local item or tombstone is newer (or the same).
    pub items_skipped_older: u64,
    /// Peer items that could not be read (unknown layout, missing module): counted, skipped.
    pub items_unreadable: u64,
    /// Keys the peer's tree listed but whose item was gone when read (a race): skipped.
    pub items_vanished: u64,
    /// Local-only keys deleted because the peer holds a tombstone that beats them.
    pub tombstones_applied: u64,
    /// Local-only keys kept because the peer holds no tombstone that beats them (the peer
    /// will fetch them from us).
    pub local_only_kept: u64,
    /// Peer writes the local store refused for good (a reserved id, a payload over its
    /// cap): skipped and counted; the rest of the cycle goes on.
    pub items_refused: u64,
    /// Local items that could not be ordered against the peer's write (a store without
    /// `local_states` whose version was not found): left as they are.
    pub local_undetermined: u64,
    /// Keys the peer still holds (or could not read) while our tombstone beats them: the
    /// peer has not applied the delete yet, so the cycle is not `completed`.
    pub deletes_pending_on_peer: u64,
    /// Set when a budget ran out with work left; the next cycle resumes.
    pub(crate) budget_exhausted: Option<Budget>,
    /// Wall time of the cycle (reporting only; nothing depends on it).
    pub duration: Duration,
}

impl CycleReport {
    /// Local changes made by the cycle.
    pub fn changes_applied(&self) -> u64 {
        self.items_applied + self.tombstones_applied
    }
}
