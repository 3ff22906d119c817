//! Live reload: what differs between the running config and a new one.

use replication_core::{PeerConfig, ReplicationEngineConfig};

/// One peer-level consequence of a config change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PeerChange {
    /// A new peer: connect and start its tailer.
    Added(PeerConfig),
    /// A peer no longer configured: stop it, keep its cursor.
    Removed(String),
    /// Connection settings changed (URL, prefix, TLS, enabled): reconnect.
    Reconnect(PeerConfig),
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
                PeerChange::Reconnect(new.peers[0].clone()),
                PeerChange::Added(new.peers[1].clone()),
                PeerChange::Removed("a".into()),
            ]
        );
        new.peers[0].enabled = false;
        assert!(matches!(
            peer_changes(&old, &new)[0],
            PeerChange::Reconnect(_)
        ));
        assert!(peer_changes(&old, &old).is_empty());
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
