//! `test`, `ci` and `bench`: the same commands locally and in `.ci/run`.

use crate::run::{cargo, run};
use crate::tools::ensure_test_tools;
use anyhow::Result;

/// Tests and lints build the daemon's opt-in store too, so its code is checked and its tests
/// run with the rest.
const TEST_FEATURES: &str = "replicationd/sync-engine";

/// Runs every test of the workspace against private redis-servers (the status page test
/// also needs Chromium, the alert rules test promtool).
pub(crate) fn test(extra: &[String]) -> Result<()> {
    ensure_test_tools()?;
    let mut cmd = cargo(&[
        "test",
        "--workspace",
        "--locked",
        "--no-fail-fast",
        "--features",
        TEST_FEATURES,
    ]);
    cmd.args(extra);
    run(&mut cmd)
}

/// Formatting, lints, docs, then the tests (the architecture checks are tests of their own,
/// in `tests/tests/tidy.rs`), the simulation's seed budget, and the benchmarks' smoke runs.
pub(crate) fn ci() -> Result<()> {
    run(&mut cargo(&["fmt", "--all", "--", "--check"]))?;
    // Before clippy: a broken co-link fails every later build with cargo's own, less
    // telling, error.
    check_colinks_with_sync_engine()?;
    run(&mut cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--features",
        TEST_FEATURES,
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo(&["doc", "--workspace", "--no-deps", "--locked"]).env("RUSTDOCFLAGS", "-D warnings"))?;
    test(&[])?;
    // A fixed budget of simulation seeds (the soak runs as many as time allows).
    crate::sim::ci_budget()?;
    // Benchmarks built in test mode run a few iterations and check their results, so a
    // benchmark cannot rot unnoticed.
    run(&mut cargo(&[
        "test",
        "--workspace",
        "--locked",
        "--bench",
        "*",
    ]))
}

/// The facade and sync-engine 0.2.x build into one binary and both open SQLite in it: the
/// `replication-colink-check` fixture depends on both and is built and run.
fn check_colinks_with_sync_engine() -> Result<()> {
    run(&mut cargo(&[
        "run",
        "--quiet",
        "--locked",
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
