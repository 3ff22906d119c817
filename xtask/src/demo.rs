//! `cargo xtask demo`: a live three-node mesh (issue 7).

use anyhow::{bail, Result};

/// Runs the demo.
pub(crate) fn run(_args: &[String]) -> Result<()> {
    bail!("the demo is being written (issue 7)")
}
