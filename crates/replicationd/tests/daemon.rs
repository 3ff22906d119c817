//! Drives the real `replicationd` binary as a subprocess against private redis-servers:
//! config errors, HTTP endpoints, SIGTERM drain, SIGHUP reload, and replication end to end.

// Test helpers outside #[test] fns: a panic is the failure report here too.
#![allow(clippy::unwrap_used)]

use replication_testkit::{free_port, http_get_at, wait_blocking, Daemon, RedisServer};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_replicationd");

/// One node: its Redis, its config file, its HTTP address.
struct Node {
    name: String,
    redis: RedisServer,
    http: SocketAddr,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Node {
    fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let node = Self {
            name: name.to_owned(),
            redis: RedisServer::start().unwrap(),
            http: SocketAddr::from(([127, 0, 0, 1], free_port().unwrap())),
            config: dir.path().join(format!("{name}.toml")),
            _dir: dir,
        };
        node.write_config(&[]);
        node
    }

    fn prefix(&self) -> String {
        format!("{}:", self.name)
    }

    /// Writes the config file with these peers.
    fn write_config(&self, peers: &[&Node]) {
        let mut text = format!(
            "local_node_id = \"{name}\"\n\
             [settings.hot_path]\nblock_timeout = \"200ms\"\n\
             [settings.cold_path]\ninterval = \"2s\"\n\
             [settings]\nshutdown_timeout = \"5s\"\n\
             [cursor]\nsqlite_path = \"{db}\"\n\
             [node]\nredis_url = \"{url}\"\nredis_prefix = \"{prefix}\"\n\
             [http]\nlisten = \"{http}\"\n",
            name = self.name,
            db = self.config.with_extension("db").display(),
            url = self.redis.url(),
            prefix = self.prefix(),
            http = self.http,
        );
        for peer in peers {
            text.push_str(&format!(
                "[[peers]]\nnode_id = \"{}\"\nredis_url = \"{}\"\nredis_prefix = \"{}\"\n",
                peer.name,
                peer.redis.url(),
                peer.prefix()
            ));
        }
        std::fs::write(&self.config, text).unwrap();
    }

    /// Starts its daemon (stdout and stderr to `{name}.log`) and waits until it serves.
    fn spawn(&self) -> Running {
        let running = Running {
            process: Daemon::spawn(Path::new(BIN), &self.config, &[]).unwrap(),
            http: self.http,
        };
        running.wait_until("it serves /health", |d| d.get("/health").is_some());
        running
    }

    fn cli(&self, args: &[&str]) -> Output {
        let (command, rest) = args.split_first().unwrap();
        Command::new(BIN)
            .arg(command)
            .arg("--config")
            .arg(&self.config)
            .args(rest)
            .output()
            .unwrap()
    }
}

/// A node's running daemon; SIGKILLed on drop.
struct Running {
    process: Daemon,
    http: SocketAddr,
}

impl Running {
    /// `(status, body)` of a GET, or None when nothing answers.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get_at(self.http, path)
    }

    fn wait_until(&self, what: &str, mut check: impl FnMut(&Self) -> bool) {
        assert!(
            wait_blocking(Duration::from_secs(30), || check(self)),
            "timed out waiting until {what}; the daemon logged:\n{}",
            self.process.log_tail(8_000)
        );
    }

    fn signal(&self, name: &str) {
        self.process.signal(name).unwrap();
    }

    /// Waits for exit; returns (success, what it logged).
    fn wait_exit(mut self) -> (bool, String) {
        let ok = self
            .process
            .wait_exit(Duration::from_secs(30))
            .expect("the daemon exits");
        (ok, self.process.log())
    }
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn check_config(path: &Path) -> Output {
    Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(path)
        .output()
        .unwrap()
}

#[test]
fn config_errors_are_one_clear_line_naming_the_field() {
    let node = Node::new("a");
    assert!(check_config(&node.config).status.success());

    let text = std::fs::read_to_string(&node.config).unwrap();
    let cases = [
        (
            text.replace("[http]", "[http]\nbogus_field = 1"),
            "bogus_field",
        ),
        (
            text.replace("block_timeout = \"200ms\"", "block_timeout = \"soon\""),
            "block_timeout",
        ),
        (
            format!("{text}[[peers]]\nnode_id = \"a\"\nredis_url = \"redis://h:1\"\n"),
            "peers[0].node_id",
        ),
        (
            format!("{text}[[peers]]\nnode_id = \"b\"\nredis_url = \"http://h:1\"\n"),
            "peers[0].redis_url",
        ),
        (text.replace("[node]\n", "[nodes]\n"), "node"),
    ];
    for (bad, field) in cases {
        std::fs::write(&node.config, &bad).unwrap();
        let out = check_config(&node.config);
        assert!(
            !out.status.success(),
            "config naming {field} should be refused"
        );
        let err = stderr_of(&out);
        assert!(err.contains(field), "error should name {field}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    let missing = check_config(Path::new("/nonexistent/replicationd.toml"));
    assert!(stderr_of(&missing).contains("cannot read config file"));
}

#[test]
fn unreachable_local_redis_and_port_in_use_are_clear_errors() {
    let node = Node::new("a");
    // The local Redis is gone.
    let dead_url = node.redis.url();
    drop(node.redis);
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&node.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("cannot reach this node's Redis") && err.contains(&dead_url),
        "{err}"
    );

    // The HTTP port is taken.
    let other = Node::new("b");
    let _taken = TcpListener::bind(other.http).unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&other.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains(&format!("cannot listen on {}", other.http)),
        "{err}"
    );
}

