//! Object ids over `settings.limits` are refused before any bookkeeping, naming the limit;
//! deep ids within them work.

use crate::common::*;
use replication_core::{Change, SyncEngineRef, SyncItem};
use replication_node::NodeError;

/// `a.a.a...` of `len` bytes: long and as deep as an id of that length can be.
fn chain(len: usize) -> String {
    "a.".repeat(len / 2) + "a"
}

#[tokio::test]
async fn ids_over_the_limits_are_refused_naming_the_limit_and_nothing_is_written() {
    let server = server();
    let store = store(&server, "n:").await;
    for len in [16 * 1024, 100 * 1024] {
        let id = chain(len);
        let error = store.put(&id, b"x".to_vec()).await.unwrap_err();
        assert!(matches!(error, NodeError::InvalidKey(_)), "{error}");
        assert!(!error.is_retriable());
        assert!(error.to_string().contains("max_object_id_bytes"), "{error}");
        let replicated = store
            .apply_batch(vec![Change::Put(SyncItem::new(&id, b"x".to_vec(), 1, 1))])
            .await
            .unwrap_err();
        assert!(!replicated.is_retriable());
        assert!(
            replicated.message().contains("max_object_id_bytes"),
            "{}",
            replicated.message()
        );
        assert!(store.delete(id.clone()).await.is_err());
    }
    assert_eq!(server.command(&["DBSIZE"]).unwrap().trim(), ":0");
}

#[tokio::test]
async fn a_deep_id_within_the_limits_is_stored_with_its_whole_branch() {
    let server = server();
    let store = store(&server, "n:").await;
    let probe = probe(&server).await;
    // 32 segments (the default limit), 991 bytes: under both limits.
    let deep: String = (0..32)
        .map(|i| format!("s{i:0>29}"))
        .collect::<Vec<_>>()
        .join(".");
    assert_eq!(deep.len(), 32 * 30 + 31);
    let item = store.put(&deep, b"deep".to_vec()).await.unwrap();
    assert_eq!(store.get_item(&deep).await.unwrap(), Some(item));
    check_tree(&probe, "n:").await;
    assert!(store.delete(deep.clone()).await.unwrap());
    check_tree(&probe, "n:").await;
}

#[tokio::test]
async fn the_limits_are_configurable() {
    let server = server();
    let mut config = replication_node::NodeStoreConfig::new(server.url());
    config.object_id_limits.max_segments = 2;
    let store = replication_node::NodeStore::connect(config).await.unwrap();
    store.put("a.b", b"ok".to_vec()).await.unwrap();
    let error = store.put("a.b.c", b"no".to_vec()).await.unwrap_err();
    assert!(
        error.to_string().contains("max_object_id_segments"),
        "{error}"
    );
}
