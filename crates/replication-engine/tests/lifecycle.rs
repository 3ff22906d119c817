//! Lifecycle of the engine over in-memory stores and peers (no Redis): the backends the
//! builder is given, start and its checks, disabled peers, shutdown that cannot hang.
#![allow(clippy::unwrap_used)]

mod common;

use common::{config, engine, engine_with, Engine, RecordingCursors};
use replication_engine::{
    CursorStore, EngineError, EngineState, MemoryCursorStore, PeerConfig, ReplicationEngine,
    Settings,
};
use replication_testkit::{eventually, MemoryMesh, MemoryStore};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
#[test]
fn public_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (_tx, rx) = watch::channel(config("me", &[]));
    let mut engine: Engine = ReplicationEngine::builder(config("me", &[]), rx)
        .sync_engine(Arc::new(MemoryStore::new()))
        .build();
    assert_send(&engine.health_check());
    assert_send(&engine.start());
    assert_send(&engine.shutdown());
}

#[tokio::test]
async fn a_disabled_peer_is_kept_in_health_but_never_connected() {
    let (a, b, me) = (MemoryStore::new(), MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a), ("b", &b)]);
    let mut cfg = config("me", &["a", "b"]);
    cfg.peers[1].enabled = false;
    a.put_local("from.a", "1");
    b.put_local("from.b", "1");
    let (mut engine, _tx) = engine(&me, cfg, &mesh);
    engine.start().await.unwrap();
    eventually("a's item arrives", || me.item("from.a").is_some()).await;
    let health = engine.health_check().await;
    assert_eq!(health.peers_total, 2);
    assert_eq!(health.peers_connected, 1);
    let b_health = health.peers.iter().find(|p| p.node_id == "b").unwrap();
    assert!(!b_health.enabled && !b_health.connected, "{b_health:?}");
    assert!(
        health.healthy,
        "a disabled peer does not make the node unhealthy: {health:?}"
    );
    assert_eq!(
        mesh.connects("b"),
        0,
        "the connector is never called for a disabled peer"
    );
    assert!(me.item("from.b").is_none());
    engine.shutdown().await;
}

#[tokio::test]
async fn an_injected_cursor_store_is_used_and_sqlite_is_opened_from_config_otherwise() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    a.put_local("k", "v");
    let recording = Arc::new(RecordingCursors::default());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("me", &["a"]);
    cfg.cursor.sqlite_path = dir.path().join("never-opened.db");
    let (mut engine, _tx) = engine_with(
        &me,
        cfg.clone(),
        Arc::new(mesh.connector()),
        recording.clone(),
    );
    engine.start().await.unwrap();
    eventually("the cursor is recorded", || {
        recording.max_set("a") == Some(a.last_stream_id())
    })
    .await;
    engine.shutdown().await;
    assert!(
        !cfg.cursor.sqlite_path.exists(),
        "an injected store replaces SQLite"
    );

    cfg.cursor.sqlite_path = dir.path().join("cursors.db");
    let (tx, rx) = watch::channel(cfg.clone());
    let mut engine = ReplicationEngine::builder(cfg.clone(), rx)
        .sync_engine(Arc::new(MemoryStore::new()))
        .peer_connector(Arc::new(mesh.connector()))
        .build();
    engine.start().await.unwrap();
    assert!(
        cfg.cursor.sqlite_path.exists(),
        "start() opens the SQLite cursor store from `cursor`"
    );
    engine.shutdown().await;
    drop(tx);
    let store =
        replication_engine::SqliteCursorStore::open(&cfg.cursor.sqlite_path, Default::default())
            .await
            .unwrap();
    let cursors = store.load_all().await.unwrap();
    assert_eq!(cursors.len(), 1);
    assert_eq!(
        cursors[0].stream_id,
        a.last_stream_id(),
        "the cursor was flushed on shutdown"
    );
}

