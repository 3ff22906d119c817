//! `test`, `ci` and `bench`: the same commands locally and in `.ci/run`.

use crate::redis::ensure_redis_server;
use crate::run::{cargo, output, run};
use anyhow::{bail, Result};

/// Crates `replication-core` must never depend on (it has no I/O): checked by `ci`.
const FORBIDDEN_IN_CORE: &[&str] = &["fred", "rusqlite", "tokio", "mio", "libsqlite3-sys"];

/// Runs every test of the workspace against private redis-servers.
pub(crate) fn test(extra: &[String]) -> Result<()> {
    ensure_redis_server()?;
    let mut cmd = cargo(&["test", "--workspace", "--no-fail-fast"]);
    cmd.args(extra);
    run(&mut cmd)
}

/// Formatting, lints, architecture checks, then the tests.
pub(crate) fn ci() -> Result<()> {
    run(&mut cargo(&["fmt", "--all", "--", "--check"]))?;
    // Before clippy: a broken co-link fails every later build with cargo's own, less
    // telling, error.
    check_colinks_with_sync_engine()?;
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

/// The facade and sync-engine 0.2.x build into one binary and both open SQLite in it: the
/// `replication-colink-check` fixture depends on both and is built and run.
fn check_colinks_with_sync_engine() -> Result<()> {
    run(&mut cargo(&[
        "run",
        "--quiet",
        "-p",
        "replication-colink-check",
    ]))
    .map_err(|e| {
        e.context(
            "the facade and sync-engine 0.2.x no longer build into one binary: both link the \
             native sqlite3 library, so rusqlite must stay on the libsqlite3-sys that sqlx 0.8 \
             uses (rusqlite 0.32, libsqlite3-sys 0.30)",
        )
    })
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
