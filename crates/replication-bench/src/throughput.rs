//! Sections 1-3: the physical limit (a minimal fred drain) and the engine's hot path into a
//! counting no-op store and into a real `replication-node`, all over the same stream.

use crate::counting::Counting;
use crate::payload::{client, command};
use anyhow::{bail, Context, Result};
use fred::interfaces::ClientLike;
use fred::types::Value;
use replication_core::{NoOpSyncEngine, PeerConfig, ReplicationEngineConfig, SyncEngineRef};
use replication_cursor::MemoryCursorStore;
use replication_engine::ReplicationEngine;
use replication_node::{NodeStore, NodeStoreConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Entries per XREAD of the limit drain, and the engine's batch size: the same unit of
/// work on both sides, so the ratio compares code paths, not read sizes.
pub(crate) const READ_COUNT: usize = 1_000;

/// How much work the limit drain does per entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drain {
    /// Transport and reply parsing only.
    Transport,
    /// Plus zstd decompression with one reused context (the yardstick).
    Decode,
    /// Plus SHA-256 of the content against `hash` (what every reader must also do).
    DecodeVerify,
}

/// Drains `n` entries of `stream` from the start with one plain fred client; entries/s.
pub(crate) async fn drain(url: &str, stream: &str, n: u64, mode: Drain) -> Result<f64> {
    let client = client(url).await?;
    let mut decompressor = zstd::bulk::Decompressor::new().context("zstd context")?;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut after = "0-0".to_owned();
    let mut seen = 0u64;
    let mut checksum = 0u64;
    let count = READ_COUNT.to_string();
    let started = Instant::now();
    while seen < n {
        let args: Vec<Value> = vec![
            "COUNT".into(),
            count.as_str().into(),
            "STREAMS".into(),
            stream.into(),
            after.as_str().into(),
        ];
        let reply: Value = client
            .custom(command("XREAD"), args)
            .await
            .context("XREAD")?;
        let Some(entries) = entries_of(reply) else {
            bail!("stream ended after {seen} of {n} entries")
        };
        let mut last_id = None;
        for entry in entries {
            let Value::Array(mut parts) = entry else {
                bail!("entry is not an array")
            };
            let (Some(fields), Some(id)) = (parts.pop(), parts.pop()) else {
                bail!("short entry")
            };
            seen += 1;
            last_id = Some(id);
            if mode == Drain::Transport {
                continue;
            }
            let Value::Array(fields) = fields else {
                bail!("fields are not an array")
            };
            let (mut data, mut hash) = (None, None);
            for pair in fields.chunks_exact(2) {
                match pair[0].as_bytes() {
                    Some(b"data") => data = pair[1].as_bytes(),
                    Some(b"hash") => hash = pair[1].as_bytes(),
                    _ => {}
                }
            }
            let data = data.context("entry without data")?;
            buf.clear();
            decompressor
                .decompress_to_buffer(data, &mut buf)
                .context("zstd")?;
            checksum = checksum.wrapping_add(buf.len() as u64);
            if mode == Drain::DecodeVerify {
                let hash = hash.context("entry without hash")?;
                let actual = replication_core::content_hash_hex(&buf);
                if actual.as_bytes() != hash {
                    bail!("hash mismatch after {after}");
                }
            }
        }
        if let Some(id) = last_id.and_then(|id| id.into_string()) {
            after = id;
        }
    }
    let elapsed = started.elapsed();
    std::hint::black_box(checksum);
    let _ = client.quit().await;
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// The entries of an XREAD reply for one stream, `None` when it returned nothing.
fn entries_of(reply: Value) -> Option<Vec<Value>> {
    let Value::Array(mut streams) = reply else {
        return None;
    };
    let Value::Array(mut parts) = streams.pop()? else {
        return None;
    };
    let Value::Array(entries) = parts.pop()? else {
        return None;
    };
    (!entries.is_empty()).then_some(entries)
}

/// An engine config tailing one peer at `url`/`prefix`, hot path only.
pub(crate) fn engine_config(peers: &[(String, String)]) -> ReplicationEngineConfig {
    let mut config = ReplicationEngineConfig::new("bench.local");
    for (i, (url, prefix)) in peers.iter().enumerate() {
        let mut peer = PeerConfig::new(format!("bench.peer-{i}"), url.as_str());
        peer.redis_prefix = prefix.clone();
        config.peers.push(peer);
    }
    let hot = &mut config.settings.hot_path;
    hot.batch_size = READ_COUNT;
    hot.max_batch_size = READ_COUNT;
    hot.block_timeout = Duration::from_millis(100);
    config.settings.cold_path.enabled = false;
    config
}

/// What one engine run measured.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EngineRun {
    /// Entries/s, from `start()` (connecting included, as a restarted node would) to the
    /// n-th apply.
    pub(crate) rate: f64,
    /// CPU time of this whole process (engine, tailer, fred, node store client) per entry, µs.
    pub(crate) engine_cpu_us: f64,
    /// CPU time of the peer's redis-server per entry (serving the reads), µs.
    pub(crate) peer_redis_cpu_us: f64,
    /// CPU time of the node's redis-server per entry (section 3 only), µs.
    pub(crate) node_redis_cpu_us: f64,
}

