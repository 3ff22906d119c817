//! `cargo xtask bench`: release benchmarks against private redis-servers (issue 9).

use anyhow::{bail, Result};

/// Runs the benchmarks.
pub(crate) fn run(_args: &[String]) -> Result<()> {
    bail!("the benchmark suite is being written (issue 9)")
}
