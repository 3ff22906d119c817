//! A node run by a real `replicationd` process: its private redis-server, its config
//! file, its daemon (started and SIGKILLed at will) and the CLI pointed at its config.
//! Nodes peer with each other through [`DaemonNode::write_config`].

use replication_engine::HealthCheck;
use replication_testkit::{
    free_port, http_get, replicationd_binary, wait_blocking, Daemon, RedisServer,
};
use serde::Deserialize;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

/// The part of the daemon's status report (`/status.json`) tests read, typed.
#[derive(Debug, Deserialize)]
pub struct Status {
    /// The node's id.
    pub node_id: String,
    /// Engine, store and per-peer health.
    pub health: HealthCheck,
    /// Per peer, the recent samples.
    pub history: Vec<replication_engine::PeerHistory>,
}

impl Status {
    /// The health of peer `id`.
    ///
    /// # Panics
    /// When the daemon does not know that peer (a test bug).
    pub fn peer(&self, id: &str) -> &replication_engine::PeerHealth {
        self.health
            .peers
            .iter()
            .find(|p| p.node_id == id)
            .unwrap_or_else(|| panic!("no peer {id} in {self:?}"))
    }
}

/// One node of a mesh of daemons.
#[derive(Debug)]
pub struct DaemonNode {
    /// Its node id; its keys live under `{name}:`.
    pub name: String,
    /// Its own Redis.
    pub redis: RedisServer,
    /// Its HTTP port (status page, health, metrics, admin).
    pub http: u16,
    config: PathBuf,
    daemon: Option<Daemon>,
    _dir: tempfile::TempDir,
}

impl DaemonNode {
    /// A node with its Redis running and a config without peers; no daemon yet.
    ///
    /// # Panics
    /// When redis-server or a port cannot be had.
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let node = Self {
            name: name.to_owned(),
            redis: RedisServer::start().expect("redis-server starts"),
            http: free_port().expect("a free port"),
            config: dir.path().join(format!("{name}.toml")),
            daemon: None,
            _dir: dir,
        };
        node.write_config(&[], "");
        node
    }

    /// Prefix of every key this node writes.
    pub fn prefix(&self) -> String {
        format!("{}:", self.name)
    }

    /// Its config file.
    pub fn config(&self) -> &std::path::Path {
        &self.config
    }

    /// The status page's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.http)
    }

    /// Writes the config file: these peers, short timeouts, and `extra` TOML appended
    /// (sections not otherwise written: `[admin]`, `[settings.peer]`...).
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn write_config(&self, peers: &[&DaemonNode], extra: &str) {
        let mut text = format!(
            "local_node_id = \"{name}\"\n\
             [settings]\nshutdown_timeout = \"5s\"\n\
             [settings.hot_path]\nblock_timeout = \"200ms\"\n\
             [settings.cold_path]\ninterval = \"60s\"\n\
             [cursor]\nsqlite_path = \"{db}\"\nflush_interval = \"100ms\"\n\
             [node]\nredis_url = \"{url}\"\nredis_prefix = \"{prefix}\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n",
            name = self.name,
            db = self.config.with_extension("db").display(),
            url = self.redis.url(),
            prefix = self.prefix(),
            http = self.http,
        );
        text.push_str(extra);
        for peer in peers {
            text.push_str(&format!(
                "\n[[peers]]\nnode_id = \"{}\"\nredis_url = \"{}\"\nredis_prefix = \"{}\"\n",
                peer.name,
                peer.redis.url(),
                peer.prefix()
            ));
        }
        std::fs::write(&self.config, text).expect("write the config");
    }

    /// Starts the daemon (with `env` set for it) and waits until it serves its status.
    ///
    /// # Panics
    /// When it does not start or never answers.
    pub fn start(&mut self, env: &[(&str, &str)]) {
        let daemon = Daemon::start_with_env(&self.config, env).expect("replicationd starts");
        self.daemon = Some(daemon);
        let started = self.wait_until("it serves /status.json", |n| n.try_status().is_some());
        assert!(started, "{}", self.log_tail());
    }

    /// SIGKILLs the daemon.
    pub fn kill(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.kill();
        }
    }

    /// Sends `signal` (`HUP`, `TERM`) to the daemon.
    ///
    /// # Panics
    /// When no daemon runs.
    pub fn signal(&self, signal: &str) {
        let daemon = self.daemon.as_ref().expect("a running daemon");
        let ok = Command::new("kill")
            .args([format!("-{signal}"), daemon.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} failed");
    }

    /// The daemon's whole log (up to its last MiB).
    pub fn log(&self) -> String {
        self.daemon
            .as_ref()
            .map_or_else(String::new, |d| d.log_tail(1 << 20))
    }

    /// The end of the daemon's log.
    pub fn log_tail(&self) -> String {
        self.daemon
            .as_ref()
            .map_or_else(String::new, |d| d.log_tail(4000))
    }

    /// Runs `replicationd {command} --config {config} {rest...}` with `env` set.
    ///
    /// # Panics
    /// When the binary cannot be run.
    pub fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let (command, rest) = args.split_first().expect("a command");
        let mut cmd = Command::new(replicationd_binary().expect("replicationd is built"));
        cmd.arg(command)
            .arg("--config")
            .arg(&self.config)
            .args(rest);
        cmd.env_remove("REPLICATIOND_ADMIN_TOKEN");
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd.output().expect("replicationd runs")
    }

    /// [`DaemonNode::cli_env`] with nothing added to the environment.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_env(args, &[])
    }

    /// Writes `key` through the CLI.
    ///
    /// # Panics
    /// When the write fails.
    pub fn put(&self, key: &str, value: &str) {
        let out = self.cli(&["put", key, value]);
        assert!(out.status.success(), "put {key}: {}", stderr(&out));
    }

    /// Whether this node holds `key`.
    pub fn has(&self, key: &str) -> bool {
        self.cli(&["get", key]).status.success()
    }

    /// The daemon's status report, when it answers.
    pub fn try_status(&self) -> Option<Status> {
        let (code, body) = http_get(self.http, "/status.json")?;
        (code == 200).then(|| serde_json::from_str(&body).ok())?
    }

    /// The daemon's status report.
    ///
    /// # Panics
    /// When the daemon does not answer.
    pub fn status(&self) -> Status {
        self.try_status()
            .unwrap_or_else(|| panic!("{} does not answer: {}", self.name, self.log_tail()))
    }

    /// Polls `check` until it holds, for up to a minute; false when it never did.
    pub fn wait_until(&self, what: &str, mut check: impl FnMut(&Self) -> bool) -> bool {
        let held = wait_blocking(Duration::from_secs(60), || check(self));
        if !held {
            eprintln!("{}: timed out waiting until {what}", self.name);
        }
        held
    }
}

/// A command's stderr, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A command's stdout, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
