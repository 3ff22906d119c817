//! `test`, `ci` and `bench`: the same commands locally and in `.ci/run`.

use crate::run::{cargo, output, run};
use crate::tools::ensure_test_tools;
use anyhow::{bail, Result};

/// Crates `replication-core` must never depend on (it has no I/O): checked by `ci`.
const FORBIDDEN_IN_CORE: &[&str] = &["fred", "rusqlite", "tokio", "mio", "libsqlite3-sys"];

/// Runs every test of the workspace against private redis-servers (the status page test
/// also needs Chromium, the alert rules test promtool).
pub(crate) fn test(extra: &[String]) -> Result<()> {
    ensure_test_tools()?;
    let mut cmd = cargo(&["test", "--workspace", "--no-fail-fast"]);
    cmd.args(extra);
    run(&mut cmd)
}

/// Formatting, lints, architecture checks, then the tests.
pub(crate) fn ci() -> Result<()> {
    run(&mut cargo(&["fmt", "--all", "--", "--check"]))?;
    run(&mut cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    check_core_has_no_io()?;
    test(&[])
}

/// `replication-core` stays free of I/O crates (ARCHITECTURE.md invariant).
fn check_core_has_no_io() -> Result<()> {
    let tree = output(&mut cargo(&[
        "tree",
        "--package",
        "replication-core",
        "--edges",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]))?;
    let offenders: Vec<&str> = tree
        .lines()
        .filter(|line| {
            let name = line.split_whitespace().next().unwrap_or("");
            FORBIDDEN_IN_CORE.contains(&name)
        })
        .collect();
    if !offenders.is_empty() {
        bail!("replication-core must not depend on I/O crates, but depends on: {offenders:?}");
    }
    eprintln!("xtask: replication-core depends on none of {FORBIDDEN_IN_CORE:?}");
    Ok(())
}
