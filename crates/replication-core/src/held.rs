//! What the engine knows of a key in the local store, and how an incoming write compares
//! with it: the conflict order as far as the store lets it be known.
//!
//! A store that implements `SyncEngineRef::local_states` says exactly what it holds
//! ([`HeldState::Known`]). One that implements only the required methods (sync-engine
//! among them) says nothing, but its Merkle tree and content do: a key's leaf hash is
//! `SHA-256(id | version | content hash)`, so with the content (`get`) the leaf gives the
//! version back ([`find_leaf_version`]); only the write's time stays unknown
//! ([`Derived`]). docs/PROTOCOL.md "Stores with only the required methods" states the
//! rule and its limits:
//! - versions are compared as in the conflict order; at an equal version two different
//!   contents are ordered by content hash alone (the local time is unknown), and a
//!   tombstone deletes the version it names;
//! - the version is searched near the incoming one and among the low versions
//!   ([`VERSION_SEARCH_RADIUS`], [`LOW_VERSIONS_SEARCHED`]); a key whose version is not
//!   found, or whose tree and content disagree, is never overwritten (undetermined);
//! - an id that is both item and parent in sync-engine's layout has no leaf: its writes
//!   are applied unless the content is already held (unversioned).

use crate::merkle::{leaf_hash, Hash};
use crate::{incoming_wins, Change, LocalState, Stamp, StampKind};

/// Versions tried on each side of the incoming write's version.
pub const VERSION_SEARCH_RADIUS: u64 = 2048;

/// Versions `0..=LOW_VERSIONS_SEARCHED` are tried too (a key written anew starts low).
pub const LOW_VERSIONS_SEARCHED: u64 = 4096;

/// What the engine knows of one key in the local store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeldState {
    /// The store's own answer (`local_states`): stamps and tombstones.
    Known(LocalState),
    /// Read from the tree and content of a store that cannot answer.
    Derived(Derived),
}

/// What the tree and content of a store without `local_states` tell of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Derived {
    /// No item (such a store keeps no tombstones either).
    Absent,
    /// An item with this version (from its leaf) and content hash (lowercase hex).
    Versioned {
        /// The version the leaf encodes.
        version: u64,
        /// SHA-256 of the held content, lowercase hex.
        content_hash: String,
    },
    /// An item whose leaf is lost (an id that is also a parent, in sync-engine's layout).
    Unversioned {
        /// SHA-256 of the held content, lowercase hex.
        content_hash: String,
    },
    /// An item whose version could not be found, or a tree and content that disagree
    /// (a write in between): the engine does not overwrite it.
    Undetermined,
}

/// How an incoming write compares with what is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Apply it.
    Wins,
    /// The store holds this very write (an echo, a replay).
    Same,
    /// The store holds a write that beats it.
    Loses,
    /// What is held cannot be ordered against it: not applied.
    Undetermined,
}

impl HeldState {
    /// Compares an incoming write's stamp with what is held.
    pub fn judge(&self, incoming: &Stamp) -> Verdict {
        match self {
            HeldState::Known(state) => {
                if state.stamp().as_ref() == Some(incoming) {
                    Verdict::Same
                } else if incoming_wins(incoming, Some(state)) {
                    Verdict::Wins
                } else {
                    Verdict::Loses
                }
            }
            HeldState::Derived(derived) => derived.judge(incoming),
        }
    }

    /// The version a bare delete (one without a tombstone) removes: what is held; `None`
    /// when that cannot be told.
    pub fn held_version(&self) -> Option<u64> {
        match self {
            HeldState::Known(LocalState::Present(stamp)) => Some(stamp.version),
            HeldState::Known(LocalState::Deleted(tombstone)) => Some(tombstone.version),
            HeldState::Known(LocalState::Absent) => Some(0),
            HeldState::Derived(Derived::Absent | Derived::Unversioned { .. }) => Some(0),
            HeldState::Derived(Derived::Versioned { version, .. }) => Some(*version),
            HeldState::Derived(Derived::Undetermined) => None,
        }
    }

