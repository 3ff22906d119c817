//! A cache of children sets, valid for exactly one write token.
//!
//! Recomputing an interior node needs all its children, so every batch needs the full
//! children sets of its ids' ancestors; for wide nodes (many items under one parent) reading
//! them again on every batch would dominate the hot path. The sets this process last read or
//! wrote are kept together with the write token they belong to. A batch reads the token in
//! the same pipeline as the uncached sets; if it is still the cached one, nobody else has
//! written and the cached sets are exact. Otherwise the cache is dropped and the batch reads
//! again. The cache is bounded and simply cleared when it grows past the bound.

use crate::merkle_update::ChildSet;
use bytes::Bytes;
use replication_core::merkle::parent_and_segment;
use std::collections::HashMap;

/// Cache weight beyond which the cache is cleared (bounds memory to tens of MB). A set
/// weighs one plus its members: every id a batch writes leaves its own (usually empty)
/// set behind, so a bound on members alone would let entries grow with the key space.
const MAX_WEIGHT: usize = 500_000;

/// What a cached set counts against [`MAX_WEIGHT`].
fn weight(set: &ChildSet) -> usize {
    1 + set.len()
}

#[derive(Debug, Default)]
pub(crate) struct TreeCache {
    /// The write token the sets are valid for; `None` when the cache is empty.
    token: Option<Bytes>,
    sets: HashMap<String, ChildSet>,
    weight: usize,
    /// Map lookups made by [`TreeCache::knows_all`], for the test that bounds them.
    #[cfg(test)]
    lookups: std::cell::Cell<usize>,
}

impl TreeCache {
    /// The token the cache is valid for.
    pub(crate) fn token(&self) -> Option<&Bytes> {
        self.token.as_ref()
    }

    /// The cached set of `path`, if known at the cached token (empty = known to be empty).
    #[cfg(test)]
    pub(crate) fn get(&self, path: &str) -> Option<&ChildSet> {
        self.sets.get(path)
    }

    /// Whether the cache knows the children set of `path`: cached itself, or implied empty
    /// because some ancestor's cached set does not list the branch leading to it (the node
    /// does not exist, nor does anything below the missing branch). That second case spares
    /// a read per new id on the hot path, also when a batch opens a new subtree.
    pub(crate) fn knows(&self, path: &str) -> bool {
        let mut path = path;
        loop {
            #[cfg(test)]
            self.lookups.set(self.lookups.get() + 2);
            if self.sets.contains_key(path) {
                return true;
            }
            if path.is_empty() {
                return false;
            }
            let (parent, segment) = parent_and_segment(path);
            if let Some(set) = self.sets.get(parent) {
                return !set.contains_key(segment);
            }
            path = parent;
        }
    }

    /// [`knows`](Self::knows) for each of `paths`, in one pass that reuses each parent's
    /// answer: a constant number of lookups per path, where walking up from each would
    /// cost one per ancestor (quadratic in an id's depth, under the writer's lock). Paths
    /// should come with their ancestors before them, as `required_paths` gives them; a
    /// path whose parent is not among them falls back to the walk.
    pub(crate) fn knows_all(&self, paths: &[&str]) -> Vec<bool> {
        // Per path seen: whether it is implied empty (uncached, below a cached set that
        // does not list the branch leading to it).
        let mut implied: HashMap<&str, bool> = HashMap::with_capacity(paths.len());
        paths
            .iter()
            .map(|&path| {
                #[cfg(test)]
                self.lookups.set(self.lookups.get() + 1);
                if self.sets.contains_key(path) {
                    implied.insert(path, false);
                    return true;
                }
                if path.is_empty() {
                    implied.insert(path, false);
                    return false;
                }
                let (parent, segment) = parent_and_segment(path);
                #[cfg(test)]
                self.lookups.set(self.lookups.get() + 2);
                let below_missing_branch = match self.sets.get(parent) {
                    Some(set) => !set.contains_key(segment),
                    None => match implied.get(parent) {
                        Some(parent_implied) => *parent_implied,
                        None => self.knows(parent),
                    },
                };
                implied.insert(path, below_missing_branch);
                below_missing_branch
            })
            .collect()
    }

