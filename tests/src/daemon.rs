//! `replicationd` as a real process: find (or build) the binary, write its config, start it,
//! SIGKILL it. Binaries of other packages are not built for this crate's tests, so the
//! harness builds it with the same cargo and profile when it is missing or stale.

use std::net::TcpListener;
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
pub fn binary() -> Result<PathBuf, String> {
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
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("tests crate has no parent directory")?
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

/// A free loopback port for the daemon's HTTP endpoint.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
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
        let binary = binary()?;
        let log = config.with_extension("log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("opening {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&binary)
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
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

/// Polls `GET /ready` on `port` until it answers 200 or `deadline` passes.
pub async fn wait_ready(port: u16, deadline: Duration) -> bool {
    crate::mesh::eventually(deadline, || async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            return false;
        };
        let req = "GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        if s.write_all(req.as_bytes()).await.is_err() {
            return false;
        }
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await;
        buf.starts_with(b"HTTP/1.1 200")
    })
    .await
}
