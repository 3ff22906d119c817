//! Deletes and tombstones in the cold path (docs/PROTOCOL.md "Deletes and tombstones").

use super::{one_cycle, put, seeded, sync_both_ways, tombstone};
use crate::RepairSettings;
use replication_core::Tombstone;
use replication_testkit::MemoryStore;

#[tokio::test]
async fn a_newer_peer_tombstone_deletes_a_local_only_key() {
    let local = seeded(["k.1".to_owned()]);
    let remote = MemoryStore::new();
    tombstone(&remote, "k.1", 2, 7);
    let report = one_cycle(&local, &remote, &RepairSettings::default()).await;
    assert_eq!(report.tombstones_applied, 1);
    assert!(local.item("k.1").is_none());
    assert_eq!(
        local.tombstone("k.1"),
        Some(Tombstone {
            version: 2,
            deleted_at: 7
        }),
        "the peer's stamp is kept"
    );
}

#[tokio::test]
async fn an_older_or_missing_peer_tombstone_keeps_the_local_key() {
    let local = MemoryStore::new();
    put(&local, "k.old", b"v3", 3, 1);
    put(&local, "k.never", b"v1", 1, 1);
    let remote = MemoryStore::new();
    tombstone(&remote, "k.old", 2, 99);
    let report = one_cycle(&local, &remote, &RepairSettings::default()).await;
    assert_eq!((report.local_only_kept, report.tombstones_applied), (2, 0));
    assert_eq!(local.len(), 2);
    assert!(report.completed);
}

#[tokio::test]
async fn a_peer_item_applies_only_when_it_beats_our_tombstone() {
    let local = MemoryStore::new();
    tombstone(&local, "k.won", 2, 5);
    tombstone(&local, "k.lost", 2, 5);
    let remote = MemoryStore::new();
    put(&remote, "k.won", b"newer", 3, 0);
    put(&remote, "k.lost", b"older", 2, 4);
    let report = one_cycle(&local, &remote, &RepairSettings::default()).await;
    assert_eq!(report.items_applied, 1);
    assert_eq!(local.item("k.won").unwrap().version, 3);
    assert!(
        local.tombstone("k.won").is_none(),
        "the newer put replaced the tombstone"
    );
    assert!(local.item("k.lost").is_none());
    // The peer still holds what we deleted: this cycle must not let us collect tombstones.
    assert_eq!(report.deletes_pending_on_peer, 1);
    assert!(!report.completed);

    // Once the peer repairs from us, it drops the item, and our cycle completes.
    sync_both_ways(&local, &remote, &RepairSettings::default(), 3).await;
    assert!(remote.item("k.lost").is_none());
    assert_eq!(
        remote.tombstone("k.lost"),
        Some(Tombstone {
            version: 2,
            deleted_at: 5
        })
    );
    let report = one_cycle(&local, &remote, &RepairSettings::default()).await;
    assert!(report.in_sync && report.completed);
}