    /// Moves the set of a path the cache [`knows`](Self::knows) out of the cache (the batch
    /// puts it back, updated, when it commits). Implied-empty paths give an empty set.
    pub(crate) fn take(&mut self, path: &str) -> ChildSet {
        match self.sets.remove(path) {
            Some(set) => {
                self.weight -= weight(&set);
                set
            }
            None => ChildSet::new(),
        }
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.token = None;
        self.sets.clear();
        self.weight = 0;
    }

    /// Moves the cache to `token`, keeping `sets` (exact at that token); the caller
    /// guarantees every other cached set is also still exact at `token`.
    pub(crate) fn advance(
        &mut self,
        token: Bytes,
        sets: impl IntoIterator<Item = (String, ChildSet)>,
    ) {
        self.token = Some(token);
        for (path, set) in sets {
            self.weight += weight(&set);
            if let Some(old) = self.sets.insert(path, set) {
                self.weight -= weight(&old);
            }
        }
        if self.weight > MAX_WEIGHT {
            self.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_weight_and_clears_past_the_bound() {
        let mut cache = TreeCache::default();
        let set: ChildSet = [("a".to_string(), [0; 32])].into_iter().collect();
        cache.advance(Bytes::from_static(b"t1"), [("".to_string(), set.clone())]);
        assert_eq!(cache.token().map(|t| &t[..]), Some(&b"t1"[..]));
        assert_eq!(cache.get(""), Some(&set));
        cache.advance(
            Bytes::from_static(b"t2"),
            [("".to_string(), ChildSet::new())],
        );
        assert_eq!(cache.weight, 1, "an empty set still weighs one");
        let big: ChildSet = (0..=MAX_WEIGHT).map(|i| (i.to_string(), [0; 32])).collect();
        cache.advance(Bytes::from_static(b"t3"), [("x".to_string(), big)]);
        assert!(cache.token().is_none() && cache.get("").is_none());
        // Many empty sets (one per id written) also reach the bound.
        let empties = (0..=MAX_WEIGHT).map(|i| (format!("id.{i}"), ChildSet::new()));
        cache.advance(Bytes::from_static(b"t4"), empties);
        assert!(cache.token().is_none());
    }

    #[test]
    fn knowing_the_paths_of_a_deep_id_costs_lookups_linear_in_its_depth() {
        // A 2 000-segment chain `s.s.s...` and all its ancestors, ancestors first (the
        // order `required_paths` gives), over a cache that holds only the root.
        let id = vec!["s"; 2_000].join(".");
        let paths: Vec<&str> = crate::merkle_update::required_paths([id.as_str()]);
        let mut cache = TreeCache::default();
        let root: ChildSet = [("s".to_string(), [1; 32])].into_iter().collect();
        cache.advance(Bytes::from_static(b"t"), [("".to_string(), root)]);
        let known = cache.knows_all(&paths);
        // Only the root is cached and it lists `s`: the root is known, `s` must be read,
        // and so must everything below it (nothing implies it empty).
        assert!(known[0] && known[1..].iter().all(|k| !k));
        let per_path = cache.lookups.get() as f64 / paths.len() as f64;
        assert!(
            per_path <= 4.0,
            "{} lookups for {} paths: superlinear in the depth",
            cache.lookups.get(),
            paths.len()
        );
    }

    #[test]
    fn a_missing_branch_implies_every_path_below_it_is_empty() {
        let mut cache = TreeCache::default();
        let root: ChildSet = [("a".to_string(), [1; 32])].into_iter().collect();
        let a: ChildSet = [("b".to_string(), [2; 32])].into_iter().collect();
        cache.advance(
            Bytes::from_static(b"t"),
            [("".to_string(), root), ("a".to_string(), a)],
        );
        // Cached, and listed-but-uncached (must be read).
        assert!(cache.knows("") && cache.knows("a"));
        assert!(!cache.knows("a.b"));
        // Not listed by a cached parent, and anything below such a node.
        assert!(cache.knows("x") && cache.knows("x.y.z"));
        assert!(cache.knows("a.c") && cache.knows("a.c.d"));
        // Below a listed but uncached node nothing is implied.
        assert!(!cache.knows("a.b.c"));
        // The one-pass form answers the same, ancestors first or not.
        let paths = [
            "", "a", "a.b", "a.b.c", "x", "x.y", "x.y.z", "a.c", "a.c.d", "q.r",
        ];
        let walked: Vec<bool> = paths.iter().map(|p| cache.knows(p)).collect();
        assert_eq!(cache.knows_all(&paths), walked);
        assert!(cache.take("x.y.z").is_empty());
    }
}
