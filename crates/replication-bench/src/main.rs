//! `replication-bench`: the engine's throughput, lag, repair cost and memory, measured
//! against the physical limit of this machine (issue 9). Run through `cargo xtask bench`.
//!
//! ```text
//! replication-bench [--quick] [--sections 1,2,3,4,5,6] [--markdown FILE]
//! ```
//! Every section starts its own private redis-servers on loopback (replication-testkit).
//! `--quick` uses small sizes and one run per figure (a smoke check, not a measurement).

mod counting;
mod payload;
mod report;
mod throughput;

use anyhow::{bail, Context, Result};
use payload::{client, fill};
use report::{median, thousands, Report, Verdict};
use replication_testkit::RedisServer;
use std::path::PathBuf;
use throughput::Drain;

/// Command-line options.
#[derive(Debug)]
struct Options {
    quick: bool,
    sections: Vec<u32>,
    markdown: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut options = Options { quick: false, sections: (1..=6).collect(), markdown: None };
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

    fn runs(&self) -> usize {
        if self.quick {
            1
        } else {
            3
        }
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let options = Options::parse(&args)?;
    runtime.block_on(run(options))
}

async fn run(options: Options) -> Result<()> {
    let mut report = Report::default();
    println!("machine: {}", report::machine());
    if options.sections.iter().any(|s| (1..=3).contains(s)) {
        throughput_sections(&options, &mut report).await?;
    }
    if let Some(path) = &options.markdown {
        let mut text = format!(
            "Run {} on {}{}.\n\n",
            report::today(),
            report::machine(),
            if options.quick { " (--quick: small sizes, one run each; not a measurement)" } else { "" }
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
    let stream = format!("{prefix}cdc");
    let writer = client(&peer.url()).await?;
    fill(&writer, &stream, 0, n).await.context("filling the stream")?;
    eprintln!("bench: stream of {n} entries ready");

    let (mut transport, mut decode, mut verify, mut tailer) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut noop, mut noop_ratio, mut into_node, mut node_ratio) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..options.runs() {
        // Without section 1 (profiling the engine alone) the ratios are meaningless.
        let limit = options.sections.contains(&1);
        let url = peer.url();
        let drain = |mode| throughput::drain(&url, &stream, n, mode);
        let t = if limit { drain(Drain::Transport).await? } else { f64::NAN };
        let d = if limit { drain(Drain::Decode).await? } else { f64::NAN };
        let v = if limit { drain(Drain::DecodeVerify).await? } else { f64::NAN };
        let e = if options.sections.contains(&2) { throughput::engine_noop(&peer.url(), prefix, n).await? } else { 0.0 };
        let tl = if options.sections.contains(&2) { throughput::tailer_only(&peer.url(), prefix, n).await? } else { 0.0 };
        tailer.push(tl);
        let s = if options.sections.contains(&3) {
            throughput::engine_node(&peer.url(), prefix, &node.url(), n).await?
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
    report.row(s1, format!("fred drain, zstd decode (one context), N={n}"), per_s(&decode), "yardstick", Verdict::Info);
    report.row(s1, "same, transport only (no decoding)", per_s(&transport), "", Verdict::Info);
    report.row(s1, "same, decode + SHA-256 verify", per_s(&verify), "", Verdict::Info);
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
        report.row(s2, "engine → counting no-op store", per_s(&noop), "", Verdict::Info);
        report.row(s2, "StreamTailer alone (read, gap checks, decode, verify)", per_s(&tailer), "", Verdict::Info);
        let r = median(&noop_ratio);
        report.row(s2, "ratio to the decoding drain (pairwise median)", format!("{r:.2}"), "≥ 0.90", Verdict::of(r >= 0.9));
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
        report.row(s3, "engine → replication-node (local Redis, Merkle upkeep)", per_s(&into_node), "", Verdict::Info);
        let r = median(&node_ratio);
        report.row(s3, "ratio to the decoding drain (pairwise median)", format!("{r:.2}"), "≥ 0.40", Verdict::of(r >= 0.4));
        report.note(
            s3,
            "Same engine into `NodeStore` on a second private redis-server (flushed before each run): every \
             item written with its Merkle path and tombstone checks, no CDC. Both redis-servers and the engine \
             share the machine's cores.",
        );
    }
    drop(writer);
    Ok(())
}
