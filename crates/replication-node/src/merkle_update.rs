//! Incremental recomputation of the stored Merkle tree for one write batch (pure, no I/O).
//!
//! The store keeps, per node, a children set (`merkle:children:{path}`, members
//! `segment:hex`) and a hash key (`merkle:hash:{path}`). A batch changes some leaves; only
//! those leaves' nodes and their ancestors can change, so only their children sets are read
//! ([`required_paths`]) and only they are recomputed, each once, deepest first (so a node
//! shared by many changed ids is hashed once per batch, not once per id).
//!
//! Ids that are both item and parent follow docs/PROTOCOL.md: the node's own leaf hash is a
//! member under [`SELF_SEGMENT`] of its children set, and only while it has other children;
//! an item without children is a plain leaf whose hash sits in its parent's set.

use replication_core::merkle::{ancestors, interior_hash, parent_and_segment, Hash, SELF_SEGMENT};
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

/// One children set: segment -> child node hash (the self segment included when present).
pub(crate) type ChildSet = BTreeMap<String, Hash>;

/// What a batch changes in the stored tree (the Redis writes; the sets themselves are
/// updated in place by [`recompute`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TreeChanges {
    /// Members to remove: (node path, segment, old hash).
    pub(crate) removed: Vec<(String, String, Hash)>,
    /// Members to add: (node path, segment, new hash).
    pub(crate) added: Vec<(String, String, Hash)>,
    /// Hash keys to write: (node path, hash).
    pub(crate) hashes_set: Vec<(String, Hash)>,
    /// Hash keys to delete, for nodes that no longer exist.
    pub(crate) hashes_deleted: Vec<String>,
}

impl TreeChanges {
    /// True when nothing in the tree changes.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.removed.is_empty()
            && self.added.is_empty()
            && self.hashes_set.is_empty()
            && self.hashes_deleted.is_empty()
    }

    /// Sets member `segment` of `path` from `old` to `new`, recording the difference.
    fn set_member(&mut self, set: &mut ChildSet, path: &str, segment: &str, new: Option<Hash>) {
        let old = set.get(segment).copied();
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.removed
                .push((path.to_owned(), segment.to_owned(), old));
        }
        match new {
            Some(new) => {
                self.added.push((path.to_owned(), segment.to_owned(), new));
                set.insert(segment.to_owned(), new);
            }
            None => {
                set.remove(segment);
            }
        }
    }
}

/// Every node whose children set a change of these ids may need: the ids themselves and
/// all their ancestors, each once, in first-seen order.
pub(crate) fn required_paths<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for id in ids {
        for path in ancestors(id).chain(std::iter::once(id)) {
            if seen.insert(path) {
                out.push(path);
            }
        }
    }
    out
}

/// Depth of a path in the tree: the root is 0, `a` is 1, `a.b` is 2.
fn depth(path: &str) -> usize {
    if path.is_empty() {
        0
    } else {
        path.bytes().filter(|b| *b == b'.').count() + 1
    }
}

/// Recomputes the nodes above the changed `leaves` (id -> new leaf hash, `None` = removed),
/// updating `sets` in place and returning the writes that bring Redis to the same state.
///
/// `sets` must hold the children set of every path [`required_paths`] names for these ids
/// (a missing entry means an empty set); afterwards it holds their sets after the batch
/// (empty = the node has no children). Updating in place rather than copying matters: a
/// wide node's set (a thousand members) would otherwise be cloned and compared per batch.
pub(crate) fn recompute(
    sets: &mut HashMap<String, ChildSet>,
    leaves: &HashMap<&str, Option<Hash>>,
) -> TreeChanges {
    // Whether a node had children before the batch decides where an untouched item's leaf
    // hash is found (its self member, or its parent's listing); few nodes have children.
    let had_children: HashSet<String> = sets
        .iter()
        .filter(|(_, set)| set.keys().any(|segment| segment != SELF_SEGMENT))
        .map(|(path, _)| path.clone())
        .collect();
    let mut queue: BinaryHeap<(usize, &str)> = BinaryHeap::new();
    let mut queued: HashSet<&str> = HashSet::new();
    for id in leaves.keys() {
        if queued.insert(id) {
            queue.push((depth(id), id));
        }
    }

    let mut changes = TreeChanges::default();
    // Deepest first: a node is recomputed only after every changed descendant. Each member
    // is written by exactly one node (a child its own segment, a node its self segment), and
    // only once, so the value a member holds when it is written is its value before the
    // batch.
    while let Some((_, path)) = queue.pop() {
        // The hash the node had before the batch, as its parent lists it (None: root, or
        // a node that did not exist).
        let before = if path.is_empty() {
            None
        } else {
            let (parent, segment) = parent_and_segment(path);
            sets.get(parent).and_then(|set| set.get(segment)).copied()
        };
        let set = sets.entry(path.to_owned()).or_default();
        let has_children = set.keys().any(|segment| segment != SELF_SEGMENT);
        let own_leaf = match leaves.get(path) {
            Some(leaf) => *leaf,
            // Untouched: its self member if it had children (only this node writes that
            // member, so it still holds the old value), else what its parent listed.
            None if had_children.contains(path) => set.get(SELF_SEGMENT).copied(),
            None => before,
        };
        // The self member exists only while the node has other children.
        let self_member = if has_children { own_leaf } else { None };
        changes.set_member(set, path, SELF_SEGMENT, self_member);
        let hash = if has_children {
            Some(interior_hash(set.iter().map(|(s, h)| (s.as_str(), h))))
        } else {
            own_leaf
        };

        if path.is_empty() || hash != before {
            match hash {
                Some(hash) => changes.hashes_set.push((path.to_owned(), hash)),
                None => changes.hashes_deleted.push(path.to_owned()),
            }
        }
        if !path.is_empty() && hash != before {
            let (parent, segment) = parent_and_segment(path);
            let parent_set = sets.entry(parent.to_owned()).or_default();
            changes.set_member(parent_set, parent, segment, hash);
            if queued.insert(parent) {
                queue.push((depth(parent), parent));
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests;
