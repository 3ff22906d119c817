//! Gap detection: the pure decision of whether entries after our cursor were lost,
//! from a cursor and the stream facts (`XINFO STREAM`) observed with a read.
//!
//! Facts used (PROTOCOL.md "Trim/gap facts", corrected against redis-server 7.0):
//! - `max-deleted-entry-id > cursor` means an entry after the cursor was deleted (`XDEL`);
//!   equal means only the cursor's own entry went: not a gap. Redis 7.0 does NOT raise
//!   `max-deleted-entry-id` when *trimming* (`XTRIM`, `XADD MAXLEN`), so that alone misses
//!   the common case;
//! - trimming shows as `first-entry > cursor`. Whether entries lay between the cursor and
//!   the first survivor is decided by counting: with `pos` = entries ever added up to and
//!   including the cursor, entries added after it are `entries_added - pos`; all `length`
//!   survivors are after the cursor, so `lost = entries_added - pos - length` (0: only the
//!   cursor's own entry and older ones went). Without `pos` we cannot tell, and report a
//!   gap of unknown size: a needless repair is safe, a missed gap is not;
//! - an empty stream whose `last-generated-id` is beyond the cursor lost everything after it;
//! - the stream was recreated when it is missing although we had a cursor, when its
//!   `last-generated-id` is below the cursor, or when `entries-added` went down (below what
//!   we saw before, or below our cursor's position).

use super::events::TailPosition;
use replication_core::{StreamId, StreamInfo};

/// What was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapKind {
    /// Entries after the cursor were trimmed before we read them.
    Trimmed {
        /// How many, when known.
        lost: Option<u64>,
    },
    /// The stream was deleted or reset: our cursor means nothing in it.
    Recreated,
}

/// The outcome of a gap check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GapCheck {
    /// Reading on after the cursor misses nothing.
    None,
    /// Something was lost; continue reading after `resume_from`.
    Gap {
        /// What was lost.
        kind: GapKind,
        /// The new cursor: reading after it yields the oldest surviving entry first
        /// (`0-0` for a recreated stream).
        resume_from: StreamId,
        /// Entries ever added up to and including `resume_from`, when known.
        resume_position: Option<u64>,
    },
}

/// The id just before `id`, so that an exclusive read after it starts at `id`.
pub(crate) fn predecessor(id: StreamId) -> StreamId {
    if id.seq > 0 {
        StreamId::new(id.ms, id.seq - 1)
    } else if id.ms > 0 {
        StreamId::new(id.ms - 1, u64::MAX)
    } else {
        StreamId::ZERO
    }
}

/// Decides whether entries after `cursor` were lost, given the stream facts observed
/// together with (atomically, or after) a read. `position` is the number of entries ever
/// added up to and including the cursor, and `seen_entries_added` the largest
/// `entries-added` seen before, when known.
pub(crate) fn detect_gap(
    cursor: StreamId,
    position: Option<u64>,
    seen_entries_added: Option<u64>,
    info: Option<&StreamInfo>,
) -> GapCheck {
    let recreated = GapCheck::Gap {
        kind: GapKind::Recreated,
        resume_from: StreamId::ZERO,
        resume_position: Some(0),
    };
    let Some(info) = info else {
        return if cursor > StreamId::ZERO {
            recreated
        } else {
            GapCheck::None
        };
    };
    if info.last_generated < cursor {
        return recreated;
    }
    if let Some(added) = info.entries_added {
        if seen_entries_added.is_some_and(|seen| added < seen)
            || position.is_some_and(|pos| added < pos)
        {
            return recreated;
        }
    }
    let added_after = match (info.entries_added, position) {
        (Some(added), Some(pos)) => added.checked_sub(pos),
        _ => None,
    };
    let deleted_after_cursor = info.max_deleted.is_some_and(|deleted| deleted > cursor);
    let trimmed =
        |lost: Option<u64>, resume_from: StreamId, resume_position: Option<u64>| GapCheck::Gap {
            kind: GapKind::Trimmed { lost },
            resume_from,
            resume_position,
        };
    match info.first_entry {
        Some(first) if first > cursor => {
            // Every survivor is after the cursor; survivors are the last `length` added.
            let lost = added_after.and_then(|after| after.checked_sub(info.length));
            let resume_position = info
                .entries_added
                .and_then(|added| added.checked_sub(info.length));
            match lost {
                Some(0) if !deleted_after_cursor => GapCheck::None,
                lost => trimmed(lost.filter(|n| *n > 0), predecessor(first), resume_position),
            }
        }
        // Survivors at or before the cursor: only an XDEL after it can have lost anything.
        Some(_) if deleted_after_cursor => trimmed(None, cursor, None),
        Some(_) => GapCheck::None,
        // Nothing survives: everything generated after the cursor is gone.
        None if info.last_generated > cursor => {
            trimmed(added_after, info.last_generated, info.entries_added)
        }
        None => GapCheck::None,
    }
}

