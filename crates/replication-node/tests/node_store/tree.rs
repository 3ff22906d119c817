//! The stored Merkle tree always equals the reference tree of the stored items.

use crate::common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use replication_core::merkle::{leaf_hash, SELF_SEGMENT};
use replication_core::{content_hash, Change, SyncEngineRef, SyncItem, Tombstone};
use replication_node::NodeStore;
use std::sync::atomic::{AtomicUsize, Ordering};

#[tokio::test]
async fn an_id_that_is_also_a_parent_lists_its_leaf_under_the_self_segment() {
    let server = server();
    let store = store(&server, "").await;
    let probe = probe(&server).await;
    let a = store.put("a", b"item a".to_vec()).await.unwrap();
    store.put("a.b", b"item a.b".to_vec()).await.unwrap();
    let children = store.get_merkle_children("a").await.unwrap();
    let own_leaf = leaf_hash("a", a.version, &content_hash(b"item a"));
    assert_eq!(children[0], (SELF_SEGMENT.to_string(), own_leaf));
    assert_eq!(children[1].0, "b");
    let tree = check_tree(&probe, "").await;
    assert_eq!(store.get_merkle_root().await.unwrap(), tree.root());
    // Removing the child turns `a` back into a plain leaf; removing `a` keeps `a.b`.
    store.delete("a.b".into()).await.unwrap();
    assert!(store.get_merkle_children("a").await.unwrap().is_empty());
    check_tree(&probe, "").await;
    store.put("a.b", b"again".to_vec()).await.unwrap();
    store.delete("a".into()).await.unwrap();
    let tree = check_tree(&probe, "").await;
    assert_eq!(
        store.merkle_root_hex().await.unwrap(),
        tree.root().map(hex::encode)
    );
}

#[derive(Clone, Debug)]
enum Op {
    Put(String, u8),
    Delete(String),
    Submit(String, u8, u64, i64),
    DeleteReplicated(String, u64, i64),
    Batch(Vec<(String, Option<u8>, u64)>),
}

fn arb_id() -> impl Strategy<Value = String> {
    "[ab](\\.[ab:]){0,3}"
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (arb_id(), any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        arb_id().prop_map(Op::Delete),
        (arb_id(), any::<u8>(), 0u64..4, 0i64..3)
            .prop_map(|(k, v, ver, t)| Op::Submit(k, v, ver, t)),
        (arb_id(), 0u64..4, 0i64..3).prop_map(|(k, ver, t)| Op::DeleteReplicated(k, ver, t)),
        proptest::collection::vec((arb_id(), proptest::option::of(any::<u8>()), 0u64..4), 1..8)
            .prop_map(Op::Batch),
    ]
}

async fn run(store: &NodeStore, op: Op) {
    match op {
        Op::Put(k, v) => drop(store.put(&k, vec![v]).await.unwrap()),
        Op::Delete(k) => {
            store.delete(k).await.unwrap();
        }
        Op::Submit(k, v, version, t) => store
            .submit(SyncItem::new(k, vec![v], version, t))
            .await
            .unwrap(),
        Op::DeleteReplicated(k, version, t) => {
            store
                .delete_replicated_with(
                    k,
                    Tombstone {
                        version,
                        deleted_at: t,
                    },
                )
                .await
                .unwrap();
        }
        Op::Batch(changes) => {
            let changes = changes
                .into_iter()
                .map(|(k, v, version)| match v {
                    Some(v) => Change::Put(SyncItem::new(k, vec![v], version, 1)),
                    None => Change::Delete {
                        key: k,
                        tombstone: Tombstone {
                            version,
                            deleted_at: 1,
                        },
                    },
                })
                .collect();
            store.apply_batch(changes).await.unwrap()
        }
    }
}

/// After any sequence of local and replicated writes, the stored tree equals the reference
/// tree of the stored items, the root matches, and no key names a removed node.
#[test]
fn any_write_sequence_keeps_the_tree_exact() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = server();
    let probe = runtime.block_on(probe(&server));
    let case = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(arb_op(), 1..25), |ops| {
            // A fresh prefix per case keeps cases apart on one server.
            let prefix = format!("c{}:", case.fetch_add(1, Ordering::Relaxed));
            runtime.block_on(async {
                let store = store(&server, &prefix).await;
                let local_writes = ops
                    .iter()
                    .filter(|op| matches!(op, Op::Put(..) | Op::Delete(_)))
                    .count();
                for op in ops {
                    run(&store, op).await;
                }
                let tree = check_tree(&probe, &prefix).await;
                assert_eq!(store.get_merkle_root().await.unwrap(), tree.root());
                assert!(cdc_entries(&probe, &prefix).await.len() <= local_writes);
                store.close().await;
            });
            Ok(())
        })
        .unwrap();
}

