//! Section 6: peak RSS of the engine, measured in a child process (this binary re-run with
//! a subcommand) so that the benchmark's own buffers and the stream filling never count.

use crate::counting::Counting;
use crate::throughput::{engine_config, engine_run};
use anyhow::{bail, Context, Result};
use replication_core::NoOpSyncEngine;
use replication_cursor::MemoryCursorStore;
use replication_engine::ReplicationEngine;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// Peak resident set of this process in kB (`VmHWM`).
fn peak_rss_kb() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmHWM in /proc/self/status")
}

/// Child: catch up `n` entries of `url`/`prefix` into the counting no-op store; prints
/// `VmHWM <kB>`.
pub(crate) async fn child_catchup(args: &[String]) -> Result<()> {
    let [url, prefix, n] = args else {
        bail!("usage: rss-catchup URL PREFIX N")
    };
    let n: u64 = n.parse().context("N")?;
    let store = Arc::new(Counting::new(Arc::new(NoOpSyncEngine)));
    engine_run(store, engine_config(&[(url.clone(), prefix.clone())]), n).await?;
    println!("VmHWM {}", peak_rss_kb()?);
    Ok(())
}

/// Child: an engine with `peers` idle peers (empty streams) for `seconds`; prints `VmHWM <kB>`.
pub(crate) async fn child_idle(args: &[String]) -> Result<()> {
    let [url, peers, seconds] = args else {
        bail!("usage: rss-idle URL PEERS SECONDS")
    };
    let peers: usize = peers.parse().context("PEERS")?;
    let seconds: u64 = seconds.parse().context("SECONDS")?;
    let list: Vec<(String, String)> = (0..peers)
        .map(|i| (url.clone(), format!("idle-{i}:")))
        .collect();
    let mut config = engine_config(&list);
    // Idle peers as deployed: the default 5 s block.
    config.settings.hot_path.block_timeout = Duration::from_secs(5);
    let (_tx, rx) = tokio::sync::watch::channel(config.clone());
    let mut engine = ReplicationEngine::builder(config, rx)
        .sync_engine(Arc::new(Counting::new(Arc::new(NoOpSyncEngine))))
        .cursor_store(Arc::new(MemoryCursorStore::new()))
        .build();
    engine.start().await.context("engine start")?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let health = engine.health_check().await;
    engine.shutdown().await;
    if health.peers_connected != peers {
        bail!("only {} of {peers} peers connected", health.peers_connected);
    }
    println!("VmHWM {}", peak_rss_kb()?);
    Ok(())
}

/// Runs this binary with `args` and returns the `VmHWM` it reports, in MB.
pub(crate) fn child_peak_mb(args: &[String]) -> Result<f64> {
    let exe = std::env::current_exe().context("current exe")?;
    let out = Command::new(exe)
        .args(args)
        .output()
        .context("starting the child")?;
    if !out.status.success() {
        bail!(
            "child {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kb: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM "))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("child printed no VmHWM: {stdout}"))?;
    Ok(kb as f64 / 1024.0)
}
