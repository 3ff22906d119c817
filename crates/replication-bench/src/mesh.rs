//! Section 9: a mesh where every node writes at once. Each node is a `NodeStore` on its
//! own redis-server with an engine tailing every other node. Every node's writer appends
//! its changes to the node's CDC stream at once (pipelined `XADD`s in sync-engine's
//! format, as section 2's backlog); replicated changes are applied without CDC, so no
//! change comes back to anyone (no echo), which the section checks.

use crate::counting::Counting;
use crate::payload::{client, command, fill};
use crate::report::{median, thousands, Report, Verdict};
use crate::throughput::{engine_config, process_cpu_seconds, redis_cpu_seconds};
use crate::Options;
use anyhow::{bail, Context, Result};
use fred::interfaces::ClientLike;
use fred::types::Value;
use replication_cursor::MemoryCursorStore;
use replication_engine::ReplicationEngine;
use replication_node::{NodeStore, NodeStoreConfig};
use replication_testkit::RedisServer;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Mesh sizes measured, smallest first.
const SIZES: [usize; 2] = [3, 5];

/// What one mesh run measured.
struct MeshRun {
    /// Changes each node applied from its peers per second, from the first write to its
    /// last apply.
    rates: Vec<f64>,
    /// CPU of the whole mesh (this process: engines, stores, writers; every
    /// redis-server) per replicated change applied, µs.
    cpu_us: f64,
    /// Per node: entries its peers' streams held (what its tailers read, each once) per
    /// change written by those peers; 1.0 means no echo.
    reads_per_change: Vec<f64>,
}

fn prefix(i: usize) -> String {
    format!("node{i}:")
}

async fn mesh_run(nodes: usize, per_node: u64) -> Result<MeshRun> {
    let servers = (0..nodes)
        .map(|_| RedisServer::start().context("node redis-server"))
        .collect::<Result<Vec<_>>>()?;
    let mut stores = Vec::with_capacity(nodes);
    let mut admins = Vec::with_capacity(nodes);
    for (i, server) in servers.iter().enumerate() {
        let store = NodeStore::connect(NodeStoreConfig::new(server.url()).with_prefix(prefix(i)))
            .await
            .context("node store")?;
        stores.push(Arc::new(store));
        admins.push(client(&server.url()).await?);
    }
    let mut counters = Vec::with_capacity(nodes);
    let mut engines = Vec::with_capacity(nodes);
    for (i, store) in stores.iter().enumerate() {
        let peers: Vec<(String, String)> = (0..nodes)
            .filter(|&j| j != i)
            .map(|j| (servers[j].url(), prefix(j)))
            .collect();
        let mut config = engine_config(&peers);
        config.local_node_id = format!("bench.node-{i}");
        let counting = Arc::new(Counting::new(Arc::clone(store)));
        let (_tx, config_rx) = tokio::sync::watch::channel(config.clone());
        let mut engine = ReplicationEngine::builder(config, config_rx)
            .sync_engine(Arc::clone(&counting))
            .cursor_store(Arc::new(MemoryCursorStore::new()))
            .build();
        engine.start().await.context("engine start")?;
        counters.push(counting);
        engines.push(engine);
    }
    // Let every tailer connect and block on its (empty) stream.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut redis_before = Vec::with_capacity(nodes);
    for admin in &admins {
        redis_before.push(redis_cpu_seconds(admin).await?);
    }
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for (i, server) in servers.iter().enumerate() {
        let url = server.url();
        writers.spawn(async move {
            let writer = client(&url).await?;
            // Distinct keys per node, so every change is new to every other node.
            fill(
                &writer,
                &format!("{}cdc", prefix(i)),
                i as u64 * per_node,
                per_node,
            )
            .await?;
            let _ = writer.quit().await;
            anyhow::Ok(())
        });
    }
    let expected = (nodes as u64 - 1) * per_node;
    let mut done = tokio::task::JoinSet::new();
    for (i, counting) in counters.iter().enumerate() {
        let counting = Arc::clone(counting);
        done.spawn(async move {
            let reached =
                tokio::time::timeout(Duration::from_secs(300), counting.wait_for(expected))
                    .await
                    .is_ok();
            (i, reached, started.elapsed())
        });
    }
    while let Some(written) = writers.join_next().await {
        written.context("writer task")??;
    }
    let mut finished = vec![Duration::ZERO; nodes];
    while let Some(node) = done.join_next().await {
        let (i, reached, at) = node.context("wait task")?;
        if !reached {
            bail!(
                "node {i} applied {} of {expected} changes in 300 s",
                counters[i].applied()
            );
        }
        finished[i] = at;
    }
    let mut cpu = process_cpu_seconds() - cpu_before;
    for (admin, before) in admins.iter().zip(&redis_before) {
        cpu += redis_cpu_seconds(admin).await? - before;
    }
    // What each stream holds: with no echo, exactly its node's own writes.
    let mut lengths = Vec::with_capacity(nodes);
    for (i, admin) in admins.iter().enumerate() {
        let len: Value = admin
            .custom(
                command("XLEN"),
                vec![Value::from(format!("{}cdc", prefix(i)))],
            )
            .await
            .context("XLEN")?;
        lengths.push(len.as_u64().context("XLEN reply")?);
    }
    for mut engine in engines {
        engine.shutdown().await;
    }
    for store in &stores {
        store.close().await;
    }
    for admin in admins {
        let _ = admin.quit().await;
    }
    let applied_total: u64 = counters.iter().map(|c| c.applied()).sum();
    let reads_per_change = (0..nodes)
        .map(|i| {
            let read: u64 = (0..nodes).filter(|&j| j != i).map(|j| lengths[j]).sum();
            read as f64 / expected as f64
        })
        .collect();
    Ok(MeshRun {
        rates: finished
            .iter()
            .map(|at| expected as f64 / at.as_secs_f64())
            .collect(),
        cpu_us: cpu * 1e6 / applied_total.max(1) as f64,
        reads_per_change,
    })
}