/// Two stores (as two processes would) writing the same keys at once: every write lands
/// exactly once (versions count them) and the tree stays exact; only the token check and
/// retry make that possible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_one_redis_stay_consistent() {
    let server = server();
    let first = store(&server, "").await;
    let second = store(&server, "").await;
    let probe = probe(&server).await;
    let key = |i: usize| {
        if i % 3 == 0 {
            format!("c.k{}", i % 20)
        } else {
            format!("c.j.k{}", i % 7)
        }
    };
    let writer = |store: NodeStore, tag: u8| async move {
        for i in 0..200 {
            store
                .put(&key(i), vec![tag, (i % 256) as u8])
                .await
                .unwrap();
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(writer(first.clone(), 1)),
        tokio::spawn(writer(second.clone(), 2))
    );
    a.unwrap();
    b.unwrap();

    let mut expected_versions = std::collections::HashMap::new();
    for i in 0..200 {
        *expected_versions.entry(key(i)).or_insert(0u64) += 2;
    }
    for (k, versions) in &expected_versions {
        assert_eq!(
            first.get_item(k).await.unwrap().unwrap().version,
            *versions,
            "version of {k}"
        );
    }
    assert_eq!(cdc_entries(&probe, "").await.len(), 400);
    let tree = check_tree(&probe, "").await;
    assert_eq!(first.get_merkle_root().await.unwrap(), tree.root());
    assert_eq!(second.get_merkle_root().await.unwrap(), tree.root());
}

/// Two stores taking turns: each one's cached tree nodes go stale with every write of the
/// other, and must never be used once stale.
#[tokio::test]
async fn interleaved_writers_never_use_a_stale_cache() {
    let server = server();
    let first = store(&server, "").await;
    let second = store(&server, "").await;
    let probe = probe(&server).await;
    for i in 0..12 {
        let (this, other) = if i % 2 == 0 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        this.put(&format!("x.{}", i % 4), vec![i]).await.unwrap();
        other
            .submit(SyncItem::new(
                format!("x.y.{}", i % 3),
                vec![i],
                u64::from(i) + 1,
                1,
            ))
            .await
            .unwrap();
        if i % 3 == 2 {
            this.delete(format!("x.{}", (i + 1) % 4)).await.unwrap();
        }
        let tree = check_tree(&probe, "").await;
        assert_eq!(
            first.get_merkle_root().await.unwrap(),
            tree.root(),
            "after step {i}"
        );
    }
}

/// Large replicated batches are committed in pipelined parts; two stores applying such
/// batches over the same keys at once conflict between parts as well as before them. Every
/// key must end at the highest version either applied, with the tree exact and no staged
/// body left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pipelined_batches_converge_to_the_highest_versions() {
    use replication_core::{Change, SyncEngineRef, SyncItem, Tombstone};
    let server = server();
    let first = store(&server, "").await;
    let second = store(&server, "").await;
    let probe = probe(&server).await;
    let batch = |round: u64, tag: u64| -> Vec<Change> {
        (0..600u64)
            .map(|i| {
                let key = format!("p.b{}.k{}", i % 6, i % 300);
                let version = round * 10 + tag + (i % 3);
                if (i + round) % 11 == 0 {
                    Change::Delete {
                        key,
                        tombstone: Tombstone {
                            version,
                            deleted_at: 7,
                        },
                    }
                } else {
                    Change::Put(SyncItem::new(key, vec![tag as u8, i as u8], version, 5))
                }
            })
            .collect()
    };
    let writer = |store: NodeStore, tag: u64| async move {
        for round in 0..6 {
            let changes = batch(round, tag);
            let keys: Vec<String> = changes.iter().map(|c| c.key().to_owned()).collect();
            store.local_states(&keys).await.unwrap();
            store.apply_batch(changes).await.unwrap();
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(writer(first.clone(), 1)),
        tokio::spawn(writer(second.clone(), 2))
    );
    a.unwrap();
    b.unwrap();

    // The reference: the winner of every key over all changes, by the conflict order.
    let mut winners: std::collections::HashMap<String, Change> = Default::default();
    for round in 0..6 {
        for tag in [1, 2] {
            for change in batch(round, tag) {
                let stamp = |c: &Change| match c {
                    Change::Put(item) => item.stamp(),
                    Change::Delete { tombstone, .. } => tombstone.stamp(),
                };
                let beats = |new: &Change, old: &Change| stamp(new).beats(&stamp(old));
                match winners.get(change.key()) {
                    Some(old) if !beats(&change, old) => {}
                    _ => {
                        winners.insert(change.key().to_owned(), change);
                    }
                }
            }
        }
    }
    for (key, winner) in &winners {
        let stored = first.get_item(key).await.unwrap();
        match winner {
            Change::Put(item) => {
                let stored = stored.unwrap_or_else(|| panic!("{key} missing"));
                assert_eq!(
                    (stored.version, &stored.content),
                    (item.version, &item.content),
                    "{key}"
                );
            }
            Change::Delete { .. } => assert!(stored.is_none(), "{key} resurrected"),
        }
    }
    let tree = check_tree(&probe, "").await;
    assert_eq!(first.get_merkle_root().await.unwrap(), tree.root());
}
