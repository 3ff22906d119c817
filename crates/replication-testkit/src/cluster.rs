//! A Redis Cluster for one test: three primaries, each with one replica
//! (`redis-server --cluster-enabled yes`, joined by `redis-cli --cluster create`), every
//! process on free loopback ports (client and bus), killed on drop. Tuned so that a dead
//! primary's replica takes over within a few seconds.

use crate::port::free_port;
use crate::redis_server::{RedisServer, TestkitError};
use crate::wait::wait_until;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `cluster-node-timeout`: how long a node may stay silent before the others call it
/// failed. Low, so that a test's failover takes seconds, and not lower, so that a loaded
/// test machine does not see failures that are not there.
const NODE_TIMEOUT: Duration = Duration::from_millis(1000);
/// Longest wait for the cluster to form, or for a failover to complete.
const SETTLE: Duration = Duration::from_secs(60);

/// How long one `CLUSTER FAILOVER` is waited for before it is asked for again, and how
/// many times: Redis aborts a manual failover that takes longer than a few seconds.
const MANUAL_FAILOVER_WAIT: Duration = Duration::from_secs(15);
const MANUAL_FAILOVER_ATTEMPTS: u32 = 4;
/// Primaries (each gets one replica).
const PRIMARIES: usize = 3;

/// One node as `CLUSTER NODES` describes it.
#[derive(Clone, Debug)]
struct NodeLine {
    port: u16,
    primary: bool,
    failed: bool,
    slots: Vec<(u16, u16)>,
}

