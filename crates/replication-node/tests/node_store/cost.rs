//! The hot path's cost: a batch costs a constant number of commands for its writes.

use crate::common::*;
use replication_core::{Change, SyncEngineRef, SyncItem, Tombstone};

const COMMANDS: [&str; 6] = ["evalsha", "mget", "hmget", "get", "exec", "zrange"];

fn batch(round: u64) -> Vec<Change> {
    (0..500u64)
        .map(|i| {
            let key = format!("bench.item.{}", i + round * 400);
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
    for round in 0..3 {
        let before = COMMANDS.map(|c| command_calls(&server, c));
        store.apply_batch(batch(round)).await.unwrap();
        let after = COMMANDS.map(|c| command_calls(&server, c));
        let delta: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        // One script carries every write; one MGET, one HMGET and one GET (the token) read
        // the batch's state. Redis also counts the script's own calls: its token GET.
        assert_eq!(delta[0], 1, "EVALSHA per batch (round {round})");
        assert_eq!(delta[1], 1, "MGET per batch");
        assert_eq!(delta[2], 1, "HMGET per batch");
        assert_eq!(
            delta[3], 2,
            "GET per batch: the read, and the check in the script"
        );
        assert_eq!(delta[4], 0, "no MULTI/EXEC");
        // At most one ZRANGE per tree node the batch touches (ids and their 3 ancestors),
        // all in the read pipeline; later rounds reuse the cached sets of known nodes.
        assert!(delta[5] <= 503, "ZRANGE per batch: {}", delta[5]);
        if round > 0 {
            // Known nodes come from the cache, and a new id under a cached parent that does
            // not list it cannot have children: nothing to read.
            assert_eq!(delta[5], 0, "ZRANGE with a warm cache (round {round})");
        }
    }
    check_tree(&probe, "").await;
}
