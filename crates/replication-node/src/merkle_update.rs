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

/// What a batch changes in the stored tree.
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
    /// The new children set of every node whose set changed (empty = deleted).
    pub(crate) sets: Vec<(String, ChildSet)>,
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

/// Recomputes the nodes above the changed `leaves` (id -> new leaf hash, `None` = removed).
///
/// `stored` must hold the children set of every path [`required_paths`] names for these ids
/// (a missing entry means an empty set).
pub(crate) fn recompute(
    stored: &HashMap<String, ChildSet>,
    leaves: &HashMap<&str, Option<Hash>>,
) -> TreeChanges {
    let empty = ChildSet::new();
    let stored_set = |path: &str| stored.get(path).unwrap_or(&empty);
    // The hash a node had before the batch, as its parent lists it; the root has no parent.
    let stored_node_hash = |path: &str| -> Option<Hash> {
        if path.is_empty() {
            return None;
        }
        let (parent, segment) = parent_and_segment(path);
        stored_set(parent).get(segment).copied()
    };
    // The leaf hash an untouched node had: its self member if it has children, else (if it
    // is an item at all) the hash its parent lists for it.
    let stored_leaf = |path: &str| -> Option<Hash> {
        let own = stored_set(path);
        if own.is_empty() {
            stored_node_hash(path)
        } else {
            own.get(SELF_SEGMENT).copied()
        }
    };

    let mut working: HashMap<&str, ChildSet> = HashMap::new();
    let mut queue: BinaryHeap<(usize, &str)> = BinaryHeap::new();
    let mut queued: HashSet<&str> = HashSet::new();
    for id in leaves.keys() {
        if queued.insert(id) {
            queue.push((depth(id), id));
        }
    }

    let mut changes = TreeChanges::default();
    // Deepest first: a node is recomputed only after every changed descendant.
    while let Some((_, path)) = queue.pop() {
        let own_leaf = match leaves.get(path) {
            Some(leaf) => *leaf,
            None => stored_leaf(path),
        };
        let set = working
            .entry(path)
            .or_insert_with(|| stored_set(path).clone());
        set.remove(SELF_SEGMENT);
        let hash = if set.is_empty() {
            own_leaf
        } else {
            if let Some(leaf) = own_leaf {
                set.insert(SELF_SEGMENT.to_owned(), leaf);
            }
            Some(interior_hash(set.iter().map(|(s, h)| (s.as_str(), h))))
        };

        let before = stored_node_hash(path);
        if path.is_empty() || hash != before {
            match hash {
                Some(hash) => changes.hashes_set.push((path.to_owned(), hash)),
                None => changes.hashes_deleted.push(path.to_owned()),
            }
        }
        if !path.is_empty() && hash != before {
            let (parent, segment) = parent_and_segment(path);
            let parent_set = working
                .entry(parent)
                .or_insert_with(|| stored_set(parent).clone());
            match hash {
                Some(hash) => parent_set.insert(segment.to_owned(), hash),
                None => parent_set.remove(segment),
            };
            if queued.insert(parent) {
                queue.push((depth(parent), parent));
            }
        }
    }

    for (path, set) in working {
        let before = stored_set(path);
        if *before == set {
            continue;
        }
        for (segment, hash) in before {
            if set.get(segment) != Some(hash) {
                changes
                    .removed
                    .push((path.to_owned(), segment.clone(), *hash));
            }
        }
        for (segment, hash) in &set {
            if before.get(segment) != Some(hash) {
                changes
                    .added
                    .push((path.to_owned(), segment.clone(), *hash));
            }
        }
        changes.sets.push((path.to_owned(), set));
    }
    changes
}

#[cfg(test)]
mod tests;
