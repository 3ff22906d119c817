//! Acceptance tests with real redis-server peers: each peer is a `NodeStore` writing its
//! CDC stream, Merkle tree and items in the PROTOCOL layout; the engine's local store is a
//! recording `MemoryStore`.
#![allow(clippy::unwrap_used)]

use futures::StreamExt;
use metrics_util::debugging::DebuggingRecorder;
use replication_engine::metrics as names;
use replication_engine::{
    CursorStore, EngineState, MemoryCursorStore, PeerConfig, ReplicationEngine,
    ReplicationEngineConfig, SqliteCursorStore,
};
use replication_node::{NodeStore, NodeStoreConfig};
use replication_testkit::{eventually, MemoryStore, Recorded, RedisServer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

async fn node(server: &RedisServer, prefix: &str) -> NodeStore {
    NodeStore::connect(NodeStoreConfig::new(server.url()).with_prefix(prefix))
        .await
        .unwrap()
}

fn peer(id: &str, url: String, prefix: &str) -> PeerConfig {
    let mut p = PeerConfig::new(id, url);
    p.redis_prefix = prefix.into();
    p
}

fn config(peers: Vec<PeerConfig>) -> ReplicationEngineConfig {
    let mut c = ReplicationEngineConfig::new("me");
    c.peers = peers;
    let s = &mut c.settings;
    s.hot_path.block_timeout = Duration::from_millis(100);
    s.hot_path.max_batch_size = 500;
    s.cold_path.interval = Duration::from_secs(3600);
    s.peer.connect_timeout = Duration::from_secs(1);
    s.peer.command_timeout = Duration::from_secs(2);
    s.peer.reconnect_initial_delay = Duration::from_millis(50);
    s.peer.reconnect_max_delay = Duration::from_millis(500);
    s.sync_engine.retry_initial_delay = Duration::from_millis(20);
    s.sync_engine.retry_max_delay = Duration::from_millis(200);
    s.shutdown_timeout = Duration::from_secs(5);
    c
}

fn engine(
    me: &MemoryStore,
    config: ReplicationEngineConfig,
    cursors: Option<Arc<dyn CursorStore>>,
) -> (
    ReplicationEngine<MemoryStore>,
    watch::Sender<ReplicationEngineConfig>,
) {
    let (tx, rx) = watch::channel(config.clone());
    let mut builder = ReplicationEngine::builder(config, rx).sync_engine(Arc::new(me.clone()));
    if let Some(cursors) = cursors {
        builder = builder.cursor_store(cursors);
    }
    (builder.build(), tx)
}

/// Writes puts of `{tag}.{i}` on `node` and deletes every ninth key again: for `0..4500`
/// that is 5 000 events. Returns the keys written.
async fn write_events(node: &NodeStore, tag: &str, range: std::ops::Range<usize>) -> Vec<String> {
    let keys: Vec<String> = range.map(|i| format!("{tag}.{i}")).collect();
    futures::stream::iter(keys.iter().enumerate())
        .for_each_concurrent(64, |(i, key)| async move {
            node.put(key, format!("{key} content").into_bytes())
                .await
                .unwrap();
            if i % 9 == 0 {
                assert!(node.delete_item(key).await.unwrap());
            }
        })
        .await;
    keys
}

/// Every key of `keys` is held identically by `node` and `me` (or deleted in both, with a
/// tombstone here).
async fn assert_same(node: &NodeStore, me: &MemoryStore, keys: &[String]) {
    let theirs: Vec<_> = futures::stream::iter(keys)
        .map(|key| node.get_item(key))
        .buffered(32)
        .collect()
        .await;
    for (key, theirs) in keys.iter().zip(theirs) {
        match (theirs.unwrap(), me.item(key)) {
            (Some(t), Some(o)) => {
                assert_eq!(
                    (&t.content, &t.content_hash, t.version),
                    (&o.content, &o.content_hash, o.version),
                    "{key}"
                )
            }
            (None, None) => assert!(
                me.tombstone(key).is_some(),
                "{key}: deleted without a tombstone"
            ),
            (t, o) => panic!(
                "{key}: peer has {:?}, we have {:?}",
                t.is_some(),
                o.is_some()
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_times_5000_events_replicate_exactly() {
    let (sa, sb) = (RedisServer::start().unwrap(), RedisServer::start().unwrap());
    let (na, nb) = (node(&sa, "a:").await, node(&sb, "b:").await);
    let me = MemoryStore::new();
    let cfg = config(vec![peer("a", sa.url(), "a:"), peer("b", sb.url(), "b:")]);
    let (mut engine, _tx) = engine(&me, cfg, Some(Arc::new(MemoryCursorStore::new())));
    engine.start().await.unwrap();
    let (ka, kb) = tokio::join!(
        write_events(&na, "a", 0..4500),
        write_events(&nb, "b", 0..4500)
    );
    // 4 500 puts each, every ninth key deleted again.
    let expected = 2 * (4500 - 500);
    eventually("every item arrives", || me.len() == expected).await;
    eventually("every delete arrives", || me.tombstones().len() == 1000).await;
    assert_same(&na, &me, &ka).await;
    assert_same(&nb, &me, &kb).await;
    assert_eq!(
        me.counters().deletes,
        0,
        "the engine never deletes with CDC"
    );
    let health = engine.health_check().await;
    assert!(health.healthy, "{health:?}");
    engine.shutdown().await;
}

#[tokio::test]
async fn restart_mid_stream_replays_nothing_checkpointed_and_loses_nothing() {
    let sa = RedisServer::start().unwrap();
    let na = node(&sa, "a:").await;
    let me = MemoryStore::new();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(vec![peer("a", sa.url(), "a:")]);
    cfg.settings.cold_path.enabled = false;
    cfg.settings.hot_path.batch_size = 50;
    cfg.settings.hot_path.max_batch_size = 50;
    cfg.cursor.sqlite_path = dir.path().join("cursors.db");
    let recorder = DebuggingRecorder::new();
    let recorded = Recorded::new(recorder.snapshotter());
    let _guard = metrics::set_default_local_recorder(&recorder);
    let keys = write_events(&na, "k", 0..900).await;

    let (mut first, _t1) = engine(&me, cfg.clone(), None);
    first.start().await.unwrap();
    eventually("part of the stream is applied", || me.len() >= 100).await;
    first.shutdown().await;
    let read_first = recorded.counter(names::EVENTS_READ, &[("peer", "a")]);
    let sqlite = SqliteCursorStore::open(&cfg.cursor.sqlite_path, Default::default())
        .await
        .unwrap();
    let cursor = sqlite.load_all().await.unwrap().remove(0);
    sqlite.close().await.unwrap();
    let checkpointed = cursor.entries_added.unwrap();
    assert!(checkpointed > 0);

    let more = write_events(&na, "m", 0..100).await;
    let total: u64 = sa
        .command(&["XLEN", "a:cdc"])
        .unwrap()
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap();
    let (mut second, _t2) = engine(&me, cfg, None);
    second.start().await.unwrap();
    // 900 + 100 puts, every ninth key deleted again (100 + 12).
    eventually("everything arrives", || {
        me.len() == 888 && me.tombstones().len() == 112
    })
    .await;
    second.shutdown().await;
    let read_second = recorded.counter(names::EVENTS_READ, &[("peer", "a")]) - read_first;
    assert_eq!(
        read_second,
        total - checkpointed,
        "the second run read exactly what was not checkpointed"
    );
    assert_same(&na, &me, &keys).await;
    assert_same(&na, &me, &more).await;
    assert_eq!(second.state(), EngineState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_down_at_start_joins_later() {
    let mut sa = RedisServer::builder().persistence(true).start().unwrap();
    let url = sa.url();
    sa.kill();
    let me = MemoryStore::new();
    let (mut engine, _tx) = engine(
        &me,
        config(vec![peer("a", url, "a:")]),
        Some(Arc::new(MemoryCursorStore::new())),
    );
    tokio::time::timeout(Duration::from_secs(10), engine.start())
        .await
        .expect("start() waited for a dead peer")
        .unwrap();
    assert_eq!(engine.state(), EngineState::Running);
    let health = engine.health_check().await;
    assert!(
        !health.peers[0].connected && health.ready && !health.healthy,
        "{health:?}"
    );

    sa.restart().unwrap();
    let na = node(&sa, "a:").await;
    let keys = write_events(&na, "k", 0..50).await;
    eventually("the late peer's writes arrive", || {
        me.len() == 44 && me.tombstones().len() == 6
    })
    .await;
    assert_same(&na, &me, &keys).await;
    eventually("it shows connected", || {
        engine.peer_manager().health()[0].connected
    })
    .await;
    engine.shutdown().await;
}

#[tokio::test]
async fn a_trim_past_the_cursor_is_repaired_from_the_merkle_tree() {
    let sa = RedisServer::start().unwrap();
    let na = node(&sa, "a:").await;
    let me = MemoryStore::new();
    let recorder = DebuggingRecorder::new();
    let recorded = Recorded::new(recorder.snapshotter());
    let _guard = metrics::set_default_local_recorder(&recorder);
    let cursors: Arc<dyn CursorStore> = Arc::new(MemoryCursorStore::new());
    let cfg = config(vec![peer("a", sa.url(), "a:")]); // cold interval 1 h
    let first_keys = write_events(&na, "early", 0..20).await;
    let (mut first, _t1) = engine(&me, cfg.clone(), Some(cursors.clone()));
    first.start().await.unwrap();
    eventually("the first writes arrive", || me.len() == 17).await;
    first.shutdown().await;

    let missed = write_events(&na, "missed", 0..200).await;
    sa.command(&["XTRIM", "a:cdc", "MAXLEN", "10"]).unwrap();
    let (mut second, _t2) = engine(&me, cfg, Some(cursors));
    second.start().await.unwrap();
    eventually("repair brings what was trimmed", || me.len() == 17 + 177).await;
    assert!(recorded.counter(names::GAPS, &[("peer", "a"), ("kind", "trimmed")]) >= 1);
    assert!(recorded.counter(names::REPAIR_ITEMS_APPLIED, &[("peer", "a")]) > 0);
    na.put("after", b"x".to_vec()).await.unwrap();
    eventually("the stream is tailed again", || me.item("after").is_some()).await;
    second.shutdown().await;
    assert_same(&na, &me, &first_keys).await;
    for key in &missed {
        let theirs = na.get_item(key).await.unwrap();
        assert_eq!(
            theirs.map(|t| t.content_hash),
            me.item(key).map(|o| o.content_hash),
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_peer_through_the_watch_channel_starts_replicating_it() {
    let (sa, sb) = (RedisServer::start().unwrap(), RedisServer::start().unwrap());
    let (na, nb) = (node(&sa, "a:").await, node(&sb, "b:").await);
    let me = MemoryStore::new();
    let cfg = config(vec![peer("a", sa.url(), "a:")]);
    let (mut engine, tx) = engine(&me, cfg.clone(), Some(Arc::new(MemoryCursorStore::new())));
    engine.start().await.unwrap();
    na.put("from.a", b"1".to_vec()).await.unwrap();
    nb.put("from.b", b"1".to_vec()).await.unwrap();
    eventually("a replicates", || me.item("from.a").is_some()).await;
    assert!(me.item("from.b").is_none());
    let mut with_b = cfg;
    with_b.peers.push(peer("b", sb.url(), "b:"));
    tx.send_replace(with_b);
    eventually("b replicates once added", || me.item("from.b").is_some()).await;
    nb.put("from.b.2", b"2".to_vec()).await.unwrap();
    eventually("and keeps replicating", || me.item("from.b.2").is_some()).await;
    assert_eq!(engine.health_check().await.peers_connected, 2);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_local_store_opens_the_circuit_and_recovers() {
    let sa = RedisServer::start().unwrap();
    let na = node(&sa, "a:").await;
    let me = MemoryStore::new();
    let mut cfg = config(vec![peer("a", sa.url(), "a:")]);
    cfg.settings.sync_engine.circuit_failure_threshold = 3;
    cfg.settings.sync_engine.circuit_open_for = Duration::from_millis(500);
    let (mut engine, _tx) = engine(&me, cfg, Some(Arc::new(MemoryCursorStore::new())));
    engine.start().await.unwrap();
    me.set_failing_writes(true);
    na.put("k", b"v".to_vec()).await.unwrap();
    eventually("the circuit opens", || engine.circuit().is_open()).await;
    let health = engine.health_check().await;
    assert!(
        !health.ready && health.sync_engine_circuit == "open",
        "{health:?}"
    );
    me.set_failing_writes(false);
    eventually("the write lands", || me.item("k").is_some()).await;
    eventually("the circuit closes", || {
        engine.circuit().state_name() == "closed"
    })
    .await;
    let health = engine.health_check().await;
    assert!(health.ready && health.healthy, "{health:?}");
    engine.shutdown().await;
}

/// The writer deleted `k`, collected the tombstone, and then got its older put back (its
/// cold path copied it from a peer that had applied that put before reading the DEL). A
/// reader getting to the DEL only now must still delete `k`: the entry carries the
/// delete's stamp. With a bare DEL the reader found no tombstone, saw the writer holding
/// `k` again, skipped the delete as superseded, and the deleted key came back.
#[tokio::test]
async fn a_stamped_delete_still_deletes_after_its_writer_collected_the_tombstone() {
    use replication_engine::SyncEngineRef;
    let server = RedisServer::start().unwrap();
    let writer = node(&server, "p:").await;
    let old = writer.put("k", b"older".to_vec()).await.unwrap();
    assert!(writer.delete_item("k").await.unwrap());
    assert_eq!(writer.purge_tombstones(i64::MAX).await.unwrap(), 1);
    // Replicated writes append nothing to the stream: the reader still sees PUT then DEL.
    writer.submit(old.clone()).await.unwrap();
    assert_eq!(writer.get_item("k").await.unwrap(), Some(old.clone()));

    let me = MemoryStore::new();
    let mut cfg = config(vec![peer("p", server.url(), "p:")]);
    // One entry a batch: the PUT is applied before the DEL is read, as in the race.
    cfg.settings.hot_path.batch_size = 1;
    cfg.settings.hot_path.max_batch_size = 1;
    cfg.settings.cold_path.enabled = false;
    let (mut engine, _tx) = engine(&me, cfg, None);
    engine.start().await.unwrap();
    eventually("the reader judges the DEL", || me.tombstone("k").is_some()).await;
    assert_eq!(me.item("k"), None, "the deleted key came back");
    let tombstone = me.tombstone("k").unwrap();
    assert_eq!(tombstone.version, old.version + 1);
    engine.shutdown().await;
}
