//! `LazyTree`: the Merkle tree of [`crate::MemoryStore`], hashed on read rather than on
//! every write.

use replication_core::merkle::{child_path, interior_hash, parent_and_segment, Hash, SELF_SEGMENT};
use std::collections::{BTreeSet, HashMap};

/// A Merkle tree that hashes lazily: writes only link the id into its ancestors and mark
/// them dirty; hashes are computed (and cached) when read.
///
/// `replication_core::merkle::MerkleTree` rehashes every ancestor on each insert, which
/// costs the width of each ancestor: building 100 000 keys under 100 parents that way
/// takes minutes in a debug build. This tree computes the same hashes (a test checks it
/// against `MerkleTree`) with one hash per dirty node per read.
#[derive(Clone, Debug, Default)]
pub(crate) struct LazyTree {
    /// Leaf hash of every item, by object id.
    leaves: HashMap<String, Hash>,
    /// Non-self child segments of every node that has any.
    children: HashMap<String, BTreeSet<String>>,
    /// Cached hashes of nodes with children; a missing entry means "recompute".
    cache: HashMap<String, Hash>,
}

impl LazyTree {
    pub(crate) fn insert(&mut self, id: &str, leaf: Hash) {
        self.leaves.insert(id.to_owned(), leaf);
        let mut path = id;
        while !path.is_empty() {
            let (parent, segment) = parent_and_segment(path);
            self.cache.remove(path);
            self.children
                .entry(parent.to_owned())
                .or_default()
                .insert(segment.to_owned());
            path = parent;
        }
        self.cache.remove("");
    }

    pub(crate) fn remove(&mut self, id: &str) -> bool {
        if self.leaves.remove(id).is_none() {
            return false;
        }
        let mut path = id;
        while !path.is_empty() {
            let (parent, segment) = parent_and_segment(path);
            self.cache.remove(path);
            let exists = self.leaves.contains_key(path) || self.children.contains_key(path);
            if !exists {
                if let Some(siblings) = self.children.get_mut(parent) {
                    siblings.remove(segment);
                    if siblings.is_empty() {
                        self.children.remove(parent);
                    }
                }
            }
            path = parent;
        }
        self.cache.remove("");
        true
    }

    pub(crate) fn node_hash(&mut self, path: &str) -> Option<Hash> {
        let Some(segments) = self.children.get(path) else {
            return self.leaves.get(path).copied();
        };
        if let Some(hash) = self.cache.get(path) {
            return Some(*hash);
        }
        let segments: Vec<String> = segments.iter().cloned().collect();
        let entries = self.entries(path, segments);
        let hash = interior_hash(entries.iter().map(|(s, h)| (s.as_str(), h)));
        self.cache.insert(path.to_owned(), hash);
        Some(hash)
    }

    /// `(segment, hash)` of the node's children, self segment first when the node is an item.
    fn entries(&mut self, path: &str, segments: Vec<String>) -> Vec<(String, Hash)> {
        let mut out = Vec::with_capacity(segments.len() + 1);
        if let Some(leaf) = self.leaves.get(path) {
            out.push((SELF_SEGMENT.to_owned(), *leaf));
        }
        for segment in segments {
            // Every linked child exists (remove unlinks empty nodes), so this never skips.
            if let Some(hash) = self.node_hash(&child_path(path, &segment)) {
                out.push((segment, hash));
            }
        }
        out
    }

    pub(crate) fn children_of(&mut self, path: &str) -> Vec<(String, Hash)> {
        match self.children.get(path) {
            Some(segments) => {
                let segments: Vec<String> = segments.iter().cloned().collect();
                self.entries(path, segments)
            }
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;
    use proptest::prelude::*;
    use replication_core::content_hash;
    use replication_core::merkle::{leaf_hash, MerkleTree};

    #[derive(Clone, Debug)]
    enum Op {
        Put(String, u8, u64),
        Remove(String),
    }

    fn arb_key() -> impl Strategy<Value = String> {
        // Few segments so that ids that are both item and parent are common.
        proptest::collection::vec(prop_oneof!["a", "b", "c:d"], 1..4)
            .prop_map(|segments| segments.join("."))
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (arb_key(), any::<u8>(), 1u64..5).prop_map(|(k, c, v)| Op::Put(k, c, v)),
            1 => arb_key().prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// The lazy tree reports exactly what the core reference tree computes.
        #[test]
        fn lazy_tree_matches_the_reference_tree(ops in proptest::collection::vec(arb_op(), 0..40)) {
            let mut lazy = LazyTree::default();
            let mut reference = MerkleTree::new();
            for op in ops {
                match op {
                    Op::Put(key, content, version) => {
                        let leaf = leaf_hash(&key, version, &content_hash(&[content]));
                        lazy.insert(&key, leaf);
                        reference.insert(&key, leaf);
                    }
                    Op::Remove(key) => {
                        prop_assert_eq!(lazy.remove(&key), reference.remove(&key));
                    }
                }
                prop_assert_eq!(lazy.node_hash(""), reference.root());
            }
            let paths: Vec<String> = reference.interior_paths().map(str::to_owned).collect();
            for path in paths {
                prop_assert_eq!(lazy.children_of(&path), reference.children(&path));
            }
        }
    }
}
