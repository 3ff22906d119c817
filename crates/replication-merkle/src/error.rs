//! Why a repair cycle failed. A failed cycle never half-applies peer data: every read of the
//! cycle happens before its first local write.

use replication_core::{PeerError, SyncError};
use std::fmt;

/// Which read of the cycle failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStage {
    /// Reading a root hash.
    Root,
    /// Reading children of Merkle nodes.
    Children,
    /// Reading the local stamps of differing keys.
    LocalStates,
    /// Reading the peer's items.
    Items,
    /// Reading the peer's tombstones.
    Tombstones,
}

impl fmt::Display for ReadStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadStage::Root => "root",
            ReadStage::Children => "children",
            ReadStage::LocalStates => "local states",
            ReadStage::Items => "items",
            ReadStage::Tombstones => "tombstones",
        })
    }
}

/// Which side answered something malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The local store.
    Local,
    /// The peer.
    Peer,
}

/// A failed repair cycle. Nothing was written locally, except for [`RepairError::LocalWrite`],
/// which says how many changes went in before the failure (all conflict-checked, so safe).
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// Reading from the peer failed; the cycle was aborted before any local write.
    #[error("repair from peer {peer} aborted: reading {stage} failed")]
    Peer {
        /// Peer node id.
        peer: String,
        /// The failed read.
        stage: ReadStage,
        /// The peer's error.
        #[source]
        source: PeerError,
    },
    /// Reading from the local store failed; the cycle was aborted before any local write.
    #[error("repair from peer {peer} aborted: reading local {stage} failed")]
    LocalRead {
        /// Peer node id.
        peer: String,
        /// The failed read.
        stage: ReadStage,
        /// The store's error.
        #[source]
        source: SyncError,
    },
    /// The local store failed a batch of repairs with a retriable error (changes it refuses
    /// for good are skipped instead, `CycleReport::items_refused`).
    #[error("repair from peer {peer}: local store failed after {applied} of {total} changes")]
    LocalWrite {
        /// Peer node id.
        peer: String,
        /// Changes applied in earlier, successful batches.
        applied: usize,
        /// Changes the cycle meant to apply.
        total: usize,
        /// The store's error.
        #[source]
        source: SyncError,
    },
    /// The local store asks for no replicated writes (backpressure); nothing was read.
    #[error("repair from peer {peer} skipped: local store is not accepting writes")]
    Backpressure {
        /// Peer node id.
        peer: String,
    },
    /// A side answered a batched read with the wrong number of results.
    #[error("repair from peer {peer}: {side:?} side answered {got} results for {asked} {stage} requests")]
    Mismatch {
        /// Peer node id.
        peer: String,
        /// Who answered.
        side: Side,
        /// The read.
        stage: ReadStage,
        /// Requests sent.
        asked: usize,
        /// Results received.
        got: usize,
    },
}

impl RepairError {
    /// Whether running the cycle again later may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            RepairError::Peer { source, .. } => source.is_retriable(),
            RepairError::LocalRead { source, .. } | RepairError::LocalWrite { source, .. } => {
                source.is_retriable()
            }
            RepairError::Backpressure { .. } => true,
            RepairError::Mismatch { .. } => false,
        }
    }
}

/// Checks that a batched read answered once per request.
pub(crate) fn check_len<T>(
    peer: &str,
    side: Side,
    stage: ReadStage,
    asked: usize,
    got: Vec<T>,
) -> Result<Vec<T>, RepairError> {
    if got.len() == asked {
        Ok(got)
    } else {
        Err(RepairError::Mismatch {
            peer: peer.to_owned(),
            side,
            stage,
            asked,
            got: got.len(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;

    #[test]
    fn retriability_follows_the_cause() {
        let peer = RepairError::Peer {
            peer: "b".into(),
            stage: ReadStage::Items,
            source: PeerError::Connection {
                peer: "b".into(),
                message: "reset".into(),
            },
        };
        assert!(peer.is_retriable());
        assert_eq!(
            peer.to_string(),
            "repair from peer b aborted: reading items failed"
        );
        let write = RepairError::LocalWrite {
            peer: "b".into(),
            applied: 1,
            total: 2,
            source: SyncError::permanent("too big"),
        };
        assert!(!write.is_retriable());
        assert!(check_len("b", Side::Peer, ReadStage::Children, 2, vec![1]).is_err());
        assert_eq!(
            check_len("b", Side::Local, ReadStage::Children, 1, vec![1]).unwrap(),
            vec![1]
        );
    }
}