/// Section 9: 3- and 5-node meshes, every node writing at once.
pub(crate) async fn mesh_section(options: &Options, report: &mut Report) -> Result<()> {
    let per_node: u64 = if options.quick { 2_000 } else { 20_000 };
    let s9 = "9 mesh";
    for nodes in SIZES {
        let (mut rates, mut cpu, mut reads) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..options.runs() {
            let m = mesh_run(nodes, per_node).await?;
            eprintln!(
                "bench: mesh {nodes} run {run}: applied/s per node {:.0?}, {:.1} µs CPU per change, reads per change {:?}",
                m.rates, m.cpu_us, m.reads_per_change
            );
            rates.push(median(&m.rates));
            cpu.push(m.cpu_us);
            reads.extend(m.reads_per_change);
        }
        report.row(
            s9,
            format!("{nodes} nodes: changes applied per node per second (median node)"),
            format!("{}/s", thousands(median(&rates))),
            "",
            Verdict::Info,
        );
        report.row(
            s9,
            format!("{nodes} nodes: CPU per replicated change (process + every redis-server)"),
            format!("{:.1} µs", median(&cpu)),
            "",
            Verdict::Info,
        );
        let worst = reads.iter().copied().fold(0.0_f64, f64::max);
        let best = reads.iter().copied().fold(f64::MAX, f64::min);
        report.row(
            s9,
            format!("{nodes} nodes: entries read per change, per node (min · max)"),
            format!("{best:.3} · {worst:.3}"),
            "exactly 1 (no echo)",
            Verdict::of(best == 1.0 && worst == 1.0),
        );
    }
    report.note(
        s9,
        format!(
            "N nodes, each a `NodeStore` on its own private redis-server and an engine tailing the N−1 others \
             (section 2's hot-path settings, cold path off, into `Counting<NodeStore>`). Every node's writer \
             appends {} changes to its node's stream at once (pipelined `XADD`s of 512-byte payloads, keys \
             distinct per node); a node's rate is the N−1 × {} changes it applies over the time from the first \
             write to its last apply. CPU: this process (engines, stores, writers) and every redis-server, per \
             replicated change. Entries read: the length of every peer stream a node tails (each entry is read \
             once; the cursor ends at the stream's end) over the changes its peers wrote. Everything shares the \
             machine's 2 cores.",
            thousands(per_node as f64),
            thousands(per_node as f64)
        ),
    );
    Ok(())
}
