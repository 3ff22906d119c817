//! A private `redis-server` for one test: free loopback port, own temp dir, no persistence
//! unless asked, killed (SIGKILL) on drop so parallel tests never share state.

use crate::port::free_port;
use crate::wait::wait_until;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Why a test server could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The binary is not installed.
    #[error("redis-server not found ({0}); install it with `apt-get install redis-server` or run `cargo xtask test`, which installs it")]
    NotInstalled(String),
    /// The server did not come up.
    #[error("redis-server on port {port} did not become ready: {detail}")]
    NotReady {
        /// Port it was started on.
        port: u16,
        /// Log tail or exit status.
        detail: String,
    },
    /// Filesystem or process error.
    #[error("redis-server test harness I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A condition (a replica in sync, a failover) did not come about in time.
    #[error("redis test harness: {0}")]
    Timeout(String),
}

/// Options for a test server.
#[derive(Clone, Debug, Default)]
pub struct RedisServerBuilder {
    persistence: bool,
    args: Vec<String>,
    tls_port: bool,
    /// Run as a Sentinel with this initial config (Sentinel rewrites the file as it learns).
    sentinel_config: Option<String>,
}

impl RedisServerBuilder {
    /// Keep data across [`RedisServer::restart`] (append-only file in the server's dir).
    pub fn persistence(mut self, on: bool) -> Self {
        self.persistence = on;
        self
    }

    /// Extra command-line arguments (`--requirepass x`, `--tls-cert-file f`...).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Serve TLS on the chosen port (plain TCP disabled); the TLS files go in `arg`s.
    pub fn tls(mut self) -> Self {
        self.tls_port = true;
        self
    }

    /// Run as a Sentinel (`redis-server sentinel.conf --sentinel`) whose config file starts
    /// as `config`.
    pub(crate) fn sentinel(mut self, config: impl Into<String>) -> Self {
        self.sentinel_config = Some(config.into());
        self
    }

    /// Starts the server.
    pub fn start(self) -> Result<RedisServer, TestkitError> {
        let mut dir = tempfile::Builder::new().prefix("redis-test-").tempdir()?;
        // A port picked free can be taken by a parallel test before redis binds it: retry.
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            let mut server = RedisServer {
                child: None,
                port,
                dir,
                options: self.clone(),
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e @ TestkitError::NotInstalled(_)) => return Err(e),
                Err(e) => {
                    dir = server.take_dir();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(TestkitError::NotReady {
            port: 0,
            detail: "no attempt".into(),
        }))
    }
}

/// A running private `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    options: RedisServerBuilder,
}

impl RedisServer {
    /// Starts a server with no persistence.
    pub fn start() -> Result<Self, TestkitError> {
        Self::builder().start()
    }

