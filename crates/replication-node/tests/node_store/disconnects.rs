//! A connection dropped while a command's reply is on its way back: the store's client does
//! not replay the command (the call fails retriably to its one owner, who retries it), and
//! a commit block the client resends after reconnecting writes nothing twice.

use crate::common::*;
use replication_core::{Change, SyncEngineRef, SyncItem};
use replication_node::{NodeStore, NodeStoreConfig};
use replication_testkit::{eventually, FaultProxy, LinkMode, RedisServer};

fn puts(keys: &[&str], version: u64) -> Vec<Change> {
    keys.iter()
        .map(|key| Change::Put(SyncItem::new(*key, b"body".to_vec(), version, 5)))
        .collect()
}

async fn store_behind(proxy: &FaultProxy) -> NodeStore {
    NodeStore::connect(NodeStoreConfig::new(proxy.redis_url()))
        .await
        .expect("store connects through the proxy")
}

/// Holds replies until `command` has reached the server `before + 1` times, then cuts the
/// connection and lets traffic flow again.
async fn cut_after_it_ran(server: &RedisServer, proxy: &FaultProxy, command: &str, before: u64) {
    eventually(&format!("{command} reaches the server"), || {
        command_calls(server, command) > before
    })
    .await;
    proxy.cut();
    proxy.heal();
}

#[tokio::test]
async fn a_write_whose_read_was_cut_fails_to_its_owner_and_is_not_replayed() {
    let server = server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let store = store_behind(&proxy).await;
    let reads = command_calls(&server, "mget");
    let commits = command_calls(&server, "exec");
    proxy.set(LinkMode::HoldReplies);
    let write = tokio::spawn({
        let store = store.clone();
        async move { store.apply(puts(&["a.1", "a.2"], 1)).await }
    });
    cut_after_it_ran(&server, &proxy, "mget", reads).await;
    let error = write
        .await
        .unwrap()
        .expect_err("the cut read fails the write");
    assert!(error.is_retriable(), "{error}");
    assert_eq!(
        command_calls(&server, "mget"),
        reads + 1,
        "the client did not replay the read"
    );
    assert_eq!(command_calls(&server, "exec"), commits, "nothing committed");
    // Its owner retries it; the store works on the new connection.
    store.apply(puts(&["a.1", "a.2"], 1)).await.unwrap();
    assert!(store.get_item("a.2").await.unwrap().is_some());
}

#[tokio::test]
async fn a_commit_whose_reply_was_lost_lands_once() {
    let server = server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let store = store_behind(&proxy).await;
    let probe = probe(&server).await;
    // A warm tree cache and the batch's states read ahead: the write is its commit alone.
    store.apply(puts(&["b.1", "b.2"], 1)).await.unwrap();
    let keys = vec!["b.1".to_owned(), "b.2".to_owned()];
    store.local_states(&keys).await.unwrap();
    let commits = command_calls(&server, "exec");
    proxy.set(LinkMode::HoldReplies);
    let write = tokio::spawn({
        let store = store.clone();
        async move { store.apply(puts(&["b.1", "b.2"], 2)).await }
    });
    cut_after_it_ran(&server, &proxy, "exec", commits).await;
    write
        .await
        .unwrap()
        .expect("the block landed, and the store knows it");
    // fred resends a transaction once after reconnecting, whatever its attempt count:
    // the second block found the token changed and wrote nothing.
    assert_eq!(command_calls(&server, "exec"), commits + 2);
    for key in &keys {
        let held = store.get_item(key).await.unwrap().unwrap();
        assert_eq!(held.version, 2, "{key}");
    }
    // No staged body of the resent block is left behind, and the tree is whole.
    check_tree(&probe, "").await;
}
