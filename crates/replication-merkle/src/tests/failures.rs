//! Failures: an unreadable peer changes nothing locally, whatever call fails; local write
//! failures and backpressure are typed errors; unreadable and vanished items are skipped.

use super::{put, seeded, tombstone};
use crate::{
    repair_cycle, repair_cycle_with, LocalStore, PeerSource, ReadStage, RepairError, RepairPeer,
    RepairSettings, RepairState, TreeSource,
};
use replication_core::merkle::Hash;
use replication_core::{ItemRead, PeerError, SyncItem, Tombstone};
use replication_testkit::{MemoryPeer, MemoryStore};

/// A local store and a remote one that differ in every way a repair handles: newer peer
/// items, peer-only items, a local-only key the peer deleted, a local-only key it never had.
fn fixture() -> (MemoryStore, MemoryStore) {
    let keys = (0..40).map(|i| format!("g{}.k{i}", i % 4));
    let (local, remote) = (seeded(keys.clone()), seeded(keys));
    for i in 0..10 {
        put(&remote, &format!("g{}.k{i}", i % 4), b"newer", 2, 2);
        put(&remote, &format!("new.k{i}"), b"peer only", 1, 1);
    }
    put(&local, "mine.deleted", b"old", 1, 1);
    tombstone(&remote, "mine.deleted", 2, 2);
    put(&local, "mine.kept", b"keep", 1, 1);
    (local, remote)
}

fn settings() -> RepairSettings {
    // Small batches so that a cycle makes many calls and failures land everywhere.
    RepairSettings {
        batch_size: 3,
        concurrency: 2,
        ..RepairSettings::default()
    }
}

#[tokio::test]
async fn a_peer_failing_at_any_call_changes_nothing_locally() {
    let (local, remote) = fixture();
    let clean = MemoryPeer::new("remote", remote);
    repair_cycle(&local, &clean, &settings(), &mut RepairState::new())
        .await
        .unwrap();
    let calls = clean.counters().calls;
    assert!(
        calls > 10,
        "the fixture needs a walk of many calls, got {calls}"
    );

    for succeed in 0..calls {
        let (local, remote) = fixture();
        let (items, tombstones, root) = (local.items(), local.tombstones(), local.root());
        let peer = MemoryPeer::new("remote", remote);
        peer.fail_after_calls(succeed);
        let mut state = RepairState::new();
        let error = repair_cycle(&local, &peer, &settings(), &mut state)
            .await
            .unwrap_err();
        assert!(
            matches!(error, RepairError::Peer { .. }),
            "call {succeed}: {error}"
        );
        assert!(error.is_retriable());
        assert_eq!(
            (local.items(), local.tombstones(), local.root()),
            (items, tombstones, root),
            "call {succeed}"
        );
        assert_eq!(local.counters().applied_batches, 0);
        assert!(!state.is_resuming(), "a failed cycle starts over");

        peer.heal();
        let report = repair_cycle(&local, &peer, &settings(), &mut state)
            .await
            .unwrap();
        assert!(report.completed);
        assert_eq!(report.changes_applied(), 21);
    }
}

#[tokio::test]
async fn the_fixture_converges_with_the_expected_decisions() {
    let (local, remote) = fixture();
    let report = super::one_cycle(&local, &remote, &settings()).await;
    assert_eq!(report.items_applied, 20);
    assert_eq!(report.tombstones_applied, 1);
    assert_eq!(report.local_only_kept, 1);
    assert!(local.item("mine.deleted").is_none());
    assert_eq!(
        local.tombstone("mine.deleted"),
        Some(Tombstone {
            version: 2,
            deleted_at: 2
        })
    );
    assert!(
        local.item("mine.kept").is_some(),
        "absent on the peer is not deleted"
    );
}

#[tokio::test]
async fn a_local_write_failure_is_a_typed_error() {
    let (local, remote) = fixture();
    local.set_failing_writes(true);
    let peer = MemoryPeer::new("remote", remote);
    let error = repair_cycle(&local, &peer, &settings(), &mut RepairState::new())
        .await
        .unwrap_err();
    match error {
        RepairError::LocalWrite {
            applied,
            total,
            ref source,
            ..
        } => {
            assert_eq!((applied, total), (0, 21));
            assert!(source.is_retriable());
        }
        other => panic!("unexpected {other}"),
    }
    local.set_failing_writes(false);
    local.set_failing(true);
    let error = repair_cycle(&local, &peer, &settings(), &mut RepairState::new())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        RepairError::LocalRead {
            stage: ReadStage::Root,
            ..
        }
    ));
}

