//! The repair preview: the same decisions as a cycle, reported per key, never written.

use super::{put, seeded, tombstone};
use crate::source::LocalStore;
use crate::{
    plan_repair, repair_cycle, PeerSource, PeerView, PlanScope, RepairAction, RepairPlan,
    RepairSettings, RepairState, Winner,
};
use replication_core::{HeldState, LocalState, Stamp, Tombstone};
use replication_testkit::{MemoryPeer, MemoryStore};

async fn plan(local: &MemoryStore, remote: &MemoryStore, scope: &PlanScope) -> RepairPlan {
    let peer = MemoryPeer::new("remote", remote.clone());
    plan_repair(
        &LocalStore(local),
        &PeerSource(&peer),
        &RepairSettings::default(),
        scope,
    )
    .await
    .unwrap()
}

fn row<'a>(plan: &'a RepairPlan, key: &str) -> &'a crate::KeyDifference {
    plan.differences
        .iter()
        .find(|d| d.key == key)
        .unwrap_or_else(|| panic!("{key} not in {plan:#?}"))
}

#[tokio::test]
async fn identical_stores_have_no_differences() {
    let keys = (0..50).map(|i| format!("k.{i}"));
    let (local, remote) = (seeded(keys.clone()), seeded(keys));
    let plan = plan(&local, &remote, &PlanScope::default()).await;
    assert!(plan.roots_equal && plan.is_identical(), "{plan:?}");
    assert!(plan.differences.is_empty());
}

/// Both sides hold `same.*`; each side also has keys the other lacks or holds otherwise.
fn differing_pair() -> (MemoryStore, MemoryStore) {
    let local = seeded((0..20).map(|i| format!("same.{i}")));
    let remote = seeded((0..20).map(|i| format!("same.{i}")));
    put(&local, "k.peer-newer", b"old", 1, 1);
    put(&remote, "k.peer-newer", b"new", 2, 1);
    put(&local, "k.local-newer", b"new", 3, 1);
    put(&remote, "k.local-newer", b"old", 2, 1);
    put(&remote, "k.missing-here", b"only on the peer", 1, 1);
    put(&local, "k.only-here", b"only here", 1, 1);
    put(&local, "k.deleted-there", b"v1", 1, 1);
    tombstone(&remote, "k.deleted-there", 2, 5);
    put(&remote, "k.deleted-here", b"v1", 1, 1);
    tombstone(&local, "k.deleted-here", 2, 5);
    (local, remote)
}

#[tokio::test]
async fn each_differing_key_shows_both_stamps_the_winner_and_the_action() {
    let (local, remote) = differing_pair();
    let before = (local.root(), local.counters());
    let plan = plan(&local, &remote, &PlanScope::default()).await;
    assert!(!plan.is_identical());
    let keys: Vec<&str> = plan.differences.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "k.deleted-here",
            "k.deleted-there",
            "k.local-newer",
            "k.missing-here",
            "k.only-here",
            "k.peer-newer"
        ],
        "sorted, and nothing that is equal"
    );

    let newer = row(&plan, "k.peer-newer");
    assert_eq!(
        (newer.winner, newer.action),
        (Winner::Peer, RepairAction::Fetch)
    );
    assert!(matches!(&newer.peer, PeerView::Item(s) if s.version == 2));
    assert!(matches!(&newer.local, HeldState::Known(LocalState::Present(s)) if s.version == 1));

    let older = row(&plan, "k.local-newer");
    assert_eq!(
        (older.winner, older.action),
        (Winner::Local, RepairAction::KeepLocal)
    );

    let missing = row(&plan, "k.missing-here");
    assert_eq!(
        (missing.winner, missing.action),
        (Winner::Peer, RepairAction::Fetch)
    );
    assert_eq!(missing.local, HeldState::Known(LocalState::Absent));

    let only = row(&plan, "k.only-here");
    assert_eq!(
        (only.winner, only.action),
        (Winner::Local, RepairAction::KeepLocal)
    );
    assert_eq!(only.peer, PeerView::Absent);

    let deleted = row(&plan, "k.deleted-there");
    assert_eq!(
        (deleted.winner, deleted.action),
        (Winner::Peer, RepairAction::Delete)
    );
    assert_eq!(
        deleted.peer,
        PeerView::Deleted(Tombstone {
            version: 2,
            deleted_at: 5
        })
    );

    let ours = row(&plan, "k.deleted-here");
    assert_eq!(
        (ours.winner, ours.action),
        (Winner::Local, RepairAction::AwaitPeerDelete)
    );
    assert!(matches!(&ours.peer, PeerView::Item(s) if *s == Stamp::put(1, 1, &s.content_hash)));

    // Read only: the local store saw no write at all.
    let after = local.counters();
    assert_eq!(local.root(), before.0);
    assert_eq!(
        (
            after.applied_batches,
            after.submits,
            after.replicated_deletes
        ),
        (
            before.1.applied_batches,
            before.1.submits,
            before.1.replicated_deletes
        )
    );
    assert_eq!(after.changes_applied, before.1.changes_applied);
}

#[tokio::test]
async fn a_repair_does_what_the_preview_said() {
    let (local, remote) = differing_pair();
    let plan = plan(&local, &remote, &PlanScope::default()).await;
    let peer = MemoryPeer::new("remote", remote.clone());
    repair_cycle(
        &local,
        &peer,
        &RepairSettings::default(),
        &mut RepairState::new(),
    )
    .await
    .unwrap();
    for d in &plan.differences {
        match d.action {
            RepairAction::Fetch => assert_eq!(local.item(&d.key), remote.item(&d.key)),
            RepairAction::Delete => assert!(local.item(&d.key).is_none(), "{}", d.key),
            _ => assert_eq!(
                d.local,
                HeldState::Known(local.local_state(&d.key)),
                "{} is left as it was",
                d.key
            ),
        }
    }
}

#[tokio::test]
async fn a_prefix_and_a_limit_narrow_the_preview() {
    let (local, remote) = differing_pair();
    put(&remote, "other.x", b"peer", 1, 1);
    let scoped = plan(
        &local,
        &remote,
        &PlanScope {
            prefix: "k.peer".into(),
            limit: 100,
        },
    )
    .await;
    let keys: Vec<&str> = scoped.differences.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["k.peer-newer"]);
    assert!(!scoped.truncated);
    let elsewhere = plan(
        &local,
        &remote,
        &PlanScope {
            prefix: "same.".into(),
            limit: 100,
        },
    )
    .await;
    assert!(elsewhere.is_identical(), "{elsewhere:?}");

    let limited = plan(
        &local,
        &remote,
        &PlanScope {
            prefix: String::new(),
            limit: 2,
        },
    )
    .await;
    assert_eq!(limited.differences.len(), 2);
    assert!(limited.truncated && !limited.is_identical());
    assert!(limited.report.keys_resolved <= 2, "{:?}", limited.report);
}

#[tokio::test]
async fn an_unreadable_peer_is_an_error_not_an_empty_plan() {
    let (local, remote) = differing_pair();
    let peer = MemoryPeer::new("remote", remote);
    peer.set_fail_all(true);
    let err = plan_repair(
        &LocalStore(&local),
        &PeerSource(&peer),
        &RepairSettings::default(),
        &PlanScope::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("remote"), "{err}");
}
