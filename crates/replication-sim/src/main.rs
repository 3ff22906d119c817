//! `replication-sim`: runs simulation seeds and reports failures (`cargo xtask sim` builds
//! and runs it in release mode).
//!
//! `--seeds N [--from S] [--nodes K] [--jobs J]` runs seeds S..S+N on J threads;
//! `--seed S [--nodes K] [--trace]` runs one, printing its event trace. Every failure
//! prints the command that replays it. Exit status 1 when any seed fails.

use replication_sim::{replay_command, run, SimOptions, SimReport};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

struct Args {
    seeds: u64,
    from: u64,
    nodes: Option<usize>,
    jobs: usize,
    trace: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        seeds: 1,
        from: 0,
        nodes: None,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        trace: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--seeds" => args.seeds = value("--seeds")?,
            "--from" => args.from = value("--from")?,
            "--seed" => {
                args.from = value("--seed")?;
                args.seeds = 1;
            }
            "--nodes" => {
                let n = value("--nodes")?;
                if !(2..=7).contains(&n) {
                    return Err("--nodes must be 2 to 7".into());
                }
                args.nodes = Some(n as usize);
            }
            "--jobs" => args.jobs = value("--jobs")?.max(1) as usize,
            "--trace" => args.trace = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("replication-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(args.from));
    let end = args.from + args.seeds;
    let results: Arc<Mutex<Vec<(u64, SimReport)>>> = Arc::default();
    let workers: Vec<_> = (0..args.jobs.min(args.seeds as usize).max(1))
        .map(|_| {
            let (next, results) = (next.clone(), results.clone());
            let (nodes, trace) = (args.nodes, args.trace);
            std::thread::spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= end {
                    return;
                }
                let report = run(&SimOptions { seed, nodes, trace });
                if !report.violations.is_empty() {
                    eprintln!(
                        "seed {seed} FAILED ({} violation(s)): {}\n  replay: {}",
                        report.violations.len(),
                        report.violations[0],
                        replay_command(seed, nodes)
                    );
                }
                results
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((seed, report));
            })
        })
        .collect();
    for worker in workers {
        if worker.join().is_err() {
            eprintln!("replication-sim: a worker thread panicked");
            return ExitCode::FAILURE;
        }
    }
    let mut results = std::mem::take(
        &mut *results
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    results.sort_by_key(|(seed, _)| *seed);
    summarise(&args, &results, started.elapsed())
}

fn summarise(args: &Args, results: &[(u64, SimReport)], took: std::time::Duration) -> ExitCode {
    let mut faults: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut writes, mut virtual_ms) = (0, 0);
    let mut failed = Vec::new();
    let mut known = Vec::new();
    for (seed, report) in results {
        if args.trace {
            for line in &report.trace {
                println!("{line}");
            }
            for why in &report.violations {
                println!("VIOLATION {why}");
            }
        }
        if args.seeds == 1 {
            println!(
                "seed {seed}: digest {:016x}, {} nodes, {} writes, {} ms virtual",
                report.digest, report.nodes, report.writes, report.virtual_ms
            );
        }
        for (name, count) in &report.faults {
            *faults.entry(name).or_default() += count;
        }
        writes += report.writes;
        virtual_ms += report.virtual_ms;
        if !report.violations.is_empty() {
            failed.push(*seed);
        }
        if !report.explained.is_empty() {
            known.push(*seed);
        }
        if args.trace {
            for why in &report.explained {
                println!("EXPLAINED {why}");
            }
        }
    }
    let faults: Vec<String> = faults.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "{} seed(s) from {} in {:.1} s ({} jobs): {} failed, {} were explained by a documented limit; {writes} writes, {:.0} s virtual; faults: {}",
        results.len(),
        args.from,
        took.as_secs_f64(),
        args.jobs,
        failed.len(),
        known.len(),
        virtual_ms as f64 / 1000.0,
        faults.join(", ")
    );
    if !known.is_empty() {
        let shown: Vec<u64> = known.iter().take(10).copied().collect();
        println!("seeds with explained outcomes (docs/RELIABILITY.md): {shown:?}");
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("failed seeds: {failed:?}");
        for seed in failed.iter().take(5) {
            println!("  {}", replay_command(*seed, args.nodes));
        }
        ExitCode::FAILURE
    }
}