/// Three primaries and three replicas forming one Redis Cluster.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts six nodes, joins them (`--cluster-replicas 1`) and waits until every node
    /// reports `cluster_state:ok` and every replica is in sync.
    pub fn start() -> Result<Self, TestkitError> {
        let mut nodes = Vec::new();
        for _ in 0..PRIMARIES * 2 {
            let bus = free_port()?;
            nodes.push(
                RedisServer::builder()
                    .arg("--cluster-enabled")
                    .arg("yes")
                    .arg("--cluster-config-file")
                    .arg("nodes.conf")
                    .arg("--cluster-node-timeout")
                    .arg(NODE_TIMEOUT.as_millis().to_string())
                    .arg("--cluster-port")
                    .arg(bus.to_string())
                    // A replica may take over however long it was cut off from its primary
                    // (a test kills primaries on purpose).
                    .arg("--cluster-replica-validity-factor")
                    .arg("0")
                    .start()?,
            );
        }
        let cli = std::env::var("REDIS_CLI_BIN").unwrap_or_else(|_| "redis-cli".into());
        let mut create = Command::new(&cli);
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        let output = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| TestkitError::NotInstalled(format!("{cli}: {e}")))?;
        if !output.status.success() {
            return Err(TestkitError::NotReady {
                port: nodes[0].port(),
                detail: format!(
                    "redis-cli --cluster create failed: {}",
                    String::from_utf8_lossy(&output.stdout)
                ),
            });
        }
        let cluster = Self { nodes };
        cluster.wait_healthy("the cluster to form")?;
        Ok(cluster)
    }

    /// `redis-cluster://127.0.0.1:{p}?node=…`: every node, so a client can start from any.
    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].port());
        for (i, node) in self.nodes[1..].iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", node.port()));
        }
        url
    }

    /// The hash slot of `key` (as `CLUSTER KEYSLOT` computes it, hash tags included).
    pub fn slot(&self, key: &str) -> Result<u16, TestkitError> {
        let reply = self.ask(&["CLUSTER", "KEYSLOT", key])?;
        reply
            .trim()
            .trim_start_matches(':')
            .parse()
            .map_err(|_| TestkitError::Timeout(format!("CLUSTER KEYSLOT replied {reply}")))
    }

    /// The primary serving `key` now.
    pub fn primary_for(&self, key: &str) -> Result<&RedisServer, TestkitError> {
        let slot = self.slot(key)?;
        let owner = self.owner(slot)?;
        self.by_port(owner.port)
    }

    /// Every node (primaries and replicas, in start order).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Waits until the replica serving `key`'s slot has everything its primary
    /// acknowledged so far, so that no acknowledged write is lost when it fails over.
    pub fn wait_replicated(&self, key: &str) -> Result<(), TestkitError> {
        let slot = self.slot(key)?;
        let owner = self.owner(slot)?;
        let primary = self.by_port(owner.port)?;
        let replica = self.replica_of(&owner)?;
        wait_until(SETTLE, "the replica to catch up", || {
            let ours = primary.info_field("replication", "master_repl_offset")?;
            let theirs = replica.info_field("replication", "slave_repl_offset")?;
            Ok(ours.is_some() && ours == theirs)
        })
    }

    /// `CLUSTER FAILOVER` on the replica of `key`'s primary: a coordinated hand-over (the
    /// replica first catches up, so nothing acknowledged is lost). Waits until the old
    /// replica serves the slot and the cluster is healthy; returns (old, new) ports.
    pub fn failover(&self, key: &str) -> Result<(u16, u16), TestkitError> {
        let slot = self.slot(key)?;
        let owner = self.owner(slot)?;
        let replica = self.replica_of(&owner)?;
        let new = replica.port();
        // Redis gives a manual failover a few seconds and then aborts it silently; on a
        // loaded machine the hand-over can miss that window, so it is asked for again.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let reply = replica.command(&["CLUSTER", "FAILOVER"])?;
            if !reply.starts_with("+OK") {
                return Err(TestkitError::Timeout(format!(
                    "CLUSTER FAILOVER replied {reply}"
                )));
            }
            match self.wait_owner_for(slot, new, MANUAL_FAILOVER_WAIT) {
                Ok(()) => break,
                Err(_) if attempts < MANUAL_FAILOVER_ATTEMPTS => continue,
                Err(e) => return Err(e),
            }
        }
        let old = self.by_port(owner.port)?;
        wait_until(SETTLE, "the old primary to replicate the new one", || {
            Ok(old
                .info_field("replication", "master_link_status")?
                .as_deref()
                == Some("up"))
        })?;
        self.wait_healthy("the cluster to settle after the failover")?;
        Ok((owner.port, new))
    }

    /// Kills (SIGKILL) the primary serving `key` and waits until its replica has taken the
    /// slot over; returns (old, new) ports. What the dead primary had not replicated is lost.
    pub fn kill_primary_for(&mut self, key: &str) -> Result<(u16, u16), TestkitError> {
        let slot = self.slot(key)?;
        let owner = self.owner(slot)?;
        let new = self.replica_of(&owner)?.port();
        let dead = self
            .nodes
            .iter_mut()
            .find(|n| n.port() == owner.port)
            .ok_or_else(|| TestkitError::Timeout(format!("no node on port {}", owner.port)))?;
        dead.kill();
        self.wait_owner(slot, new)?;
        Ok((owner.port, new))
    }

    /// Sends a command to any node that answers.
    fn ask(&self, args: &[&str]) -> Result<String, TestkitError> {
        let mut last = None;
        for node in &self.nodes {
            match node.command(args) {
                Ok(reply) => return Ok(reply),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| TestkitError::Timeout("no cluster node answered".into())))
    }

    /// The topology as one node that answers sees it.
    fn topology(&self) -> Result<Vec<NodeLine>, TestkitError> {
        let text = self.ask(&["CLUSTER", "NODES"])?;
        Ok(text.lines().filter_map(parse_node_line).collect())
    }

    fn owner(&self, slot: u16) -> Result<NodeLine, TestkitError> {
        self.topology()?
            .into_iter()
            .find(|n| {
                n.primary && !n.failed && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
            })
            .ok_or_else(|| TestkitError::Timeout(format!("no live primary serves slot {slot}")))
    }

    /// The replica of `primary` as the primary itself reports it (`INFO replication`), the
    /// one view that gossip cannot leave stale.
    fn replica_of(&self, primary: &NodeLine) -> Result<&RedisServer, TestkitError> {
        let server = self.by_port(primary.port)?;
        let mut port = None;
        wait_until(SETTLE, "the primary to have a replica online", || {
            port = server
                .info_field("replication", "slave0")?
                .filter(|line| line.contains("state=online"))
                .and_then(|line| {
                    line.split(',')
                        .find_map(|part| part.strip_prefix("port="))
                        .and_then(|p| p.parse::<u16>().ok())
                });
            Ok(port.is_some())
        })?;
        let port = port.expect("the wait succeeded with a port");
        self.by_port(port)
    }

    fn by_port(&self, port: u16) -> Result<&RedisServer, TestkitError> {
        self.nodes
            .iter()
            .find(|n| n.port() == port)
            .ok_or_else(|| TestkitError::Timeout(format!("no node on port {port}")))
    }

    /// Waits until every node that answers sees `port` serving `slot`.
    fn wait_owner(&self, slot: u16, port: u16) -> Result<(), TestkitError> {
        self.wait_owner_for(slot, port, SETTLE)
    }

    /// [`Self::wait_owner`], giving up after `timeout`.
    fn wait_owner_for(&self, slot: u16, port: u16, timeout: Duration) -> Result<(), TestkitError> {
        wait_until(timeout, "the replica to take the slot over", || {
            for node in &self.nodes {
                let Ok(text) = node.command(&["CLUSTER", "NODES"]) else {
                    continue; // dead
                };
                let served = text.lines().filter_map(parse_node_line).any(|n| {
                    n.port == port
                        && n.primary
                        && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
                });
                if !served {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }

    /// Waits until every live node reports `cluster_state:ok` and every live replica's
    /// link to its primary is up.
    fn wait_healthy(&self, what: &str) -> Result<(), TestkitError> {
        wait_until(SETTLE, what, || {
            for node in &self.nodes {
                let Ok(info) = node.command(&["CLUSTER", "INFO"]) else {
                    continue; // dead
                };
                if !info.contains("cluster_state:ok") {
                    return Ok(false);
                }
                if node.info_field("replication", "role")?.as_deref() == Some("slave")
                    && node
                        .info_field("replication", "master_link_status")?
                        .as_deref()
                        != Some("up")
                {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }
}

/// One line of `CLUSTER NODES`: `id ip:port@bus flags primary-id ping pong epoch link slots…`.
fn parse_node_line(line: &str) -> Option<NodeLine> {
    let mut parts = line.split_whitespace().skip(1);
    let address = parts.next()?;
    let port = address
        .split('@')
        .next()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()?;
    let flags = parts.next()?;
    let slots = parts
        .skip(5)
        .filter(|s| !s.starts_with('['))
        .filter_map(|range| match range.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => range.parse().ok().map(|s| (s, s)),
        })
        .collect();
    Some(NodeLine {
        port,
        primary: flags.contains("master"),
        failed: flags.contains("fail") && !flags.contains("fail?"),
        slots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_nodes_lines() {
        let line = parse_node_line(
            "949a 127.0.0.1:24001@24101 myself,master - 0 1796118510000 1 connected 0-5460 7000",
        )
        .unwrap();
        assert_eq!(line.port, 24001);
        assert!(line.primary && !line.failed);
        assert_eq!(line.slots, vec![(0, 5460), (7000, 7000)]);
        let replica =
            parse_node_line("d57c 127.0.0.1:24004@24104 slave 949a 0 1 1 connected").unwrap();
        assert!(!replica.primary && replica.slots.is_empty());
        let failed =
            parse_node_line("949a 127.0.0.1:24001@24101 master,fail - 1 1 1 connected 0-5460")
                .unwrap();
        assert!(failed.failed);
    }

    #[test]
    fn forms_and_fails_over_both_ways() {
        let mut cluster = RedisCluster::start().unwrap();
        assert!(cluster.url().starts_with("redis-cluster://127.0.0.1:"));
        let primary = cluster.primary_for("{t}k").unwrap();
        primary.command(&["SET", "{t}k", "v"]).unwrap();
        cluster.wait_replicated("{t}k").unwrap();
        let (old, new) = cluster.failover("{t}k").unwrap();
        assert_ne!(old, new);
        let primary = cluster.primary_for("{t}k").unwrap();
        assert_eq!(primary.port(), new);
        assert_eq!(primary.command(&["GET", "{t}k"]).unwrap(), "v\n");
        let (_, promoted) = cluster.kill_primary_for("{t}k").unwrap();
        assert_eq!(cluster.primary_for("{t}k").unwrap().port(), promoted);
        assert_eq!(
            promoted, old,
            "the first primary, now a replica, takes over again"
        );
    }
}
