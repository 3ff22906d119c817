//! `replicationd run` with `[sync_engine]` (built with the `sync-engine` feature): the
//! daemon starts sync-engine in its own process on a vanilla redis-server and a SQLite file,
//! replicates a peer's writes into it, keeps passwords out of its log, and stops cleanly.

#![cfg(feature = "sync-engine")]
// Test helpers outside #[test] fns: a panic is the failure report here too.
#![allow(clippy::unwrap_used)]

use replication_node::{NodeStore, NodeStoreConfig};
use replication_testkit::{eventually_async, eventually_some, free_port, http_get_at, RedisServer};
use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_replicationd");
const PASSWORD: &str = "hunter2-sync";

#[tokio::test]
async fn replicates_a_peer_into_sync_engine_and_stops_cleanly() {
    let own = RedisServer::builder()
        .arg("--requirepass")
        .arg(PASSWORD)
        .start()
        .unwrap();
    let own_url = format!("redis://:{PASSWORD}@127.0.0.1:{}", own.port());
    let peer_redis = RedisServer::start().unwrap();
    let peer = NodeStore::connect(NodeStoreConfig::new(peer_redis.url()).with_prefix("b:"))
        .await
        .unwrap();
    let first = peer.put("doc.1", b"hello".to_vec()).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let http = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let config = dir.path().join("a.toml");
    std::fs::write(
        &config,
        format!(
            "local_node_id = \"a\"\n\
             [[peers]]\nnode_id = \"b\"\nredis_url = \"{peer}\"\nredis_prefix = \"b:\"\n\
             [settings.hot_path]\nblock_timeout = \"200ms\"\n\
             [settings.cold_path]\ninterval = \"2s\"\n\
             [cursor]\nsqlite_path = \"{cursors}\"\n\
             [sync_engine]\nredis_url = \"{own_url}\"\nredis_prefix = \"a:\"\n\
             sql_url = \"sqlite:{sql}?mode=rwc\"\nwal_path = \"{wal}\"\n\
             [http]\nlisten = \"{http}\"\n",
            peer = peer_redis.url(),
            cursors = dir.path().join("cursors.db").display(),
            sql = dir.path().join("sync.db").display(),
            wal = dir.path().join("wal.db").display(),
        ),
    )
    .unwrap();

    // Local writes belong to the application's sync-engine: the CLI refuses them clearly.
    let put = Command::new(BIN)
        .args(["put", "--config"])
        .arg(&config)
        .args(["k", "v"])
        .output()
        .unwrap();
    assert!(!put.status.success());
    assert!(
        String::from_utf8_lossy(&put.stderr).contains("[sync_engine]"),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );

    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually_async("it is ready", || async {
        http_get_at(http, "/ready").is_some_and(|(status, _)| status == 200)
    })
    .await;

    // What the daemon stored is sync-engine's Redis copy: the item string our readers parse.
    let mine = NodeStore::connect(NodeStoreConfig::new(own_url.clone()).with_prefix("a:"))
        .await
        .unwrap();
    eventually_async("the peer's item is in sync-engine", || async {
        mine.get_item("doc.1").await.unwrap().map(|i| i.stamp()) == Some(first.stamp())
    })
    .await;
    let second = peer.put("doc.2", b"world".to_vec()).await.unwrap();
    eventually_async("a later write follows", || async {
        mine.get_item("doc.2").await.unwrap().map(|i| i.stamp()) == Some(second.stamp())
    })
    .await;

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = eventually_some("the daemon stops", || child.try_wait().unwrap()).await;
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(exit.success(), "exit {exit}: {log}");
    assert!(
        log.contains("sync-engine started as the local store"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD), "a password reached the log: {log}");
}
