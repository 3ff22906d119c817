//! Sections 7 and 8: the hot path across a WAN. The engine reaches its peer through
//! replication-testkit's `FaultProxy` with one-way latency in each direction (round trip
//! = 2 × one way); the 0 ms run goes through the same proxy, so ratios compare latency
//! alone.

use crate::payload::{client, fill};
use crate::report::{median, thousands, Report, Verdict};
use crate::{lag, throughput, Options};
use anyhow::{Context, Result};
use replication_testkit::{FaultProxy, LinkMode, RedisServer};
use std::time::Duration;

/// Round trips measured, ms.
const RTTS: [u64; 3] = [0, 50, 150];

fn link(rtt_ms: u64) -> LinkMode {
    match rtt_ms {
        0 => LinkMode::Pass,
        ms => LinkMode::Delay(Duration::from_millis(ms / 2)),
    }
}

/// Section 7: catch-up of a backlog into the no-op store at each round trip.
pub(crate) async fn catch_up_section(options: &Options, report: &mut Report) -> Result<()> {
    let n: u64 = if options.quick { 20_000 } else { 200_000 };
    let peer = RedisServer::start().context("peer redis-server")?;
    let prefix = "peer:";
    let writer = client(&peer.url()).await?;
    fill(&writer, &format!("{prefix}cdc"), 0, n)
        .await
        .context("filling the stream")?;
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); RTTS.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); RTTS.len()];
    for run in 0..options.runs() {
        let mut this_run = Vec::new();
        for rtt in RTTS {
            let proxy = FaultProxy::start_with(peer.addr(), link(rtt))
                .await
                .context("proxy")?;
            let r = throughput::engine_noop(&proxy.redis_url(), prefix, n)
                .await?
                .rate;
            this_run.push(r);
        }
        eprintln!("bench: wan run {run}: {this_run:.0?} entries/s at {RTTS:?} ms");
        for (i, r) in this_run.iter().enumerate() {
            rates[i].push(*r);
            ratios[i].push(r / this_run[0]);
        }
    }
    let s7 = "7 WAN catch-up";
    for (i, rtt) in RTTS.iter().enumerate() {
        let rate = format!("{}/s", thousands(median(&rates[i])));
        if *rtt == 0 {
            report.row(
                s7,
                "engine → no-op store, through the proxy, 0 ms",
                rate,
                "yardstick",
                Verdict::Info,
            );
            continue;
        }
        let r = median(&ratios[i]);
        let target = if *rtt == 50 { 0.8 } else { 0.6 };
        report.row(
            s7,
            format!("{rtt} ms round trip: rate · ratio to 0 ms (pairwise median)"),
            format!("{rate} · {r:.2}"),
            format!("≥ {target:.1}"),
            Verdict::of(r >= target),
        );
    }
    report.note(
        s7,
        format!(
            "Section 2's engine (batch_size = max_batch_size = {}, default catch_up_ranges) catching up a \
             {}-entry backlog into the counting no-op store, its peer connections through a `FaultProxy` \
             with half the round trip of one-way latency in each direction. Timed from `start()` to the last apply.",
            throughput::READ_COUNT,
            thousands(n as f64)
        ),
    );
    drop(writer);
    Ok(())
}

/// Section 8: lag at 5 000 changes/s across a 50 ms round trip, beside loopback.
pub(crate) async fn lag_section(options: &Options, report: &mut Report) -> Result<()> {
    let rate = 5_000;
    let rtt_ms = 50;
    let seconds = if options.quick { 3 } else { 20 };
    let (mut loopback, mut wan, mut wan_p50) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..options.runs() {
        let ms = |us: u64| us as f64 / 1000.0;
        let near = lag::steady_load(rate, seconds, None).await?;
        let far = lag::steady_load(rate, seconds, Some(link(rtt_ms))).await?;
        let (a, b) = (
            ms(crate::report::quantile(&near, 0.99)),
            ms(crate::report::quantile(&far, 0.99)),
        );
        eprintln!("bench: wan lag run {run}: p99 loopback {a:.2} ms, {rtt_ms} ms RTT {b:.2} ms");
        loopback.push(a);
        wan.push(b);
        wan_p50.push(ms(crate::report::quantile(&far, 0.5)));
    }
    let s8 = "8 WAN lag";
    let (near, far) = (median(&loopback), median(&wan));
    let limit = 1.2 * rtt_ms as f64 + near;
    report.row(
        s8,
        format!("p50 at {rtt_ms} ms round trip"),
        format!("{:.1} ms", median(&wan_p50)),
        "",
        Verdict::Info,
    );
    report.row(
        s8,
        format!("p99 at {rtt_ms} ms round trip (loopback p99 {near:.2} ms)"),
        format!("{far:.1} ms · {:.2}× RTT", far / rtt_ms as f64),
        format!("≤ 1.2×RTT + loopback p99 = {limit:.1} ms"),
        Verdict::of(far <= limit),
    );
    report.note(
        s8,
        format!(
            "Section 4's load ({rate} entries/s into a real `NodeStore`) for {seconds} s, the engine reaching \
             the peer through a `FaultProxy` with {} ms one-way latency each way; loopback run through no proxy, \
             in the same run.",
            rtt_ms / 2
        ),
    );
    Ok(())
}
