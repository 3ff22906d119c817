//! MemoryStore tests: local writes, the conflict order, injected failures, hash checks,
//! tombstone collection and the self segment.
#![allow(clippy::unwrap_used)] // Tests panic on failure by design.

use super::*;
use replication_core::content_hash;
use replication_core::merkle::leaf_hash;
use replication_core::merkle::SELF_SEGMENT;

#[test]
fn local_writes_bump_versions_across_deletes() {
    let store = MemoryStore::new();
    let first = store.put_local("a.b", b"one".to_vec());
    assert_eq!(first.version, 1);
    assert_eq!(store.put_local("a.b", b"two".to_vec()).version, 2);
    let tombstone = store.delete_local("a.b").unwrap();
    assert_eq!(tombstone.version, 3);
    assert!(store.item("a.b").is_none());
    assert_eq!(store.root(), None);
    assert_eq!(store.put_local("a.b", b"three".to_vec()).version, 4);
    assert!(
        store.tombstone("a.b").is_none(),
        "a newer put replaces the tombstone"
    );
    assert_eq!(store.delete_local("missing"), None);
}

#[tokio::test]
async fn replicated_writes_follow_the_conflict_order() {
    let store = MemoryStore::new();
    store
        .submit(SyncItem::new("k", b"new".to_vec(), 5, 10))
        .await
        .unwrap();
    store
        .submit(SyncItem::new("k", b"old".to_vec(), 4, 99))
        .await
        .unwrap();
    assert_eq!(store.item("k").unwrap().content, b"new");
    // A tombstone that does not beat the item is dropped...
    assert!(!store
        .delete_replicated_with(
            "k".into(),
            Tombstone {
                version: 5,
                deleted_at: 9
            }
        )
        .await
        .unwrap());
    assert!(store.item("k").is_some());
    // ...one that does deletes it and blocks older puts.
    assert!(store
        .delete_replicated_with(
            "k".into(),
            Tombstone {
                version: 6,
                deleted_at: 1
            }
        )
        .await
        .unwrap());
    store
        .apply_batch(vec![Change::Put(SyncItem::new(
            "k",
            b"late".to_vec(),
            6,
            0,
        ))])
        .await
        .unwrap();
    assert!(store.item("k").is_none());
    let counters = store.counters();
    assert_eq!((counters.changes_applied, counters.changes_dropped), (2, 3));
    assert_eq!(counters.applied_batches, 1);
}

#[tokio::test]
async fn bare_replicated_delete_beats_the_version_it_deleted() {
    let store = MemoryStore::new();
    store
        .submit(SyncItem::new("k", b"v".to_vec(), 3, 50_000))
        .await
        .unwrap();
    assert!(store.delete_replicated("k".into()).await.unwrap());
    let tombstone = store.tombstone("k").unwrap();
    assert_eq!(tombstone.version, 3);
    assert!(tombstone
        .stamp()
        .beats(&SyncItem::new("k", b"v".to_vec(), 3, 50_000).stamp()));
    assert!(!store.delete_replicated("k".into()).await.unwrap());
}

#[tokio::test]
async fn injected_failures_are_retriable_and_change_nothing() {
    let store = MemoryStore::new();
    store.set_failing(true);
    let err = store
        .submit(SyncItem::new("k", vec![1], 1, 1))
        .await
        .unwrap_err();
    assert!(err.is_retriable());
    assert!(store.get_merkle_root().await.is_err());
    store.set_failing(false);
    store.set_failing_writes(true);
    assert!(store
        .apply_batch(vec![Change::Put(SyncItem::new("k", vec![1], 1, 1))])
        .await
        .is_err());
    assert_eq!(store.get_merkle_root().await.unwrap(), None);
    assert_eq!(store.counters().failed_calls, 3);
    store.set_accepting_writes(false);
    assert!(!store.should_accept_writes());
}

