//! Live reload: what differs between the running config and a new one.
//!
//! A peer whose connection settings change is reconnected. When the change names another
//! stream (another server, database or key prefix), what the engine knew of the old one
//! (its cursor, its completed repair cycles, which count for tombstone collection) says
//! nothing about the new one and is forgotten ([`PeerChange::Retarget`]).

use replication_core::{PeerConfig, ReplicationEngineConfig};

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

/// What identifies the stream a peer config names: the server (host and port), the
/// database and the key prefix. Credentials, TLS and `enabled` do not change it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StreamIdentity {
    server: Option<(String, Option<u16>)>,
    database: String,
    prefix: String,
}

impl StreamIdentity {
    pub(crate) fn of(peer: &PeerConfig) -> Self {
        let parsed = url::Url::parse(&peer.redis_url).ok();
        let server = parsed.as_ref().and_then(|url| {
            url.host_str()
                .map(|host| (host.to_ascii_lowercase(), url.port_or_known_default()))
        });
        let database = parsed
            .as_ref()
            .map(|url| url.path().trim_start_matches('/').to_owned())
            .filter(|db| !db.is_empty())
            .unwrap_or_else(|| "0".to_owned());
        Self {
            // Redis URLs have no known default port in `url`: 6379 is Redis's.
            server: server.map(|(host, port)| (host, port.or(Some(6379)))),
            database,
            prefix: peer.redis_prefix.clone(),
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
