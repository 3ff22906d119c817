//! `replication-bench`: the engine's throughput, lag, repair cost and memory, measured
//! against the physical limit of this machine. Run through `cargo xtask bench`.
//!
//! ```text
//! replication-bench [--quick] [--sections 1,2,3,4,5,6,7,8,9,10] [--markdown FILE]
//! ```
//! Every section starts its own private redis-servers on loopback (replication-testkit);
//! section 10 also runs the release `replicationd` binary found next to this one.
//! `--quick` uses small sizes and one run per figure (a smoke check, not a measurement).
//! With `BENCH_COMMANDSTATS=1`, section 3 also prints the node redis-server's
//! `INFO commandstats` after each run (where Redis spends its time; see docs/BENCHMARKS.md).

/// The allocator replicationd ships with (see its main.rs), so the figures are production's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod counting;
mod daemon;
mod lag;
mod memory;
mod mesh;
mod payload;
mod repair;
mod report;
mod throughput;
mod wan;

use anyhow::{bail, Context, Result};
use payload::{client, fill};
use replication_testkit::RedisServer;
use report::{median, thousands, Report, Verdict};
use std::path::PathBuf;
use throughput::Drain;

/// Command-line options.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) quick: bool,
    sections: Vec<u32>,
    markdown: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut options = Options {
            quick: false,
            sections: (1..=10).collect(),
            markdown: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--sections" => {
                    let list = args.next().context("--sections needs a list like 1,2,3")?;
                    options.sections = list
                        .split(',')
                        .map(|s| s.trim().parse().with_context(|| format!("section {s:?}")))
                        .collect::<Result<_>>()?;
                }
                "--markdown" => {
                    options.markdown = Some(args.next().context("--markdown needs a file")?.into());
                }
                other => bail!("unknown argument {other:?}"),
            }
        }
        Ok(options)
    }

    pub(crate) fn runs(&self) -> usize {
        if self.quick {
            1
        } else {
            3
        }
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.first().map(String::as_str) {
        // Children of section 6, measured alone.
        Some("rss-catchup") => runtime.block_on(memory::child_catchup(&args[1..])),
        Some("rss-idle") => runtime.block_on(memory::child_idle(&args[1..])),
        _ => {
            let options = Options::parse(&args)?;
            runtime.block_on(run(options))
        }
    }
}

