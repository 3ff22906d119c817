//! The incremental update, applied to a simulated store, must always equal the reference
//! `MerkleTree` built from the same leaves, with no stale hash keys.

use super::*;
use proptest::prelude::*;
use replication_core::merkle::MerkleTree;

/// The stored tree as Redis would hold it: children sets and hash keys.
#[derive(Default)]
struct Stored {
    sets: HashMap<String, ChildSet>,
    hashes: HashMap<String, Hash>,
}

impl Stored {
    fn apply(&mut self, leaves: &HashMap<&str, Option<Hash>>) -> TreeChanges {
        let paths = required_paths(leaves.keys().copied());
        let mut loaded: HashMap<String, ChildSet> = paths
            .iter()
            .filter_map(|p| self.sets.get(*p).map(|s| ((*p).to_owned(), s.clone())))
            .collect();
        let changes = recompute(&mut loaded, leaves);
        for (path, segment, hash) in &changes.removed {
            let set = self.sets.get_mut(path).expect("removing from a stored set");
            assert_eq!(
                set.remove(segment),
                Some(*hash),
                "removed member must be the stored one"
            );
            if set.is_empty() {
                self.sets.remove(path);
            }
        }
        for (path, segment, hash) in &changes.added {
            self.sets
                .entry(path.clone())
                .or_default()
                .insert(segment.clone(), *hash);
        }
        for (path, hash) in &changes.hashes_set {
            self.hashes.insert(path.clone(), *hash);
        }
        for path in &changes.hashes_deleted {
            self.hashes.remove(path);
        }
        // The sets updated in place are exactly the stored sets after the writes (what the
        // writer's tree cache keeps), empty ones standing for absent keys.
        for (path, set) in &loaded {
            let stored = self.sets.get(path).cloned().unwrap_or_default();
            assert_eq!(*set, stored, "in-place set of {path:?}");
        }
        changes
    }

    fn assert_equals(&self, tree: &MerkleTree) {
        let interior: HashSet<&str> = tree.interior_paths().collect();
        let stored_paths: HashSet<&str> = self.sets.keys().map(String::as_str).collect();
        assert_eq!(stored_paths, interior);
        for path in &interior {
            let expected: ChildSet = tree.children(path).into_iter().collect();
            assert_eq!(self.sets[*path], expected, "children of {path:?}");
        }
        let nodes: HashSet<&str> = interior.iter().copied().chain(tree.ids()).collect();
        let hashed: HashSet<&str> = self.hashes.keys().map(String::as_str).collect();
        assert_eq!(
            hashed, nodes,
            "hash keys must name exactly the existing nodes"
        );
        for node in nodes {
            assert_eq!(
                Some(self.hashes[node]),
                tree.node_hash(node),
                "hash of {node:?}"
            );
        }
    }
}

#[test]
fn required_paths_are_ids_and_ancestors_once() {
    assert_eq!(
        required_paths(["a.b.c", "a.d", "a"]),
        ["", "a", "a.b", "a.b.c", "a.d"]
    );
}

#[test]
fn item_that_becomes_a_parent_keeps_its_leaf_under_the_self_segment() {
    let mut stored = Stored::default();
    let mut tree = MerkleTree::new();
    stored.apply(&HashMap::from([("a", Some([1; 32]))]));
    tree.insert("a", [1; 32]);
    stored.assert_equals(&tree);
    // `a` is untouched by this batch; its leaf must be found in the root's set.
    stored.apply(&HashMap::from([("a.b", Some([2; 32]))]));
    tree.insert("a.b", [2; 32]);
    stored.assert_equals(&tree);
    assert_eq!(stored.sets["a"].get(SELF_SEGMENT), Some(&[1; 32]));
    stored.apply(&HashMap::from([("a.b", None)]));
    tree.remove("a.b");
    stored.assert_equals(&tree);
    assert!(!stored.sets.contains_key("a"));
}

#[test]
fn unchanged_leaf_writes_nothing() {
    let mut stored = Stored::default();
    stored.apply(&HashMap::from([("x.y", Some([3; 32]))]));
    let again = stored.apply(&HashMap::from([("x.y", Some([3; 32]))]));
    assert!(again.is_empty(), "{again:?}");
}

fn arb_batches() -> impl Strategy<Value = Vec<Vec<(String, Option<u8>)>>> {
    let op = ("[ab](\\.[ab:]){0,3}", proptest::option::of(0u8..4));
    proptest::collection::vec(proptest::collection::vec(op, 1..6), 1..12)
}

proptest! {
    #[test]
    fn batches_keep_the_store_equal_to_the_reference(batches in arb_batches()) {
        let mut stored = Stored::default();
        let mut tree = MerkleTree::new();
        for batch in &batches {
            // Within a batch the last write of an id wins, as in the planner.
            let mut leaves: HashMap<&str, Option<Hash>> = HashMap::new();
            for (id, value) in batch {
                leaves.insert(id, value.map(|v| [v; 32]));
            }
            // Only real changes are passed on, as the planner does.
            leaves.retain(|id, leaf| tree.leaf(id) != *leaf);
            for (id, leaf) in &leaves {
                match leaf {
                    Some(h) => tree.insert(id, *h),
                    None => { tree.remove(id); }
                }
            }
            stored.apply(&leaves);
            stored.assert_equals(&tree);
        }
    }
}