#[tokio::test]
async fn start_validates_config_and_refuses_a_second_start() {
    let me = MemoryStore::new();
    let mesh = MemoryMesh::default();
    let mut bad = config("me", &["a"]);
    bad.peers[0].redis_url = "http://127.0.0.1:1".into();
    let (mut engine, _tx) = engine(&me, bad, &mesh);
    let states = engine.state_receiver();
    let err = engine.start().await.unwrap_err();
    assert!(
        matches!(err, EngineError::Config(ref e) if e.field.contains("redis_url")),
        "{err}"
    );
    assert_eq!(engine.state(), EngineState::Failed);
    assert!(states.has_changed().unwrap());
    assert!(matches!(
        engine.start().await,
        Err(EngineError::InvalidState {
            state: EngineState::Failed,
            ..
        })
    ));
    engine.shutdown().await;
    assert_eq!(engine.state(), EngineState::Stopped);

    let (mut engine, _tx) = self::engine(&me, config("me", &[]), &mesh);
    engine.start().await.unwrap();
    assert_eq!(engine.state(), EngineState::Running);
    assert!(engine.is_running());
    assert!(matches!(
        engine.start().await,
        Err(EngineError::InvalidState {
            state: EngineState::Running,
            ..
        })
    ));
    engine.shutdown().await;
    assert!(matches!(
        engine.start().await,
        Err(EngineError::InvalidState {
            state: EngineState::Stopped,
            ..
        })
    ));
}

#[tokio::test]
async fn start_connects_peers_while_connecting_then_runs() {
    let a = MemoryStore::new();
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let state_seen: Arc<Mutex<Option<watch::Receiver<EngineState>>>> = Arc::default();
    let during_connect = Arc::new(Mutex::new(Vec::new()));
    let connector = {
        let (inner, state_seen, during) =
            (mesh.connector(), state_seen.clone(), during_connect.clone());
        move |peer: &PeerConfig, settings: &Settings| {
            let state = *state_seen.lock().unwrap().as_ref().unwrap().borrow();
            during.lock().unwrap().push(state);
            inner(peer, settings)
        }
    };
    let (mut engine, _tx) = engine_with(
        &MemoryStore::new(),
        config("me", &["a"]),
        Arc::new(connector),
        Arc::new(MemoryCursorStore::new()),
    );
    assert_eq!(engine.state(), EngineState::Created);
    *state_seen.lock().unwrap() = Some(engine.state_receiver());
    engine.start().await.unwrap();
    assert_eq!(*during_connect.lock().unwrap(), [EngineState::Connecting]);
    assert_eq!(engine.state(), EngineState::Running);
    engine.shutdown().await;
    assert_eq!(engine.state(), EngineState::Stopped);
}

#[tokio::test]
async fn shutdown_does_not_hang_on_a_blackholed_peer() {
    // Accepts connections and never answers a byte.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    let mut cfg = config("me", &[]);
    cfg.peers
        .push(PeerConfig::new("dead", format!("redis://127.0.0.1:{port}")));
    cfg.settings.shutdown_timeout = Duration::from_secs(1);
    cfg.settings.cold_path.interval = Duration::from_millis(200);
    let (tx, rx) = watch::channel(cfg.clone());
    let mut engine = ReplicationEngine::builder(cfg, rx)
        .sync_engine(Arc::new(MemoryStore::new()))
        .cursor_store(Arc::new(MemoryCursorStore::new()))
        .build();
    tokio::time::timeout(Duration::from_secs(10), engine.start())
        .await
        .expect("start() hung")
        .unwrap();
    // The engine's connection reached the blackhole (and hangs there).
    eventually("the engine dials the blackholed peer", || {
        !held.lock().unwrap().is_empty()
    })
    .await;
    let health = engine.health_check().await;
    assert!(!health.peers[0].connected, "{health:?}");
    assert!(health.ready, "peers do not affect readiness");
    // Generous bound (shutdown_timeout is 1 s): only a hang can exceed it.
    tokio::time::timeout(Duration::from_secs(15), engine.shutdown())
        .await
        .expect("shutdown hung on a dead peer");
    assert_eq!(engine.state(), EngineState::Stopped);
    drop(tx);
}
