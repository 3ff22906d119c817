//! `cargo xtask demo`: a live three-node mesh on loopback.
//!
//! Three private redis-servers and three `replicationd` daemons that peer with each other.
//! The demo writes on all three concurrently (own keys, conflicting keys, deletes), shows
//! progress and per-node lag, SIGKILLs one daemon, writes on while it is down, trims a
//! stream past its cursor so only repair can bring the missing entries, restarts it, and
//! ends by printing the three Merkle roots: equal, or the demo exits non-zero.
//!
//! Each node's status page URL is printed at the start; with `--keep` the mesh stays up
//! after the demo, for the pages and the `replicationd` commands, until Ctrl-C.

mod cluster;
mod resp;

use crate::run::{self as process, cargo};
use crate::tools::ensure_redis_server;
use anyhow::{bail, Context, Result};
use cluster::{daemon_binary, free_port, http_get, start_daemon, start_redis, wait_for, Guard};
use resp::Reply;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NAMES: [&str; 3] = ["london", "paris", "berlin"];

/// One node of the demo mesh.
struct Node {
    name: &'static str,
    redis_port: u16,
    http_port: u16,
    config: PathBuf,
    log: PathBuf,
    daemon: Option<Guard>,
    _redis: Guard,
}

impl Node {
    fn prefix(&self) -> String {
        format!("{}:", self.name)
    }

    fn start(&mut self, binary: &Path) -> Result<()> {
        self.daemon = Some(start_daemon(binary, &self.config, &self.log)?);
        Ok(())
    }

    fn ready(&self) -> bool {
        http_get(self.http_port, "/ready").is_some_and(|(status, _)| status == 200)
    }

    fn root(&self) -> Option<String> {
        match resp::command(
            self.redis_port,
            &["GET", &format!("{}merkle:hash:", self.prefix())],
        ) {
            Ok(reply @ Reply::Bulk(_)) => reply.text(),
            _ => None,
        }
    }

    fn items(&self) -> i64 {
        // Every item is a string key under the prefix; the store's own keys are excluded.
        let pattern = format!("{}demo.*", self.prefix());
        match resp::command(
            self.redis_port,
            &["EVAL", "return #redis.call('KEYS', ARGV[1])", "0", &pattern],
        ) {
            Ok(Reply::Int(n)) => n,
            _ => -1,
        }
    }

