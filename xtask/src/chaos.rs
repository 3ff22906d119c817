//! `cargo xtask soak` and `cargo xtask fuzz` (issue 8).

use anyhow::{bail, Result};

/// Runs the fault scenarios at scale.
pub(crate) fn soak(_args: &[String]) -> Result<()> {
    bail!("soak runs are being written (issue 8)")
}

/// Runs the fuzz targets briefly.
pub(crate) fn fuzz(_args: &[String]) -> Result<()> {
    bail!("fuzz targets are being written (issue 8)")
}
