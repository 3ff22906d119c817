//! The model of the expected outcome: the greatest stamp (core conflict order) over every
//! write any node made to a key. A key whose greatest stamp is a delete must be absent
//! everywhere; otherwise every node must hold exactly that version and content.

use replication_core::Stamp;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Writes observed by the workload, shared between its tasks. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Model {
    winners: Arc<Mutex<BTreeMap<String, Stamp>>>,
    writes: Arc<Mutex<u64>>,
}

impl Model {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a committed write (a put's item stamp, or the tombstone a delete left).
    pub fn record(&self, key: &str, stamp: Stamp) {
        let mut winners = self
            .winners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = winners
            .entry(key.to_owned())
            .or_insert_with(|| stamp.clone());
        if stamp > *entry {
            *entry = stamp;
        }
        *self
            .writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
    }

    /// Every key written and its expected final stamp, sorted by key.
    pub fn expected(&self) -> BTreeMap<String, Stamp> {
        self.winners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Number of writes recorded.
    pub fn writes(&self) -> u64 {
        *self
            .writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What one node holds for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// An item with this stamp.
    Item(Stamp),
    /// No item, but a tombstone with this stamp.
    Tombstone(Stamp),
    /// Nothing at all.
    Absent,
}

impl Observed {
    /// True when this state is what `expected` (the model's winner) requires.
    pub fn satisfies(&self, expected: &Stamp) -> bool {
        match self {
            Observed::Item(stamp) => !expected.is_delete() && stamp == expected,
            // A delete winner: the item must be gone. The tombstone itself may differ (a
            // node that never held the key need not keep one).
            Observed::Tombstone(_) | Observed::Absent => expected.is_delete(),
        }
    }
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Observed::Item(s) => write!(f, "item {}", show(s)),
            Observed::Tombstone(s) => write!(f, "no item, tombstone {}", show(s)),
            Observed::Absent => write!(f, "absent (no item, no tombstone)"),
        }
    }
}

/// A stamp in one line: kind, version, time and a short hash.
pub fn show(stamp: &Stamp) -> String {
    let kind = if stamp.is_delete() { "delete" } else { "put" };
    let hash: String = stamp.content_hash.chars().take(12).collect();
    format!("{kind} v{} @{}ms {hash}", stamp.version, stamp.updated_at)
}
