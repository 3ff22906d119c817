//! A peer whose connection is down or not up yet: calls fail fast without counting
//! against its circuit breaker (nothing reached the peer), so the first reads after the
//! connection comes up go through at once instead of waiting out an open circuit.

#![allow(clippy::unwrap_used)] // Tests panic on failure by design.

mod common;

use common::{peer_config, DEADLINE};
use replication_core::{PeerBackend, PeerSettings, ReadRequest, Settings, StreamId};
use replication_peer::RedisPeer;
use replication_testkit::RedisServer;
use std::time::Duration;

fn settings() -> Settings {
    Settings {
        peer: PeerSettings {
            connect_timeout: Duration::from_secs(2),
            reconnect_initial_delay: Duration::from_millis(50),
            reconnect_max_delay: Duration::from_millis(200),
            circuit_failure_threshold: 3,
            // Far longer than the test: an open circuit would fail it.
            circuit_open_for: Duration::from_secs(600),
            ..PeerSettings::default()
        },
        ..Settings::default()
    }
}

fn read() -> ReadRequest {
    ReadRequest {
        after: StreamId::ZERO,
        count: 10,
        block: None,
    }
}

#[tokio::test]
async fn calls_while_disconnected_leave_the_circuit_closed() {
    let mut redis = RedisServer::start().unwrap();
    let peer = RedisPeer::new(&peer_config(&redis.url(), "n:"), &settings()).unwrap();
    peer.wait_connected(DEADLINE).await.unwrap();
    redis.kill();
    // The peer notices the connection is gone (a read fails), then every further call fails
    // fast while it reconnects.
    let started = tokio::time::Instant::now();
    while peer.read_stream(read()).await.is_ok() {
        assert!(started.elapsed() < DEADLINE, "the kill was never noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..20 {
        assert!(peer.read_stream(read()).await.is_err());
        assert!(peer.read_stream_checked(StreamId::ZERO, 10).await.is_err());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !peer.circuit().is_open(),
        "calls that never reached the peer opened its circuit: {:?}",
        peer.circuit().counters()
    );
    redis.restart().unwrap();
    peer.wait_connected(DEADLINE).await.unwrap();
    peer.read_stream_checked(StreamId::ZERO, 10).await.unwrap();
    peer.read_stream(read()).await.unwrap();
}
