//! Catch-up by concurrent id ranges: when a tailer is far behind, one read at a time would
//! cap it at one read size per round trip (1 000 entries per 50 ms is 20 000 entries/s,
//! whatever the machine could do). Stream ids are millisecond timestamps, so the backlog
//! can be cut into disjoint id ranges and several read at once (`read_range_checked`).
//!
//! What stays exactly as with one read at a time:
//! - **Order.** Ranges are handed on strictly in id order; a range that came back full is
//!   followed by the rest of the same range before anything after it. Later ranges wait,
//!   already read, so at most `catch_up_ranges` ranges of at most `AIM_READS` ×
//!   `COUNT_SLACK` read sizes each are held or in flight (memory is bounded like the
//!   single read, times that number).
//! - **The cursor.** A batch's position is its last entry; the engine checkpoints it only
//!   once it applied the batch, as for any other batch.
//! - **Gaps.** Each range is read together with the stream facts observed right after it
//!   (as a non-blocking `XREAD` with facts is) and checked with `detect_gap` from the
//!   cursor of everything handed on before it, so an entry trimmed or deleted before its
//!   range was read shows as a gap. Nothing can
//!   appear later inside a range already read: ranges end at or before an id the stream
//!   had already generated, and new ids only grow. On any suspicious fact the ranges are
//!   dropped and the tailer goes back to its checked `XREAD` from the cursor, which decides
//!   (and reports) as before. Entries are screened and decoded by the same stages.
//!
//! Ranges are read concurrently on the wire, not only in tasks: each is one pipelined
//! `XRANGE` + `XINFO` (see the Redis backend), never a `MULTI`, which its client runs one
//! at a time per connection.
//!
//! Sizes, like a congestion window (`RangeWindow`): a range aims at `AIM_READS` read
//! sizes and may hold `COUNT_SLACK` times that before it comes back full (ids are not
//! spread evenly over time, and a full range costs a round trip for its rest); it is
//! handed on in batches of one read size. The window starts at the bandwidth-delay
//! product of the first checked read's round trip at `ASSUMED_RATE`, at least two
//! ranges, so a link far away is busy from its first round trip (a nearby peer is not
//! caught up by ranges at all: see `RANGES_FROM_ROUND_TRIP` in `worker`); it doubles each time the oldest range was not back yet when it
//! was needed (the link, not the consumer, is the bottleneck), up to `catch_up_ranges`.

use super::batch_size::BatchSize;
use super::events::TailPosition;
use super::gap::{detect_gap, GapCheck};
use super::worker::{lag, send, RawBatch, Stage, Stopped, Worker};
use super::TailOptions;
use replication_core::{CheckedRead, PeerBackend, PeerError, StreamId, StreamInfo};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Read sizes of entries a range aims at: fewer, larger ranges cost fewer commands and
/// replies per entry, while what is handed on stays one read size per batch.
const AIM_READS: usize = 2;

/// How many times its aim a range may hold before it comes back full.
const COUNT_SLACK: usize = 2;

/// Entries/s the first window is sized for: above what one tailer decodes (about 280 000/s
/// on the benchmark machine), so a slow link is not the limit from its first round trip.
/// Only its product with the round trip matters: on loopback that is under two ranges.
const ASSUMED_RATE: f64 = 400_000.0;

/// How many ranges may be in flight (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RangeWindow {
    ranges: usize,
    max: usize,
}

impl RangeWindow {
    /// The window for a link whose checked read of one read size took `round_trip`, for
    /// ranges aiming at `aim` entries, at most `max` ranges.
    pub(super) fn new(round_trip: Duration, aim: usize, max: usize) -> Self {
        let max = max.max(1);
        let product = round_trip.as_secs_f64() * ASSUMED_RATE / aim.max(1) as f64;
        Self {
            ranges: (product.ceil() as usize).clamp(2.min(max), max),
            max,
        }
    }

    pub(super) fn ranges(&self) -> usize {
        self.ranges
    }

    /// The oldest range was needed and `was_back` says whether it had arrived: when not,
    /// the link is the bottleneck and the window doubles.
    pub(super) fn needed(&mut self, was_back: bool) {
        if !was_back {
            self.ranges = self.ranges.saturating_mul(2).min(self.max);
        }
    }
}

/// Why a catch-up ended.
pub(super) enum CatchUp {
    /// Everything the stream held when last observed was handed on.
    CaughtUp,
    /// A range's facts look like a gap: the checked `XREAD` from the cursor decides.
    Suspect,
    /// A read failed (retried by the tailer as any failed read).
    Failed(PeerError),
}

/// What the full checked read that found a long backlog saw (already handed on).
pub(super) struct Found {
    /// The stream facts it was read with.
    pub(super) info: StreamInfo,
    /// The ids it returned.
    pub(super) ids: Vec<StreamId>,
    /// How long it took: about one round trip plus one read's transfer.
    pub(super) round_trip: Duration,
}

