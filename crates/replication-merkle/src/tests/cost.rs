//! Cost: with 100 000 keys of which 100 differ, round trips follow the tree depth and only
//! the differing items are sized and fetched. Counted by a counting source and the peer's
//! counters.

use super::{seeded, Counting};
use crate::{repair_cycle_with, LocalStore, PeerSource, RepairSettings, RepairState};
use replication_testkit::{MemoryPeer, MemoryStore};
use std::collections::BTreeSet;

const PARENTS: usize = 100;
const CHILDREN: usize = 1000;
const DIFFERING: usize = 100;

fn key(index: usize) -> String {
    format!("t{}.k{}", index / CHILDREN, index % CHILDREN)
}

fn all_keys() -> impl Iterator<Item = String> {
    (0..PARENTS * CHILDREN).map(key)
}

/// Two stores with the same 100 000 keys, then 100 keys rewritten on the remote.
/// Returns the stores and how many parents hold a differing key.
fn fixture() -> (MemoryStore, MemoryStore, usize) {
    let (local, remote) = (seeded(all_keys()), seeded(all_keys()));
    // 997 is coprime with 100 000, so these indices are distinct and spread over parents.
    let differing: Vec<usize> = (0..DIFFERING)
        .map(|i| (i * 997) % (PARENTS * CHILDREN))
        .collect();
    for &index in &differing {
        remote.put_local(&key(index), b"changed".to_vec());
    }
    let parents: BTreeSet<usize> = differing.iter().map(|index| index / CHILDREN).collect();
    (local, remote, parents.len())
}

/// One test for both settings, so the 100 000-key remote is built once (a debug build of
/// the in-memory store takes seconds).
#[tokio::test]
async fn round_trips_follow_depth_and_only_differing_items_are_fetched() {
    let (local, remote, parents) = fixture();
    default_batches_take_one_call_per_level(&local, &remote, parents).await;
    small_batches_split_each_level_into_batch_sized_calls(&seeded(all_keys()), &remote, parents)
        .await;
}

async fn default_batches_take_one_call_per_level(
    local: &MemoryStore,
    remote: &MemoryStore,
    parents: usize,
) {
    let peer = MemoryPeer::new("remote", remote.clone());
    let counting = Counting::new(PeerSource(&peer));
    let settings = RepairSettings::default();
    let mut state = RepairState::new();

    let report = repair_cycle_with(&LocalStore(local), &counting, &settings, &mut state)
        .await
        .unwrap();

    // Tree depth 3 (root, tN, tN.kM): the roots, one children call per level (each level
    // fits one batch), one sizing of the items (for the byte budget), one item read.
    // Nothing is local-only, so no tombstone read.
    assert_eq!(counting.calls(), 1 + 3 + 1 + 1);
    assert_eq!(counting.paths(), (1 + parents + DIFFERING) as u64);
    assert_eq!(counting.sized_keys(), DIFFERING as u64);
    assert_eq!(counting.item_keys(), DIFFERING as u64);
    assert_eq!(counting.tombstone_keys(), 0);
    let served = peer.counters();
    assert_eq!((served.calls, served.items_returned), (6, DIFFERING as u64));
    assert_eq!(
        served.content_bytes_returned,
        (DIFFERING * b"changed".len()) as u64
    );

    assert_eq!(report.peer_round_trips, 6);
    // Local: root, three children levels, one stamp read, one applied batch.
    assert_eq!(report.local_round_trips, 6);
    assert_eq!(local.counters().applied_batches, 1);
    assert_eq!(
        (report.items_fetched, report.items_applied),
        (DIFFERING as u64, DIFFERING as u64)
    );
    assert_eq!(report.nodes_compared, (1 + parents + DIFFERING) as u64);
    assert!(report.completed && !report.in_sync && report.budget_exhausted.is_none());
    assert_eq!(local.root(), remote.root());

    let again = repair_cycle_with(&LocalStore(local), &counting, &settings, &mut state)
        .await
        .unwrap();
    assert!(again.in_sync && again.completed);
    assert_eq!(
        again.peer_round_trips, 1,
        "equal roots cost one call per side"
    );
}

async fn small_batches_split_each_level_into_batch_sized_calls(
    local: &MemoryStore,
    remote: &MemoryStore,
    parents: usize,
) {
    let peer = MemoryPeer::new("remote", remote.clone());
    let batch = 16;
    let settings = RepairSettings {
        batch_size: batch,
        concurrency: 1,
        ..RepairSettings::default()
    };

    let report = repair_cycle_with(
        &LocalStore(local),
        &PeerSource(&peer),
        &settings,
        &mut RepairState::new(),
    )
    .await
    .unwrap();

    let calls = |n: usize| n.div_ceil(batch) as u64;
    let served = peer.counters();
    // Steps may mix the tail of one level with the head of the next, so children calls are
    // at most one per level more than the paths need.
    let paths = 1 + parents + DIFFERING;
    assert_eq!(served.paths_requested, paths as u64);
    assert!(
        served.children_calls <= calls(paths) + 3,
        "{} children calls",
        served.children_calls
    );
    assert_eq!(served.item_calls, calls(DIFFERING));
    assert_eq!(served.size_calls, calls(DIFFERING));
    assert_eq!(served.keys_requested, DIFFERING as u64);
    assert_eq!(report.items_fetched, DIFFERING as u64);
    assert_eq!(local.root(), remote.root());
}
