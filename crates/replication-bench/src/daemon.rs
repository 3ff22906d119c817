//! Section 10: the real `replicationd run` binary catching up a peer's backlog into its node
//! store, beside section 3's in-process engine on the same stream, for two id layouts.
//!
//! The daemon runs with its config defaults (one peer, cold path off, node store on its own
//! private redis-server); the catch-up rate is read from its `/metrics` applied counter.
//! `BENCH_DAEMON_TOML` is appended to the daemon's config file (for A/B runs of a setting,
//! e.g. `[settings.hot_path]` / `batch_size = 1000`).

use crate::payload::{client, command, fill_shaped, Layout, Shape};
use crate::report::{median, thousands, Report, Verdict};
use crate::throughput::{self, redis_cpu_seconds, Drain};
use crate::Options;
use anyhow::{bail, Context, Result};
use fred::interfaces::ClientLike;
use fred::types::Value;
use replication_core::ContentType;
use replication_testkit::{free_port, http_get, replicationd_binary, Daemon, RedisServer};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The peer's node id in the daemon's config (the applied counter's `peer` label).
const PEER_ID: &str = "bench.peer-0";

/// Section 3's target, held to both paths and both layouts: rate over the decoding drain.
const TARGET: f64 = 0.4;

/// What one daemon run measured.
#[derive(Clone, Copy, Debug)]
struct DaemonRun {
    /// Entries/s from spawning the process to the n-th apply.
    rate: f64,
    /// Entries/s from the first apply seen to the n-th (process start and connect left out).
    applying_rate: f64,
    /// CPU time of the daemon process per entry, µs.
    daemon_cpu_us: f64,
    /// CPU time of the node's redis-server per entry, µs.
    node_redis_cpu_us: f64,
}

/// Section 10.
pub(crate) async fn daemon_section(options: &Options, report: &mut Report) -> Result<()> {
    let n: u64 = if options.quick { 20_000 } else { 200_000 };
    let binary = daemon_binary()?;
    eprintln!("bench: daemon section with {}", binary.display());
    let node = RedisServer::start().context("node redis-server")?;
    let prefix = "peer:";
    let s10 = "10 daemon";
    let mut engine_rates = Vec::new();
    for layout in [Layout::Branches, Layout::Wide] {
        let peer = RedisServer::start().context("peer redis-server")?;
        let shape = Shape {
            layout,
            content_type: ContentType::Json,
        };
        let writer = client(&peer.url()).await?;
        fill_shaped(&writer, shape, &format!("{prefix}cdc"), 0, n)
            .await
            .context("filling the stream")?;
        let _ = writer.quit().await;
        let (mut engine, mut daemon, mut applying, mut ratios) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut drains, mut engine_to_drain, mut daemon_to_drain) =
            (Vec::new(), Vec::new(), Vec::new());
        let (mut engine_cpu, mut daemon_cpu) = (Vec::new(), Vec::new());
        for run in 0..options.runs() {
            let yardstick =
                throughput::drain(&peer.url(), &format!("{prefix}cdc"), n, Drain::Decode).await?;
            let config = throughput::engine_config(&[(peer.url(), prefix.to_owned())]);
            let e = throughput::engine_node_with(config, &node.url(), n).await?;
            let d = daemon_run(&binary, &peer.url(), prefix, &node.url(), n).await?;
            eprintln!(
                "bench: daemon run {run} ({}): drain {yardstick:.0}/s, in-process {:.0}/s \
                 ({:.1} + {:.1} µs), replicationd {:.0}/s, {:.0}/s from its first apply \
                 ({:.1} + {:.1} µs)",
                layout.pattern(),
                e.rate,
                e.engine_cpu_us,
                e.node_redis_cpu_us,
                d.rate,
                d.applying_rate,
                d.daemon_cpu_us,
                d.node_redis_cpu_us
            );
            drains.push(yardstick);
            engine_to_drain.push(e.rate / yardstick);
            daemon_to_drain.push(d.rate / yardstick);
            engine.push(e.rate);
            daemon.push(d.rate);
            applying.push(d.applying_rate);
            ratios.push(d.rate / e.rate);
            engine_cpu.push((e.engine_cpu_us, e.node_redis_cpu_us));
            daemon_cpu.push((d.daemon_cpu_us, d.node_redis_cpu_us));
        }
        let cpu = |pairs: &[(f64, f64)]| {
            let a: Vec<f64> = pairs.iter().map(|p| p.0).collect();
            let b: Vec<f64> = pairs.iter().map(|p| p.1).collect();
            format!("{:.1} + {:.1} µs", median(&a), median(&b))
        };
        let (to_engine, to_daemon) = (median(&engine_to_drain), median(&daemon_to_drain));
        report.row(
            s10,
            format!("{}: decoding drain of this stream", layout.pattern()),
            format!("{}/s", thousands(median(&drains))),
            "yardstick",
            Verdict::Info,
        );
        report.row(
            s10,
            format!(
                "{}: in-process engine (section 3's setup) · ratio to the drain",
                layout.pattern()
            ),
            format!("{}/s · {to_engine:.2}", thousands(median(&engine))),
            format!("≥ {TARGET:.2}"),
            Verdict::of(to_engine >= TARGET),
        );
        report.row(
            s10,
            format!(
                "{}: replicationd run · ratio to the drain · to in-process",
                layout.pattern()
            ),
            format!(
                "{}/s · {to_daemon:.2} · {:.2}",
                thousands(median(&daemon)),
                median(&ratios)
            ),
            format!("≥ {TARGET:.2}"),
            Verdict::of(to_daemon >= TARGET),
        );
        report.row(
            s10,
            format!("{}: replicationd from its first apply", layout.pattern()),
            format!("{}/s", thousands(median(&applying))),
            "",
            Verdict::Info,
        );
        report.row(
            s10,
            format!(
                "{}: CPU per entry, process + node redis-server: in-process · daemon",
                layout.pattern()
            ),
            format!("{} · {}", cpu(&engine_cpu), cpu(&daemon_cpu)),
            "",
            Verdict::Info,
        );
        engine_rates.push(median(&engine));
    }
    if let [branches, wide] = engine_rates[..] {
        report.row(
            s10,
            "wide branches (16 × n/16 children) to 1 000-child branches, in-process",
            format!("{:.2}", wide / branches),
            "",
            Verdict::Info,
        );
    }
    report.note(
        s10,
        format!(
            "The release `replicationd run` binary (config defaults: batch_size 100 growing \
             to max_batch_size 1000, SQLite cursors, Prometheus metrics; cold path off) with one \
             peer, catching up a {}-entry backlog (512-byte JSON payloads, `content_type` json) \
             into its node store on a private redis-server (flushed first); the rate is read \
             from its `/metrics` applied counter, polled every 10 ms, from spawning the process. \
             In the same run and on the same stream, section 3's in-process engine (batch_size \
             = max_batch_size = 1000, block_timeout 100 ms, memory cursors). CPU: the process \
             (this one, or the daemon's from `/proc/PID/task/*/schedstat`) and the node's \
             redis-server per entry. Ratios are pairwise within a run, then the median; the \
             yardstick is section 1's decoding drain of the same stream.",
            thousands(n as f64)
        ),
    );
    Ok(())
}

