//! Acceptance tests of the repair algorithm over the testkit's in-memory store and peer:
//! convergence (property test), cost, failures, budgets, tombstones, item-and-parent ids,
//! and the repair preview.

mod budget;
mod convergence;
mod cost;
mod failures;
mod plan;
mod tombstones;

use crate::{repair_cycle, CycleReport, RepairPeer, RepairSettings, RepairState, TreeSource};
use replication_core::merkle::Hash;
use replication_core::{Change, ItemRead, PeerError, SyncItem, Tombstone};
use replication_testkit::{MemoryPeer, MemoryStore};
use std::sync::atomic::{AtomicU64, Ordering};

/// A store seeded with items (version, time 1) under `keys`, content = the key's bytes.
fn seeded(keys: impl IntoIterator<Item = String>) -> MemoryStore {
    let store = MemoryStore::new();
    for key in keys {
        let item = SyncItem::new(key.clone(), key.into_bytes(), 1, 1);
        store
            .apply_change(Change::Put(item))
            .expect("seeding a valid item");
    }
    store
}

fn put(store: &MemoryStore, key: &str, content: &[u8], version: u64, at: i64) {
    store
        .apply_change(Change::Put(SyncItem::new(
            key,
            content.to_vec(),
            version,
            at,
        )))
        .unwrap();
}

fn tombstone(store: &MemoryStore, key: &str, version: u64, deleted_at: i64) {
    store
        .apply_change(Change::Delete {
            key: key.into(),
            tombstone: Tombstone {
                version,
                deleted_at,
            },
        })
        .unwrap();
}

/// Repairs `a` from `b` and `b` from `a` until both find equal roots; returns the rounds.
async fn sync_both_ways(
    a: &MemoryStore,
    b: &MemoryStore,
    settings: &RepairSettings,
    max_rounds: usize,
) -> usize {
    let (peer_a, peer_b) = (
        MemoryPeer::new("a", a.clone()),
        MemoryPeer::new("b", b.clone()),
    );
    let (mut state_a, mut state_b) = (RepairState::new(), RepairState::new());
    for round in 0..max_rounds {
        let from_b = repair_cycle(a, &peer_b, settings, &mut state_a)
            .await
            .unwrap();
        let from_a = repair_cycle(b, &peer_a, settings, &mut state_b)
            .await
            .unwrap();
        if from_b.in_sync && from_a.in_sync {
            return round;
        }
    }
    panic!("stores did not converge within {max_rounds} rounds");
}

/// One cycle of `local` from a fresh `MemoryPeer` over `remote`, with a fresh state.
async fn one_cycle(
    local: &MemoryStore,
    remote: &MemoryStore,
    settings: &RepairSettings,
) -> CycleReport {
    let peer = MemoryPeer::new("remote", remote.clone());
    repair_cycle(local, &peer, settings, &mut RepairState::new())
        .await
        .unwrap()
}

/// A peer source that counts what the algorithm asks for, independently of the report.
struct Counting<P> {
    inner: P,
    calls: AtomicU64,
    paths: AtomicU64,
    item_keys: AtomicU64,
    tombstone_keys: AtomicU64,
    sized_keys: AtomicU64,
}

impl<P> Counting<P> {
    fn new(inner: P) -> Self {
        Self {
            inner,
            calls: AtomicU64::new(0),
            paths: AtomicU64::new(0),
            item_keys: AtomicU64::new(0),
            tombstone_keys: AtomicU64::new(0),
            sized_keys: AtomicU64::new(0),
        }
    }

    fn count(&self, counter: &AtomicU64, n: usize) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn paths(&self) -> u64 {
        self.paths.load(Ordering::Relaxed)
    }

    fn item_keys(&self) -> u64 {
        self.item_keys.load(Ordering::Relaxed)
    }

    fn tombstone_keys(&self) -> u64 {
        self.tombstone_keys.load(Ordering::Relaxed)
    }

    fn sized_keys(&self) -> u64 {
        self.sized_keys.load(Ordering::Relaxed)
    }
}

impl<P: RepairPeer> TreeSource for Counting<P> {
    type Error = PeerError;

    async fn get_merkle_root(&self) -> Result<Option<Hash>, PeerError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.get_merkle_root().await
    }

    async fn children(&self, paths: &[String]) -> Result<Vec<Vec<(String, Hash)>>, PeerError> {
        self.count(&self.paths, paths.len());
        self.inner.children(paths).await
    }
}

impl<P: RepairPeer> RepairPeer for Counting<P> {
    fn node_id(&self) -> &str {
        self.inner.node_id()
    }

    async fn read_items(&self, keys: &[String]) -> Result<Vec<ItemRead>, PeerError> {
        self.count(&self.item_keys, keys.len());
        self.inner.read_items(keys).await
    }

    async fn read_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, PeerError> {
        self.count(&self.tombstone_keys, keys.len());
        self.inner.read_tombstones(keys).await
    }

    async fn item_sizes(&self, keys: &[String]) -> Result<Option<Vec<Option<u64>>>, PeerError> {
        self.count(&self.sized_keys, keys.len());
        self.inner.item_sizes(keys).await
    }
}

#[test]
fn repair_cycle_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let store = MemoryStore::new();
    let peer = MemoryPeer::new("b", MemoryStore::new());
    let mut state = RepairState::new();
    let settings = RepairSettings::default();
    let future = repair_cycle(&store, &peer, &settings, &mut state);
    assert_send(&future);
}
