//! Catch-up by concurrent id ranges: when a tailer is far behind, one read at a time would
//! cap it at one read size per round trip (1 000 entries per 50 ms is 20 000 entries/s,
//! whatever the machine could do). Stream ids are millisecond timestamps, so the backlog
//! can be cut into disjoint id ranges and several read at once (`read_range_checked`).
//!
//! What stays exactly as with one read at a time:
//! - **Order.** Ranges are handed on strictly in id order; a range that came back full is
//!   followed by the rest of the same range before anything after it. Later ranges wait,
//!   already read, so at most `catch_up_ranges` ranges of at most `AIM_READS` ×
//!   `COUNT_SLACK` read sizes (plus one entry) each are held or in flight (memory is
//!   bounded like the single read, times that number); the rest of a full range not
//!   read yet is only its bounds.
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
//! spread evenly over time); it is handed on in batches of one read size. The window
//! starts at the bandwidth-delay product of the first checked read's round trip at
//! `ASSUMED_RATE`, at least two ranges, so a link far away is busy from its first round
//! trip (a nearby peer is not caught up by ranges at all: see `RANGES_FROM_ROUND_TRIP` in
//! `worker`); it doubles each time the oldest range was not back yet when it was needed
//! (the link, not the consumer, is the bottleneck), up to `catch_up_ranges`.
//!
//! Full ranges, which writers' bursts make common (a pipeline of writes lands hundreds
//! of ids in one millisecond), are what a catch-up across a WAN waited on (`Queue`):
//! - a range asks for one entry more than it may hold, so one that holds exactly its
//!   bound (bursts come in round numbers) is known complete, not followed by a read of
//!   its empty rest;
//! - a range found full while earlier ones are still handed on has its rest read right
//!   away, cut into ranges at the density it showed, taking free slots before anything
//!   new, instead of a round trip after it was needed.
//!
//! Each range and each catch-up's totals (`Tally`: ranges, full ones, stalls) are
//! traced at debug level, to tell where a catch-up's round trips went.

use super::batch_size::BatchSize;
use super::events::TailPosition;
use super::gap::{detect_gap, note_entries_added, GapCheck};
use super::worker::{lag, send, RawBatch, Stage, Stopped, Worker};
use super::TailOptions;
use replication_core::{CheckedRead, PeerBackend, PeerError, StreamId, StreamInfo};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

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

/// What one catch-up cost, for the trace at its end: where its round trips went.
#[derive(Debug, Default)]
struct Tally {
    /// Ranges handed on, and how many of them came back full (each needs a read of its
    /// rest).
    ranges: usize,
    full: usize,
    /// How often the oldest range was needed before it was back, and the time spent
    /// waiting for it then (the link, not the consumer, held the catch-up up).
    stalls: usize,
    stalled: Duration,
    entries: usize,
}

/// What a read range's task returns: the read, and when it came back (for the trace).
type Back = (Result<CheckedRead, PeerError>, Instant);

/// A range read in its own task, aborted when dropped (a catch-up that ends early leaves
/// nothing running).
struct Reading {
    sent: Instant,
    task: JoinHandle<Back>,
    /// The task's answer, once taken (see `Queue::harvest`).
    back: Option<Back>,
}

impl Reading {
    fn start(peer: &Arc<dyn PeerBackend>, after: StreamId, until: StreamId, count: usize) -> Self {
        let peer = Arc::clone(peer);
        let task = tokio::spawn(async move {
            let read = peer.read_range_checked(after, until, count).await;
            (read, Instant::now())
        });
        Self {
            sent: Instant::now(),
            task,
            back: None,
        }
    }

