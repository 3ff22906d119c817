//! Live reload: what differs between the running config and a new one.
//!
//! A peer whose connection settings change is reconnected. When the change names another
//! stream (another server, database or key prefix), what the engine knew of the old one
//! (its cursor, its completed repair cycles, which count for tombstone collection) says
//! nothing about the new one and is forgotten ([`PeerChange::Retarget`]).

use replication_core::{PeerConfig, RedisTopology, RedisUrl, ReplicationEngineConfig};

/// One peer-level consequence of a config change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PeerChange {
    /// A new peer: connect and start its tailer.
    Added(PeerConfig),
    /// A peer no longer configured: stop it, keep its cursor.
    Removed(String),
    /// Connection settings changed (credentials, TLS, enabled): reconnect, resuming.
    Reconnect(PeerConfig),
    /// The peer now names another stream (server, database or prefix): reconnect and
    /// start over, without its old cursor and sync evidence.
    Retarget(PeerConfig),
}

/// What identifies the stream a peer config names: the deployment (one server, the
/// Sentinels and service name, or the Cluster's seed nodes, as a set: their order does not
/// matter), the database and the key prefix. Credentials (Sentinels' included), TLS and
/// `enabled` do not change it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StreamIdentity {
    kind: &'static str,
    servers: Vec<(String, u16)>,
    service: Option<String>,
    database: u8,
    prefix: String,
    /// A URL that does not parse (never in a validated config) is its own identity.
    unparsed: Option<String>,
}

impl StreamIdentity {
    pub(crate) fn of(peer: &PeerConfig) -> Self {
        let prefix = peer.redis_prefix.clone();
        let Ok(url) = RedisUrl::parse(&peer.redis_url) else {
            return Self {
                kind: "unparsed",
                servers: Vec::new(),
                service: None,
                database: 0,
                prefix,
                unparsed: Some(peer.redis_url.clone()),
            };
        };
        let (kind, mut servers, service) = match url.topology {
            RedisTopology::Standalone { host, port } => ("server", vec![(host, port)], None),
            RedisTopology::Sentinel {
                sentinels,
                service_name,
                ..
            } => ("sentinel", sentinels, Some(service_name)),
            RedisTopology::Cluster { nodes } => ("cluster", nodes, None),
        };
        for (host, _) in &mut servers {
            host.make_ascii_lowercase();
        }
        servers.sort();
        servers.dedup();
        Self {
            kind,
            servers,
            service,
            database: url.database.unwrap_or(0),
            prefix,
            unparsed: None,
        }
    }
}

/// Peer changes from `old` to `new`, in the order of `new` (removals last).
pub(crate) fn peer_changes(
    old: &ReplicationEngineConfig,
    new: &ReplicationEngineConfig,
) -> Vec<PeerChange> {
    let mut changes = Vec::new();
    for peer in &new.peers {
        match old.peer(&peer.node_id) {
            None => changes.push(PeerChange::Added(peer.clone())),
            Some(previous) if StreamIdentity::of(previous) != StreamIdentity::of(peer) => {
                changes.push(PeerChange::Retarget(peer.clone()));
            }
            Some(previous) if previous != peer => changes.push(PeerChange::Reconnect(peer.clone())),
            Some(_) => {}
        }
    }
    for peer in &old.peers {
        if new.peer(&peer.node_id).is_none() {
            changes.push(PeerChange::Removed(peer.node_id.clone()));
        }
    }
    changes
}

/// Why a new config cannot be applied live.
pub(crate) fn reject_reason(
    old: &ReplicationEngineConfig,
    new: &ReplicationEngineConfig,
) -> Option<String> {
    if let Err(e) = new.validate() {
        return Some(e.to_string());
    }
    if old.local_node_id != new.local_node_id {
        return Some("local_node_id cannot change while running".into());
    }
    if old.cursor.sqlite_path != new.cursor.sqlite_path {
        return Some("cursor.sqlite_path cannot change while running".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(peers: &[(&str, &str)]) -> ReplicationEngineConfig {
        let mut c = ReplicationEngineConfig::new("me");
        c.peers = peers
            .iter()
            .map(|(id, url)| PeerConfig::new(*id, *url))
            .collect();
        c
    }

    #[test]
    fn added_removed_and_changed_peers() {
        let old = config(&[("a", "redis://h:1"), ("b", "redis://h:2")]);
        let mut new = config(&[("b", "redis://h:3"), ("c", "redis://h:4")]);
        let changes = peer_changes(&old, &new);
        assert_eq!(
            changes,
            [
                PeerChange::Retarget(new.peers[0].clone()),
                PeerChange::Added(new.peers[1].clone()),
                PeerChange::Removed("a".into()),
            ]
        );
        let mut same_stream = old.clone();
        same_stream.peers[1].enabled = false;
        same_stream.peers[1].redis_url = "redis://user:pw@H:2/0".into();
        assert!(matches!(
            peer_changes(&old, &same_stream)[0],
            PeerChange::Reconnect(_)
        ));
        new.peers[0].redis_url = "redis://h:2".into();
        new.peers[0].enabled = false;
        assert!(matches!(
            peer_changes(&old, &new)[0],
            PeerChange::Reconnect(_)
        ));
        assert!(peer_changes(&old, &old).is_empty());
    }

    #[test]
    fn a_stream_is_its_server_database_and_prefix() {
        let peer = |url: &str, prefix: &str| {
            let mut p = PeerConfig::new("b", url);
            p.redis_prefix = prefix.into();
            StreamIdentity::of(&p)
        };
        assert_eq!(peer("redis://h", ""), peer("rediss://u:p@H:6379/0", ""));
        assert_ne!(peer("redis://h:6379/0", ""), peer("redis://h:6379/1", ""));
        assert_ne!(peer("redis://h:6379", ""), peer("redis://h:6380", ""));
        assert_ne!(peer("redis://h:6379", "a:"), peer("redis://h:6379", "b:"));
        assert_ne!(peer("redis://h", ""), peer("redis://g", ""));
        // Sentinel: the service behind the same Sentinels, listed in any order, with any
        // credentials, is the same stream; another service is another stream.
        let sentinel = "redis-sentinel://s1:26379?sentinelServiceName=m&node=s2:26379";
        assert_eq!(
            peer(sentinel, ""),
            peer(
                "redis-sentinel://u:p@S2:26379/0?node=s1:26379&sentinelServiceName=m&sentinelPassword=x",
                ""
            )
        );
        assert_ne!(
            peer(sentinel, ""),
            peer(
                "redis-sentinel://s1:26379?sentinelServiceName=n&node=s2:26379",
                ""
            )
        );
        // Cluster: the seed nodes as a set; a Cluster is not the standalone server it
        // shares a host with.
        assert_eq!(
            peer("redis-cluster://a:7000?node=b:7001", ""),
            peer("redis-cluster://b:7001?node=a:7000", "")
        );
        assert_ne!(
            peer("redis-cluster://a:7000", ""),
            peer("redis://a:7000", "")
        );
    }

    #[test]
    fn invalid_or_structural_changes_are_rejected() {
        let old = config(&[("a", "redis://h:1")]);
        assert!(reject_reason(&old, &old).is_none());
        let bad = config(&[("a", "http://h:1")]);
        assert!(reject_reason(&old, &bad)
            .unwrap()
            .contains("peers[0].redis_url"));
        let mut renamed = old.clone();
        renamed.local_node_id = "other".into();
        assert!(reject_reason(&old, &renamed)
            .unwrap()
            .contains("local_node_id"));
    }
}