/// Whether a tailer at `position`, whose checked read of `count` came back full with
/// `info`, is far enough behind for concurrent ranges to pay.
pub(super) fn far_behind(position: TailPosition, info: &StreamInfo, count: usize) -> bool {
    let Some(last) = info.last_entry else {
        return false;
    };
    if last <= position.after {
        return false;
    }
    match (info.entries_added, position.entries_added) {
        (Some(added), Some(pos)) => added.saturating_sub(pos) > 2 * count as u64,
        // Without counts, a full read says the backlog is at least one read long.
        _ => true,
    }
}

/// One range being read: ids in `(after, until]`, at most `count` of them.
struct Range {
    after: StreamId,
    until: StreamId,
    count: usize,
    read: JoinHandle<Result<CheckedRead, PeerError>>,
}

impl Range {
    fn start(peer: &Arc<dyn PeerBackend>, after: StreamId, until: StreamId, count: usize) -> Self {
        let peer = Arc::clone(peer);
        let read = tokio::spawn(async move { peer.read_range_checked(after, until, count).await });
        Self {
            after,
            until,
            count,
            read,
        }
    }
}

/// The ranges in flight, oldest first; aborted when dropped (a catch-up that ends early
/// leaves nothing running).
#[derive(Default)]
struct InFlight(VecDeque<Range>);

impl Drop for InFlight {
    fn drop(&mut self) {
        for range in &self.0 {
            range.read.abort();
        }
    }
}

/// Where the next range starts and how wide ranges are cut.
struct Plan {
    /// Ranges cover everything up to here (exclusive start of the next one).
    next_after: StreamId,
    /// The newest entry the stream was seen to hold: ranges never go past it.
    end: StreamId,
    /// Entries per millisecond of id, estimated from the backlog and from ranges read.
    density: f64,
}

impl Plan {
    fn new(position: TailPosition, info: &StreamInfo, first_read: &[StreamId]) -> Self {
        let end = info.last_entry.unwrap_or(position.after);
        // Entries per ms over the backlog when the counts tell how many it holds, else
        // over the read that found it.
        let from_counts = match (info.entries_added, position.entries_added) {
            (Some(added), Some(pos)) if end.ms >= position.after.ms => {
                Some(added.saturating_sub(pos) as f64 / (end.ms - position.after.ms + 1) as f64)
            }
            _ => None,
        };
        let from_read = match (first_read.first(), first_read.last()) {
            (Some(first), Some(last)) => {
                Some(first_read.len() as f64 / (last.ms - first.ms + 1) as f64)
            }
            _ => None,
        };
        Self {
            next_after: position.after,
            end,
            density: from_counts.or(from_read).unwrap_or(1.0).max(1e-6),
        }
    }

    /// The end of a range starting after `next_after` that should hold about `count`
    /// entries, within what the stream holds.
    fn cut(&self, count: usize) -> StreamId {
        let span = (count as f64 / self.density).floor().max(1.0);
        let start = self.next_after.next().unwrap_or(StreamId::MAX);
        let ms = start.ms.saturating_add(span as u64 - 1);
        StreamId::new(ms, u64::MAX).min(self.end)
    }

    /// Learns the density from a range `(after, until]` that came back complete with
    /// `entries`, or full with its last entry at `last` (then its entries span up to it).
    fn observe(
        &mut self,
        after: StreamId,
        until: StreamId,
        entries: usize,
        full: Option<StreamId>,
    ) {
        let end = full.map_or(until.ms, |last| last.ms);
        let span = (end.saturating_sub(after.ms) + 1) as f64;
        let seen = entries as f64 / span;
        self.density = (0.5 * self.density + 0.5 * seen).max(1e-6);
    }
}

impl Worker {
    /// Catches up from `self.position` by concurrent ranges, handing batches on in order,
    /// until the stream's last entry (as last observed) is handed on or a range looks
    /// suspicious. `found` is what the full checked read that found the backlog saw.
    pub(super) async fn catch_up(
        &mut self,
        stages: &tokio::sync::mpsc::Sender<Stage>,
        options: &TailOptions,
        size: &mut BatchSize,
        seen_added: &mut Option<u64>,
        found: &Found,
    ) -> Result<CatchUp, Stopped> {
        let mut plan = Plan::new(self.position, &found.info, &found.ids);
        let mut ranges = InFlight::default();
        let aim = size.current().saturating_mul(AIM_READS);
        let mut window = RangeWindow::new(found.round_trip, aim, options.catch_up_ranges);
        loop {
            // The read size may shrink to the byte budget as entries are seen.
            let batch = size.current();
            let aim = batch.saturating_mul(AIM_READS);
            let count = aim.saturating_mul(COUNT_SLACK);
            while ranges.0.len() < window.ranges() && plan.next_after < plan.end {
                let until = plan.cut(aim);
                ranges
                    .0
                    .push_back(Range::start(&self.peer, plan.next_after, until, count));
                plan.next_after = until;
            }
            let Some(range) = ranges.0.pop_front() else {
                return Ok(CatchUp::CaughtUp);
            };
            window.needed(range.read.is_finished());
            let Range {
                after,
                until,
                count,
                read,
            } = range;
            let read = match read.await {
                Ok(Ok(read)) => read,
                Ok(Err(error)) => return Ok(CatchUp::Failed(error)),
                // Only an abort ends a read task early, and only the window aborts.
                Err(_) => return Ok(CatchUp::Suspect),
            };
            let cursor = self.position.after;
            let verdict = detect_gap(
                cursor,
                self.position.entries_added,
                *seen_added,
                read.info.as_ref(),
            );
            let Some(info) = read.info.filter(|_| verdict == GapCheck::None) else {
                return Ok(CatchUp::Suspect);
            };
            if let Some(added) = info.entries_added {
                *seen_added = Some(seen_added.map_or(added, |seen| seen.max(added)));
            }
            if let Some(last) = info.last_entry {
                plan.end = plan.end.max(last);
            }
            let mut entries = read.entries;
            if entries.len() >= count {
                // The rest of this range comes before anything after it.
                let last = entries.last().map_or(after, |e| e.id);
                ranges
                    .0
                    .push_front(Range::start(&self.peer, last, until, count));
                plan.observe(after, until, entries.len(), Some(last));
            } else {
                plan.observe(after, until, entries.len(), None);
            }
            // Handed on one read size at a time, as single reads would be.
            while !entries.is_empty() {
                let rest = entries.split_off(batch.min(entries.len()));
                let part = std::mem::replace(&mut entries, rest);
                self.hand_on(stages, options, size, part, &info).await?;
            }
        }
    }

