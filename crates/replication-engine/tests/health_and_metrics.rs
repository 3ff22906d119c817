//! Health and metrics over in-memory stores and peers (no Redis): `health_check` reads
//! cached state only, reports lag, catching up and errors; the hot path's counters and the
//! engine state gauge.
#![allow(clippy::unwrap_used)]

mod common;

use common::{config, engine, engine_with, recorder};
use replication_core::mocks::MockPeerBackend;
use replication_core::{ConnectionState, ConnectionStatus};
use replication_engine::metrics as names;
use replication_engine::{MemoryCursorStore, PeerBackend, PeerConfig, Settings};
use replication_testkit::{eventually, MemoryMesh, MemoryPeer, MemoryStore};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
#[tokio::test]
async fn health_check_reads_cached_state_only() {
    let in_health = Arc::new(AtomicBool::new(false));
    let io_during_health = Arc::new(AtomicUsize::new(0));
    let connector = {
        let (in_health, io) = (in_health.clone(), io_during_health.clone());
        move |peer: &PeerConfig,
              _: &Settings|
              -> Result<Arc<dyn PeerBackend>, replication_engine::PeerError> {
            let mut mock = MockPeerBackend::new();
            let id = peer.node_id.clone();
            mock.expect_node_id().return_const(id);
            mock.expect_connection().returning(|| ConnectionStatus {
                state: ConnectionState::Connected,
                circuit_open: false,
                last_error: None,
                last_success_ms: Some(1),
                reconnects: 0,
                ..ConnectionStatus::default()
            });
            // Hot and cold paths are off: nothing but health may touch the peer, and
            // health must do no I/O at all.
            let (flag, io) = (in_health.clone(), io.clone());
            let count = move || {
                if flag.load(Ordering::SeqCst) {
                    io.fetch_add(1, Ordering::SeqCst);
                }
            };
            let c = count.clone();
            mock.expect_ping().never().returning(move || {
                c();
                Ok(Duration::ZERO)
            });
            mock.expect_stream_info().never().returning(move || {
                count();
                Ok(None)
            });
            mock.expect_read_stream().never();
            mock.expect_read_stream_checked().never();
            mock.expect_get_merkle_root().never();
            mock.expect_merkle_children().never();
            mock.expect_read_items().never();
            mock.expect_read_tombstones().never();
            mock.expect_close().returning(|| ());
            Ok(Arc::new(mock))
        }
    };
    let mut cfg = config("me", &["a", "b"]);
    cfg.settings.hot_path.enabled = false;
    cfg.settings.cold_path.enabled = false;
    let (mut engine, _tx) = engine_with(
        &MemoryStore::new(),
        cfg,
        Arc::new(connector),
        Arc::new(MemoryCursorStore::new()),
    );
    engine.start().await.unwrap();
    in_health.store(true, Ordering::SeqCst);
    let health = engine.health_check().await;
    in_health.store(false, Ordering::SeqCst);
    assert_eq!(io_during_health.load(Ordering::SeqCst), 0);
    assert!(health.ready && health.healthy, "{health:?}");
    assert_eq!((health.peers_connected, health.peers_total), (2, 2));
    let json = serde_json::to_value(&health).unwrap();
    for field in [
        "connected",
        "circuit_open",
        "lag_ms",
        "lag_entries",
        "last_error",
        "catching_up",
    ] {
        assert!(
            json["peers"][0].get(field).is_some(),
            "missing {field}: {json}"
        );
    }
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn health_reports_lag_catching_up_and_errors() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.hot_path.batch_size = 2;
    cfg.settings.hot_path.max_batch_size = 2;
    for i in 0..20 {
        a.put_local(&format!("k{i}"), "v");
    }
    me.set_failing_writes(true);
    let (mut engine, _tx) = engine(&me, cfg, &mesh);
    engine.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peer = engine.health_check().await.peers.remove(0);
    assert!(
        peer.catching_up && peer.lag_entries.unwrap() > 0,
        "{peer:?}"
    );
    assert!(peer.lag_ms.is_some());
    me.set_failing_writes(false);
    eventually("caught up", || me.len() == 20).await;
    eventually("lag is zero", || {
        let peer = engine.peer_manager().health().remove(0);
        peer.lag_entries == Some(0) && !peer.catching_up
    })
    .await;
    mesh.last_peer("a").unwrap().set_fail_all(true);
    eventually("the read error shows", || {
        engine.peer_manager().health()[0].last_error.is_some()
    })
    .await;
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn hot_path_metrics_count_read_applied_deduped_and_collapsed() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    a.put_local("x", "1");
    a.put_local("x", "2");
    a.put_local("y", "1");
    let held = a.item("y").unwrap();
    me.apply_change(replication_engine::Change::Put(held))
        .unwrap();
    let peer = MemoryPeer::new("a", a.clone());
    peer.append_raw(vec![(
        bytes::Bytes::from_static(b"op"),
        bytes::Bytes::from_static(b"bogus"),
    )]);
    let (mut engine, _tx) = engine(&me, config("me", &["a"]), &mesh);
    engine.start().await.unwrap();
    let p = [("peer", "a")];
    eventually("all four entries are read", || {
        recorded.counter(names::EVENTS_READ, &p) == 4
    })
    .await;
    eventually("x is applied", || {
        recorded.counter(names::EVENTS_APPLIED, &p) == 1
    })
    .await;
    assert_eq!(recorded.counter(names::EVENTS_COLLAPSED, &p), 1);
    assert_eq!(
        recorded.counter(names::EVENTS_DEDUPED, &p),
        1,
        "y was already held"
    );
    assert_eq!(recorded.counter(names::EVENTS_REJECTED, &p), 1);
    engine.shutdown().await;
}

#[tokio::test]
async fn engine_state_is_a_gauge() {
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (mut engine, _tx) = engine(
        &MemoryStore::new(),
        config("me", &[]),
        &MemoryMesh::default(),
    );
    // Snapshots drain gauges: each read follows the change it checks.
    engine.start().await.unwrap();
    assert_eq!(recorded.gauge(names::ENGINE_STATE, &[]), Some(2.0));
    engine.shutdown().await;
    assert_eq!(recorded.gauge(names::ENGINE_STATE, &[]), Some(4.0));
}