    /// What the store holds once `change` (which won) is applied, as the engine would read
    /// it back: a store that keeps stamps keeps this one; one that cannot tell holds the
    /// item's version and content, or nothing after a delete (it keeps no tombstone).
    pub fn after(&self, change: &Change) -> HeldState {
        match (self, change) {
            (HeldState::Known(_), Change::Put(item)) => {
                HeldState::Known(LocalState::Present(item.stamp()))
            }
            (HeldState::Known(_), Change::Delete { tombstone, .. }) => {
                HeldState::Known(LocalState::Deleted(tombstone.clone()))
            }
            (HeldState::Derived(Derived::Unversioned { .. }), Change::Put(item)) => {
                HeldState::Derived(Derived::Unversioned {
                    content_hash: item.content_hash.to_ascii_lowercase(),
                })
            }
            (HeldState::Derived(_), Change::Put(item)) => HeldState::Derived(Derived::Versioned {
                version: item.version,
                content_hash: item.content_hash.to_ascii_lowercase(),
            }),
            (HeldState::Derived(_), Change::Delete { .. }) => HeldState::Derived(Derived::Absent),
        }
    }

    /// True when the store keeps a tombstone for the key.
    pub fn is_deleted(&self) -> bool {
        matches!(self, HeldState::Known(LocalState::Deleted(_)))
    }
}

impl Derived {
    fn judge(&self, incoming: &Stamp) -> Verdict {
        match self {
            Derived::Absent => Verdict::Wins,
            Derived::Undetermined => Verdict::Undetermined,
            Derived::Unversioned { content_hash } => match incoming.kind {
                StampKind::Put if *content_hash == incoming.content_hash => Verdict::Same,
                _ => Verdict::Wins,
            },
            Derived::Versioned {
                version,
                content_hash,
            } => {
                if incoming.version != *version {
                    return if incoming.version > *version {
                        Verdict::Wins
                    } else {
                        Verdict::Loses
                    };
                }
                match incoming.kind {
                    // A tombstone of the held version deletes it (what a bare delete means).
                    StampKind::Delete => Verdict::Wins,
                    StampKind::Put if *content_hash == incoming.content_hash => Verdict::Same,
                    // The local write's time is unknown: the content hash alone decides.
                    StampKind::Put => {
                        if incoming.content_hash.as_bytes() > content_hash.as_bytes() {
                            Verdict::Wins
                        } else {
                            Verdict::Loses
                        }
                    }
                }
            }
        }
    }
}