/// `REPLICATIOND_BIN`, else the `replicationd` next to this binary (`cargo xtask bench`
/// builds both), else one the testkit builds.
fn daemon_binary() -> Result<PathBuf> {
    if std::env::var_os("REPLICATIOND_BIN").is_none() {
        let exe = std::env::current_exe().context("current_exe")?;
        if let Some(sibling) = exe.parent().map(|dir| dir.join("replicationd")) {
            if sibling.exists() {
                return Ok(sibling);
            }
        }
    }
    replicationd_binary().map_err(anyhow::Error::msg)
}

/// One catch-up by a `replicationd run` process into the node store at `node_url`.
async fn daemon_run(
    binary: &Path,
    peer_url: &str,
    prefix: &str,
    node_url: &str,
    n: u64,
) -> Result<DaemonRun> {
    let admin = client(node_url).await?;
    let _: Value = admin
        .custom(command("FLUSHALL"), Vec::<Value>::new())
        .await
        .context("FLUSHALL")?;
    let dir = std::env::temp_dir().join(format!("replication-bench-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let port = free_port().context("a free port")?;
    let config = dir.join("daemon.toml");
    std::fs::write(&config, config_text(&dir, peer_url, prefix, node_url, port))
        .with_context(|| format!("writing {}", config.display()))?;
    let node_cpu_before = redis_cpu_seconds(&admin).await?;
    let started = Instant::now();
    let mut daemon = Daemon::spawn(binary, &config, &[("RUST_LOG", "warn")])
        .map_err(anyhow::Error::msg)
        .context("starting replicationd")?;
    let mut first: Option<(u64, Instant)> = None;
    let finished = loop {
        let applied = applied(port).await;
        let now = Instant::now();
        if applied > 0 && first.is_none() {
            first = Some((applied, now));
        }
        if applied >= n {
            break now;
        }
        if now - started > Duration::from_secs(600) || !daemon.is_running() {
            let tail = daemon.log_tail(2000);
            bail!(
                "replicationd applied {applied} of {n} entries, then stopped or stalled:\n{tail}"
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let daemon_cpu = process_cpu_seconds(daemon.pid());
    let node_cpu = redis_cpu_seconds(&admin).await? - node_cpu_before;
    daemon.kill();
    let _ = admin.quit().await;
    let _ = std::fs::remove_dir_all(&dir);
    let (first_applied, first_at) = first.unwrap_or((0, started));
    let per_entry = |seconds: f64| seconds * 1e6 / n as f64;
    Ok(DaemonRun {
        rate: n as f64 / (finished - started).as_secs_f64(),
        applying_rate: (n - first_applied) as f64 / (finished - first_at).as_secs_f64(),
        daemon_cpu_us: per_entry(daemon_cpu),
        node_redis_cpu_us: per_entry(node_cpu),
    })
}

/// The daemon's config file: defaults but for the cold path (off), cursors in `dir`, the
/// node store under `local:`, one peer.
fn config_text(dir: &Path, peer_url: &str, prefix: &str, node_url: &str, port: u16) -> String {
    let extra = std::env::var("BENCH_DAEMON_TOML").unwrap_or_default();
    format!(
        "local_node_id = \"bench.local\"\n\
         [settings.cold_path]\nenabled = false\n\
         [cursor]\nsqlite_path = \"{db}\"\n\
         [node]\nredis_url = \"{node_url}\"\nredis_prefix = \"local:\"\n\
         [http]\nlisten = \"127.0.0.1:{port}\"\n\
         [[peers]]\nnode_id = \"{PEER_ID}\"\nredis_url = \"{peer_url}\"\nredis_prefix = \"{prefix}\"\n\
         {extra}\n",
        db = dir.join("cursors.db").display(),
    )
}

/// The daemon's applied counter for the peer (0 while it does not answer yet).
async fn applied(port: u16) -> u64 {
    let answer = tokio::task::spawn_blocking(move || http_get(port, "/metrics")).await;
    let Ok(Some((200, body))) = answer else {
        return 0;
    };
    applied_in(&body)
}

/// The sum of `replication_events_applied_total` in a Prometheus text exposition.
fn applied_in(body: &str) -> u64 {
    body.lines()
        .filter(|l| l.starts_with("replication_events_applied_total"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// CPU seconds the live threads of process `pid` have run (0 where /proc is missing).
fn process_cpu_seconds(pid: u32) -> f64 {
    throughput::tasks_cpu_seconds(&PathBuf::from(format!("/proc/{pid}/task")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;

    #[test]
    fn the_applied_counter_is_summed_over_its_series() {
        let body = "# TYPE replication_events_applied_total counter\n\
                    replication_events_applied_total{peer=\"bench.peer-0\"} 1500\n\
                    replication_events_read_total{peer=\"bench.peer-0\"} 2000\n";
        assert_eq!(applied_in(body), 1500);
        assert_eq!(applied_in(""), 0);
    }
}
