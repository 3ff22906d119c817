//! What the store holds for a key, exactly: sync-engine's item (its stamp: version, time,
//! content hash, all as the writer gave them) against the adapter's tombstone.

use replication_core::{LocalState, Stamp, Tombstone};

/// The state of one key from its item stamp and its tombstone. When both exist (a crash
/// between writing a tombstone and deleting the item, or a put that beat the tombstone
/// before the tombstone was dropped), the greater stamp is what the key holds.
pub(crate) fn combine(item: Option<Stamp>, tombstone: Option<Tombstone>) -> LocalState {
    match (item, tombstone) {
        (Some(stamp), Some(t)) if t.stamp().beats(&stamp) => LocalState::Deleted(t),
        (Some(stamp), _) => LocalState::Present(stamp),
        (None, Some(t)) => LocalState::Deleted(t),
        (None, None) => LocalState::Absent,
    }
}

/// The version a local write of a key takes: one above anything the key has held and above
/// the node's version floor (the highest collected tombstone), so that a key written again
/// after its tombstone was collected here still beats that tombstone wherever it is kept.
pub(crate) fn next_version(state: &LocalState, floor: u64) -> u64 {
    let held = match state {
        LocalState::Absent => 0,
        LocalState::Present(stamp) => stamp.version,
        LocalState::Deleted(t) => t.version,
    };
    held.max(floor) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(v: u64) -> Stamp {
        Stamp::put(v, 10, &"a".repeat(64))
    }

    fn tomb(v: u64) -> Tombstone {
        Tombstone {
            version: v,
            deleted_at: 10,
        }
    }

    #[test]
    fn the_greater_stamp_is_what_the_key_holds() {
        assert_eq!(combine(None, None), LocalState::Absent);
        assert_eq!(combine(Some(put(2)), None), LocalState::Present(put(2)));
        assert_eq!(combine(None, Some(tomb(1))), LocalState::Deleted(tomb(1)));
        assert_eq!(
            combine(Some(put(2)), Some(tomb(3))),
            LocalState::Deleted(tomb(3))
        );
        assert_eq!(
            combine(Some(put(3)), Some(tomb(2))),
            LocalState::Present(put(3))
        );
        // Equal version and time: the delete wins the tie.
        assert_eq!(
            combine(Some(put(2)), Some(tomb(2))),
            LocalState::Deleted(tomb(2))
        );
    }

    #[test]
    fn local_writes_go_one_above_item_tombstone_and_floor() {
        assert_eq!(next_version(&LocalState::Absent, 0), 1);
        assert_eq!(next_version(&LocalState::Present(put(4)), 0), 5);
        assert_eq!(next_version(&LocalState::Deleted(tomb(6)), 2), 7);
        assert_eq!(next_version(&LocalState::Absent, 9), 10);
        assert_eq!(next_version(&LocalState::Present(put(4)), 9), 10);
    }
}
