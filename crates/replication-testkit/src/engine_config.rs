//! Engine configs for tests against real Redis peers: short blocks, backoffs and shutdown,
//! so that a test sees retries and reconnects in milliseconds rather than seconds.

use replication_core::{PeerConfig, ReplicationEngineConfig};
use std::time::Duration;

/// Node `me` tailing one peer, `p`, at `peer_url` under the prefix `p:` (a `NodeStore`'s
/// layout), repair off so that only the hot path delivers, with test-sized timeouts:
/// `XREAD BLOCK` of 100 ms, peer reconnects from 50 ms to 500 ms, local-store retries from
/// 20 ms to 200 ms, and 5 s to shut down.
pub fn one_redis_peer(peer_url: impl Into<String>) -> ReplicationEngineConfig {
    let mut c = ReplicationEngineConfig::new("me");
    let mut peer = PeerConfig::new("p", peer_url);
    peer.redis_prefix = "p:".into();
    c.peers = vec![peer];
    let s = &mut c.settings;
    s.hot_path.block_timeout = Duration::from_millis(100);
    s.cold_path.enabled = false;
    s.peer.reconnect_initial_delay = Duration::from_millis(50);
    s.peer.reconnect_max_delay = Duration::from_millis(500);
    s.sync_engine.retry_initial_delay = Duration::from_millis(20);
    s.sync_engine.retry_max_delay = Duration::from_millis(200);
    s.shutdown_timeout = Duration::from_secs(5);
    c
}
