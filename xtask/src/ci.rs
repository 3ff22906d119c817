//! `test`, `ci` and `bench`: the same commands locally and in `.ci/run`.

use crate::redis::ensure_redis_server;
use crate::run::{cargo, output, run};
use anyhow::{bail, Result};

/// Crates `replication-core` must never depend on (it has no I/O): checked by `ci`.
const FORBIDDEN_IN_CORE: &[&str] = &["fred", "rusqlite", "tokio", "mio", "libsqlite3-sys"];

/// Crates whose default build must not link sync-engine (AGPL-3.0; opt-in only).
const WITHOUT_SYNC_ENGINE: &[&str] = &["replication-engine", "replicationd"];

/// Builds tests with the daemon's opt-in store too, so its tests run with the rest.
const TEST_FEATURES: &str = "replicationd/sync-engine";

/// Runs every test of the workspace against private redis-servers.
pub(crate) fn test(extra: &[String]) -> Result<()> {
    ensure_redis_server()?;
    let mut cmd = cargo(&[
        "test",
        "--workspace",
        "--no-fail-fast",
        "--features",
        TEST_FEATURES,
    ]);
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
        "--features",
        TEST_FEATURES,
        "--",
        "-D",
        "warnings",
    ]))?;
    check_core_has_no_io()?;
    check_sync_engine_is_opt_in()?;
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
    let offenders: Vec<String> = normal_dependencies("replication-core")?
        .into_iter()
        .filter(|name| FORBIDDEN_IN_CORE.contains(&name.as_str()))
        .collect();
    if !offenders.is_empty() {
        bail!("replication-core must not depend on I/O crates, but depends on: {offenders:?}");
    }
    eprintln!("xtask: replication-core depends on none of {FORBIDDEN_IN_CORE:?}");
    Ok(())
}

/// Default builds of the facade and the daemon do not link sync-engine.
fn check_sync_engine_is_opt_in() -> Result<()> {
    for package in WITHOUT_SYNC_ENGINE {
        if normal_dependencies(package)?
            .iter()
            .any(|n| n == "sync-engine")
        {
            bail!(
                "{package} must not depend on sync-engine (AGPL-3.0) in its default build; \
                 only replication-sync-engine and replicationd's `sync-engine` feature may"
            );
        }
    }
    eprintln!("xtask: default builds of {WITHOUT_SYNC_ENGINE:?} do not link sync-engine");
    Ok(())
}

/// Names of every crate `package` depends on, directly or not, with default features.
fn normal_dependencies(package: &str) -> Result<Vec<String>> {
    let tree = output(&mut cargo(&[
        "tree",
        "--package",
        package,
        "--edges",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]))?;
    Ok(tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}
