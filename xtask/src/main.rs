//! Project automation, the one home of scripts: `cargo xtask test|ci|bench|demo|sim`.
//!
//! Kept to few dependencies so it builds in seconds on a fresh machine.

mod bench;
mod chaos;
mod ci;
mod demo;
mod run;
mod sim;
mod tools;

use anyhow::{bail, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  demo    a live three-node mesh on loopback: concurrent writes, a crash, a trim, repair
          (--keep: leave it running, with its status pages, until Ctrl-C)
  test    make sure redis-server, chromium and promtool are available, then run every test
  ci      fmt --check, the sync-engine co-link check, clippy -D warnings, docs, test,
          300 simulation seeds, bench smoke
  bench   release benchmarks; writes docs/BENCHMARKS.md
  soak    the mesh fault scenarios at scale: cargo xtask soak --minutes N
  fuzz    run each cargo-fuzz target briefly (installs cargo-fuzz; needs nightly)
  sim     the deterministic mesh simulation: --seeds N [--nodes K] [--from S] [--jobs J],
          or --seed S [--nodes K] --trace to replay one seed with its event trace
";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match command.as_str() {
        "test" => ci::test(&rest),
        "ci" => ci::ci(),
        "demo" => demo::run(&rest),
        "bench" => bench::run(&rest),
        "soak" => chaos::soak(&rest),
        "fuzz" => chaos::fuzz(&rest),
        "sim" => sim::sim(&rest),
        "" | "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}