    /// Hands on `entries`, the next ones after the position, read with `info`.
    async fn hand_on(
        &mut self,
        stages: &tokio::sync::mpsc::Sender<Stage>,
        options: &TailOptions,
        size: &mut BatchSize,
        entries: Vec<replication_core::RawEntry>,
        info: &StreamInfo,
    ) -> Result<(), Stopped> {
        let position = TailPosition {
            after: entries.last().map_or(self.position.after, |e| e.id),
            entries_added: self
                .position
                .entries_added
                .map(|pos| pos + entries.len() as u64),
        };
        let lag = lag(position, Some(info));
        self.position = position;
        let batch = RawBatch::screened(entries, position, lag, options, size);
        send(stages, Stage::Batch(batch)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(next_after: StreamId, end: StreamId, density: f64) -> Plan {
        Plan {
            next_after,
            end,
            density,
        }
    }

    #[test]
    fn every_range_moves_forward_and_stays_within_the_stream() {
        let end = StreamId::new(10_000, 3);
        // Dense (many entries per ms), sparse, and after a range that ended on a ms.
        for (after, density) in [
            (StreamId::new(5, 2), 500.0),
            (StreamId::new(5, u64::MAX), 500.0),
            (StreamId::new(5, 0), 0.01),
            (StreamId::new(9_999, u64::MAX), 1.0),
        ] {
            let until = plan(after, end, density).cut(1_000);
            assert!(until > after, "{after} → {until}");
            assert!(until <= end);
        }
        // 1 000 entries at 10 per ms: a range of 100 ms (100..=199).
        let until = plan(StreamId::new(100, 0), end, 10.0).cut(1_000);
        assert_eq!(until, StreamId::new(199, u64::MAX));
    }

    #[test]
    fn the_window_starts_at_the_bandwidth_delay_product_and_doubles_when_late() {
        let ms = Duration::from_millis;
        // Loopback: a read of 1 000 takes a few ms, far less than two ranges' worth.
        assert_eq!(RangeWindow::new(ms(3), 2_000, 24).ranges(), 2);
        // 50 ms: 50 ms × 400 000/s = 20 000 entries in flight, ten ranges of 2 000.
        assert_eq!(RangeWindow::new(ms(50), 2_000, 24).ranges(), 10);
        // 150 ms wants 30 ranges: capped.
        assert_eq!(RangeWindow::new(ms(150), 2_000, 24).ranges(), 24);
        // A bound of one is kept, whatever the link.
        assert_eq!(RangeWindow::new(ms(3), 2_000, 1).ranges(), 1);
        assert_eq!(RangeWindow::new(ms(150), 2_000, 0).ranges(), 1);

        let mut window = RangeWindow::new(ms(3), 2_000, 24);
        // Back in time: the consumer is the bottleneck; the window stays.
        window.needed(true);
        assert_eq!(window.ranges(), 2);
        // Late: doubles, up to the bound, and never shrinks.
        for expected in [4, 8, 16, 24, 24] {
            window.needed(false);
            assert_eq!(window.ranges(), expected);
        }
        window.needed(true);
        assert_eq!(window.ranges(), 24);
    }

    #[test]
    fn a_backlog_is_far_behind_only_beyond_two_reads() {
        let info = |added: u64| StreamInfo {
            length: added,
            first_entry: Some(StreamId::new(1, 0)),
            last_entry: Some(StreamId::new(added, 0)),
            last_generated: StreamId::new(added, 0),
            max_deleted: None,
            entries_added: Some(added),
        };
        let at = |pos: u64| TailPosition {
            after: StreamId::new(pos, 0),
            entries_added: Some(pos),
        };
        assert!(far_behind(at(100), &info(10_000), 100));
        assert!(!far_behind(at(100), &info(300), 100));
        assert!(!far_behind(at(10_000), &info(10_000), 100));
    }
}
