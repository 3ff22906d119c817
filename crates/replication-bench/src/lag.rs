//! Section 4: replication lag under a steady write load.

use crate::counting::Counting;
use crate::payload::{client, command, now_micros, xadd_args};
use crate::throughput::engine_config;
use anyhow::{bail, Context, Result};
use fred::interfaces::ClientLike;
use fred::types::Value;
use replication_core::CdcEncoder;
use replication_cursor::MemoryCursorStore;
use replication_engine::ReplicationEngine;
use replication_node::{NodeStore, NodeStoreConfig};
use replication_testkit::{FaultProxy, LinkMode, RedisServer};
use std::sync::Arc;
use std::time::Duration;

/// Lags (µs) of every entry appended at `rate` entries/s for `seconds`, replicated by the
/// engine into a real node store. Each entry carries its append time in the payload.
/// With `link`, the engine reaches the peer through a proxy in that mode (WAN latency).
pub(crate) async fn steady_load(
    rate: u64,
    seconds: u64,
    link: Option<LinkMode>,
) -> Result<Vec<u64>> {
    let peer = RedisServer::start().context("peer redis-server")?;
    let proxy = match link {
        Some(mode) => Some(FaultProxy::start_with(peer.addr(), mode).await?),
        None => None,
    };
    let peer_url = proxy
        .as_ref()
        .map_or_else(|| peer.url(), FaultProxy::redis_url);
    let node = RedisServer::start().context("node redis-server")?;
    let prefix = "peer:";
    let stream = replication_core::WireKeys::new(prefix).cdc();
    let local = Arc::new(
        NodeStore::connect(NodeStoreConfig::new(node.url()).with_prefix("local:"))
            .await
            .context("node store")?,
    );
    let store = Arc::new(Counting::with_lag(Arc::clone(&local)));
    let config = engine_config(&[(peer_url, prefix.to_owned())]);
    let (_config_tx, config_rx) = tokio::sync::watch::channel(config.clone());
    let mut engine = ReplicationEngine::builder(config, config_rx)
        .sync_engine(Arc::clone(&store))
        .cursor_store(Arc::new(MemoryCursorStore::new()))
        .build();
    engine.start().await.context("engine start")?;
    // Let the tailer connect and block on the (empty) stream before the load starts: lag
    // is measured in the steady state, not while connecting. Across a slow link that
    // includes the second stream connection of paired reads, opened once the first
    // blocking read came back empty (a connect takes about seven round trips there).
    tokio::time::sleep(Duration::from_secs(2)).await;

    let writer = client(&peer.url()).await?;
    let mut encoder = CdcEncoder::new();
    // 1 ms ticks, a few entries each: a steady stream rather than bursts. Missed ticks are
    // caught up (Burst) so the average rate holds under scheduling noise.
    let per_tick = (rate / 1000).max(1);
    let ticks = rate * seconds / per_tick;
    let mut interval = tokio::time::interval(Duration::from_millis(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut i = 0u64;
    for _ in 0..ticks {
        interval.tick().await;
        let pipeline = writer.pipeline();
        for _ in 0..per_tick {
            let args = xadd_args(&mut encoder, &stream, i, now_micros());
            let _: () = pipeline
                .custom(command("XADD"), args)
                .await
                .context("queueing XADD")?;
            i += 1;
        }
        let _: Vec<Value> = pipeline.all().await.context("XADD")?;
    }
    let done = tokio::time::timeout(Duration::from_secs(60), store.wait_for(i)).await;
    engine.shutdown().await;
    let _ = writer.quit().await;
    local.close().await;
    if done.is_err() {
        bail!("only {} of {i} entries were applied", store.applied());
    }
    let mut lags = store.take_lags();
    lags.sort_unstable();
    Ok(lags)
}
