//! Project automation, the one home of scripts: `cargo xtask test|ci|bench|demo`.
//!
//! Kept to few dependencies so it builds in seconds on a fresh machine.

mod ci;
mod redis;
mod run;

use anyhow::{bail, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test    make sure redis-server is available, then run every test of the workspace
  ci      cargo fmt --check, clippy -D warnings, the core dependency check, then test
  bench   release benchmarks (see docs/BENCHMARKS.md)
";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match command.as_str() {
        "test" => ci::test(&rest),
        "ci" => ci::ci(),
        "bench" => ci::bench(&rest),
        "" | "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}
