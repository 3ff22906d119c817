//! Convergence: whatever two stores hold, repairing both ways ends with identical stores
//! in which every key holds its conflict-order winner; ids that are both item and parent.

use super::{put, seeded, sync_both_ways};
use crate::RepairSettings;
use proptest::prelude::*;
use replication_core::{Change, Stamp, SyncItem, Tombstone};
use replication_testkit::MemoryStore;
use std::collections::HashMap;

/// Ids that are items and parents of each other, then flat keys under a few parents.
const NESTED: [&str; 8] = ["a", "a.b", "a.b.c", "a.c", "b", "b.a", "a:x", "a.b:y"];

fn key(index: usize) -> String {
    match NESTED.get(index) {
        Some(key) => (*key).to_owned(),
        None => format!("t{}.k{index}", index % 7),
    }
}

/// One write on one side. Small version and time ranges so that ties happen.
#[derive(Clone, Debug)]
enum Write {
    /// A replicated put with an arbitrary stamp (as if from a third node).
    Put {
        key: usize,
        content: u8,
        version: u64,
        at: i64,
    },
    /// A replicated delete with an arbitrary stamp.
    Delete { key: usize, version: u64, at: i64 },
    /// A write by the node's own application.
    LocalPut { key: usize, content: u8 },
    /// A delete by the node's own application.
    LocalDelete { key: usize },
}

fn arb_write(keys: usize) -> impl Strategy<Value = (bool, Write)> {
    let write = prop_oneof![
        4 => (0..keys, any::<u8>(), 1u64..4, 0i64..3)
            .prop_map(|(key, content, version, at)| Write::Put { key, content, version, at }),
        2 => (0..keys, 1u64..4, 0i64..3).prop_map(|(key, version, at)| Write::Delete { key, version, at }),
        1 => (0..keys, any::<u8>()).prop_map(|(key, content)| Write::LocalPut { key, content }),
        1 => (0..keys).prop_map(|key| Write::LocalDelete { key }),
    ];
    (any::<bool>(), write)
}

/// Applies `write` and returns the stamp it carried (even if it lost: then it is smaller
/// than what the store holds, and the expected winner is unaffected).
fn perform(store: &MemoryStore, write: &Write) -> Option<(String, Stamp)> {
    match *write {
        Write::Put {
            key: k,
            content,
            version,
            at,
        } => {
            let item = SyncItem::new(key(k), vec![content], version, at);
            let stamp = item.stamp();
            store.apply_change(Change::Put(item)).unwrap();
            Some((key(k), stamp))
        }
        Write::Delete {
            key: k,
            version,
            at,
        } => {
            let tombstone = Tombstone {
                version,
                deleted_at: at,
            };
            let stamp = tombstone.stamp();
            store
                .apply_change(Change::Delete {
                    key: key(k),
                    tombstone,
                })
                .unwrap();
            Some((key(k), stamp))
        }
        Write::LocalPut { key: k, content } => {
            Some((key(k), store.put_local(&key(k), vec![content]).stamp()))
        }
        Write::LocalDelete { key: k } => store.delete_local(&key(k)).map(|t| (key(k), t.stamp())),
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn repair_both_ways_converges_to_the_conflict_order_winner(
        keys in 8usize..1500,
        writes in proptest::collection::vec(arb_write(1500), 0..1500),
        batch_size in 1usize..64,
        concurrency in 1usize..4,
        max_items in 8usize..400,
    ) {
        let (a, b) = (MemoryStore::new(), MemoryStore::new());
        let mut winners: HashMap<String, Stamp> = HashMap::new();
        for (on_a, write) in writes.iter().map(|(side, w)| (side, reduce(w, keys))) {
            if let Some((key, stamp)) = perform(if *on_a { &a } else { &b }, &write) {
                let best = winners.entry(key).or_insert_with(|| stamp.clone());
                if stamp.beats(best) {
                    *best = stamp;
                }
            }
        }
        let settings = RepairSettings { batch_size, concurrency, max_items_per_cycle: max_items, max_bytes_per_cycle: u64::MAX };
        let rounds = 4 + 2 * (keys / max_items);
        runtime().block_on(sync_both_ways(&a, &b, &settings, rounds));

        prop_assert_eq!(a.root(), b.root());
        prop_assert_eq!(visible(&a), visible(&b));
        for (key, winner) in &winners {
            match a.item(key) {
                // Leaf hashes leave `updated_at` out, so copies that differ only in it look
                // equal and are not repaired: the winner's version and bytes are what count.
                Some(item) => prop_assert_eq!(
                    (item.version, item.content_hash.as_str()),
                    (winner.version, winner.content_hash.as_str()),
                    "key {}", key
                ),
                None => prop_assert!(winner.is_delete(), "key {} lost its winning put {:?}", key, winner),
            }
        }
        prop_assert_eq!(a.len(), winners.values().filter(|w| !w.is_delete()).count());
    }
}

/// What the Merkle tree covers of each item: key, version and content hash.
fn visible(store: &MemoryStore) -> Vec<(String, u64, String)> {
    store
        .items()
        .into_iter()
        .map(|item| (item.key, item.version, item.content_hash))
        .collect()
}

/// Maps a write's key index into the case's key count.
fn reduce(write: &Write, keys: usize) -> Write {
    let mut write = write.clone();
    match &mut write {
        Write::Put { key, .. }
        | Write::Delete { key, .. }
        | Write::LocalPut { key, .. }
        | Write::LocalDelete { key } => {
            *key %= keys;
        }
    }
    write
}

#[tokio::test]
async fn ids_that_are_both_item_and_parent_converge() {
    // Local: `a` and `a.b`; `x` is a plain leaf. Peer: newer `a`, same `a.b`, plus `a.c`,
    // and `x` is only a parent (of `x.y`).
    let local = seeded(["a", "a.b", "x"].map(String::from));
    let remote = seeded(["a", "a.b", "a.c", "x.y"].map(String::from));
    put(&remote, "a", b"newer", 2, 5);

    let report = super::one_cycle(&local, &remote, &RepairSettings::default()).await;
    assert_eq!(report.items_applied, 3, "a, a.c and x.y come from the peer");
    assert_eq!(report.local_only_kept, 1, "x is ours to give");
    assert_eq!(local.item("a").unwrap().content, b"newer");
    assert_eq!(
        local.item("a").unwrap().version,
        2,
        "the peer's version is kept"
    );
    assert!(
        local.item("a.c").is_some() && local.item("x.y").is_some() && local.item("x").is_some()
    );

    sync_both_ways(&local, &remote, &RepairSettings::default(), 3).await;
    assert_eq!(local.items(), remote.items());
    assert_eq!(local.root(), remote.root());
}

#[tokio::test]
async fn a_parent_gaining_its_own_item_is_found_through_the_self_segment() {
    let local = seeded(["p.q"].map(String::from));
    let remote = seeded(["p", "p.q"].map(String::from));
    let report = super::one_cycle(&local, &remote, &RepairSettings::default()).await;
    assert_eq!((report.items_fetched, report.items_applied), (1, 1));
    assert_eq!(local.root(), remote.root());
}
