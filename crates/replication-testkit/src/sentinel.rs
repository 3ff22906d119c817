//! A Sentinel-watched primary for one test: a primary, one replica and three Sentinels
//! (`redis-server --sentinel`, quorum two), each on a free loopback port, tuned to fail
//! over within about two seconds of the primary's death. Every process is killed on drop.

use crate::redis_server::{RedisServer, TestkitError};
use crate::wait::wait_until;
use std::time::Duration;

/// How long a Sentinel waits for an unanswering primary before calling it down. Low, so
/// that a test's failover takes seconds; a real deployment uses several seconds.
const DOWN_AFTER: Duration = Duration::from_millis(500);
/// Bound of one whole failover as Sentinel sees it (and the wait before it retries one).
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for the set to form, or for a failover to complete.
const SETTLE: Duration = Duration::from_secs(30);

/// A primary, a replica and three Sentinels monitoring them as [`SentinelSet::SERVICE`].
#[derive(Debug)]
pub struct SentinelSet {
    /// The two data servers; either may be the primary after a failover.
    servers: [RedisServer; 2],
    sentinels: Vec<RedisServer>,
}

impl SentinelSet {
    /// The monitored service's name (`sentinelServiceName` in URLs).
    pub const SERVICE: &'static str = "mymaster";

    /// Starts the set and waits until the replica is in sync and every Sentinel knows the
    /// replica and the two other Sentinels (only then can they agree on a failover).
    pub fn start() -> Result<Self, TestkitError> {
        let primary = RedisServer::start()?;
        let replica = RedisServer::builder()
            .arg("--replicaof")
            .arg("127.0.0.1")
            .arg(primary.port().to_string())
            .start()?;
        wait_until(SETTLE, "the replica to sync", || {
            Ok(replica
                .info_field("replication", "master_link_status")?
                .as_deref()
                == Some("up"))
        })?;
        let config = format!(
            "sentinel monitor {service} 127.0.0.1 {port} 2\n\
             sentinel down-after-milliseconds {service} {down}\n\
             sentinel failover-timeout {service} {failover}\n\
             sentinel parallel-syncs {service} 1\n",
            service = Self::SERVICE,
            port = primary.port(),
            down = DOWN_AFTER.as_millis(),
            failover = FAILOVER_TIMEOUT.as_millis(),
        );
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            sentinels.push(RedisServer::builder().sentinel(config.clone()).start()?);
        }
        let set = Self {
            servers: [primary, replica],
            sentinels,
        };
        wait_until(
            SETTLE,
            "the Sentinels to find each other and the replica",
            || {
                for sentinel in &set.sentinels {
                    let master = sentinel.command(&["SENTINEL", "MASTER", Self::SERVICE])?;
                    if field(&master, "num-other-sentinels") != Some("2")
                        || field(&master, "num-slaves") != Some("1")
                    {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        )?;
        Ok(set)
    }

    /// `redis-sentinel://127.0.0.1:{s1}?sentinelServiceName=…&node=…&node=…`: every Sentinel.
    pub fn url(&self) -> String {
        let mut url = format!(
            "redis-sentinel://127.0.0.1:{}?sentinelServiceName={}",
            self.sentinels[0].port(),
            Self::SERVICE
        );
        for sentinel in &self.sentinels[1..] {
            url.push_str(&format!("&node=127.0.0.1:{}", sentinel.port()));
        }
        url
    }

    /// The port the Sentinels name as the primary now.
    pub fn primary_port(&self) -> Result<u16, TestkitError> {
        let mut last = None;
        for sentinel in &self.sentinels {
            match sentinel.command(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self::SERVICE]) {
                Ok(reply) => {
                    if let Some(port) = reply.lines().nth(1).and_then(|p| p.parse().ok()) {
                        return Ok(port);
                    }
                    last = Some(TestkitError::Timeout(format!(
                        "a Sentinel names no primary: {reply}"
                    )));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| TestkitError::Timeout("no Sentinel answered".into())))
    }

    /// The data server the Sentinels name as the primary now.
    pub fn primary(&self) -> Result<&RedisServer, TestkitError> {
        let port = self.primary_port()?;
        self.servers
            .iter()
            .find(|s| s.port() == port)
            .ok_or_else(|| TestkitError::Timeout(format!("port {port} is none of the set's")))
    }

    /// Both data servers (the primary and the replica, in start order).
    pub fn servers(&self) -> &[RedisServer; 2] {
        &self.servers
    }

    /// Waits until the replica has received everything the primary acknowledged so far
    /// (their replication offsets are equal), so that no acknowledged write is lost when
    /// the primary dies next.
    pub fn wait_replicated(&self) -> Result<(), TestkitError> {
        let port = self.primary_port()?;
        let (primary, replica) = match &self.servers {
            [a, b] if a.port() == port => (a, b),
            [a, b] => (b, a),
        };
        wait_until(SETTLE, "the replica to catch up", || {
            let ours = primary.info_field("replication", "master_repl_offset")?;
            let theirs = replica.info_field("replication", "slave_repl_offset")?;
            Ok(ours.is_some() && ours == theirs)
        })
    }

    /// Kills the primary (SIGKILL: whatever it did not replicate yet is lost) and returns
    /// its port.
    pub fn kill_primary(&mut self) -> Result<u16, TestkitError> {
        let port = self.primary_port()?;
        let server = self
            .servers
            .iter_mut()
            .find(|s| s.port() == port)
            .ok_or_else(|| TestkitError::Timeout(format!("port {port} is none of the set's")))?;
        server.kill();
        Ok(port)
    }

    /// `SENTINEL FAILOVER`: a hand-over ordered by a Sentinel while the primary is alive.
    /// The old primary is demoted to a replica of the new one (clients still connected to
    /// it get `READONLY` for writes). Waits for it; returns (old, new) ports.
    pub fn failover(&self) -> Result<(u16, u16), TestkitError> {
        let old = self.primary_port()?;
        // A Sentinel refuses while it sees no good replica yet (`NOGOODSLAVE`) or another
        // failover runs (`INPROG`): ask again until one is accepted.
        wait_until(SETTLE, "a Sentinel to accept the failover", || {
            let reply = self.sentinels[0].command(&["SENTINEL", "FAILOVER", Self::SERVICE])?;
            Ok(reply.starts_with("+OK"))
        })?;
        let new = self.wait_failover(old)?;
        let demoted = self
            .servers
            .iter()
            .find(|s| s.port() == old)
            .ok_or_else(|| TestkitError::Timeout(format!("port {old} is none of the set's")))?;
        wait_until(SETTLE, "the old primary to replicate the new one", || {
            Ok(demoted
                .info_field("replication", "master_link_status")?
                .as_deref()
                == Some("up"))
        })?;
        Ok((old, new))
    }

    /// Waits until the Sentinels name a primary other than `old_port` and that server
    /// answers as a primary; returns its port.
    pub fn wait_failover(&self, old_port: u16) -> Result<u16, TestkitError> {
        let mut promoted = 0;
        wait_until(SETTLE, "Sentinel to promote the replica", || {
            let port = match self.primary_port() {
                Ok(port) if port != old_port => port,
                _ => return Ok(false),
            };
            let Some(server) = self.servers.iter().find(|s| s.port() == port) else {
                return Ok(false);
            };
            promoted = port;
            Ok(server.info_field("replication", "role")?.as_deref() == Some("master"))
        })?;
        Ok(promoted)
    }

    /// Restarts a data server that was killed (same port and directory); Sentinel then
    /// turns it into a replica of the current primary.
    pub fn restart(&mut self, port: u16) -> Result<(), TestkitError> {
        let server = self
            .servers
            .iter_mut()
            .find(|s| s.port() == port)
            .ok_or_else(|| TestkitError::Timeout(format!("port {port} is none of the set's")))?;
        server.restart()
    }
}

/// The value after `name` in a flat field/value reply rendered one item per line.
fn field<'a>(reply: &'a str, name: &str) -> Option<&'a str> {
    let mut lines = reply.lines();
    while let Some(line) = lines.next() {
        if line == name {
            return lines.next();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_over_when_the_primary_dies() {
        let mut set = SentinelSet::start().unwrap();
        let primary = set.primary().unwrap();
        primary.command(&["SET", "k", "v"]).unwrap();
        set.wait_replicated().unwrap();
        let old = set.kill_primary().unwrap();
        let new = set.wait_failover(old).unwrap();
        assert_ne!(old, new);
        let primary = set.primary().unwrap();
        assert_eq!(primary.port(), new);
        assert_eq!(primary.command(&["GET", "k"]).unwrap(), "v\n");
        assert!(set.url().starts_with("redis-sentinel://127.0.0.1:"));
    }
}
