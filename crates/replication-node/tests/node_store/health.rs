//! Backpressure: an unreachable Redis stops the store accepting writes until it is back.

use crate::common::*;
use replication_core::SyncEngineRef;
use replication_node::{NodeStore, NodeStoreConfig};
use std::time::Duration;

#[tokio::test]
async fn refuses_writes_while_redis_is_down_and_recovers() {
    let mut server = server();
    let mut config = NodeStoreConfig::new(server.url());
    config.command_timeout = Duration::from_millis(500);
    let store = NodeStore::connect(config).await.unwrap();
    store.put("k.1", b"v".to_vec()).await.unwrap();
    assert!(store.should_accept_writes());

    server.kill();
    let error = store.put("k.2", b"v".to_vec()).await.unwrap_err();
    assert!(error.is_retriable(), "{error}");
    assert!(!store.should_accept_writes());

    server.restart().unwrap();
    // The background probe notices the server is back; poll for the outcome, not a time.
    let mut waited = 0;
    while !store.should_accept_writes() {
        assert!(waited < 600, "store never accepted writes again");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    // The restarted server lost the script cache (and, without persistence, the data).
    let item = store.put("k.2", b"v".to_vec()).await.unwrap();
    assert_eq!(item.version, 1);
}

#[tokio::test]
async fn closed_store_refuses_calls() {
    let server = server();
    let store = store(&server, "").await;
    store.close().await;
    assert!(!store.should_accept_writes());
    assert!(store.put("k", vec![]).await.is_err());
    assert!(store.get("k").await.is_err());
}