    /// Options for a server.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:{port}` (`rediss://` for TLS servers).
    pub fn url(&self) -> String {
        let scheme = if self.options.tls_port {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `host:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The server's working directory (AOF, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Kills the server with SIGKILL (data not persisted since the last fsync is lost).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process (SIGSTOP) without ending it: it keeps its connections and its
    /// data but answers nothing, not even replication, until [`thaw`](Self::thaw).
    pub fn freeze(&self) -> Result<(), TestkitError> {
        self.signal("-STOP")
    }

    /// Lets a [frozen](Self::freeze) process run again (SIGCONT).
    pub fn thaw(&self) -> Result<(), TestkitError> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> Result<(), TestkitError> {
        let pid =
            self.child.as_ref().map(Child::id).ok_or_else(|| {
                TestkitError::Timeout(format!("port {} is not running", self.port))
            })?;
        // kill(1) rather than libc: the workspace denies unsafe code.
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(TestkitError::Timeout(format!(
                "kill {signal} {pid}: {status}"
            )))
        }
    }

    /// Kills and starts it again on the same port and dir (data kept only with persistence).
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.kill();
        // The port may linger briefly: spawning again is retried for a while.
        wait_until(
            Duration::from_secs(10),
            "the server to start again on its port",
            || self.spawn().map(|()| true),
        )
    }

    /// Sends one command over plain TCP and returns its reply as text
    /// ([`crate::resp::Reply::to_lines`]; tests' own probe, independent of the client under
    /// test). Not for TLS servers.
    pub fn command(&self, args: &[&str]) -> Result<String, TestkitError> {
        Ok(crate::resp::command_str(self.addr(), args)?.to_lines())
    }

    /// One field of `INFO section` (`role`, `master_link_status`…), if the server has it.
    pub fn info_field(&self, section: &str, field: &str) -> Result<Option<String>, TestkitError> {
        let text = self.command(&["INFO", section])?;
        let prefix = format!("{field}:");
        Ok(text
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(|value| value.trim().to_owned()))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn take_dir(self) -> tempfile::TempDir {
        let mut this = self;
        this.kill();
        let placeholder = tempfile::TempDir::new().expect("creating a temp dir");
        std::mem::replace(&mut this.dir, placeholder)
    }

    fn spawn(&mut self) -> Result<(), TestkitError> {
        let binary = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let log = self.log_path();
        let _ = std::fs::remove_file(&log);
        let mut cmd = Command::new(&binary);
        let port = self.port.to_string();
        if let Some(config) = &self.options.sentinel_config {
            // Sentinel needs a writable config file, given first; it keeps what it learnt
            // there across a restart, so the file is only written the first time.
            let path = self.dir.path().join("sentinel.conf");
            if !path.exists() {
                std::fs::write(&path, config)?;
            }
            cmd.arg(&path).arg("--sentinel");
        }
        if self.options.tls_port {
            cmd.args(["--port", "0", "--tls-port", &port]);
        } else {
            cmd.args(["--port", &port]);
        }
        cmd.args([
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
        ])
        .arg("--dir")
        .arg(self.dir.path())
        .arg("--logfile")
        .arg(&log);
        if self.options.sentinel_config.is_none() {
            cmd.args(["--save", ""])
                .args([
                    "--appendonly",
                    if self.options.persistence {
                        "yes"
                    } else {
                        "no"
                    },
                ])
                .args(["--appendfsync", "always"])
                // A replica's first sync starts at once instead of after Redis's default 5 s
                // wait for more replicas.
                .args(["--repl-diskless-sync-delay", "0"]);
        }
        cmd.args(&self.options.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|e| TestkitError::NotInstalled(format!("{binary}: {e}")))?;
        self.child = Some(child);
        self.wait_ready(&log)
    }

    fn wait_ready(&mut self, log: &Path) -> Result<(), TestkitError> {
        // A Sentinel never logs "Ready"; it is ready once it monitors its primary.
        let ready = if self.options.sentinel_config.is_some() {
            "+monitor master"
        } else {
            "Ready to accept connections"
        };
        let (mut text, mut exited) = (String::new(), None);
        // Stops early, not ready, when the process has exited.
        let waited = wait_until(Duration::from_secs(20), "the server to be ready", || {
            text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains(ready) {
                return Ok(true);
            }
            exited = match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => Some(status.to_string()),
                Some(Err(e)) => Some(e.to_string()),
                _ => None,
            };
            Ok(exited.is_some())
        });
        if waited.is_ok() && exited.is_none() {
            return Ok(());
        }
        self.kill();
        let tail: String = text.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        Err(TestkitError::NotReady {
            port: self.port,
            detail: format!("{} ({tail})", exited.unwrap_or_else(|| "timed out".into())),
        })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn starts_answers_and_is_killed_on_drop() {
        let mut server = RedisServer::start().unwrap();
        assert_eq!(server.command(&["PING"]).unwrap(), "+PONG\n");
        assert_eq!(server.command(&["SET", "k", "v"]).unwrap(), "+OK\n");
        assert_eq!(server.command(&["GET", "k"]).unwrap(), "v\n");
        assert!(server.is_running());
        let addr = server.addr();
        drop(server);
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
    }

    #[test]
    fn restart_without_persistence_loses_data_and_with_it_keeps_it() {
        let mut volatile = RedisServer::start().unwrap();
        volatile.command(&["SET", "k", "v"]).unwrap();
        volatile.restart().unwrap();
        assert_eq!(volatile.command(&["GET", "k"]).unwrap(), "(nil)\n");

        let mut durable = RedisServer::builder().persistence(true).start().unwrap();
        durable.command(&["SET", "k", "v"]).unwrap();
        durable.restart().unwrap();
        assert_eq!(durable.command(&["GET", "k"]).unwrap(), "v\n");
    }

    #[test]
    fn parallel_servers_do_not_share_data() {
        let a = RedisServer::start().unwrap();
        let b = RedisServer::start().unwrap();
        assert_ne!(a.port(), b.port());
        a.command(&["SET", "k", "a"]).unwrap();
        assert_eq!(b.command(&["GET", "k"]).unwrap(), "(nil)\n");
    }
}