async fn run(options: Options) -> Result<()> {
    let mut report = Report::default();
    println!("machine: {}", report::machine());
    if options.sections.iter().any(|s| (1..=3).contains(s)) {
        throughput_sections(&options, &mut report).await?;
    }
    if options.sections.contains(&4) {
        lag_section(&options, &mut report).await?;
    }
    if options.sections.contains(&5) {
        repair_section(&options, &mut report).await?;
    }
    if options.sections.contains(&6) {
        memory_section(&options, &mut report).await?;
    }
    if options.sections.contains(&7) {
        wan::catch_up_section(&options, &mut report).await?;
    }
    if options.sections.contains(&8) {
        wan::lag_section(&options, &mut report).await?;
    }
    if options.sections.contains(&9) {
        mesh::mesh_section(&options, &mut report).await?;
    }
    if options.sections.contains(&10) {
        daemon::daemon_section(&options, &mut report).await?;
    }
    if let Some(path) = &options.markdown {
        let mut text = format!(
            "Run {} on {}{}.\n\n",
            report::today(),
            report::machine(),
            if options.quick {
                " (--quick: small sizes, one run each; not a measurement)"
            } else {
                ""
            }
        );
        text.push_str(&report.markdown());
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Sections 1-3, run pairwise: each run measures the limit and the engine back to back,
/// and the ratios are taken within the run before the median.
async fn throughput_sections(options: &Options, report: &mut Report) -> Result<()> {
    let n: u64 = if options.quick { 20_000 } else { 200_000 };
    let peer = RedisServer::start().context("peer redis-server")?;
    let node = RedisServer::start().context("node redis-server")?;
    let prefix = "peer:";
    let stream = replication_core::WireKeys::new(prefix).cdc();
    let writer = client(&peer.url()).await?;
    fill(&writer, &stream, 0, n)
        .await
        .context("filling the stream")?;
    eprintln!("bench: stream of {n} entries ready");

    let (mut transport, mut decode, mut verify, mut tailer) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut noop, mut noop_ratio, mut into_node, mut node_ratio) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut noop_cpu, mut node_cpu) = (Vec::new(), Vec::new());
    for run in 0..options.runs() {
        // Without section 1 (profiling the engine alone) the ratios are meaningless.
        let limit = options.sections.contains(&1);
        let url = peer.url();
        let drain = |mode| throughput::drain(&url, &stream, n, mode);
        let t = if limit {
            drain(Drain::Transport).await?
        } else {
            f64::NAN
        };
        let d = if limit {
            drain(Drain::Decode).await?
        } else {
            f64::NAN
        };
        let v = if limit {
            drain(Drain::DecodeVerify).await?
        } else {
            f64::NAN
        };
        let e = if options.sections.contains(&2) {
            let run = throughput::engine_noop(&peer.url(), prefix, n).await?;
            noop_cpu.push(run);
            run.rate
        } else {
            0.0
        };
        let tl = if options.sections.contains(&2) {
            throughput::tailer_only(&peer.url(), prefix, n).await?
        } else {
            0.0
        };
        tailer.push(tl);
        let s = if options.sections.contains(&3) {
            let run = throughput::engine_node(&peer.url(), prefix, &node.url(), n).await?;
            node_cpu.push(run);
            run.rate
        } else {
            0.0
        };
        eprintln!("bench: run {run}: transport {t:.0}/s, decode {d:.0}/s, decode+verify {v:.0}/s, tailer {tl:.0}/s, engine no-op {e:.0}/s, engine node {s:.0}/s");
        transport.push(t);
        decode.push(d);
        verify.push(v);
        noop.push(e);
        noop_ratio.push(e / d);
        into_node.push(s);
        node_ratio.push(s / d);
    }
    let per_s = |v: &[f64]| format!("{}/s", thousands(median(v)));
    let s1 = "1 limit";
    report.row(
        s1,
        format!("fred drain, zstd decode (one context), N={n}"),
        per_s(&decode),
        "yardstick",
        Verdict::Info,
    );
    report.row(
        s1,
        "same, transport only (no decoding)",
        per_s(&transport),
        "",
        Verdict::Info,
    );
    report.row(
        s1,
        "same, decode + SHA-256 verify",
        per_s(&verify),
        "",
        Verdict::Info,
    );
    report.note(
        s1,
        format!(
            "One plain fred client, sequential `XREAD COUNT {}` from 0-0 over a stream of {n} PUT entries \
             (512-byte JSON payloads, zstd level 3 by `CdcEncoder`, about 2:1), reply walked as fred `Value`s; \
             the decoding drain decompresses each `data` into a reused buffer with one `zstd::bulk::Decompressor`. \
             The verifying drain also hashes the content (SHA-256) and compares it with `hash`, which PROTOCOL.md \
             requires of every reader.",
            throughput::READ_COUNT
        ),
    );
    if options.sections.contains(&2) {
        let s2 = "2 hot path";
        report.row(
            s2,
            "engine → counting no-op store",
            per_s(&noop),
            "",
            Verdict::Info,
        );
        report.row(
            s2,
            "StreamTailer alone (read, gap checks, decode, verify)",
            per_s(&tailer),
            "",
            Verdict::Info,
        );
        let r = median(&noop_ratio);
        report.row(
            s2,
            "ratio to the decoding drain (pairwise median)",
            format!("{r:.2}"),
            "≥ 0.90",
            Verdict::of(r >= 0.9),
        );
        cpu_rows(report, s2, &noop_cpu);
        report.note(
            s2,
            format!(
                "`ReplicationEngine` with one Redis peer, `MemoryCursorStore`, cold path off, batch_size = max_batch_size = {}, \
                 block_timeout 100 ms; timed from `start()` to the N-th applied change. The store counts `apply_batch`; \
                 its `local_states` knows nothing, so the engine asks `is_current` (false) for each item.",
                throughput::READ_COUNT
            ),
        );
    }
    if options.sections.contains(&3) {
        let s3 = "3 hot path";
        report.row(
            s3,
            "engine → replication-node (local Redis, Merkle upkeep)",
            per_s(&into_node),
            "",
            Verdict::Info,
        );
        let r = median(&node_ratio);
        report.row(
            s3,
            "ratio to the decoding drain (pairwise median)",
            format!("{r:.2}"),
            "≥ 0.40",
            Verdict::of(r >= 0.4),
        );
        cpu_rows(report, s3, &node_cpu);
        report.note(
            s3,
            "Same engine into `NodeStore` on a second private redis-server (flushed before each run): every \
             item written with its Merkle path and tombstone checks, no CDC. Both redis-servers and the engine \
             share the machine's cores. CPU per entry: this process from `/proc/self/task/*/schedstat`, each \
             redis-server from `INFO cpu` (user + sys), over the same interval; the ceiling is the core count \
             divided by their sum, the rate no overlap of the parts could exceed.",
        );
    }
    drop(writer);
    Ok(())
}