#[tokio::test]
async fn failed_writes_are_recorded_and_a_refused_key_can_be_allowed_again() {
    let store = MemoryStore::new();
    let item = SyncItem::new("k", vec![1], 1, 1);
    store.set_failing_writes(true);
    assert!(store.submit(item.clone()).await.is_err());
    assert!(store.take_failed_writes().is_empty(), "not recording yet");
    store.set_recording_failed_writes(true);
    assert!(store.submit(item.clone()).await.is_err());
    assert_eq!(store.take_failed_writes(), [("k".to_owned(), item.stamp())]);
    store.set_failing_writes(false);
    store.refuse_key("k");
    assert!(!store.submit(item.clone()).await.unwrap_err().is_retriable());
    store.allow_key("k");
    store.submit(item.clone()).await.unwrap();
    assert_eq!(store.highest_held("k"), Some(item.stamp()));
}

#[tokio::test]
async fn rejects_items_whose_hash_does_not_match() {
    let store = MemoryStore::new();
    let mut item = SyncItem::new("k", b"abc".to_vec(), 1, 1);
    item.content = b"abd".to_vec();
    assert!(!store.submit(item).await.unwrap_err().is_retriable());
    assert!(store.is_empty());
}

#[tokio::test]
async fn a_key_written_again_after_its_tombstone_was_collected_outranks_it() {
    let store = MemoryStore::new();
    store.put_local("k", b"one".to_vec());
    let tombstone = store.delete_local("k").unwrap();
    assert_eq!(store.purge_tombstones(i64::MAX).await.unwrap(), 1);
    assert_eq!(store.version_floor(), 2);
    let again = store.put_local("k", b"two".to_vec());
    assert!(again.stamp().beats(&tombstone.stamp()), "{again:?}");
    assert_eq!(store.put_local("other", b"x".to_vec()).version, 3);
    assert_eq!(
        store.highest_held("k"),
        Some(again.stamp()),
        "the highest stamp held outlives the collected tombstone it replaced"
    );
}

#[tokio::test]
async fn purge_drops_tombstones_recorded_before_the_horizon_whatever_their_stamp() {
    let now = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let clock = now.clone();
    let store = MemoryStore::with_clock(move || clock.load(std::sync::atomic::Ordering::SeqCst));
    // Recorded at 10, 20, 30 by our clock; the deleters' clocks said otherwise.
    for (key, recorded, deleted_at) in [("a", 10, 300), ("b", 20, 200), ("c", 30, 100)] {
        now.store(recorded, std::sync::atomic::Ordering::SeqCst);
        store
            .apply_change(Change::Delete {
                key: key.into(),
                tombstone: Tombstone {
                    version: 1,
                    deleted_at,
                },
            })
            .unwrap();
    }
    assert_eq!(store.purge_tombstones(20).await.unwrap(), 1);
    let keys: Vec<_> = store.tombstones().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["b", "c"]);
    assert_eq!(
        store
            .get_tombstones(&["a".into(), "b".into()])
            .await
            .unwrap()[1]
            .as_ref()
            .unwrap()
            .deleted_at,
        200
    );
}

#[tokio::test]
async fn item_and_parent_share_a_node_through_the_self_segment() {
    let store = MemoryStore::new();
    let parent = store.put_local("a", b"p".to_vec());
    store.put_local("a.b", b"c".to_vec());
    let children = store.get_merkle_children("a").await.unwrap();
    let segments: Vec<_> = children.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(segments, [SELF_SEGMENT, "b"]);
    assert_eq!(
        children[0].1,
        leaf_hash("a", parent.version, &content_hash(b"p"))
    );
    store.delete_local("a.b");
    assert!(
        store.get_merkle_children("a").await.unwrap().is_empty(),
        "a is a plain leaf again"
    );
}

#[test]
fn connection_facts_are_reported_as_set() {
    let store = MemoryStore::new();
    assert_eq!(store.connection(), None, "no connection by default");
    let status = replication_core::ConnectionStatus {
        server: Some("10.0.0.9:6379".into()),
        failovers: 1,
        ..replication_core::ConnectionStatus::default()
    };
    store.set_connection(Some(status.clone()));
    assert_eq!(store.connection(), Some(status));
}