impl EngineRun {
    /// The CPU all parts of the run spent per entry, µs: on a machine with `cores` cores
    /// no rate above `cores / total` can be reached, however well the parts overlap.
    pub(crate) fn total_cpu_us(&self) -> f64 {
        self.engine_cpu_us + self.peer_redis_cpu_us + self.node_redis_cpu_us
    }
}

/// Runs an engine over `store` until `n` changes were applied, reading from the peer at
/// `config.peers[0]`.
pub(crate) async fn engine_run<S: SyncEngineRef>(
    store: Arc<Counting<S>>,
    config: ReplicationEngineConfig,
    n: u64,
) -> Result<EngineRun> {
    let peer_admin = client(&config.peers[0].redis_url).await?;
    let peer_cpu_before = redis_cpu_seconds(&peer_admin).await?;
    let (_config_tx, config_rx) = tokio::sync::watch::channel(config.clone());
    let mut engine = ReplicationEngine::builder(config, config_rx)
        .sync_engine(Arc::clone(&store))
        .cursor_store(Arc::new(MemoryCursorStore::new()))
        .build();
    let started = Instant::now();
    let cpu_before = process_cpu_seconds();
    engine.start().await.context("engine start")?;
    let done = tokio::time::timeout(Duration::from_secs(600), store.wait_for(n)).await;
    let elapsed = started.elapsed();
    let per_entry = |seconds: f64| seconds * 1e6 / n as f64;
    let engine_cpu_us = per_entry(process_cpu_seconds() - cpu_before);
    let peer_redis_cpu_us = per_entry(redis_cpu_seconds(&peer_admin).await? - peer_cpu_before);
    let _ = peer_admin.quit().await;
    engine.shutdown().await;
    if done.is_err() {
        bail!(
            "engine applied only {} of {n} entries in 600 s",
            store.applied()
        );
    }
    Ok(EngineRun {
        rate: n as f64 / elapsed.as_secs_f64(),
        engine_cpu_us,
        peer_redis_cpu_us,
        node_redis_cpu_us: 0.0,
    })
}

/// Section 2: the engine into the counting no-op store.
pub(crate) async fn engine_noop(url: &str, prefix: &str, n: u64) -> Result<EngineRun> {
    let store = Arc::new(Counting::new(Arc::new(NoOpSyncEngine)));
    engine_run(
        store,
        engine_config(&[(url.to_owned(), prefix.to_owned())]),
        n,
    )
    .await
}

/// Section 3: the engine into a real node store on `node_url` (flushed first).
pub(crate) async fn engine_node(
    url: &str,
    prefix: &str,
    node_url: &str,
    n: u64,
) -> Result<EngineRun> {
    engine_node_with(
        engine_config(&[(url.to_owned(), prefix.to_owned())]),
        node_url,
        n,
    )
    .await
}

