//! Operator controls of one peer: pause and resume its replication, ask for a repair now.
//!
//! The controls belong to the peer's slot, not to its running tasks, so a pause outlives
//! the restart of those tasks that a config reload causes (a changed URL, prefix, TLS or
//! `enabled`). They are held in memory only: a restarted engine starts every peer unpaused.

use tokio::sync::{watch, Notify};

/// The controls of one configured peer.
#[derive(Debug)]
pub(crate) struct PeerControls {
    paused: watch::Sender<bool>,
    repair_requested: Notify,
}

impl Default for PeerControls {
    fn default() -> Self {
        Self {
            paused: watch::Sender::new(false),
            repair_requested: Notify::new(),
        }
    }
}

impl PeerControls {
    /// Pauses or resumes; true when that changed the state.
    pub(crate) fn set_paused(&self, paused: bool) -> bool {
        self.paused.send_if_modified(|current| {
            let changed = *current != paused;
            *current = paused;
            changed
        })
    }

    /// Whether replication from the peer is paused now.
    pub(crate) fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// A receiver told of every pause and resume (the hot path stops and starts reading).
    pub(crate) fn paused_rx(&self) -> watch::Receiver<bool> {
        self.paused.subscribe()
    }

    /// Asks the cold path for a cycle now; a request made while one runs is kept for after.
    pub(crate) fn request_repair(&self) {
        self.repair_requested.notify_one();
    }

    /// Resolves when an operator asked for a repair.
    pub(crate) async fn repair_requested(&self) {
        self.repair_requested.notified().await;
    }
}

/// Why an operator control was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No peer with that node id is configured.
    #[error("no peer {peer} is configured")]
    UnknownPeer {
        /// The node id asked for.
        peer: String,
    },
    /// The peer is configured with `enabled = false`: it has no tasks to control.
    #[error("peer {peer} is disabled in the configuration")]
    PeerDisabled {
        /// The peer.
        peer: String,
    },
    /// Replication from the peer is paused; resume it first.
    #[error("peer {peer} is paused; resume it first")]
    PeerPaused {
        /// The peer.
        peer: String,
    },
}

impl ControlError {
    /// Never: each refusal holds until the operator or the configuration changes something.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pausing_twice_changes_once_and_receivers_see_it() {
        let controls = PeerControls::default();
        let mut rx = controls.paused_rx();
        assert!(controls.set_paused(true));
        assert!(!controls.set_paused(true));
        assert!(rx.has_changed().unwrap_or(false));
        assert!(*rx.borrow_and_update());
        assert!(controls.set_paused(false));
        assert!(!controls.is_paused());
    }
}