/// Section 4: lag under steady load, median over runs of each percentile.
/// Rows of CPU spent per entry by each part of an engine run (medians over the runs), and
/// the rate those costs allow on this machine's cores.
fn cpu_rows(report: &mut Report, section: &'static str, runs: &[throughput::EngineRun]) {
    let median_of =
        |f: fn(&throughput::EngineRun) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let engine = median_of(|r| r.engine_cpu_us);
    let peer = median_of(|r| r.peer_redis_cpu_us);
    let node = median_of(|r| r.node_redis_cpu_us);
    let total = median_of(throughput::EngineRun::total_cpu_us);
    let mut parts = format!("engine process {engine:.1} + peer redis-server {peer:.1}");
    if node > 0.0 {
        parts.push_str(&format!(" + node redis-server {node:.1}"));
    }
    report.row(
        section,
        format!("CPU per entry (µs): {parts}"),
        format!("{total:.1} µs"),
        "",
        Verdict::Info,
    );
    let cores = report::cores() as f64;
    report.row(
        section,
        format!("ceiling those costs allow on {cores:.0} cores"),
        format!("{}/s", thousands(cores * 1e6 / total)),
        "",
        Verdict::Info,
    );
}

async fn lag_section(options: &Options, report: &mut Report) -> Result<()> {
    let rate = 5_000;
    let seconds = if options.quick { 3 } else { 30 };
    let (mut p50, mut p99, mut max) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..options.runs() {
        let lags = lag::steady_load(rate, seconds, None).await?;
        let ms = |us: u64| us as f64 / 1000.0;
        let (a, b, c) = (
            ms(report::quantile(&lags, 0.5)),
            ms(report::quantile(&lags, 0.99)),
            ms(lags.last().copied().unwrap_or(0)),
        );
        eprintln!(
            "bench: lag run {run}: {} entries, p50 {a:.2} ms, p99 {b:.2} ms, max {c:.2} ms",
            lags.len()
        );
        p50.push(a);
        p99.push(b);
        max.push(c);
    }
    let s4 = "4 lag";
    report.row(
        s4,
        "p50 applied-at − appended-at",
        format!("{:.2} ms", median(&p50)),
        "",
        Verdict::Info,
    );
    let p = median(&p99);
    report.row(
        s4,
        "p99",
        format!("{p:.2} ms"),
        "< 10 ms",
        Verdict::of(p < 10.0),
    );
    report.row(
        s4,
        "max",
        format!("{:.2} ms", median(&max)),
        "",
        Verdict::Info,
    );
    report.note(
        s4,
        format!(
            "A writer XADDs {rate} entries/s (5 per 1 ms tick, pipelined) to a peer for {seconds} s; the engine \
             (block_timeout 100 ms) replicates them into a real `NodeStore`. Appended-at is stamped into each \
             payload (µs) just before its XADD; applied-at is when the store's `apply_batch` returned. \
             Writer, engine and both redis-servers share the machine.",
        ),
    );
    Ok(())
}