/// Raises `seen`, the largest `entries-added` seen so far (a recreation shows as facts
/// below it), to what `info` says.
pub(crate) fn note_entries_added(seen: &mut Option<u64>, info: Option<&StreamInfo>) {
    if let Some(added) = info.and_then(|i| i.entries_added) {
        *seen = Some(seen.map_or(added, |seen| seen.max(added)));
    }
}

/// The one thing `detect_gap` cannot see: a stream resumed at `0-0` after a recreation,
/// nothing of it read yet, recreated once more while the peer could not be read. From
/// `0-0` every fact starts at zero again, so the next stream looks untouched. After a
/// failed read at that position the tailer cannot prove nothing was lost, so it reports
/// a gap (a repair brings whatever the lost stream held); a brand-new peer at `0-0` is not
/// affected (its stream was never seen, so there is no earlier stream to lose).
#[derive(Debug, Default)]
pub(super) struct UnseenRecreation {
    /// Resumed at `0-0` after a recreation, nothing read since.
    resumed: bool,
    /// A read failed while resumed there.
    unsure: bool,
}

impl UnseenRecreation {
    /// A recreation was reported: the tailer resumes at `0-0`.
    pub(super) fn recreated(&mut self) {
        self.resumed = true;
        self.unsure = false;
    }

    /// A read failed at `position`.
    pub(super) fn read_failed(&mut self, position: TailPosition) {
        if self.resumed && position.after == StreamId::ZERO {
            self.unsure = true;
        }
    }

    /// A read succeeded: true (once) when it must be reported as a possible recreation.
    pub(super) fn take_unsure(&mut self) -> bool {
        std::mem::take(&mut self.unsure)
    }

