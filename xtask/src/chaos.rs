//! `cargo xtask soak` and `cargo xtask fuzz`.
//!
//! `soak` reruns the mesh fault scenarios (the `replication-tests` crate) in release mode at
//! a larger workload scale, each round with fresh seeds, until the time is up or a round
//! fails (the failing test prints its seed). `fuzz` runs each cargo-fuzz target briefly.

use crate::run::{cargo, output, run, workspace_root};
use anyhow::{bail, Context, Result};
use std::process::Command;
use std::time::{Duration, Instant};

/// Fuzz targets in fuzz/Cargo.toml.
const FUZZ_TARGETS: [&str; 3] = ["cdc_decode", "stream_id", "children_member"];

/// The value after `flag` in `args`, parsed; `default` when absent.
fn flag(args: &[String], name: &str, default: u64) -> Result<u64> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .with_context(|| format!("{name} needs a value"))?
            .parse()
            .with_context(|| format!("{name} takes a whole number")),
    }
}

/// Runs the fault scenarios at scale: `cargo xtask soak [--minutes N] [--scale S]`.
pub(crate) fn soak(args: &[String]) -> Result<()> {
    for arg in args.iter().filter(|a| a.starts_with("--")) {
        if arg != "--minutes" && arg != "--scale" {
            bail!("unknown option {arg}: usage: cargo xtask soak [--minutes N] [--scale S]");
        }
    }
    let minutes = flag(args, "--minutes", 10)?;
    let scale = flag(args, "--scale", 10)?;
    let end = Instant::now() + Duration::from_secs(minutes * 60);
    let mut round = 0;
    // At least one round, then as many as fit; each picks new seeds.
    loop {
        round += 1;
        eprintln!("xtask soak: round {round} (MESH_SCALE={scale}, {minutes} min budget)");
        let mut cmd = cargo(&["test", "-p", "replication-tests", "--release"]);
        cmd.env("MESH_SCALE", scale.to_string());
        run(&mut cmd).with_context(|| {
            format!("soak round {round} failed: the failing test printed its MESH_SEED")
        })?;
        if Instant::now() >= end {
            break;
        }
    }
    eprintln!("xtask soak: {round} rounds passed");
    Ok(())
}

/// Runs each fuzz target briefly: `cargo xtask fuzz [--seconds N]` (default 30 per target).
pub(crate) fn fuzz(args: &[String]) -> Result<()> {
    let seconds = flag(args, "--seconds", 30)?;
    let toolchains = output(Command::new("rustup").args(["toolchain", "list"]))
        .context("rustup is needed to find a nightly toolchain")?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        bail!("cargo fuzz needs a nightly toolchain; install it with:\n    rustup toolchain install nightly");
    }
    let has_fuzz = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_fuzz {
        run(&mut cargo(&["install", "cargo-fuzz", "--locked"]))?;
    }
    let fuzz_dir = workspace_root().join("fuzz");
    for target in FUZZ_TARGETS {
        let mut cmd = Command::new("cargo");
        cmd.args([
            "+nightly",
            "fuzz",
            "run",
            target,
            "--",
            &format!("-max_total_time={seconds}"),
        ])
        .current_dir(&fuzz_dir);
        run(&mut cmd).with_context(|| {
            format!(
                "fuzz target {target} failed: copy the input from fuzz/artifacts/{target}/ to \
                 fuzz/regressions/{target}/ so tests/tests/fuzz_regressions.rs replays it"
            )
        })?;
    }
    Ok(())
}
