//! Making sure the programs the tests and the demo start are installed: `redis-server`
//! (private instances), `chromium` (the status page test) and `promtool` (the alert rules
//! test). Each missing one is installed from its Debian package when we are root with
//! apt-get; otherwise the error says exactly what to run.

use crate::run::run;
use anyhow::{bail, Result};
use std::process::Command;

/// A program some tests need, and where it comes from.
struct Tool {
    /// Environment variable that may point at the binary instead.
    env: &'static str,
    /// The binary's name on `PATH`.
    binary: &'static str,
    /// The Debian package that ships it.
    package: &'static str,
    /// How to install it elsewhere, for the error message.
    elsewhere: &'static str,
}

const REDIS: Tool = Tool {
    env: "REDIS_SERVER_BIN",
    binary: "redis-server",
    package: "redis-server",
    elsewhere: "macOS: brew install redis (version 7.0 or newer)",
};

const CHROMIUM: Tool = Tool {
    env: "CHROMIUM_BIN",
    binary: "chromium",
    package: "chromium",
    elsewhere: "any Chromium or Chrome binary will do",
};

const PROMTOOL: Tool = Tool {
    env: "PROMTOOL_BIN",
    binary: "promtool",
    package: "prometheus",
    elsewhere: "macOS: brew install prometheus",
};

/// `redis-server`, for every test that starts private Redis instances.
pub(crate) fn ensure_redis_server() -> Result<()> {
    ensure(&REDIS)
}

/// Everything `cargo xtask test` needs: Redis, Chromium and promtool.
pub(crate) fn ensure_test_tools() -> Result<()> {
    ensure(&REDIS)?;
    ensure(&CHROMIUM)?;
    ensure(&PROMTOOL)
}

fn ensure(tool: &Tool) -> Result<()> {
    if version(tool).is_some() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| o.stdout.starts_with(b"0"));
    let has_apt = Command::new("apt-get").arg("--version").output().is_ok();
    if is_root && has_apt {
        eprintln!(
            "xtask: {} is missing; installing the Debian package {}",
            tool.binary, tool.package
        );
        run(Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", tool.package])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        if let Some(version) = version(tool) {
            eprintln!("xtask: installed {version}");
            return Ok(());
        }
        bail!(
            "installed the {} package but `{} --version` still fails",
            tool.package,
            tool.binary
        );
    }
    bail!(
        "{binary} is not installed. Install it, then run this again:\n  \
         Debian/Ubuntu: sudo apt-get install {package}\n  \
         {elsewhere}\n\
         (or point {env} at a {binary} binary)",
        binary = tool.binary,
        package = tool.package,
        elsewhere = tool.elsewhere,
        env = tool.env,
    )
}

fn version(tool: &Tool) -> Option<String> {
    let binary = std::env::var(tool.env).unwrap_or_else(|_| tool.binary.into());
    let out = Command::new(binary).arg("--version").output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()
    })
}
