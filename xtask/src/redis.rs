//! Making sure `redis-server` is available: tests and the demo start private instances.

use crate::run::run;
use anyhow::{bail, Result};
use std::process::Command;

/// Succeeds when `redis-server` runs; installs the Debian package when it is missing and we
/// are root with apt-get; otherwise fails saying exactly what to run.
pub(crate) fn ensure_redis_server() -> Result<()> {
    if redis_version().is_some() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| o.stdout.starts_with(b"0"));
    let has_apt = Command::new("apt-get").arg("--version").output().is_ok();
    if is_root && has_apt {
        eprintln!("xtask: redis-server is missing; installing the Debian package redis-server");
        run(Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "redis-server"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        if let Some(version) = redis_version() {
            eprintln!("xtask: installed {version}");
            return Ok(());
        }
        bail!("installed the redis-server package but `redis-server --version` still fails");
    }
    bail!(
        "redis-server is not installed. Install it, then run this again:\n  \
         Debian/Ubuntu: sudo apt-get install redis-server\n  \
         macOS:         brew install redis\n\
         (or point REDIS_SERVER_BIN at a redis-server binary, version 7.0 or newer)"
    )
}

fn redis_version() -> Option<String> {
    let binary = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
    let out = Command::new(binary).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
