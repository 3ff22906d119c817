//! Budgets: a cycle that runs out of items or bytes says so, and the following cycles
//! resume its walk and converge, fetching each differing item exactly once; no cycle reads
//! more bytes than its budget (but for one item larger than the whole budget, read alone).

use super::{put, seeded};
use crate::report::Budget;
use crate::{
    repair_cycle, repair_cycle_with, LocalStore, PeerSource, RepairPeer, RepairSettings,
    RepairState, TreeSource,
};
use replication_core::merkle::Hash;
use replication_core::{ItemRead, PeerError, Tombstone};
use replication_testkit::{MemoryPeer, MemoryStore};

fn fixture(differing: usize, content: &[u8]) -> (MemoryStore, MemoryStore) {
    let keys = (0..1000).map(|i| format!("p{}.k{i}", i % 10));
    let (local, remote) = (seeded(keys.clone()), seeded(keys));
    for i in 0..differing {
        put(&remote, &format!("p{}.k{}", i % 10, i * 3), content, 2, 2);
    }
    (local, remote)
}

#[tokio::test]
async fn an_item_budget_smaller_than_the_difference_resumes_until_converged() {
    let (local, remote) = fixture(300, b"v2");
    let peer = MemoryPeer::new("remote", remote.clone());
    let settings = RepairSettings {
        batch_size: 32,
        max_items_per_cycle: 100,
        ..RepairSettings::default()
    };
    let mut state = RepairState::new();

    let first = repair_cycle(&local, &peer, &settings, &mut state)
        .await
        .unwrap();
    assert_eq!(first.budget_exhausted, Some(Budget::Items));
    assert_eq!(first.items_fetched, 100);
    assert!(!first.completed && !first.resumed && state.is_resuming());

    let mut fetched = first.items_fetched;
    let mut cycles = 1;
    loop {
        let report = repair_cycle(&local, &peer, &settings, &mut state)
            .await
            .unwrap();
        fetched += report.items_fetched;
        cycles += 1;
        assert!(report.items_fetched <= 100);
        if report.budget_exhausted.is_none() {
            assert!(
                report.resumed && !report.completed,
                "a resumed walk does not count as complete"
            );
            break;
        }
        assert!(cycles < 10, "no progress");
    }
    assert_eq!((fetched, cycles), (300, 3));
    assert_eq!(
        peer.counters().items_returned,
        300,
        "every differing item fetched exactly once"
    );
    assert_eq!(local.root(), remote.root());
    let last = repair_cycle(&local, &peer, &settings, &mut state)
        .await
        .unwrap();
    assert!(last.in_sync && last.completed);
}

#[tokio::test]
async fn a_byte_budget_stops_fetching_and_the_next_cycles_resume() {
    let content = vec![7u8; 1000];
    let (local, remote) = fixture(40, &content);
    let peer = MemoryPeer::new("remote", remote.clone());
    // Groups of 5 items (5 000 bytes): the budget is reached after two groups.
    let settings = RepairSettings {
        batch_size: 5,
        concurrency: 1,
        max_items_per_cycle: 1000,
        max_bytes_per_cycle: 10_000,
    };
    let mut state = RepairState::new();

    let first = repair_cycle(&local, &peer, &settings, &mut state)
        .await
        .unwrap();
    assert_eq!(first.budget_exhausted, Some(Budget::Bytes));
    assert_eq!((first.items_fetched, first.bytes_fetched), (10, 10_000));

    let mut fetched = first.items_fetched;
    while state.is_resuming() {
        fetched += repair_cycle(&local, &peer, &settings, &mut state)
            .await
            .unwrap()
            .items_fetched;
    }
    assert_eq!(fetched, 40);
    assert_eq!(local.root(), remote.root());
}

#[tokio::test]
async fn a_resumed_walk_tolerates_changes_made_between_cycles() {
    let (local, remote) = fixture(300, b"v2");
    let peer = MemoryPeer::new("remote", remote.clone());
    let settings = RepairSettings {
        batch_size: 32,
        max_items_per_cycle: 50,
        ..RepairSettings::default()
    };
    let mut state = RepairState::new();
    repair_cycle(&local, &peer, &settings, &mut state)
        .await
        .unwrap();
    // Between cycles: the peer deletes a differing key and writes a new one; we write too.
    remote.delete_local("p0.k0");
    remote.put_local("late.key", b"late".to_vec());
    local.put_local("p1.k3", b"local is now newest".to_vec());
    for _ in 0..20 {
        repair_cycle(&local, &peer, &settings, &mut state)
            .await
            .unwrap();
    }
    assert!(local.item("p0.k0").is_none(), "the peer's delete arrived");
    assert_eq!(local.item("late.key").unwrap().content, b"late");
    assert_eq!(local.item("p1.k3").unwrap().content, b"local is now newest");
    assert!(!state.is_resuming());
}