    /// Entries were handed on up to `position`: past `0-0`, the usual checks see again.
    pub(super) fn moved(&mut self, position: TailPosition) {
        if position.after > StreamId::ZERO {
            self.resumed = false;
            self.unsure = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(ms: u64) -> StreamId {
        StreamId::new(ms, 0)
    }

    /// A stream of entries `1..=added` (ids `n-0`) whose first `trimmed` entries were
    /// trimmed (Redis 7.0 leaves `max-deleted-entry-id` at 0-0 when trimming).
    fn trimmed_stream(added: u64, trimmed: u64) -> StreamInfo {
        let length = added - trimmed;
        StreamInfo {
            length,
            first_entry: (length > 0).then(|| id(trimmed + 1)),
            last_entry: (length > 0).then(|| id(added)),
            last_generated: id(added),
            max_deleted: Some(StreamId::ZERO),
            entries_added: Some(added),
        }
    }

    /// The same, but the entries were removed with XDEL (raises `max-deleted-entry-id`).
    fn xdeleted_stream(added: u64, deleted: u64) -> StreamInfo {
        let mut info = trimmed_stream(added, deleted);
        info.max_deleted = Some(if deleted > 0 {
            id(deleted)
        } else {
            StreamId::ZERO
        });
        info
    }

    #[test]
    fn trim_past_the_cursor_counts_the_lost() {
        let info = trimmed_stream(100, 50);
        let check = detect_gap(id(30), Some(30), Some(60), Some(&info));
        assert_eq!(
            check,
            GapCheck::Gap {
                kind: GapKind::Trimmed { lost: Some(20) },
                resume_from: predecessor(id(51)),
                resume_position: Some(50),
            }
        );
        let unknown = detect_gap(id(30), None, None, Some(&info));
        assert!(matches!(
            unknown,
            GapCheck::Gap {
                kind: GapKind::Trimmed { lost: None },
                ..
            }
        ));
    }

    #[test]
    fn trimming_only_the_cursor_entry_is_not_a_gap() {
        assert_eq!(
            detect_gap(id(50), Some(50), None, Some(&trimmed_stream(100, 50))),
            GapCheck::None
        );
        assert_eq!(
            detect_gap(id(70), Some(70), None, Some(&trimmed_stream(100, 50))),
            GapCheck::None
        );
    }

    #[test]
    fn everything_trimmed_resumes_at_the_end() {
        let info = trimmed_stream(100, 100);
        let check = detect_gap(id(30), Some(30), None, Some(&info));
        assert_eq!(
            check,
            GapCheck::Gap {
                kind: GapKind::Trimmed { lost: Some(70) },
                resume_from: id(100),
                resume_position: Some(100)
            }
        );
    }

    #[test]
    fn recreation_is_detected() {
        let recreated = |c| {
            matches!(
                c,
                GapCheck::Gap {
                    kind: GapKind::Recreated,
                    resume_from: StreamId::ZERO,
                    ..
                }
            )
        };
        assert!(recreated(detect_gap(id(30), None, None, None)));
        assert_eq!(detect_gap(StreamId::ZERO, None, None, None), GapCheck::None);
        assert!(recreated(detect_gap(
            id(300),
            None,
            None,
            Some(&trimmed_stream(100, 0))
        )));
        // New ids above the cursor, but fewer entries ever added than we had seen.
        let mut fresh = trimmed_stream(5, 0);
        fresh.last_generated = id(1000);
        assert!(recreated(detect_gap(id(30), Some(30), None, Some(&fresh))));
        assert!(recreated(detect_gap(id(30), None, Some(40), Some(&fresh))));
    }

    proptest! {
        /// Over head-trimmed streams, the verdict is exact: a gap iff an entry after the
        /// cursor is gone; the resume point yields the oldest survivor; the count is exact.
        #[test]
        fn exact_on_head_trimmed_streams(added in 1u64..500, trimmed_frac in 0.0f64..=1.0, cursor_frac in 0.0f64..=1.0, by_xdel: bool) {
            let trimmed = ((added as f64) * trimmed_frac) as u64;
            let cursor = ((added as f64) * cursor_frac) as u64;
            let info = if by_xdel { xdeleted_stream(added, trimmed) } else { trimmed_stream(added, trimmed) };
            let check = detect_gap(id(cursor), Some(cursor), Some(cursor), Some(&info));
            if trimmed > cursor {
                match check {
                    GapCheck::Gap { kind: GapKind::Trimmed { lost }, resume_from, resume_position } => {
                        prop_assert_eq!(lost, Some(trimmed - cursor));
                        prop_assert_eq!(resume_position, Some(trimmed));
                        if trimmed < added {
                            prop_assert!(resume_from < id(trimmed + 1));
                            prop_assert!(resume_from >= id(trimmed));
                        }
                    }
                    other => prop_assert!(false, "expected a trim gap, got {:?}", other),
                }
            } else {
                prop_assert_eq!(check, GapCheck::None);
            }
        }

        #[test]
        fn predecessor_is_the_immediate_predecessor(ms in any::<u64>(), seq in any::<u64>()) {
            let x = StreamId::new(ms, seq);
            if x > StreamId::ZERO {
                let p = predecessor(x);
                prop_assert!(p < x);
                prop_assert_eq!(p.next(), Some(x));
            }
        }
    }
}