/// Section 5: repair cost against the size of the difference.
async fn repair_section(options: &Options, report: &mut Report) -> Result<()> {
    let s5 = "5 repair";
    let (keys, real_keys) = if options.quick {
        (20_000, 5_000)
    } else {
        (1_000_000, 100_000)
    };
    let diffs = [0, 10, 1_000, 10_000];
    let mut costs = Vec::new();
    for run in 0..options.runs() {
        let found = repair::in_memory(keys, &diffs).await?;
        for c in &found {
            eprintln!(
                "bench: repair run {run}: {} keys, {} differ: {:?} rt {}+{} bytes {}",
                c.keys,
                c.differing,
                c.report.duration,
                c.report.peer_round_trips,
                c.report.local_round_trips,
                c.report.bytes_fetched
            );
        }
        costs.push(found);
    }
    for (level, differing) in diffs.iter().enumerate() {
        let times: Vec<f64> = costs
            .iter()
            .map(|run| run[level].report.duration.as_secs_f64() * 1000.0)
            .collect();
        let r = &costs[0][level].report;
        let met = if *differing == 0 {
            r.peer_round_trips <= 1
        } else {
            r.keys_resolved == *differing
        };
        report.row(
            s5,
            format!(
                "in-memory, {} keys, {} differ: time · peer+local round trips · bytes fetched",
                thousands(keys as f64),
                thousands(*differing as f64)
            ),
            format!(
                "{:.1} ms · {}+{} · {}",
                median(&times),
                r.peer_round_trips,
                r.local_round_trips,
                thousands(r.bytes_fetched as f64)
            ),
            if *differing == 0 {
                "O(1) round trips"
            } else {
                "∝ difference"
            },
            if *differing == 0 {
                Verdict::of(met)
            } else {
                Verdict::Info
            },
        );
    }
    let real = repair::real_redis(real_keys, &diffs).await?;
    for c in &real {
        let r = &c.report;
        report.row(
            s5,
            format!(
                "real Redis, {} keys, {} differ",
                thousands(c.keys as f64),
                thousands(c.differing as f64)
            ),
            format!(
                "{:.1} ms · {}+{} · {}",
                r.duration.as_secs_f64() * 1000.0,
                r.peer_round_trips,
                r.local_round_trips,
                thousands(r.bytes_fetched as f64)
            ),
            "",
            Verdict::Info,
        );
    }
    report.note(
        s5,
        "Keys `bench.b{i/1000}.k{i%1000}` (1 000 branches of 1 000 leaves), 512-byte payloads; the peer gets \
         newer versions of the differing keys, spread over the key space, and one `repair_cycle` (default \
         batch size and concurrency, budgets lifted so one cycle finishes) levels the local store again. \
         Levels run in order on the same pair of stores. In-memory rows use replication-testkit's `MemoryStore` \
         and `MemoryPeer` (exact counts, no network; the median time of the runs, counts from the first); \
         real-Redis rows use two `NodeStore`s on two private redis-servers and a `RedisPeer` (one run).",
    );
    Ok(())
}

/// Section 6: peak RSS of the engine in a child process.
async fn memory_section(options: &Options, report: &mut Report) -> Result<()> {
    let s6 = "6 memory";
    let n: u64 = if options.quick { 50_000 } else { 1_000_000 };
    let peer = RedisServer::start().context("peer redis-server")?;
    let prefix = "peer:";
    let writer = client(&peer.url()).await?;
    fill(
        &writer,
        &replication_core::WireKeys::new(prefix).cdc(),
        0,
        n,
    )
    .await
    .context("filling the backlog")?;
    let url = peer.url();
    let catchup_args = vec![
        "rss-catchup".to_owned(),
        url.clone(),
        prefix.to_owned(),
        n.to_string(),
    ];
    let idle_args = vec![
        "rss-idle".to_owned(),
        url.clone(),
        "64".to_owned(),
        if options.quick { "2" } else { "10" }.to_owned(),
    ];
    let (mut catchup, mut idle) = (Vec::new(), Vec::new());
    for run in 0..options.runs() {
        let args = catchup_args.clone();
        let c = tokio::task::spawn_blocking(move || memory::child_peak_mb(&args)).await??;
        let args = idle_args.clone();
        let i = tokio::task::spawn_blocking(move || memory::child_peak_mb(&args)).await??;
        eprintln!("bench: memory run {run}: catch-up {c:.1} MB, 64 idle peers {i:.1} MB");
        catchup.push(c);
        idle.push(i);
    }
    let c = median(&catchup);
    report.row(
        s6,
        format!(
            "peak RSS catching up a {}-entry backlog",
            thousands(n as f64)
        ),
        format!("{c:.1} MB"),
        "< 100 MB",
        Verdict::of(c < 100.0),
    );
    report.row(
        s6,
        "peak RSS with 64 idle peers",
        format!("{:.1} MB", median(&idle)),
        "",
        Verdict::Info,
    );
    report.note(
        s6,
        "`VmHWM` of a child process (this binary re-run with a subcommand) that only runs the engine: \
         catch-up into the counting no-op store with the hot-path settings of section 2; idle: 64 peers \
         with empty streams (block_timeout 5 s), all connected, for 10 s.",
    );
    drop(writer);
    Ok(())
}