#[tokio::test]
async fn backpressure_skips_the_cycle_without_reading_the_peer() {
    let (local, remote) = fixture();
    local.set_accepting_writes(false);
    let peer = MemoryPeer::new("remote", remote);
    let error = repair_cycle(&local, &peer, &settings(), &mut RepairState::new())
        .await
        .unwrap_err();
    assert!(matches!(error, RepairError::Backpressure { .. }) && error.is_retriable());
    assert_eq!(peer.counters().calls, 0);
}

#[tokio::test]
async fn unreadable_items_are_counted_and_skipped() {
    let local = seeded(["a.1", "a.2"].map(String::from));
    let remote = seeded(["a.1", "a.2"].map(String::from));
    put(&remote, "a.1", b"newer", 2, 2);
    put(&remote, "a.2", b"newer", 2, 2);
    let peer = MemoryPeer::new("remote", remote);
    peer.set_unreadable("a.1");
    let report = repair_cycle(
        &local,
        &peer,
        &RepairSettings::default(),
        &mut RepairState::new(),
    )
    .await
    .unwrap();
    assert_eq!((report.items_unreadable, report.items_applied), (1, 1));
    assert_eq!(local.item("a.1").unwrap().version, 1);
    assert!(report.completed, "no tombstone of ours is at stake");
}

/// A peer whose item disappears between its tree read and its item read.
struct Racing<'a> {
    inner: PeerSource<'a>,
    store: MemoryStore,
}

impl TreeSource for Racing<'_> {
    type Error = PeerError;

    async fn get_merkle_root(&self) -> Result<Option<Hash>, PeerError> {
        self.inner.get_merkle_root().await
    }

    async fn children(&self, paths: &[String]) -> Result<Vec<Vec<(String, Hash)>>, PeerError> {
        self.inner.children(paths).await
    }
}

impl RepairPeer for Racing<'_> {
    fn node_id(&self) -> &str {
        self.inner.node_id()
    }

    async fn read_items(&self, keys: &[String]) -> Result<Vec<ItemRead>, PeerError> {
        for key in keys {
            self.store.delete_local(key);
        }
        self.inner.read_items(keys).await
    }

    async fn read_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, PeerError> {
        self.inner.read_tombstones(keys).await
    }
}

#[tokio::test]
async fn an_item_that_vanished_after_the_tree_read_is_skipped() {
    let local = MemoryStore::new();
    let remote = MemoryStore::new();
    remote
        .apply_change(replication_core::Change::Put(SyncItem::new(
            "gone",
            b"x".to_vec(),
            1,
            1,
        )))
        .unwrap();
    let peer = MemoryPeer::new("remote", remote.clone());
    let racing = Racing {
        inner: PeerSource(&peer),
        store: remote,
    };
    let report = repair_cycle_with(
        &LocalStore(&local),
        &racing,
        &RepairSettings::default(),
        &mut RepairState::new(),
    )
    .await
    .unwrap();
    assert_eq!((report.items_vanished, report.items_applied), (1, 0));
    assert!(local.is_empty() && local.tombstones().is_empty());
}

/// The local store refuses one of the peer's items for good (a reserved id, a payload
/// over its cap): that item is skipped and counted, the rest of its chunk and the cycle
/// are repaired, and the cycle completes (so tombstone collection goes on).
#[tokio::test]
async fn an_item_the_store_refuses_for_good_is_skipped_and_the_rest_repaired() {
    let remote = seeded((0..20).map(|i| format!("k.{i}")));
    let local = MemoryStore::new();
    local.refuse_key("k.7");
    let peer = MemoryPeer::new("remote", remote.clone());
    let mut state = RepairState::new();
    let report = repair_cycle(&local, &peer, &settings(), &mut state)
        .await
        .unwrap();
    assert_eq!(report.items_applied, 19);
    assert_eq!(report.items_refused, 1);
    assert!(report.completed, "{report:?}");
    assert!(local.item("k.7").is_none());
    assert_eq!(local.len(), 19);
    // The next cycle meets it again and still completes.
    let again = repair_cycle(&local, &peer, &settings(), &mut state)
        .await
        .unwrap();
    assert_eq!((again.items_refused, again.completed), (1, true));
}
