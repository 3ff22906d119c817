//! The store on a Redis Cluster (every key in its prefix's hash-tag slot) and behind
//! Sentinel, across failovers: writes refused while the primary changes fail retriably
//! (never as bad input), land on the new primary when retried, and lose nothing that was
//! acknowledged and replicated.

use crate::common::*;
use fred::prelude::{Builder, Client, ClientLike, Config};
use replication_core::{Change, SyncEngineRef, SyncItem, Tombstone};
use replication_node::{NodeError, NodeStore, NodeStoreConfig};
use replication_testkit::{RedisCluster, SentinelSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs blocking harness work (process control, waits) off the async workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

async fn client(url: &str) -> Client {
    let client = Builder::from_config(Config::from_url(url).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    client
}

async fn connect(url: &str, prefix: &str) -> Result<NodeStore, NodeError> {
    let mut config = NodeStoreConfig::new(url).with_prefix(prefix);
    config.command_timeout = Duration::from_secs(2);
    NodeStore::connect(config).await
}

/// A local put retried until it lands; every failure on the way must be retriable.
/// Returns the item and how many attempts failed.
async fn put_retrying(store: &NodeStore, key: &str, content: &[u8]) -> (SyncItem, u32) {
    let mut failures = 0;
    loop {
        match store.put(key, content.to_vec()).await {
            Ok(item) => return (item, failures),
            Err(error) => {
                assert!(error.is_retriable(), "{key}: a permanent error: {error}");
                failures += 1;
                assert!(failures < 2_000, "{key}: never landed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Writes `count` keys `{name}.{i}` one after the other, retrying each until it lands.
async fn write_keys(store: &NodeStore, name: &str, count: usize) -> (Vec<SyncItem>, u32) {
    let mut items = Vec::new();
    let mut failures = 0;
    for i in 0..count {
        let (item, failed) = put_retrying(store, &format!("{name}.{i}"), name.as_bytes()).await;
        items.push(item);
        failures += failed;
    }
    (items, failures)
}

async fn assert_holds(store: &NodeStore, items: &[SyncItem]) {
    for item in items {
        let held = store.get_item(&item.key).await.unwrap();
        assert_eq!(
            held.as_ref().map(SyncItem::stamp),
            Some(item.stamp()),
            "{}",
            item.key
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_store_keeps_its_keys_in_one_slot_and_works_as_on_one_server() {
    let cluster = blocking(|| RedisCluster::start().unwrap()).await;
    let error = connect(&cluster.url(), "n:").await.unwrap_err();
    assert!(
        matches!(
            error,
            NodeError::Config {
                field: "redis_prefix",
                ..
            }
        ),
        "{error}"
    );
    let prefix = "{n1}:";
    let store = connect(&cluster.url(), prefix).await.unwrap();
    let (items, failures) = write_keys(&store, "local", 20).await;
    assert_eq!(failures, 0);
    assert!(store.delete("local.3".into()).await.unwrap());
    // A replicated batch large enough to be committed in pipelined parts.
    let changes: Vec<Change> = (0..300)
        .map(|i| {
            if i % 10 == 0 {
                Change::Delete {
                    key: format!("local.{}", i / 10 % 20),
                    tombstone: Tombstone {
                        version: 5,
                        deleted_at: 1,
                    },
                }
            } else {
                Change::Put(SyncItem::new(format!("peer.p{i}"), vec![i as u8], 1, 7))
            }
        })
        .collect();
    store.apply_batch(changes).await.unwrap();
    // Collecting tombstones runs the purge script (loaded on the slot's primary).
    assert!(store.purge_tombstones(i64::MAX).await.unwrap() > 0);
    let probe = client(&cluster.url()).await;
    let tree = check_tree(&probe, prefix).await;
    assert_eq!(store.get_merkle_root().await.unwrap(), tree.root());
    assert_eq!(tree.len(), 270 + 20 - 20);
    // Everything lives on the primary of the prefix's slot.
    let stored = keys(&probe, prefix).await.len();
    let owner = cluster.primary_for("{n1}:store:epoch").unwrap();
    let on_owner = owner.command(&["DBSIZE"]).unwrap();
    assert_eq!(on_owner.trim(), format!(":{stored}"));
    let states = store
        .local_states(&["peer.p1".into(), "local.0".into(), "nothing".into()])
        .await
        .unwrap();
    assert_eq!(states.len(), 3);
    drop(items);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_store_rides_through_a_failover_of_its_primary() {
    let cluster = Arc::new(Mutex::new(
        blocking(|| RedisCluster::start().unwrap()).await,
    ));
    let url = cluster.lock().unwrap().url();
    let store = connect(&url, "{n2}:").await.unwrap();
    let (before, _) = write_keys(&store, "before", 30).await;
    let c = Arc::clone(&cluster);
    blocking(move || c.lock().unwrap().wait_replicated("{n2}:cdc").unwrap()).await;
    // The primary dies while the store keeps writing.
    let writing = tokio::spawn({
        let store = store.clone();
        async move { write_keys(&store, "during", 60).await }
    });
    let c = Arc::clone(&cluster);
    blocking(move || c.lock().unwrap().kill_primary_for("{n2}:cdc").unwrap()).await;
    let (during, _) = writing.await.unwrap();
    let (after, failures) = write_keys(&store, "after", 10).await;
    assert_eq!(failures, 0, "the store settled on the new primary");
    assert_holds(&store, &before).await;
    assert_holds(&store, &during).await;
    assert_holds(&store, &after).await;
    let probe = client(&url).await;
    check_tree(&probe, "{n2}:").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_store_follows_the_promoted_replica() {
    let set = Arc::new(Mutex::new(blocking(|| SentinelSet::start().unwrap()).await));
    let url = set.lock().unwrap().url();
    let store = connect(&url, "s:").await.unwrap();
    let first = store.connection().server;
    let (before, _) = write_keys(&store, "before", 30).await;
    let s = Arc::clone(&set);
    blocking(move || s.lock().unwrap().wait_replicated().unwrap()).await;
    // Writes go on, one after the other, from before the kill until after the promotion.
    let promoted_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writing = tokio::spawn({
        let (store, promoted) = (store.clone(), Arc::clone(&promoted_flag));
        async move {
            let mut items = Vec::new();
            let mut after = 0;
            while after < 10 {
                let key = format!("during.{}", items.len());
                items.push(put_retrying(&store, &key, b"during").await.0);
                if promoted.load(std::sync::atomic::Ordering::SeqCst) {
                    after += 1;
                }
            }
            items
        }
    });
    let s = Arc::clone(&set);
    let promoted = blocking(move || {
        let mut set = s.lock().unwrap();
        let old = set.kill_primary().unwrap();
        set.wait_failover(old).unwrap()
    })
    .await;
    promoted_flag.store(true, std::sync::atomic::Ordering::SeqCst);
    let during = writing.await.unwrap();
    assert_holds(&store, &before).await;
    assert_holds(&store, &during).await;
    assert!(store.should_accept_writes());
    let status = store.connection();
    assert_eq!(status.server, Some(format!("127.0.0.1:{promoted}")));
    assert_ne!(status.server, first);
    assert!(status.failovers >= 1, "{status:?}");
    let probe = client(&format!("redis://127.0.0.1:{promoted}")).await;
    check_tree(&probe, "s:").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_store_leaves_a_demoted_primary_for_the_new_one() {
    let set = Arc::new(blocking(|| SentinelSet::start().unwrap()).await);
    let url = set.url();
    let store = connect(&url, "d:").await.unwrap();
    let (before, _) = write_keys(&store, "before", 20).await;
    let s = Arc::clone(&set);
    let (old, new) = blocking(move || s.failover().unwrap()).await;
    // The old primary is alive and answers writes with READONLY: the store must move on
    // to the new primary rather than report every write as refused.
    let (after, _) = write_keys(&store, "after", 20).await;
    assert_holds(&store, &before).await;
    assert_holds(&store, &after).await;
    let status = store.connection();
    assert_eq!(status.server, Some(format!("127.0.0.1:{new}")));
    assert_ne!(old, new);
    let probe = client(&format!("redis://127.0.0.1:{new}")).await;
    check_tree(&probe, "d:").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_a_replica_refuses_are_retriable_not_bad_input() {
    // What a store pointed straight at a demoted primary sees: READONLY for every write.
    let set = blocking(|| SentinelSet::start().unwrap()).await;
    let primary = set.primary().unwrap().port();
    let replica = set.servers().iter().find(|s| s.port() != primary).unwrap();
    let store = connect(&replica.url(), "r:").await.unwrap();
    let error = store.put("k", b"v".to_vec()).await.unwrap_err();
    assert!(error.is_retriable(), "{error}");
    let shown = format!("{:?}", std::error::Error::source(&error));
    assert!(shown.contains("READONLY"), "{shown}");
}