/// The version `v` with `leaf_hash(id, v, content) == leaf`, searched around `hint` (the
/// version the caller compares with) within [`VERSION_SEARCH_RADIUS`], then among
/// `0..=LOW_VERSIONS_SEARCHED`; `None` when not found there (at most about 8 200 hashes).
pub fn find_leaf_version(
    id: &str,
    content_sha256: &Hash,
    leaf: &Hash,
    hint: Option<u64>,
) -> Option<u64> {
    let is = |version: u64| leaf_hash(id, version, content_sha256) == *leaf;
    if let Some(hint) = hint {
        if is(hint) {
            return Some(hint);
        }
        for distance in 1..=VERSION_SEARCH_RADIUS {
            // Below first: the held version is most often the one before an incoming write.
            if let Some(below) = hint.checked_sub(distance) {
                if is(below) {
                    return Some(below);
                }
            }
            if let Some(above) = hint.checked_add(distance) {
                if is(above) {
                    return Some(above);
                }
            }
        }
    }
    let near =
        |version: u64| hint.is_some_and(|hint| hint.abs_diff(version) <= VERSION_SEARCH_RADIUS);
    (0..=LOW_VERSIONS_SEARCHED).find(|&version| !near(version) && is(version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{content_hash, content_hash_hex, Tombstone};

    fn versioned(version: u64, content: &[u8]) -> HeldState {
        HeldState::Derived(Derived::Versioned {
            version,
            content_hash: content_hash_hex(content),
        })
    }

    fn put(version: u64, content: &[u8]) -> Stamp {
        Stamp::put(version, 1, &content_hash_hex(content))
    }

    #[test]
    fn versions_order_derived_items_and_an_equal_version_compares_content() {
        let held = versioned(3, b"v");
        assert_eq!(held.judge(&put(4, b"v")), Verdict::Wins, "a version bump");
        assert_eq!(
            held.judge(&put(2, b"w")),
            Verdict::Loses,
            "an older version"
        );
        assert_eq!(held.judge(&put(3, b"v")), Verdict::Same);
        let (low, high) = {
            let (a, b) = (content_hash_hex(b"a"), content_hash_hex(b"b"));
            if a < b {
                (b"a", b"b")
            } else {
                (b"b", b"a")
            }
        };
        assert_eq!(versioned(3, low).judge(&put(3, high)), Verdict::Wins);
        assert_eq!(versioned(3, high).judge(&put(3, low)), Verdict::Loses);
        assert_eq!(held.judge(&Stamp::delete(3, 0)), Verdict::Wins);
        assert_eq!(held.judge(&Stamp::delete(2, i64::MAX)), Verdict::Loses);
    }

    #[test]
    fn unknowable_states_follow_their_documented_rules() {
        let undetermined = HeldState::Derived(Derived::Undetermined);
        assert_eq!(undetermined.judge(&put(9, b"v")), Verdict::Undetermined);
        assert_eq!(undetermined.held_version(), None);
        let unversioned = HeldState::Derived(Derived::Unversioned {
            content_hash: content_hash_hex(b"v"),
        });
        assert_eq!(unversioned.judge(&put(1, b"v")), Verdict::Same);
        assert_eq!(unversioned.judge(&put(0, b"w")), Verdict::Wins);
        assert_eq!(
            HeldState::Derived(Derived::Absent).judge(&put(0, b"v")),
            Verdict::Wins
        );
    }

    #[test]
    fn known_states_follow_the_conflict_order() {
        let held = HeldState::Known(LocalState::Deleted(Tombstone {
            version: 2,
            deleted_at: 5,
        }));
        assert_eq!(held.judge(&Stamp::delete(2, 5)), Verdict::Same);
        assert_eq!(held.judge(&put(2, b"v")), Verdict::Loses);
        assert_eq!(held.judge(&put(3, b"v")), Verdict::Wins);
        assert!(held.is_deleted());
    }

    #[test]
    fn after_a_change_a_derived_store_holds_no_tombstone() {
        let held = versioned(1, b"v");
        let item = crate::SyncItem::new("k", b"w".to_vec(), 4, 1);
        assert_eq!(held.after(&Change::Put(item)), versioned(4, b"w"));
        let delete = Change::Delete {
            key: "k".into(),
            tombstone: Tombstone {
                version: 5,
                deleted_at: 1,
            },
        };
        assert_eq!(held.after(&delete), HeldState::Derived(Derived::Absent));
        assert!(HeldState::Known(LocalState::Absent)
            .after(&delete)
            .is_deleted());
    }

    #[test]
    fn the_leaf_gives_the_version_back_near_the_hint_or_among_low_versions() {
        let content = content_hash(b"v");
        let leaf = |v| leaf_hash("a.b", v, &content);
        assert_eq!(
            find_leaf_version("a.b", &content, &leaf(7), Some(8)),
            Some(7)
        );
        assert_eq!(
            find_leaf_version("a.b", &content, &leaf(9), Some(8)),
            Some(9)
        );
        assert_eq!(
            find_leaf_version("a.b", &content, &leaf(3), Some(1_000_000)),
            Some(3),
            "a low version far below the hint"
        );
        assert_eq!(find_leaf_version("a.b", &content, &leaf(3), None), Some(3));
        assert_eq!(
            find_leaf_version("a.b", &content, &leaf(500_000), Some(1_000_000)),
            None,
            "out of reach"
        );
        assert_eq!(
            find_leaf_version("a.c", &content, &leaf(7), Some(7)),
            None,
            "another id's leaf"
        );
        assert_eq!(
            find_leaf_version("a.b", &content, &leaf(u64::MAX), Some(u64::MAX - 1)),
            Some(u64::MAX)
        );
    }
}
