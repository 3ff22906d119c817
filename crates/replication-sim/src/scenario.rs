//! `Scenario`: what a seed says about the mesh before anything runs: how many nodes, which
//! kind of store each has, how far each clock is skewed, the engine settings, the key space.

use crate::node::Kind;
use crate::rng::Rng;
use replication_core::{PeerConfig, ReplicationEngineConfig, Settings};
use std::time::Duration;

/// Ids written by the workload: a small tree where several ids are both an item and a
/// parent (`a` and `a.b`, `c.d` and `c.d.e`), so the self-segment rules are exercised.
const KEY_POOL: &[&str] = &[
    "a", "a.b", "a.b.c", "a.c", "b", "b.x", "c", "c.d", "c.d.e", "d", "e", "e.f",
];

/// Content cap of every node: big workload values stay under it, hostile ones exceed it.
pub(crate) const MAX_CONTENT_BYTES: usize = 64 * 1024;

/// See the module docs.
#[derive(Clone, Debug)]
pub(crate) struct Scenario {
    pub(crate) nodes: usize,
    pub(crate) kinds: Vec<Kind>,
    /// Each node's wall-clock offset from true (virtual) time, in ms.
    pub(crate) skews_ms: Vec<i64>,
    pub(crate) settings: Settings,
    pub(crate) keys: Vec<String>,
    /// Steps of the faulty phase (workload and faults interleaved).
    pub(crate) steps: usize,
}

impl Scenario {
    pub(crate) fn draw(rng: &mut Rng, nodes: Option<usize>) -> Self {
        let nodes = nodes.unwrap_or_else(|| rng.between(2, 7) as usize);
        // A third of the meshes hold one node behind the minimal interface.
        let minimal = rng.percent(33).then(|| rng.index(nodes));
        let kinds = (0..nodes)
            .map(|i| {
                if Some(i) == minimal {
                    Kind::Minimal
                } else {
                    Kind::Full
                }
            })
            .collect();
        let skews_ms = (0..nodes)
            .map(|_| i64::try_from(rng.below(6001)).unwrap_or(0) - 3000)
            .collect();
        let mut keys: Vec<String> = KEY_POOL.iter().map(|k| (*k).to_owned()).collect();
        let keep = rng.between(3, KEY_POOL.len() as u64) as usize;
        while keys.len() > keep {
            keys.remove(rng.index(keys.len()));
        }
        Self {
            nodes,
            kinds,
            skews_ms,
            settings: settings(rng),
            keys,
            steps: rng.between(80, 250) as usize,
        }
    }

    pub(crate) fn node_id(index: usize) -> String {
        format!("n{index}")
    }

    /// Node `me`'s full configuration: every other node as a peer.
    pub(crate) fn config(&self, me: usize) -> ReplicationEngineConfig {
        let mut config = ReplicationEngineConfig::new(Self::node_id(me));
        config.peers = (0..self.nodes)
            .filter(|&p| p != me)
            .map(|p| peer_config(p, 0))
            .collect();
        config.settings = self.settings.clone();
        config
    }

    /// The longest a healed mesh may take to settle: two cold-path intervals after the
    /// slowest backoff has run out.
    pub(crate) fn quiet_period(&self) -> Duration {
        let s = &self.settings;
        let backoff = s
            .sync_engine
            .retry_max_delay
            .max(s.sync_engine.circuit_open_for)
            .max(s.peer.reconnect_max_delay)
            .max(s.cold_path.interval)
            .max(s.hot_path.block_timeout);
        backoff + s.cold_path.interval * 2 + Duration::from_secs(1)
    }
}

/// The config entry for peer `index`; `generation` changes its URL (a re-point: the same
/// node's data under another address, which the engine must read from the beginning).
pub(crate) fn peer_config(index: usize, generation: u64) -> PeerConfig {
    PeerConfig::new(
        Scenario::node_id(index),
        format!("redis://10.0.0.{index}:{}", 6380 + generation),
    )
}

impl Scenario {
    /// Whether node `i` writes bare DEL entries, as sync-engine does, so that readers take
    /// deletes' stamps from its tombstones (and the malformed-tombstone fault bites): odd
    /// nodes, in meshes that never collect tombstones within the run. A writer that keeps
    /// and collects tombstones but writes bare DELs can bring a key back (a peer that has
    /// not read the DEL yet finds no evidence once it is collected): docs/RELIABILITY.md.
    pub(crate) fn bare_deletes(&self, i: usize) -> bool {
        i % 2 == 1 && self.settings.tombstones.retention >= Duration::from_secs(24 * 3600)
    }
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn settings(rng: &mut Rng) -> Settings {
    let mut s = Settings::default();
    s.hot_path.batch_size = *rng.pick(&[1, 2, 5, 20, 100]);
    s.hot_path.max_batch_size = s.hot_path.batch_size * *rng.pick(&[1, 4]);
    s.hot_path.block_timeout = ms(rng.between(100, 1000));
    s.hot_path.max_content_bytes = MAX_CONTENT_BYTES;
    // Hot-path-only meshes: only the hot path (and gap repair) can carry a change, so a
    // change it drops stays lost.
    s.cold_path.enabled = rng.percent(75);
    s.cold_path.interval = ms(*rng.pick(&[500, 1000, 2000, 3000]));
    s.cold_path.max_items_per_cycle = *rng.pick(&[2, 10, 1000]);
    s.tombstones.retention = ms(*rng.pick(&[0, 0, 200, 1000, 5000, 7 * 24 * 3_600_000]));
    s.sync_engine.retry_initial_delay = ms(rng.between(5, 50));
    s.sync_engine.retry_max_delay = ms(rng.between(100, 1000));
    s.sync_engine.circuit_open_for = ms(rng.between(100, 1000));
    s.peer.reconnect_initial_delay = ms(20);
    s.peer.reconnect_max_delay = ms(rng.between(100, 1000));
    s.shutdown_timeout = ms(rng.between(500, 3000));
    s
}
