//! The hot path's cost: a batch costs a constant number of commands for its writes.

use crate::common::*;
use replication_core::{Change, SyncEngineRef, SyncItem, Tombstone};

const COMMANDS: [&str; 11] = [
    "eval", "mget", "hmget", "get", "exec", "zrange", "mset", "zadd", "set", "hset", "rename",
];

fn batch(round: u64) -> Vec<Change> {
    (0..500u64)
        .map(|i| {
            // Round 3 opens a subtree nobody wrote under before.
            let key = if round == 3 {
                format!("fresh.sub.{i}")
            } else {
                format!("bench.item.{}", i + round * 400)
            };
            if i % 10 == 9 {
                Change::Delete {
                    key,
                    tombstone: Tombstone {
                        version: round + 2,
                        deleted_at: 5,
                    },
                }
            } else {
                Change::Put(SyncItem::new(
                    key,
                    format!("value {i}").into_bytes(),
                    round + 1,
                    5,
                ))
            }
        })
        .collect()
}

#[tokio::test]
async fn a_batch_of_500_changes_is_one_write_and_one_read_of_each_kind() {
    let server = server();
    let store = store(&server, "").await;
    let probe = probe(&server).await;
    for round in 0..4 {
        let before = COMMANDS.map(|c| command_calls(&server, c));
        store.apply_batch(batch(round)).await.unwrap();
        let after = COMMANDS.map(|c| command_calls(&server, c));
        let delta: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        // 500 replicated changes are committed as two parts of whole keys, back to back
        // (each one MULTI/EXEC block: a staging MSET and the script); one MGET, one HMGET
        // and one GET (the token) read the batch's state. Redis also counts the scripts'
        // own calls: their token GETs.
        assert_eq!(delta[0], 2, "EVAL per batch: one per part (round {round})");
        assert_eq!(delta[1], 1, "MGET per batch");
        assert_eq!(delta[2], 1, "HMGET per batch");
        assert_eq!(
            delta[3], 3,
            "GET per batch: the read, and the check in each part's script"
        );
        assert_eq!(delta[4], 2, "one MULTI/EXEC per part");
        // At most one ZRANGE per tree node the batch touches (ids and their 3 ancestors),
        // all in the read pipeline; later rounds reuse the cached sets of known nodes.
        assert!(delta[5] <= 503, "ZRANGE per batch: {}", delta[5]);
        if round > 0 {
            // Known nodes come from the cache, and a new id under a cached parent that does
            // not list it cannot have children: nothing to read.
            assert_eq!(delta[5], 0, "ZRANGE with a warm cache (round {round})");
        }
        // Each script groups its writes: item bodies are staged by one MSET and renamed into
        // place (450 puts), hash keys go in MSETs of at most 500 pairs, members in one ZADD
        // per children set, tombstones in one HSET; the only SET is the new token.
        assert_eq!(delta[10], 450, "RENAME per stored item");
        assert!(delta[6] <= 6, "MSET per batch: {}", delta[6]);
        assert!(delta[7] <= 8, "ZADD per batch: {}", delta[7]);
        assert_eq!(delta[8], 2, "SET per batch (each part's token)");
        assert_eq!(delta[9], 2, "HSET per batch (each part's tombstones)");
    }
    check_tree(&probe, "").await;
}

#[tokio::test]
async fn a_write_after_local_states_of_its_keys_reads_nothing_again() {
    let server = server();
    let store = store(&server, "").await;
    let probe = probe(&server).await;
    // Warm the tree cache, as a running hot path has it.
    store.apply_batch(batch(0)).await.unwrap();
    for round in 1..3 {
        let changes = batch(round);
        let keys: Vec<String> = changes.iter().map(|c| c.key().to_owned()).collect();
        let before = COMMANDS.map(|c| command_calls(&server, c));
        store.local_states(&keys).await.unwrap();
        store.apply_batch(changes).await.unwrap();
        let after = COMMANDS.map(|c| command_calls(&server, c));
        let delta: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        assert_eq!(delta[0], 2, "EVAL: one per part");
        assert_eq!(delta[1], 1, "MGET: only local_states reads the items");
        assert_eq!(delta[2], 1, "HMGET: only local_states reads the tombstones");
        assert_eq!(
            delta[3], 3,
            "GET: the token read with the states, and each part's check"
        );
        assert_eq!(delta[5], 0, "ZRANGE: the tree cache is warm");
    }
    check_tree(&probe, "").await;
}

#[tokio::test]
async fn states_read_before_another_writer_committed_are_not_trusted() {
    let server = server();
    let ours = store(&server, "").await;
    let other = store(&server, "").await;
    let probe = probe(&server).await;
    ours.apply_batch(batch(0)).await.unwrap();
    let key = "bench.item.3".to_owned();
    let states = ours.local_states(std::slice::from_ref(&key)).await.unwrap();
    assert!(matches!(
        states[0],
        Some(replication_core::LocalState::Present(_))
    ));
    // Another writer (another process on the same Redis) deletes the key with a newer
    // tombstone after our read: our older put must not resurrect it.
    other
        .apply_batch(vec![Change::Delete {
            key: key.clone(),
            tombstone: Tombstone {
                version: 50,
                deleted_at: 10,
            },
        }])
        .await
        .unwrap();
    ours.apply_batch(vec![Change::Put(SyncItem::new(
        key.clone(),
        b"old".to_vec(),
        7,
        5,
    ))])
    .await
    .unwrap();
    assert_eq!(ours.get(&key).await.unwrap(), None);
    check_tree(&probe, "").await;
}
