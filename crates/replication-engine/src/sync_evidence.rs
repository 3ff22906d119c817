//! What a peer has verifiably seen of our deletes, for tombstone collection: completed
//! repair cycles, each counted only once our hot path has read the peer's stream up to
//! where it ended when the cycle started.
//!
//! A completed cycle proves the peer lacks every key whose tombstone we recorded before it
//! started, so the peer's own writes of such a key are all older than that moment: they
//! sit in its stream before the end the cycle saw. Until our hot path has judged them, one
//! of them can still reach our store; with the tombstone collected it would bring the key
//! back here, where no tombstone stops it any more. So the cycle's start time becomes
//! evidence only when our cursor passes that end.

use replication_core::StreamId;
use std::collections::VecDeque;

/// Completed cycles kept waiting for the hot path at most: enough to count an older one as
/// soon as the cursor passes its end while newer ones complete; more would only grow.
const WAITING_CAP: usize = 4;

/// Where a peer's stream ended when a repair cycle started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// Nothing our hot path will read: an empty or missing stream, or no hot path.
    NothingToRead,
    /// The newest entry then.
    At(StreamId),
    /// It could not be read: the cycle proves nothing for collection.
    Unknown,
}

/// One peer's collection evidence.
#[derive(Clone, Debug, Default)]
pub(crate) struct SyncEvidence {
    /// Start time (ms, our clock) of the latest completed cycle that counts.
    since_ms: Option<i64>,
    /// Completed cycles not counted yet: their start time and the stream end the hot path
    /// must reach first, oldest first.
    waiting: VecDeque<(i64, StreamId)>,
}

impl SyncEvidence {
    /// The start time every tombstone recorded before which the peer has seen, if any.
    pub(crate) fn since_ms(&self) -> Option<i64> {
        self.since_ms
    }

    /// A cycle that started at `started_ms`, when the stream ended at `end`, completed;
    /// the hot path has read up to `cursor` so far.
    pub(crate) fn cycle_completed(
        &mut self,
        started_ms: i64,
        end: StreamEnd,
        cursor: Option<StreamId>,
    ) {
        match end {
            StreamEnd::Unknown => {}
            StreamEnd::NothingToRead => self.count(started_ms),
            StreamEnd::At(end) if cursor.is_some_and(|c| c >= end) => self.count(started_ms),
            StreamEnd::At(end) => {
                if self.waiting.len() == WAITING_CAP {
                    // The newest supersedes the newest kept: the older ones still count
                    // as soon as the cursor passes them.
                    self.waiting.pop_back();
                }
                self.waiting.push_back((started_ms, end));
            }
        }
    }

    /// The hot path has judged every entry up to `cursor`.
    pub(crate) fn cursor_moved(&mut self, cursor: StreamId) {
        let mut counted = None;
        self.waiting.retain(|&(started_ms, end)| {
            let reached = cursor >= end;
            if reached {
                counted = counted.max(Some(started_ms));
            }
            !reached
        });
        if let Some(started_ms) = counted {
            self.count(started_ms);
        }
    }

    fn count(&mut self, started_ms: i64) {
        self.since_ms = self.since_ms.max(Some(started_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> StreamId {
        StreamId::new(ms, 0)
    }

    #[test]
    fn a_cycle_counts_only_once_the_hot_path_has_read_to_where_the_stream_ended() {
        let mut evidence = SyncEvidence::default();
        evidence.cycle_completed(100, StreamEnd::At(id(50)), Some(id(40)));
        assert_eq!(
            evidence.since_ms(),
            None,
            "older writes of the peer are unread"
        );
        evidence.cursor_moved(id(49));
        assert_eq!(evidence.since_ms(), None);
        evidence.cursor_moved(id(50));
        assert_eq!(evidence.since_ms(), Some(100));
    }

    #[test]
    fn a_cycle_with_nothing_to_read_or_a_cursor_already_past_counts_at_once() {
        let mut evidence = SyncEvidence::default();
        evidence.cycle_completed(100, StreamEnd::NothingToRead, None);
        assert_eq!(evidence.since_ms(), Some(100));
        evidence.cycle_completed(200, StreamEnd::At(id(50)), Some(id(60)));
        assert_eq!(evidence.since_ms(), Some(200));
    }

    #[test]
    fn a_cycle_whose_stream_end_is_unknown_never_counts() {
        let mut evidence = SyncEvidence::default();
        evidence.cycle_completed(100, StreamEnd::Unknown, Some(id(60)));
        evidence.cursor_moved(id(1_000));
        assert_eq!(evidence.since_ms(), None);
    }

    #[test]
    fn an_older_cycle_counts_while_a_newer_one_still_waits_and_the_wait_is_bounded() {
        let mut evidence = SyncEvidence::default();
        evidence.cycle_completed(100, StreamEnd::At(id(50)), None);
        for i in 0..10 {
            evidence.cycle_completed(200 + i, StreamEnd::At(id(80 + i as u64)), None);
        }
        assert!(evidence.waiting.len() <= WAITING_CAP);
        evidence.cursor_moved(id(60));
        assert_eq!(evidence.since_ms(), Some(100));
        evidence.cursor_moved(id(1_000));
        assert_eq!(evidence.since_ms(), Some(209), "the newest is kept");
        assert!(evidence.waiting.is_empty());
        // Evidence never goes back.
        evidence.cycle_completed(50, StreamEnd::NothingToRead, None);
        assert_eq!(evidence.since_ms(), Some(209));
    }
}
