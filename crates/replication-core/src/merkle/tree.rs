//! An in-memory Merkle tree maintained incrementally (ancestors only) on each write.
//!
//! It is the reference implementation of the hashing rules: the node store's Redis tree and
//! the test stores must report exactly what this computes for the same items.

use super::{ancestors, interior_hash, parent_and_segment, Hash, SELF_SEGMENT};
use std::collections::{BTreeMap, HashMap};

/// Path tree over object ids with cached node hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MerkleTree {
    /// Leaf hash of every item, by object id.
    leaves: HashMap<String, Hash>,
    /// Children of every node that has any: path -> segment -> child node hash.
    children: HashMap<String, BTreeMap<String, Hash>>,
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// True when there are no items.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// Sets the leaf hash of `id` and updates its ancestors.
    pub fn insert(&mut self, id: &str, leaf: Hash) {
        self.leaves.insert(id.to_owned(), leaf);
        self.refresh_upwards(id);
    }

    /// Removes `id` and updates its ancestors. Returns whether it was present.
    pub fn remove(&mut self, id: &str) -> bool {
        let present = self.leaves.remove(id).is_some();
        if present {
            self.refresh_upwards(id);
        }
        present
    }

    /// The root hash, or `None` for an empty tree.
    pub fn root(&self) -> Option<Hash> {
        self.node_hash("")
    }

    /// The leaf hash of `id`, if it is an item.
    pub fn leaf(&self, id: &str) -> Option<Hash> {
        self.leaves.get(id).copied()
    }

    /// The hash of the node at `path` (leaf, interior, or both), if it exists.
    pub fn node_hash(&self, path: &str) -> Option<Hash> {
        let leaf = self.leaves.get(path);
        match (self.children.get(path), leaf) {
            (Some(children), leaf) => {
                let own = leaf.map(|h| (SELF_SEGMENT, h));
                Some(interior_hash(
                    children.iter().map(|(s, h)| (s.as_str(), h)).chain(own),
                ))
            }
            (None, Some(leaf)) => Some(*leaf),
            (None, None) => None,
        }
    }

    /// Children of `path` as `(segment, hash)` sorted by segment, including the self segment
    /// when `path` is both an item and a parent. Empty for leaves and unknown paths.
    pub fn children(&self, path: &str) -> Vec<(String, Hash)> {
        let Some(children) = self.children.get(path) else {
            return Vec::new();
        };
        let mut out: Vec<(String, Hash)> = children.iter().map(|(s, h)| (s.clone(), *h)).collect();
        if let Some(leaf) = self.leaves.get(path) {
            out.insert(0, (SELF_SEGMENT.to_owned(), *leaf));
        }
        out
    }

    /// Recomputes the node at `path` and every ancestor, deepest first.
    fn refresh_upwards(&mut self, id: &str) {
        let mut path = id;
        loop {
            if path.is_empty() {
                return;
            }
            let (parent, segment) = parent_and_segment(path);
            let hash = self.node_hash(path);
            let siblings = self.children.entry(parent.to_owned()).or_default();
            match hash {
                Some(hash) => {
                    siblings.insert(segment.to_owned(), hash);
                }
                None => {
                    siblings.remove(segment);
                }
            }
            if siblings.is_empty() {
                self.children.remove(parent);
            }
            path = parent;
        }
    }

    /// Every interior path, for tests that compare whole trees.
    pub fn interior_paths(&self) -> impl Iterator<Item = &str> {
        self.children.keys().map(String::as_str)
    }

    /// Every object id.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.leaves.keys().map(String::as_str)
    }

    /// Ancestor paths of `id`, root first (re-exported for callers holding a tree).
    pub fn ancestors_of(id: &str) -> Vec<&str> {
        ancestors(id).collect()
    }
}
