//! `cargo xtask sim`: the deterministic mesh simulation (crate `replication-sim`), built
//! and run in the dev profile: a seed costs about a quarter of a second there (virtual
//! time makes idle waits free), and the dev build is the one `cargo test` has made
//! already, so CI builds nothing more for it (a release build of the whole tree costs
//! more than the seeds it would speed up).
//!
//! `cargo xtask sim --seeds N [--nodes K] [--from S] [--jobs J]` runs seeds S..S+N and
//! reports failures, each with the command that replays it;
//! `cargo xtask sim --seed S [--nodes K] --trace` replays one with its event trace.

use crate::run::{cargo, run};
use anyhow::{bail, Result};

/// Seeds `cargo xtask ci` runs: a fixed budget (seeds 0..CI_SEEDS), well under three
/// minutes on two busy cores (docs/RELIABILITY.md gives the figures).
pub(crate) const CI_SEEDS: u64 = 300;

const OPTIONS: [&str; 6] = [
    "--seeds", "--seed", "--from", "--nodes", "--jobs", "--trace",
];

/// Builds and runs the simulator with `args` (see the module docs).
pub(crate) fn sim(args: &[String]) -> Result<()> {
    for arg in args.iter().filter(|a| a.starts_with("--")) {
        if !OPTIONS.contains(&arg.as_str()) {
            bail!(
                "unknown option {arg}: usage: cargo xtask sim --seeds N [--nodes K] [--from S] \
                 [--jobs J] | --seed S [--nodes K] [--trace]"
            );
        }
    }
    let mut cmd = cargo(&["run", "--quiet", "--locked", "-p", "replication-sim", "--"]);
    cmd.args(args);
    run(&mut cmd)
}

/// The CI budget: seeds 0..CI_SEEDS.
pub(crate) fn ci_budget() -> Result<()> {
    sim(&["--seeds".to_owned(), CI_SEEDS.to_string()])
}