/// [`engine_node`] with the engine configured by `config` (its first peer is read).
pub(crate) async fn engine_node_with(
    config: ReplicationEngineConfig,
    node_url: &str,
    n: u64,
) -> Result<EngineRun> {
    let admin = client(node_url).await?;
    let _: Value = admin
        .custom(command("FLUSHALL"), Vec::<Value>::new())
        .await
        .context("FLUSHALL")?;
    let cpu_before = redis_cpu_seconds(&admin).await?;
    let node = NodeStore::connect(NodeStoreConfig::new(node_url).with_prefix("local:"))
        .await
        .context("node store")?;
    let node = Arc::new(node);
    let store = Arc::new(Counting::new(Arc::clone(&node)));
    let run = engine_run(store, config, n).await;
    node.close().await;
    let cpu = redis_cpu_seconds(&admin).await? - cpu_before;
    // Which commands the node's Redis spent its time on (for profiling the node store).
    if std::env::var_os("BENCH_COMMANDSTATS").is_some() {
        let stats: String = admin
            .custom(command("INFO"), vec![Value::from("commandstats")])
            .await
            .context("INFO commandstats")?;
        eprintln!("{stats}");
    }
    let _ = admin.quit().await;
    let mut run = run?;
    run.node_redis_cpu_us = cpu * 1e6 / n as f64;
    Ok(run)
}

/// CPU seconds (user + system) the redis-server behind `client` has used so far.
pub(crate) async fn redis_cpu_seconds(client: &fred::clients::Client) -> Result<f64> {
    let info: String = client
        .custom(command("INFO"), vec![Value::from("cpu")])
        .await
        .context("INFO cpu")?;
    let field = |name: &str| -> Result<f64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .with_context(|| format!("INFO cpu without {name}"))?
            .trim()
            .parse::<f64>()
            .with_context(|| format!("INFO cpu {name}"))
    };
    Ok(field("used_cpu_user")? + field("used_cpu_sys")?)
}

/// The peer crate's `StreamTailer` alone (read, gap checks, decode, verify), its batches
/// dropped as they come: entries/s. Separates the tailer's cost from the engine's.
pub(crate) async fn tailer_only(url: &str, prefix: &str, n: u64) -> Result<f64> {
    use replication_core::PeerBackend;
    use replication_peer::{RedisPeer, StreamTailer, TailEvent, TailOptions, TailStart};
    let config = engine_config(&[(url.to_owned(), prefix.to_owned())]);
    let peer = RedisPeer::new(&config.peers[0], &config.settings).context("peer")?;
    let started = Instant::now();
    peer.wait_connected(Duration::from_secs(10))
        .await
        .context("peer connect")?;
    let peer: Arc<dyn PeerBackend> = Arc::new(peer);
    let mut tailer = StreamTailer::spawn(
        Arc::clone(&peer),
        TailStart::default(),
        TailOptions::from_settings(&config.settings),
    );
    let mut seen = 0u64;
    while seen < n {
        match tailer.recv().await {
            Some(TailEvent::Batch(batch)) => seen += batch.records.len() as u64,
            Some(_) => {}
            None => bail!("tailer stopped after {seen} entries"),
        }
    }
    let elapsed = started.elapsed();
    tailer.stop().await;
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// CPU seconds this process's live threads have run so far (the sum of their
/// `/proc/self/task/*/schedstat` times; 0 where /proc is missing).
pub(crate) fn process_cpu_seconds() -> f64 {
    tasks_cpu_seconds(std::path::Path::new("/proc/self/task"))
}

/// CPU seconds of the threads listed in `tasks` (a `/proc/PID/task` directory).
pub(crate) fn tasks_cpu_seconds(tasks: &std::path::Path) -> f64 {
    let Ok(tasks) = std::fs::read_dir(tasks) else {
        return 0.0;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    nanos as f64 / 1e9
}
