//! Section 5: the cold path's cost as a function of the difference between two trees.
//!
//! Key-count scaling runs over replication-testkit's in-memory store and peer, which count
//! round trips and bytes exactly and make 1 000 000-key trees affordable; one run over two
//! real node stores (real Redis, RedisPeer) at a smaller size shows wall time on the wire.

use crate::payload::{item, now_micros};
use anyhow::{Context, Result};
use replication_core::{Change, PeerBackend, PeerConfig, Settings, SyncItem};
use replication_merkle::{repair_cycle, CycleReport, RepairSettings, RepairState};
use replication_node::{NodeStore, NodeStoreConfig};
use replication_peer::RedisPeer;
use replication_testkit::{MemoryPeer, MemoryStore, RedisServer};
use std::time::Duration;

/// One repair cycle's cost.
#[derive(Debug, Clone)]
pub(crate) struct Cost {
    pub(crate) keys: u64,
    pub(crate) differing: u64,
    pub(crate) report: CycleReport,
}

/// Settings that let one cycle finish any difference measured here.
fn settings() -> RepairSettings {
    RepairSettings {
        max_items_per_cycle: 1_000_000,
        max_bytes_per_cycle: u64::MAX,
        ..RepairSettings::default()
    }
}

/// The version-2 item that makes key `i` differ on the peer.
fn changed(i: u64, stamp: u64) -> SyncItem {
    let mut newer = item(i, stamp);
    newer.version = 2;
    newer.updated_at += 1;
    newer
}

/// Which keys differ at a level: spread over the key space so they touch many branches.
fn differing_keys(keys: u64, differing: u64, level: u64) -> impl Iterator<Item = u64> {
    let stride = (keys / differing.max(1)).max(1);
    (0..differing).map(move |j| (j * stride + level * 7) % keys)
}

/// In-memory stores of `keys` keys; for each difference in `diffs` (in order), the peer
/// gets that many newer items and one repair cycle brings the local store level again.
pub(crate) async fn in_memory(keys: u64, diffs: &[u64]) -> Result<Vec<Cost>> {
    let local = MemoryStore::new();
    let remote = MemoryStore::new();
    let stamp = now_micros();
    for i in 0..keys {
        let it = item(i, stamp);
        local
            .apply_change(Change::Put(it.clone()))
            .context("seeding local")?;
        remote
            .apply_change(Change::Put(it))
            .context("seeding peer")?;
    }
    let peer = MemoryPeer::new("bench.peer", remote.clone());
    let mut out = Vec::new();
    for (level, &differing) in diffs.iter().enumerate() {
        for i in differing_keys(keys, differing, level as u64) {
            // A key hit twice across levels just moves to a newer version again.
            let mut newer = changed(i, stamp);
            newer.version = 2 + level as u64;
            remote
                .apply_change(Change::Put(newer))
                .context("diverging the peer")?;
        }
        // Settle both trees before timing (the in-memory tree is recomputed lazily).
        let _ = local.root();
        let _ = remote.root();
        peer.reset_counters();
        let mut state = RepairState::new();
        let report = repair_cycle(&local, &peer, &settings(), &mut state)
            .await
            .context("repair cycle")?;
        out.push(Cost {
            keys,
            differing,
            report,
        });
    }
    Ok(out)
}

/// Two real node stores of `keys` keys on two redis-servers; same levels as [`in_memory`].
pub(crate) async fn real_redis(keys: u64, diffs: &[u64]) -> Result<Vec<Cost>> {
    let local_server = RedisServer::start().context("local redis-server")?;
    let peer_server = RedisServer::start().context("peer redis-server")?;
    let local =
        NodeStore::connect(NodeStoreConfig::new(local_server.url()).with_prefix("local:")).await?;
    let remote =
        NodeStore::connect(NodeStoreConfig::new(peer_server.url()).with_prefix("peer:")).await?;
    let stamp = now_micros();
    let mut i = 0;
    while i < keys {
        let end = (i + 1_000).min(keys);
        let chunk: Vec<Change> = (i..end).map(|j| Change::Put(item(j, stamp))).collect();
        local.apply(chunk.clone()).await.context("seeding local")?;
        remote.apply(chunk).await.context("seeding peer")?;
        i = end;
    }
    let mut config = PeerConfig::new("bench.peer", peer_server.url());
    config.redis_prefix = "peer:".into();
    let peer = RedisPeer::new(&config, &Settings::default())?;
    peer.wait_connected(Duration::from_secs(10)).await?;
    let mut out = Vec::new();
    for (level, &differing) in diffs.iter().enumerate() {
        let changes: Vec<Change> = differing_keys(keys, differing, level as u64)
            .map(|i| {
                let mut newer = changed(i, stamp);
                newer.version = 2 + level as u64;
                Change::Put(newer)
            })
            .collect();
        for chunk in changes.chunks(1_000) {
            remote
                .apply(chunk.to_vec())
                .await
                .context("diverging the peer")?;
        }
        let mut state = RepairState::new();
        let report = repair_cycle(&local, &peer as &dyn PeerBackend, &settings(), &mut state)
            .await
            .context("repair cycle")?;
        out.push(Cost {
            keys,
            differing,
            report,
        });
    }
    peer.close().await;
    local.close().await;
    remote.close().await;
    Ok(out)
}
