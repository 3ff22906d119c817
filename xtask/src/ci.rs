//! `test`, `ci` and `bench`: the same commands locally and in `.ci/run`.

use crate::redis::ensure_redis_server;
use crate::run::{cargo, run};
use anyhow::Result;

/// Runs every test of the workspace against private redis-servers.
pub(crate) fn test(extra: &[String]) -> Result<()> {
    ensure_redis_server()?;
    let mut cmd = cargo(&["test", "--workspace", "--locked", "--no-fail-fast"]);
    cmd.args(extra);
    run(&mut cmd)
}

/// Formatting, lints, docs, then the tests (the architecture checks are tests of their own,
/// in `tests/tests/tidy.rs`), and the benchmarks' smoke runs.
pub(crate) fn ci() -> Result<()> {
    run(&mut cargo(&["fmt", "--all", "--", "--check"]))?;
    run(&mut cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo(&["doc", "--workspace", "--no-deps", "--locked"]).env("RUSTDOCFLAGS", "-D warnings"))?;
    test(&[])?;
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
