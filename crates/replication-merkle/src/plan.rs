//! The repair preview: the same walk and the same decisions as a repair cycle, reported
//! key by key instead of applied. It reads the local side through [`LocalView`], which has
//! no write method, so a preview cannot change the store.
//!
//! A prefix narrows the walk to the branches that can hold keys starting with it; a limit
//! bounds how many differing keys are resolved (and so how much is read from the peer).

use crate::error::RepairError;
use crate::report::CycleReport;
use crate::resolve::{resolve_all, Decision, PeerView, Resolved};
use crate::settings::RepairSettings;
use crate::source::{LocalView, RepairPeer};
use crate::state::{Candidate, NodePair};
use crate::walk::expand;
use crate::ReadStage;
use futures::future::try_join;
use replication_core::{Change, HeldState};
use std::collections::VecDeque;

/// Which keys a preview looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanScope {
    /// Only keys that start with this (empty: every key).
    pub prefix: String,
    /// At most this many differing keys are resolved and listed (at least 1).
    pub limit: usize,
}

impl Default for PlanScope {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            limit: 1000,
        }
    }
}

/// Who wins a differing key in the conflict order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Winner {
    /// Our write (or tombstone) wins, or the key is ours alone: the peer would fetch it.
    Local,
    /// The peer's write or tombstone wins: a repair here would take it.
    Peer,
    /// Cannot be decided: the peer's item is unreadable or was gone when read, or our
    /// version cannot be found.
    Undecided,
}

/// What a repair cycle from the peer would do about a differing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepairAction {
    /// Fetch the peer's item and store it here.
    Fetch,
    /// Delete the key here: the peer's tombstone beats our item.
    Delete,
    /// Nothing here: ours wins, and the peer's own repair (or stream) brings it there.
    KeepLocal,
    /// Nothing here: our tombstone wins, and the peer has not applied that delete yet.
    AwaitPeerDelete,
    /// Nothing: the peer's item cannot be read.
    SkipUnreadable,
    /// Nothing: the peer's tree listed the key but the item was gone when read (a race).
    SkipVanished,
    /// Nothing: our item cannot be ordered against the peer's write (a store without
    /// `local_states` whose version could not be found).
    SkipUndetermined,
}

/// One key that differs between the two trees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDifference {
    /// The object id.
    pub key: String,
    /// What we hold: as the store describes it, or as derived from its tree and content
    /// when it cannot (a store with only the required methods).
    pub local: HeldState,
    /// What the peer holds.
    pub peer: PeerView,
    /// Who wins in the conflict order.
    pub winner: Winner,
    /// What a repair would do here.
    pub action: RepairAction,
}

/// What a preview found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairPlan {
    /// The Merkle roots were equal: nothing differs anywhere.
    pub roots_equal: bool,
    /// The differing keys in scope, sorted by key.
    pub differences: Vec<KeyDifference>,
    /// The limit was reached before the walk ended: more keys may differ.
    pub truncated: bool,
    /// Nodes compared, round trips, keys resolved, items and bytes fetched.
    pub report: CycleReport,
}

impl RepairPlan {
    /// True when nothing in scope differs.
    pub fn is_identical(&self) -> bool {
        self.differences.is_empty() && !self.truncated
    }
}

/// Walks the difference between `local` and `peer` within `scope` and decides each
/// differing key as a repair cycle would, without writing anything.
pub async fn plan_repair<L: LocalView, P: RepairPeer>(
    local: &L,
    peer: &P,
    settings: &RepairSettings,
    scope: &PlanScope,
) -> Result<RepairPlan, RepairError> {
    let node_id = peer.node_id();
    let mut plan = RepairPlan::default();
    let local_root = async {
        local
            .get_merkle_root()
            .await
            .map_err(|source| RepairError::LocalRead {
                peer: node_id.to_owned(),
                stage: ReadStage::Root,
                source,
            })
    };
    let peer_root = async {
        peer.get_merkle_root()
            .await
            .map_err(|source| RepairError::Peer {
                peer: node_id.to_owned(),
                stage: ReadStage::Root,
                source,
            })
    };
    let (local_root, peer_root) = try_join(local_root, peer_root).await?;
    plan.report.local_round_trips += 1;
    plan.report.peer_round_trips += 1;
    if local_root == peer_root {
        plan.roots_equal = true;
        return Ok(plan);
    }

    let limit = scope.limit.max(1);
    let mut frontier = VecDeque::from([NodePair {
        path: String::new(),
        local: local_root,
        peer: peer_root,
    }]);
    let mut candidates: Vec<Candidate> = Vec::new();
    while candidates.len() < limit && !frontier.is_empty() {
        let take = frontier.len().min(settings.step());
        let pairs: Vec<NodePair> = frontier.drain(..take).collect();
        let found = expand(local, peer, pairs, settings.batch(), &mut plan.report).await?;
        frontier.extend(
            found
                .nodes
                .into_iter()
                .filter(|node| may_hold(&node.path, &scope.prefix)),
        );
        candidates.extend(
            found
                .candidates
                .into_iter()
                .filter(|c| c.key.starts_with(&scope.prefix)),
        );
    }
    plan.truncated = candidates.len() > limit || !frontier.is_empty();
    candidates.truncate(limit);
    let resolved = resolve_all(local, peer, candidates, settings.batch(), &mut plan.report).await?;
    plan.differences = resolved.into_iter().map(difference).collect();
    plan.differences.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(plan)
}

/// Whether the subtree at `path` can hold a key starting with `prefix`: the path leads
/// to the prefix, or lies under it. Paths are whole segments, so `a` leads to `ab` too
/// (harmless: its keys are filtered by the prefix afterwards).
fn may_hold(path: &str, prefix: &str) -> bool {
    prefix.starts_with(path) || path.starts_with(prefix)
}

fn difference(resolved: Resolved) -> KeyDifference {
    let (winner, action) = match &resolved.decision {
        Decision::Apply(Change::Put(_)) => (Winner::Peer, RepairAction::Fetch),
        Decision::Apply(Change::Delete { .. }) => (Winner::Peer, RepairAction::Delete),
        Decision::LocalNewer | Decision::KeepLocalOnly => (Winner::Local, RepairAction::KeepLocal),
        Decision::PeerHoldsDeleted => (Winner::Local, RepairAction::AwaitPeerDelete),
        Decision::Unreadable => (Winner::Undecided, RepairAction::SkipUnreadable),
        Decision::Vanished => (Winner::Undecided, RepairAction::SkipVanished),
        Decision::LocalUndetermined => (Winner::Undecided, RepairAction::SkipUndetermined),
    };
    KeyDifference {
        key: resolved.key,
        local: resolved.local,
        peer: resolved.peer,
        winner,
        action,
    }
}

#[cfg(test)]
mod tests {
    use super::may_hold;

    #[test]
    fn the_walk_keeps_branches_towards_and_under_the_prefix() {
        assert!(may_hold("", "uk.pat"));
        assert!(may_hold("uk", "uk.pat"));
        assert!(may_hold("uk.patient", "uk.pat"));
        assert!(may_hold("uk.patient.1", "uk.pat"));
        assert!(!may_hold("fr", "uk.pat"));
        assert!(!may_hold("uk.doctor", "uk.pat"));
        assert!(may_hold("anything", ""));
    }
}