    /// The answer, waiting for it if it is not back yet; `None` if the task was aborted.
    async fn answer(&mut self) -> Option<&Back> {
        if self.back.is_none() {
            self.back = Some((&mut self.task).await.ok()?);
        }
        self.back.as_ref()
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One stretch of the backlog: ids in `(after, until]`.
#[derive(Debug)]
struct Slot<R> {
    after: StreamId,
    until: StreamId,
    state: State<R>,
}

#[derive(Debug)]
enum State<R> {
    /// The rest of a range that came back full, not read yet: cut into ranges at the
    /// density that range showed, as slots free up.
    Rest { density: f64 },
    /// Being read (or read, waiting its turn), at most `count` entries.
    Started { count: usize, read: R },
}

/// The backlog's stretches in id order, each starting where the one before it ends, from
/// the position up to `Plan::next_after`. Only started ranges hold memory or a read in
/// flight, and only they count against the window; the rest of a full range waits as one
/// `State::Rest` until slots free up, and takes them before anything new (it is needed
/// first). `R` is the read (generic so the bookkeeping is tested without a peer).
#[derive(Debug)]
struct Queue<R> {
    slots: VecDeque<Slot<R>>,
}

impl<R> Default for Queue<R> {
    fn default() -> Self {
        Self {
            slots: VecDeque::new(),
        }
    }
}

impl<R> Queue<R> {
    /// Ranges in flight or read and held.
    fn started(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| matches!(slot.state, State::Started { .. }))
            .count()
    }

    /// Starts one range of about `aim` entries, read with `count`: a piece of the first
    /// rest if there is one, else the next stretch of `plan`. False when there is
    /// nothing left to start.
    fn start_next(
        &mut self,
        plan: &mut Plan,
        aim: usize,
        count: usize,
        start: impl FnOnce(StreamId, StreamId, usize) -> R,
    ) -> bool {
        let rest = self
            .slots
            .iter()
            .position(|slot| matches!(slot.state, State::Rest { .. }));
        if let Some(i) = rest {
            let slot = &mut self.slots[i];
            let State::Rest { density } = slot.state else {
                return false;
            };
            let (after, until) = (slot.after, cut(slot.after, slot.until, density, aim));
            let read = start(after, until, count);
            if until >= slot.until {
                slot.state = State::Started { count, read };
            } else {
                slot.after = until;
                self.slots.insert(
                    i,
                    Slot {
                        after,
                        until,
                        state: State::Started { count, read },
                    },
                );
            }
            return true;
        }
        if plan.next_after >= plan.end {
            return false;
        }
        let (after, until) = (plan.next_after, plan.cut(aim));
        self.slots.push_back(Slot {
            after,
            until,
            state: State::Started {
                count,
                read: start(after, until, count),
            },
        });
        plan.next_after = until;
        true
    }

    /// Slot `i` came back full with `entries` entries, the last at `last`: it ends there,
    /// and what it did not read follows it as a rest, cut at the density it showed.
    fn came_back_full(&mut self, i: usize, entries: usize, last: StreamId) {
        let slot = &mut self.slots[i];
        let (after, until) = (slot.after, slot.until);
        if last >= until {
            return;
        }
        slot.until = last;
        let rest = Slot {
            after: last,
            until,
            state: State::Rest {
                density: density(after, last, entries),
            },
        };
        self.slots.insert(i + 1, rest);
    }

    /// The range `(after, until]` just taken off the front came back full with `entries`
    /// entries, the last at `last`: its rest is next.
    fn rest_first(&mut self, after: StreamId, last: StreamId, until: StreamId, entries: usize) {
        if last < until {
            self.slots.push_front(Slot {
                after: last,
                until,
                state: State::Rest {
                    density: density(after, last, entries),
                },
            });
        }
    }
}

impl Queue<Reading> {
    /// Takes the answers of ranges that are back, and gives each that came back full its
    /// rest right away (it is read while earlier ranges are handed on, instead of a round
    /// trip after its range was needed). Answers are only looked at here; gaps are
    /// checked when a range is handed on.
    async fn harvest(&mut self) {
        // Indexed: a full range inserts its rest behind it.
        let mut i = 0;
        while i < self.slots.len() {
            i += 1;
            let State::Started { count, read } = &mut self.slots[i - 1].state else {
                continue;
            };
            if read.back.is_some() || !read.task.is_finished() {
                continue;
            }
            let count = *count;
            let full = match read.answer().await {
                Some((Ok(got), _)) if got.entries.len() >= count => {
                    got.entries.last().map(|e| (got.entries.len(), e.id))
                }
                _ => None,
            };
            if let Some((entries, last)) = full {
                self.came_back_full(i - 1, entries, last);
            }
        }
    }
}

/// The end of a range after `after` that should hold about `count` entries at `density`
/// entries per millisecond of id, within `end`; always past `after` when `after < end`.
fn cut(after: StreamId, end: StreamId, density: f64, count: usize) -> StreamId {
    let span = (count as f64 / density.max(1e-6)).floor().max(1.0);
    let start = after.next().unwrap_or(StreamId::MAX);
    let ms = start.ms.saturating_add(span as u64 - 1);
    StreamId::new(ms, u64::MAX).min(end)
}

/// Entries per millisecond of a range `(after, last]` that held `entries`.
fn density(after: StreamId, last: StreamId, entries: usize) -> f64 {
    let span = (last.ms.saturating_sub(after.ms) + 1) as f64;
    (entries as f64 / span).max(1e-6)
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
        cut(self.next_after, self.end, self.density, count)
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
        let seen = density(after, full.unwrap_or(until), entries);
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
        let mut queue = Queue::<Reading>::default();
        let aim = size.current().saturating_mul(AIM_READS);
        let mut window = RangeWindow::new(found.round_trip, aim, options.catch_up_ranges);
        let started = Instant::now();
        let mut tally = Tally::default();
        loop {
            // The read size may shrink to the byte budget as entries are seen.
            let batch = size.current();
            let aim = batch.saturating_mul(AIM_READS);
            // One more than a range may hold: a range that holds exactly its bound (the
            // writer's pipelines often come in round numbers) is then known complete
            // instead of costing a read of its empty rest.
            let count = aim.saturating_mul(COUNT_SLACK).saturating_add(1);
            queue.harvest().await;
            let peer = &self.peer;
            while queue.started() < window.ranges()
                && queue.start_next(&mut plan, aim, count, |after, until, count| {
                    Reading::start(peer, after, until, count)
                })
            {}
            let Some(slot) = queue.slots.pop_front() else {
                tracing::debug!(peer = self.peer.node_id(), took = ?started.elapsed(), ?tally, "caught up by ranges");
                return Ok(CatchUp::CaughtUp);
            };
            let Slot {
                after,
                until,
                state,
            } = slot;
            let (count, mut reading) = match state {
                State::Started { count, read } => (count, read),
                // Rests take the first free slot and one is free after every hand-on, so
                // the oldest stretch is always started; were it not, start it now.
                State::Rest { .. } => (count, Reading::start(&self.peer, after, until, count)),
            };
            let was_back = reading.back.is_some() || reading.task.is_finished();
            window.needed(was_back);
            let needed = Instant::now();
            let sent = reading.sent;
            let back = reading.answer().await.map(|(_, back)| *back);
            let read = match reading.back.take() {
                Some((Ok(read), _)) => read,
                Some((Err(error), _)) => return Ok(CatchUp::Failed(error)),
                // Only an abort ends a read task early, and only the window aborts.
                None => return Ok(CatchUp::Suspect),
            };
            let back = back.unwrap_or(needed);
            tally.ranges += 1;
            tally.entries += read.entries.len();
            if !was_back {
                tally.stalls += 1;
                tally.stalled += back.saturating_duration_since(needed);
            }
            let full = read.entries.len() >= count;
            if full {
                tally.full += 1;
            }
            tracing::debug!(
                peer = self.peer.node_id(),
                %after,
                %until,
                entries = read.entries.len(),
                full,
                window = window.ranges(),
                sent = ?sent.saturating_duration_since(started),
                back = ?back.saturating_duration_since(started),
                needed = ?needed.saturating_duration_since(started),
                "range"
            );
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
            note_entries_added(seen_added, Some(&info));
            if let Some(last) = info.last_entry {
                plan.end = plan.end.max(last);
            }
            let mut entries = read.entries;
            let last = entries.last().map(|e| e.id);
            match last.filter(|_| full) {
                Some(last) => {
                    // The rest of this range comes before anything after it (a range the
                    // harvest saw full already ends at its last entry, its rest queued):
                    // read it now, in as many ranges as slots allow, before handing this
                    // one on.
                    if last < until {
                        queue.rest_first(after, last, until, entries.len());
                        while queue.started() < window.ranges()
                            && queue.start_next(&mut plan, aim, count, |after, until, count| {
                                Reading::start(peer, after, until, count)
                            })
                        {}
                    }
                    plan.observe(after, until, entries.len(), Some(last));
                }
                None => plan.observe(after, until, entries.len(), None),
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
mod tests;