#[test]
fn http_endpoints_and_sigterm_drain() {
    let (a, b) = (Node::new("a"), Node::new("b"));
    a.write_config(&[&b]);
    let daemon = a.spawn();
    daemon.wait_until("it is ready and its peer connected", |d| {
        d.get("/health")
            .is_some_and(|(status, body)| status == 200 && body.contains("\"peers_connected\":1"))
    });
    let (status, body) = daemon.get("/health").unwrap();
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["state"], "Running");
    assert_eq!(health["peers"][0]["node_id"], "b");
    assert!(
        !body.contains("redis://"),
        "no URLs (secrets) in health output"
    );
    assert_eq!(daemon.get("/ready").unwrap().0, 200);
    let (status, metrics) = daemon.get("/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("replication_engine_state"), "{metrics}");
    assert!(metrics.contains("replicationd_ready 1"), "{metrics}");

    let status = a.cli(&["status"]);
    assert!(status.status.success(), "{}", stderr_of(&status));
    assert!(String::from_utf8_lossy(&status.stdout).contains("engine Running"));

    daemon.signal("TERM");
    let (ok, stderr) = daemon.wait_exit();
    assert!(ok, "SIGTERM must exit 0: {stderr}");
    assert!(stderr.contains("replicationd stopped"), "{stderr}");
    // The cursor database was checkpointed and closed cleanly.
    assert!(a.config.with_extension("db").exists());
}

#[test]
fn put_on_one_node_is_readable_on_the_other_and_deletes_follow() {
    let (a, b) = (Node::new("a"), Node::new("b"));
    a.write_config(&[&b]);
    b.write_config(&[&a]);
    let (_da, db) = (a.spawn(), b.spawn());
    let put = a.cli(&["put", "uk.patient.1", "hello from a"]);
    assert!(put.status.success(), "{}", stderr_of(&put));
    db.wait_until("b has a's write", |_| {
        let out = b.cli(&["get", "uk.patient.1"]);
        out.status.success() && String::from_utf8_lossy(&out.stdout) == "hello from a\n"
    });
    assert!(b.cli(&["put", "uk.patient.2", "from b"]).status.success());
    db.wait_until("a has b's write", |_| {
        a.cli(&["get", "uk.patient.2"]).status.success()
    });
    assert!(a.cli(&["del", "uk.patient.1"]).status.success());
    db.wait_until("the delete reaches b", |_| {
        !b.cli(&["get", "uk.patient.1"]).status.success()
    });
    let missing = b.cli(&["get", "uk.patient.1"]);
    assert!(stderr_of(&missing).contains("not found"));
}

#[test]
fn sighup_adds_a_peer_and_an_invalid_reload_is_ignored() {
    let (a, b) = (Node::new("a"), Node::new("b"));
    let daemon = a.spawn();
    assert!(b.cli(&["put", "k.from-b", "v"]).status.success());

    // An invalid file on SIGHUP is logged and ignored: the daemon keeps running.
    std::fs::write(&a.config, "local_node_id = \"a\"\nbroken = true\n").unwrap();
    daemon.signal("HUP");
    daemon.wait_until("the invalid reload is counted", rejected_reload_counted);
    assert_eq!(daemon.get("/ready").map(|r| r.0), Some(200));

    a.write_config(&[&b]);
    daemon.signal("HUP");
    daemon.wait_until("the new peer shows in health", |d| {
        d.get("/health")
            .is_some_and(|(_, body)| body.contains("\"node_id\":\"b\""))
    });
    daemon.wait_until("b's data arrives", |_| {
        a.cli(&["get", "k.from-b"]).status.success()
    });
    daemon.signal("TERM");
    let (ok, stderr) = daemon.wait_exit();
    assert!(ok);
    assert!(
        stderr.contains("config not reloaded"),
        "the invalid reload is logged: {stderr}"
    );
    assert!(stderr.contains("config reloaded"), "{stderr}");
}

/// True once `/metrics` counts a SIGHUP reload that was refused.
fn rejected_reload_counted(daemon: &Running) -> bool {
    daemon.get("/metrics").is_some_and(|(_, body)| {
        body.lines()
            .any(|l| l.starts_with("replication_config_reloads_total{outcome=\"rejected\"}"))
    })
}

#[test]
fn a_config_error_never_shows_the_password_in_check_config_or_a_reload_log() {
    let (a, b) = (Node::new("a"), Node::new("b"));
    let daemon = a.spawn();
    let good = std::fs::read_to_string(&a.config).unwrap();
    // A peer whose URL carries a password, with an error on the URL's own line.
    let bad = format!(
        "{good}[[peers]]\nnode_id = \"x\"\nredis_url = \"redis://alice:hunter2@127.0.0.1:1\" oops\n"
    );
    std::fs::write(&a.config, &bad).unwrap();
    let out = check_config(&a.config);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("line"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    daemon.signal("HUP");
    // Signals coalesce: the next file is written only once this one was read and refused.
    daemon.wait_until("the invalid reload is counted", rejected_reload_counted);
    a.write_config(&[&b]);
    daemon.signal("HUP");
    daemon.wait_until("the valid reload shows in health", |d| {
        d.get("/health")
            .is_some_and(|(_, body)| body.contains("\"node_id\":\"b\""))
    });
    daemon.signal("TERM");
    let (ok, stderr) = daemon.wait_exit();
    assert!(ok, "{stderr}");
    assert!(stderr.contains("config not reloaded"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