    /// `lag` summary from `/health`: the largest `lag_ms` over peers, and how many are connected.
    fn lag_summary(&self) -> String {
        let Some((_, body)) = http_get(self.http_port, "/health") else {
            return "down".into();
        };
        let lags: Vec<u64> = body
            .match_indices("\"lag_ms\":")
            .filter_map(|(i, m)| {
                body[i + m.len()..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        let connected = body.matches("\"connected\":true").count();
        format!(
            "{connected}/2 peers, lag {} ms",
            lags.iter().max().map_or("-".into(), u64::to_string)
        )
    }

    fn cli(&self, binary: &Path, args: &[&str]) -> Result<()> {
        let (command, rest) = args.split_first().context("empty command")?;
        let out = std::process::Command::new(binary)
            .arg(command)
            .arg("--config")
            .arg(&self.config)
            .args(rest)
            .output()?;
        if !out.status.success() {
            bail!(
                "{} {args:?}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

/// Runs the demo.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let writes: usize = match args.iter().position(|a| a == "--writes") {
        Some(i) => args
            .get(i + 1)
            .context("--writes needs a number")?
            .parse()?,
        None => 60,
    };
    let keep = args.iter().any(|a| a == "--keep");
    ensure_redis_server()?;
    step("building replicationd (the first build takes a few minutes)");
    // Not quiet: cargo's progress shows what the wait is for.
    process::run(&mut cargo(&["build", "-p", "replicationd"]))?;
    let binary = daemon_binary();
    let dir = tempdir()?;
    println!(
        "    work dir (configs, logs, cursor databases): {}",
        dir.display()
    );

    step("starting three redis-servers and three replicationd daemons");
    let mut nodes = Vec::new();
    for name in NAMES {
        let redis_port = free_port()?;
        let node_dir = dir.join(name);
        std::fs::create_dir_all(&node_dir)?;
        let redis = start_redis(redis_port, &node_dir)?;
        nodes.push(Node {
            name,
            redis_port,
            http_port: free_port()?,
            config: node_dir.join("node.toml"),
            log: node_dir.join("replicationd.log"),
            daemon: None,
            _redis: redis,
        });
    }
    for node in &nodes {
        std::fs::write(&node.config, config_for(node, &nodes))?;
    }
    for node in &mut nodes {
        node.start(&binary)?;
    }
    wait_for("all daemons ready", Duration::from_secs(30), || {
        nodes.iter().all(Node::ready)
    })?;
    for node in &nodes {
        println!(
            "    {:<7} status page http://127.0.0.1:{}/   (redis 127.0.0.1:{}, config {})",
            node.name,
            node.http_port,
            node.redis_port,
            node.config.display()
        );
    }

    step(&format!("writing concurrently on all three nodes ({writes} writes each: own keys, shared keys, deletes)"));
    concurrent_writes(&nodes, &binary, writes, "a")?;
    converge(&nodes, "after concurrent writes")?;

    step("SIGKILL berlin's daemon, keep writing on london and paris");
    if let Some(daemon) = nodes[2].daemon.as_mut() {
        daemon.kill();
    }
    concurrent_writes(&nodes[..2], &binary, writes, "b")?;
    step("trimming london's stream to nothing: berlin's cursor now points into a gap");
    let trimmed = resp::command(
        nodes[0].redis_port,
        &["XTRIM", &format!("{}cdc", nodes[0].prefix()), "MAXLEN", "0"],
    )?;
    println!("    XTRIM removed {trimmed:?} entries");
    step("restarting berlin: it resumes from its cursors and repairs the gap from london's Merkle tree");
    nodes[2].start(&binary)?;
    wait_for("berlin ready", Duration::from_secs(30), || nodes[2].ready())?;
    converge(&nodes, "after crash, trim and restart")?;

    if keep {
        keep_up(&nodes, &binary);
    }

    step("shutting down (SIGTERM: drain, checkpoint, exit 0)");
    for node in &mut nodes {
        if let Some(mut daemon) = node.daemon.take() {
            if !daemon.terminate(Duration::from_secs(15)) {
                bail!(
                    "{}'s daemon did not exit cleanly; see {}",
                    node.name,
                    node.log.display()
                );
            }
        }
    }
    println!("\ndemo finished: three nodes, identical data.");
    Ok(())
}

/// Leaves the mesh running until Ctrl-C (which the terminal sends to the daemons and
/// redis-servers too: they stop with us) or until stdin is closed with Enter.
fn keep_up(nodes: &[Node], binary: &Path) {
    step("the mesh stays up (--keep): press Ctrl-C to stop it");
    for node in nodes {
        println!(
            "    {:<7} http://127.0.0.1:{}/   e.g. {} status --config {}",
            node.name,
            node.http_port,
            binary.display(),
            node.config.display()
        );
    }
    println!("    or press Enter to shut it down cleanly");
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        // No terminal to read from: wait for Ctrl-C (or a kill) instead.
        Ok(0) | Err(_) => loop {
            std::thread::park();
        },
        Ok(_) => {}
    }
}

/// Each node writes `count` times: its own keys, keys all nodes write (conflicts), deletes.
fn concurrent_writes(nodes: &[Node], binary: &Path, count: usize, round: &str) -> Result<()> {
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let writers: Vec<_> = nodes
            .iter()
            .map(|node| {
                scope.spawn(move || -> Result<()> {
                    for i in 0..count {
                        let own = format!("demo.{}.{round}{i}", node.name);
                        node.cli(binary, &["put", &own, &format!("{} wrote {i}", node.name)])?;
                        if i % 3 == 0 {
                            let shared = format!("demo.shared.k{}", i % 7);
                            node.cli(
                                binary,
                                &["put", &shared, &format!("{} says {i}", node.name)],
                            )?;
                        }
                        if i % 10 == 9 {
                            node.cli(
                                binary,
                                &["del", &format!("demo.{}.{round}{}", node.name, i - 5)],
                            )?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        while writers.iter().any(|w| !w.is_finished()) {
            std::thread::sleep(Duration::from_millis(1000));
            progress(nodes);
        }
        for writer in writers {
            writer
                .join()
                .map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
        }
        Ok(())
    })?;
    println!("    writes done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn progress(nodes: &[Node]) {
    let line: Vec<String> = nodes
        .iter()
        .map(|n| format!("{} {} items ({})", n.name, n.items(), n.lag_summary()))
        .collect();
    println!("    {}", line.join(" | "));
}

/// Waits until every node's Merkle root is the same, printing progress; fails after a minute.
fn converge(nodes: &[Node], when: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let roots: Vec<Option<String>> = nodes.iter().map(Node::root).collect();
        if roots[0].is_some() && roots.iter().all(|r| *r == roots[0]) {
            println!("    converged {when}:");
            for (node, root) in nodes.iter().zip(&roots) {
                println!(
                    "      {:<7} root {}  ({} items)",
                    node.name,
                    root.as_deref().unwrap_or("-"),
                    node.items()
                );
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            for (node, root) in nodes.iter().zip(&roots) {
                eprintln!(
                    "      {:<7} root {}  log: {}",
                    node.name,
                    root.as_deref().unwrap_or("-"),
                    node.log.display()
                );
            }
            bail!("the nodes did not converge {when}");
        }
        progress(nodes);
        std::thread::sleep(Duration::from_millis(1000));
    }
}

fn config_for(node: &Node, all: &[Node]) -> String {
    let mut text = format!(
        "local_node_id = \"{name}\"\n\n\
         [settings.hot_path]\nblock_timeout = \"500ms\"\n\n\
         [settings.cold_path]\ninterval = \"3s\"\n\n\
         [cursor]\nsqlite_path = \"{db}\"\n\n\
         [node]\nredis_url = \"redis://127.0.0.1:{redis}\"\nredis_prefix = \"{name}:\"\n\n\
         [http]\nlisten = \"127.0.0.1:{http}\"\n",
        name = node.name,
        db = node.config.with_file_name("cursors.db").display(),
        redis = node.redis_port,
        http = node.http_port,
    );
    for peer in all.iter().filter(|p| p.name != node.name) {
        text.push_str(&format!(
            "\n[[peers]]\nnode_id = \"{0}\"\nredis_url = \"redis://127.0.0.1:{1}\"\nredis_prefix = \"{0}:\"\n",
            peer.name, peer.redis_port
        ));
    }
    text
}

fn step(text: &str) {
    println!("\n==> {text}");
}

/// A fresh directory under the system temp dir (kept, so logs can be read afterwards).
fn tempdir() -> Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let dir = std::env::temp_dir().join(format!("replication-demo-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
