//! `replicationd` as a real process: find (or build) the binary, start it with a config
//! file, signal it, wait for its exit, SIGKILL it. Binaries of other packages are not built
//! for a crate's tests, so [`replicationd_binary`] builds it with the same cargo and
//! profile when it is missing.

use crate::wait::wait_blocking;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The profile directory the test binary runs from (`target/debug`, `target/release`).
fn profile_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("unexpected test binary location {}", exe.display()))
}

/// Path of the `replicationd` binary: `REPLICATIOND_BIN`, else the one `cargo test
/// --workspace` builds next to the test binaries, else one built once per test process.
///
/// The build uses its own target directory under the profile directory: the outer
/// `cargo test` may still hold the lock of the shared one.
///
/// # Errors
/// When cargo cannot build it.
pub fn replicationd_binary() -> Result<PathBuf, String> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY.get_or_init(build).clone()
}

fn build() -> Result<PathBuf, String> {
    if let Ok(path) = std::env::var("REPLICATIOND_BIN") {
        return Ok(PathBuf::from(path));
    }
    let profile = profile_dir()?;
    // `cargo test --workspace` (what CI and `cargo xtask test` run) builds the daemon next
    // to the test binaries: use it. Otherwise build a private copy.
    let sibling = profile.join("replicationd");
    if sibling.exists() {
        return Ok(sibling);
    }
    let release = profile.file_name().is_some_and(|n| n == "release");
    let target_dir = profile.join("replicationd-for-tests");
    // This crate lives in crates/replication-testkit.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .ok_or("the testkit crate is not two levels below the workspace")?
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-p",
        "replicationd",
        "--quiet",
        "--bin",
        "replicationd",
    ])
    .arg("--target-dir")
    .arg(&target_dir)
    .current_dir(&workspace);
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .map_err(|e| format!("running cargo build -p replicationd: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build -p replicationd failed: {status}"));
    }
    let path = target_dir
        .join(if release { "release" } else { "debug" })
        .join("replicationd");
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "built replicationd not found at {}",
            path.display()
        ))
    }
}

/// A `replicationd run` process; SIGKILLed on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// Starts `replicationd run --config {config}`, logging to `{config}.log`.
    ///
    /// # Errors
    /// When the binary cannot be built or started.
    pub fn start(config: &Path) -> Result<Self, String> {
        Self::start_with_env(config, &[])
    }

    /// [`Daemon::start`] with `env` added to the daemon's environment.
    ///
    /// # Errors
    /// When the binary cannot be built or started.
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Result<Self, String> {
        let mut env = env.to_vec();
        env.insert(0, ("RUST_LOG", "warn"));
        Self::spawn(&replicationd_binary()?, config, &env)
    }

    /// Starts `{binary} run --config {config}` with `env` added to its environment (and
    /// nothing else: its log level is its own), stdout and stderr to `{config}.log`.
    ///
    /// # Errors
    /// When the binary cannot be started.
    pub fn spawn(binary: &Path, config: &Path, env: &[(&str, &str)]) -> Result<Self, String> {
        let log = config.with_extension("log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("opening {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .arg("run")
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        Ok(Self {
            child: Some(child),
            config: config.to_path_buf(),
            log,
        })
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process id (0 once killed).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Sends signal `name` (`TERM`, `HUP`) to the process.
    ///
    /// # Errors
    /// When it has been killed already or `kill` fails.
    pub fn signal(&self, name: &str) -> Result<(), String> {
        let child = self.child.as_ref().ok_or("the daemon was killed")?;
        let status = Command::new("kill")
            .args([format!("-{name}"), child.id().to_string()])
            .status()
            .map_err(|e| format!("running kill: {e}"))?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("kill -{name} failed: {status}"))
    }

    /// Waits (wall time, the process needs it) up to `deadline` for the process to exit;
    /// whether it exited successfully, or `None` when it still runs.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<bool> {
        let child = self.child.as_mut()?;
        let mut exit = None;
        wait_blocking(deadline, || {
            exit = child.try_wait().ok().flatten();
            exit.is_some()
        });
        let success = exit?.success();
        self.child = None;
        Some(success)
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The last `bytes` of its log (for failure messages).
    pub fn log_tail(&self, bytes: usize) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(&text[text.len().saturating_sub(bytes)..]).into_owned()
    }

    /// Its config file.
    pub fn config(&self) -> &Path {
        &self.config
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `GET /ready` on `127.0.0.1:{port}` until it answers 200 (`true`) or `deadline`
/// passes (`false`). The daemon is a real process, so this polls on wall time.
pub async fn wait_ready(port: u16, deadline: Duration) -> bool {
    crate::wait::within(deadline, || async move {
        let answer = tokio::task::spawn_blocking(move || crate::http_get(port, "/ready")).await;
        matches!(answer, Ok(Some((200, _))))
    })
    .await
}
