//! Read-ahead: states that `local_states` read, kept for the write that usually follows
//! (the reads themselves are `batch_read`'s; this module only keeps and hands them over).
//!
//! The engine asks `local_states` of a batch's keys and then applies the changes that win;
//! without this hand-off the write would read the same items and tombstones again. Each
//! read is kept with the write token read before it (in the same pipeline, on one
//! connection). A write whose tree cache is at that same token uses the kept states instead
//! of reading: the commit script checks the token, so if anyone wrote in between, the
//! commit writes nothing and the batch is planned again from fresh reads. States can only be
//! newer than their token, never older, because the token is read first.

use crate::state::Stored;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Reads kept at most: one per hot-path task that may sit between its read and its write.
const KEPT: usize = 8;

/// One `local_states` read.
struct Read {
    token: Bytes,
    states: HashMap<String, Stored>,
    /// The version floor read with them.
    floor: u64,
}

/// The reads kept, newest last.
#[derive(Default)]
pub(crate) struct ReadAhead {
    reads: Mutex<VecDeque<Read>>,
}

impl ReadAhead {
    /// Keeps the states of `ids` read at `token` (the oldest read goes past [`KEPT`]).
    pub(crate) fn keep(&self, token: Bytes, ids: &[String], stored: &[Stored], floor: u64) {
        let states = ids.iter().cloned().zip(stored.iter().cloned()).collect();
        let mut reads = self.lock();
        if reads.len() == KEPT {
            reads.pop_front();
        }
        reads.push_back(Read {
            token,
            states,
            floor,
        });
    }

    /// Takes a read made at `token` that covers every id, if one is kept: its states and
    /// the version floor read with them.
    pub(crate) fn take(
        &self,
        token: &Bytes,
        ids: &[String],
    ) -> Option<(HashMap<String, Stored>, u64)> {
        let mut reads = self.lock();
        // Reads at an older token can never be used again.
        reads.retain(|read| read.token == *token);
        let at = reads
            .iter()
            .position(|read| ids.iter().all(|id| read.states.contains_key(id)))?;
        reads.remove(at).map(|read| (read.states, read.floor))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Read>> {
        // The data stays valid whatever a panicking holder did: reads are only hints.
        self.reads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replication_core::Tombstone;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_read_serves_a_write_at_its_token_that_it_covers() {
        let read_ahead = ReadAhead::default();
        let t1 = Bytes::from_static(b"t1");
        let deleted = Stored {
            item: None,
            tombstone: Some(Tombstone {
                version: 2,
                deleted_at: 5,
            }),
        };
        read_ahead.keep(
            t1.clone(),
            &ids(&["a", "b"]),
            &[Stored::default(), deleted.clone()],
            7,
        );
        // Not covering, or another token: nothing.
        assert!(read_ahead.take(&t1, &ids(&["a", "c"])).is_none());
        let (taken, floor) = read_ahead.take(&t1, &ids(&["b"])).unwrap();
        assert_eq!(taken.get("b"), Some(&deleted));
        assert_eq!(floor, 7, "the floor read with the states comes with them");
        // Taken once only.
        assert!(read_ahead.take(&t1, &ids(&["b"])).is_none());
        read_ahead.keep(t1.clone(), &ids(&["a"]), &[Stored::default()], 0);
        assert!(read_ahead
            .take(&Bytes::from_static(b"t2"), &ids(&["a"]))
            .is_none());
        // The token moved on: the old read was dropped.
        assert!(read_ahead.take(&t1, &ids(&["a"])).is_none());
    }

    #[test]
    fn keeps_a_bounded_number_of_reads() {
        let read_ahead = ReadAhead::default();
        let t = Bytes::from_static(b"t");
        for i in 0..=KEPT {
            read_ahead.keep(t.clone(), &ids(&[&i.to_string()]), &[Stored::default()], 0);
        }
        assert!(read_ahead.take(&t, &ids(&["0"])).is_none());
        assert!(read_ahead.take(&t, &ids(&[&KEPT.to_string()])).is_some());
    }
}
