//! The node's own Redis refusing writes for a while (`NOREPLICAS`, `OOM`, `READONLY`):
//! the engine holds the changes back and retries them, nothing is lost, and none is counted
//! as refused bad input. Real redis-servers on both sides: the peer is a `NodeStore`
//! writing its CDC stream, the engine's local store is a `NodeStore` too. Repair is off, so
//! only the hot path can have delivered the writes.
#![allow(clippy::unwrap_used)]

mod common;

use common::node_store as node;
use metrics_util::debugging::DebuggingRecorder;
use replication_engine::metrics as names;
use replication_engine::ReplicationEngineConfig;
use replication_testkit::{eventually_async, one_redis_peer, Recorded, RedisServer};
use std::sync::Arc;
use std::time::Duration;

/// The shared config, with the store's circuit reopening quickly.
fn config(peer_url: String) -> ReplicationEngineConfig {
    let mut c = one_redis_peer(peer_url);
    c.settings.sync_engine.circuit_open_for = Duration::from_millis(200);
    c
}

fn command(server: &RedisServer, args: &[&str]) {
    let reply = server.command(args).unwrap();
    assert!(!reply.starts_with("ERR"), "{args:?}: {reply}");
}

/// Writes go through, then `refuse` makes the local Redis refuse writes while the peer
/// writes `keys`, then `reset` lifts it: every key arrives, and `store_refused` stays 0.
async fn refused_writes_are_held_back_and_land_after(refuse: &[&[&str]], reset: &[&[&str]]) {
    let recorder = DebuggingRecorder::new();
    let recorded = Recorded::new(recorder.snapshotter());
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (peer_redis, local_redis) = (RedisServer::start().unwrap(), RedisServer::start().unwrap());
    let peer = node(&peer_redis, "p:").await;
    let local = node(&local_redis, "l:").await;
    let mut engine =
        common::started_on_redis(Arc::new(local.clone()), config(peer_redis.url())).await;
    peer.put("before", b"flowing".to_vec()).await.unwrap();
    eventually_async("the first write arrives", || async {
        local.get_item("before").await.unwrap().is_some()
    })
    .await;

    for args in refuse {
        command(&local_redis, args);
    }
    let keys: Vec<String> = (0..50).map(|i| format!("during.{i}")).collect();
    for key in &keys {
        peer.put(key, key.as_bytes().to_vec()).await.unwrap();
    }
    // The engine meets the refusal (a retry today's code would not make, or a change it
    // would wrongly skip) before the refusal is lifted.
    eventually_async("the engine meets the refusal", || async {
        recorded.counter(names::APPLY_RETRIES, &[("peer", "p")]) > 0
            || recorded.counter(names::EVENTS_REJECTED, &[("reason", "store_refused")]) > 0
    })
    .await;
    // Backpressure follows the refusal once the store's probe or the circuit has seen it.
    eventually_async("a store refusing writes is not ready", || async {
        let health = engine.health_check().await;
        !health.sync_engine_accepting_writes || !health.ready
    })
    .await;
    for args in reset {
        command(&local_redis, args);
    }
    eventually_async("every write made during the refusal arrives", || async {
        for key in &keys {
            if local.get_item(key).await.unwrap().is_none() {
                return false;
            }
        }
        true
    })
    .await;
    assert_eq!(
        recorded.counter(names::EVENTS_REJECTED, &[("reason", "store_refused")]),
        0,
        "a refusing server is not bad input"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn noreplicas_holds_changes_back_until_replicas_return() {
    refused_writes_are_held_back_and_land_after(
        &[&["CONFIG", "SET", "min-replicas-to-write", "1"]],
        &[&["CONFIG", "SET", "min-replicas-to-write", "0"]],
    )
    .await;
}

#[tokio::test]
async fn out_of_memory_holds_changes_back_until_memory_is_available() {
    refused_writes_are_held_back_and_land_after(
        &[
            &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
            &["CONFIG", "SET", "maxmemory", "1"],
        ],
        &[&["CONFIG", "SET", "maxmemory", "0"]],
    )
    .await;
}

#[tokio::test]
async fn a_read_only_replica_holds_changes_back_until_it_is_a_primary_again() {
    // Nothing listens on port 1: the replica never syncs, so it keeps its data and only
    // refuses writes (READONLY), as a failed-over URL would.
    refused_writes_are_held_back_and_land_after(
        &[&["REPLICAOF", "127.0.0.1", "1"]],
        &[&["REPLICAOF", "NO", "ONE"]],
    )
    .await;
}
