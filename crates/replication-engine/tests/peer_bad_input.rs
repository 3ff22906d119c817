//! Bad data in a peer's Redis, next to good data (real redis-servers; the peer is a
//! `NodeStore`, the engine's local store a `MemoryStore`): the bad value is passed over and
//! everything around it replicates; the stream never stalls on it.
#![allow(clippy::unwrap_used)]

mod common;

use replication_engine::{MemoryCursorStore, ReplicationEngine};
use replication_testkit::{eventually, one_redis_peer, MemoryMesh, MemoryStore, RedisServer};
use std::sync::Arc;
use tokio::sync::watch;

#[tokio::test]
async fn a_malformed_tombstone_at_the_peer_does_not_stall_its_stream() {
    let server = RedisServer::start().unwrap();
    let peer = common::node_store(&server, "p:").await;
    for key in ["gone.bad", "gone.good"] {
        peer.put(key, b"v".to_vec()).await.unwrap();
        assert!(peer.delete_item(key).await.unwrap());
        // Our store stamps its DEL entries, which need no tombstone; a bare one, as a
        // sync-engine writer appends, sends the reader to the tombstones.
        let reply = server
            .command(&["XADD", "p:cdc", "*", "op", "DEL", "key", key])
            .unwrap();
        assert!(!reply.starts_with('-'), "{reply}");
    }
    // Something else wrote junk over one of the peer's tombstones.
    let reply = server
        .command(&["HSET", "p:tombstones", "gone.bad", "{not json"])
        .unwrap();
    assert!(reply.starts_with(':'), "{reply}");
    peer.put("after", b"still flowing".to_vec()).await.unwrap();

    let me = MemoryStore::new();
    let mut engine =
        common::started_on_redis(Arc::new(me.clone()), one_redis_peer(server.url())).await;
    eventually("the write after the bad tombstone arrives", || {
        me.item("after").is_some()
    })
    .await;
    // The good tombstone came along; the bad one counted as absent (the bare rule: the
    // writer holds the key in no form, so the delete applies).
    assert!(me.tombstone("gone.good").is_some());
    assert!(me.item("gone.bad").is_none() && me.item("gone.good").is_none());
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn delete_evidence_asks_whether_keys_exist_without_fetching_them() {
    // A writer that keeps no tombstones (as sync-engine): each DEL needs to know whether
    // the writer holds the key again.
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    a.set_like_sync_engine(true);
    let mesh = MemoryMesh::new(&[("a", &a)]);
    a.put_local("gone", vec![1; 1 << 20]);
    a.put_local("back", vec![2; 1 << 20]);
    a.delete_local("gone");
    a.delete_local("back");
    a.put_local("back", vec![3; 1 << 20]);
    let cfg = common::config("me", &["a"]);
    let (_tx, rx) = watch::channel(cfg.clone());
    let mut engine = ReplicationEngine::builder(cfg, rx)
        .sync_engine(Arc::new(me.clone()))
        .peer_connector(Arc::new(mesh.connector()))
        .cursor_store(Arc::new(MemoryCursorStore::new()))
        .build();
    engine.start().await.unwrap();
    eventually("the re-written key arrives", || {
        me.item("back").is_some_and(|item| item.content[0] == 3)
    })
    .await;
    assert!(me.item("gone").is_none());
    let counters = mesh.last_peer("a").unwrap().counters();
    assert!(counters.exists_calls >= 1, "{counters:?}");
    assert_eq!(
        (counters.item_calls, counters.content_bytes_returned),
        (0, 0),
        "no item was fetched to learn that it exists: {counters:?}"
    );
    engine.shutdown().await;
}