/// Runs cycles until the walk is done, checking each against the byte budget: the peer's
/// own counters say what it returned, whatever the report says. `slack` is what one cycle
/// may read beyond the budget. Returns the cycles run.
async fn converge_within_budget<P: RepairPeer>(
    local: &MemoryStore,
    remote: &MemoryStore,
    counted: &MemoryPeer,
    peer: &P,
    settings: &RepairSettings,
    slack: u64,
) -> usize {
    let mut state = RepairState::new();
    let mut cycles = 0;
    loop {
        counted.reset_counters();
        let report = repair_cycle_with(&LocalStore(local), peer, settings, &mut state)
            .await
            .unwrap();
        cycles += 1;
        let read = counted.counters().content_bytes_returned;
        assert!(
            read <= settings.max_bytes_per_cycle + slack,
            "cycle {cycles} read {read} bytes against a budget of {}",
            settings.max_bytes_per_cycle
        );
        assert_eq!(read, report.bytes_fetched);
        if !state.is_resuming() {
            break;
        }
        assert!(cycles < 200, "no progress");
    }
    assert_eq!(local.root(), remote.root(), "repair completes over cycles");
    cycles
}

#[tokio::test]
async fn the_byte_budget_bounds_what_a_cycle_reads_not_just_when_it_stops() {
    let content = vec![7u8; 1000];
    let (local, remote) = fixture(40, &content);
    let peer = MemoryPeer::new("remote", remote.clone());
    // A step of 16 items (16 000 bytes) against a budget of two and a half items.
    let settings = RepairSettings {
        batch_size: 8,
        concurrency: 2,
        max_items_per_cycle: 1000,
        max_bytes_per_cycle: 2500,
    };
    let cycles =
        converge_within_budget(&local, &remote, &peer, &PeerSource(&peer), &settings, 0).await;
    assert_eq!(cycles, 20, "two items fit each cycle");
}

#[tokio::test]
async fn an_item_larger_than_the_whole_budget_is_read_alone() {
    let (local, remote) = fixture(6, &[1u8; 100]);
    put(&remote, "p0.k1", &[2u8; 5000], 2, 2);
    let peer = MemoryPeer::new("remote", remote.clone());
    let settings = RepairSettings {
        batch_size: 8,
        concurrency: 1,
        max_items_per_cycle: 1000,
        max_bytes_per_cycle: 1000,
    };
    converge_within_budget(&local, &remote, &peer, &PeerSource(&peer), &settings, 5000).await;
}

/// A peer seen through a different answer to `item_sizes`: one that cannot tell its items'
/// sizes (the trait's default), or one whose items are stored in a form `n` times their
/// content (as a node store's byte arrays are), so that what travels is the stored form.
struct Sizing<'a> {
    peer: PeerSource<'a>,
    stored_per_content_byte: Option<u64>,
}

impl TreeSource for Sizing<'_> {
    type Error = PeerError;

    async fn get_merkle_root(&self) -> Result<Option<Hash>, PeerError> {
        self.peer.get_merkle_root().await
    }

    async fn children(&self, paths: &[String]) -> Result<Vec<Vec<(String, Hash)>>, PeerError> {
        self.peer.children(paths).await
    }
}

impl RepairPeer for Sizing<'_> {
    fn node_id(&self) -> &str {
        self.peer.node_id()
    }

    async fn read_items(&self, keys: &[String]) -> Result<Vec<ItemRead>, PeerError> {
        self.peer.read_items(keys).await
    }

    async fn read_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, PeerError> {
        self.peer.read_tombstones(keys).await
    }

    async fn item_sizes(&self, keys: &[String]) -> Result<Option<Vec<Option<u64>>>, PeerError> {
        let Some(factor) = self.stored_per_content_byte else {
            return Ok(None);
        };
        let sizes = self.peer.item_sizes(keys).await?;
        Ok(sizes.map(|sizes| sizes.into_iter().map(|s| s.map(|s| s * factor)).collect()))
    }
}

#[tokio::test]
async fn a_peer_that_cannot_size_its_items_is_read_one_item_at_a_time() {
    let content = vec![7u8; 1000];
    let (local, remote) = fixture(40, &content);
    let peer = MemoryPeer::new("remote", remote.clone());
    let settings = RepairSettings {
        batch_size: 8,
        concurrency: 2,
        max_items_per_cycle: 1000,
        max_bytes_per_cycle: 2500,
    };
    let unsized_peer = Sizing {
        peer: PeerSource(&peer),
        stored_per_content_byte: None,
    };
    converge_within_budget(&local, &remote, &peer, &unsized_peer, &settings, 1000).await;
}

#[tokio::test]
async fn the_budget_counts_the_stored_size_of_the_items_it_admits() {
    let content = vec![7u8; 1000];
    let (local, remote) = fixture(12, &content);
    let peer = MemoryPeer::new("remote", remote.clone());
    // Steps of two items of 3 000 stored bytes against 7 000: two fit, a third does not.
    let settings = RepairSettings {
        batch_size: 2,
        concurrency: 1,
        max_items_per_cycle: 1000,
        max_bytes_per_cycle: 7000,
    };
    let inflated = Sizing {
        peer: PeerSource(&peer),
        stored_per_content_byte: Some(3),
    };
    let mut state = RepairState::new();
    loop {
        let report = repair_cycle_with(&LocalStore(&local), &inflated, &settings, &mut state)
            .await
            .unwrap();
        assert!(
            report.items_fetched * 3000 <= settings.max_bytes_per_cycle,
            "{} items of 3 000 stored bytes in one cycle",
            report.items_fetched
        );
        if !state.is_resuming() {
            break;
        }
    }
    assert_eq!(local.root(), remote.root());
}
