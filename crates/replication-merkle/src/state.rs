//! What a repair walk still has to do, kept by the caller between cycles so that a cycle
//! that runs out of budget is resumed by the next one instead of starting over.

use replication_core::merkle::Hash;
use std::collections::VecDeque;

/// A node known to differ, with its hash on each side (`None`: the side lacks it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NodePair {
    pub(crate) path: String,
    pub(crate) local: Option<Hash>,
    pub(crate) peer: Option<Hash>,
}

/// An object id whose leaf differs between the sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) key: String,
    /// Whether the peer's tree lists the item (else it is local-only).
    pub(crate) on_peer: bool,
}

/// The resumable frontier of one peer's repair walk. Start with `RepairState::default()`,
/// pass the same value to every cycle for that peer.
///
/// The saved hashes may be stale when the next cycle resumes; that is safe, because every
/// decision re-reads the peer's item or tombstone and the local stamp first. A difference
/// that appears outside the saved frontier is found by the next walk from the root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairState {
    /// Differing nodes whose children are still to be compared, breadth first.
    pub(crate) frontier: VecDeque<NodePair>,
    /// Differing keys still to be resolved.
    pub(crate) candidates: VecDeque<Candidate>,
    /// True while a walk is under way (the next cycle resumes instead of comparing roots).
    pub(crate) walking: bool,
}

impl RepairState {
    /// A state with no walk under way.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when the next cycle resumes an unfinished walk.
    #[cfg(test)]
    pub(crate) fn is_resuming(&self) -> bool {
        self.walking
    }

    /// Forgets the walk; the next cycle starts from the roots.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}
