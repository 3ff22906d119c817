//! The conflict order: one total order over the versions of a key that every node computes alike.
//!
//! Concurrent writes to one key on two nodes must converge to the same winner on every node.
//! A [`Stamp`] orders writes by, in turn:
//! 1. `version` (higher wins): the writer's per-key counter;
//! 2. `updated_at` (later wins): the writer's wall clock, in ms;
//! 3. kind: a delete beats a put with the same version and time, so a tie never resurrects;
//! 4. `content_hash` (byte-wise larger wins): identical on every node, so the tie-break
//!    needs no node identity and no coordination.
//!
//! Two stamps compare equal only for the same kind with the same version, time and content,
//! i.e. the same write: applying either is idempotent.

use std::cmp::Ordering;

/// Whether a stamp belongs to a stored item or a tombstone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StampKind {
    /// A stored value. Orders below `Delete` at equal version and time.
    Put,
    /// A tombstone left by a delete.
    Delete,
}

/// The conflict-order key of one write. `Ord` is the conflict order: the greater stamp wins.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// Per-key version assigned by the writer.
    pub version: u64,
    /// Writer's wall clock in ms since the epoch.
    pub updated_at: i64,
    /// Put or delete.
    pub kind: StampKind,
    /// Lowercase hex content hash for puts; empty for deletes.
    pub content_hash: String,
}

impl Stamp {
    /// Stamp of a stored item.
    pub fn put(version: u64, updated_at: i64, content_hash: &str) -> Self {
        Self {
            version,
            updated_at,
            kind: StampKind::Put,
            content_hash: content_hash.to_ascii_lowercase(),
        }
    }

    /// Stamp of a tombstone.
    pub fn delete(version: u64, updated_at: i64) -> Self {
        Self {
            version,
            updated_at,
            kind: StampKind::Delete,
            content_hash: String::new(),
        }
    }

    /// True when `self` strictly beats `other` in the conflict order.
    pub fn beats(&self, other: &Stamp) -> bool {
        self > other
    }

    /// True for a tombstone stamp.
    pub fn is_delete(&self) -> bool {
        self.kind == StampKind::Delete
    }
}

impl Ord for Stamp {
    fn cmp(&self, other: &Self) -> Ordering {
        self.version
            .cmp(&other.version)
            .then(self.updated_at.cmp(&other.updated_at))
            .then(self.kind.cmp(&other.kind))
            .then_with(|| {
                self.content_hash
                    .as_bytes()
                    .cmp(other.content_hash.as_bytes())
            })
    }
}

impl PartialOrd for Stamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What a delete leaves behind: the stamp that later writes must beat to bring the key back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tombstone {
    /// Version of the delete (the deleting node's next version for the key).
    pub version: u64,
    /// When the delete happened, ms since the epoch.
    pub deleted_at: i64,
}

impl Tombstone {
    /// The conflict-order stamp of this tombstone.
    pub fn stamp(&self) -> Stamp {
        Stamp::delete(self.version, self.deleted_at)
    }
}

/// What the local store knows about a key, for conflict resolution.
///
/// Stores that cannot tell answer `None` instead of a `LocalState` (see
/// `SyncEngineRef::local_states`); `Absent` is a definite "no item and no tombstone".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalState {
    /// Neither an item nor a tombstone: any write wins.
    Absent,
    /// The key holds an item with this stamp.
    Present(Stamp),
    /// The key was deleted; the tombstone is still kept.
    Deleted(Tombstone),
}

impl LocalState {
    /// The stamp an incoming write must beat; `None` when the key is absent.
    pub fn stamp(&self) -> Option<Stamp> {
        match self {
            LocalState::Absent => None,
            LocalState::Present(stamp) => Some(stamp.clone()),
            LocalState::Deleted(tombstone) => Some(tombstone.stamp()),
        }
    }
}

/// Decides whether an incoming write should be applied over what the store holds.
/// Nothing known locally (`None`) or an absent key always accepts.
pub fn incoming_wins(incoming: &Stamp, local: Option<&LocalState>) -> bool {
    match local.and_then(LocalState::stamp) {
        None => true,
        Some(stamp) => incoming.beats(&stamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_stamp() -> impl Strategy<Value = Stamp> {
        // Small domains so that ties on every component actually occur.
        (0u64..4, 0i64..4, any::<bool>(), 0u8..3).prop_map(|(v, t, del, h)| {
            if del {
                Stamp::delete(v, t)
            } else {
                Stamp::put(v, t, &format!("{h:02x}").repeat(32))
            }
        })
    }

    proptest! {
        #[test]
        fn order_is_antisymmetric(a in arb_stamp(), b in arb_stamp()) {
            if a.beats(&b) { prop_assert!(!b.beats(&a)); }
            if a == b { prop_assert!(!a.beats(&b) && !b.beats(&a)); }
            // Totality: distinct stamps always have a winner.
            if a != b { prop_assert!(a.beats(&b) ^ b.beats(&a)); }
        }

        #[test]
        fn order_is_transitive(a in arb_stamp(), b in arb_stamp(), c in arb_stamp()) {
            if a.beats(&b) && b.beats(&c) { prop_assert!(a.beats(&c)); }
        }

        #[test]
        fn winner_does_not_depend_on_arrival_order(mut stamps in proptest::collection::vec(arb_stamp(), 1..8)) {
            let forward = stamps.iter().max().cloned();
            stamps.reverse();
            let mut current: Option<Stamp> = None;
            for s in &stamps {
                if current.as_ref().is_none_or(|c| s.beats(c)) { current = Some(s.clone()); }
            }
            prop_assert_eq!(forward, current);
        }
    }

    #[test]
    fn version_dominates_time() {
        assert!(Stamp::put(2, 0, "aa").beats(&Stamp::put(1, 999, "ff")));
    }

    #[test]
    fn delete_wins_a_full_tie_with_a_put() {
        assert!(Stamp::delete(3, 10).beats(&Stamp::put(3, 10, &"f".repeat(64))));
        assert!(!Stamp::put(3, 10, "ff").beats(&Stamp::delete(3, 10)));
    }

    #[test]
    fn hash_breaks_ties_case_insensitively() {
        assert!(Stamp::put(1, 1, "BB").beats(&Stamp::put(1, 1, "aa")));
        assert_eq!(Stamp::put(1, 1, "AB"), Stamp::put(1, 1, "ab"));
    }

    #[test]
    fn unknown_local_state_accepts() {
        assert!(incoming_wins(&Stamp::put(0, 0, ""), None));
        assert!(incoming_wins(
            &Stamp::put(0, 0, ""),
            Some(&LocalState::Absent)
        ));
        let local = LocalState::Deleted(Tombstone {
            version: 2,
            deleted_at: 5,
        });
        assert!(!incoming_wins(&Stamp::put(2, 4, "ff"), Some(&local)));
        assert!(incoming_wins(&Stamp::put(3, 0, "00"), Some(&local)));
    }
}
