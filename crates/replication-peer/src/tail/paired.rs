//! Paired reads: across a slow link, a tailer that is caught up keeps two blocking reads
//! waiting at the peer, one per stream lane, sent half a round trip apart.
//!
//! Why: with one read in flight, an entry appended just after the peer answered a read
//! waits for the next read to get there (up to a round trip: the answer travels back, the
//! next read travels out) and then travels back itself (half one), so lag reaches about
//! 1.5 round trips. With two reads staggered by half a round trip, a read arrives at the
//! peer every half round trip, and lag stays within about one.
//!
//! What stays exactly as with one read at a time:
//! - **Order and the cursor.** Each read asks for entries after the position handed on
//!   when it was sent. When it comes back, what lies at or before the position handed on
//!   by then came with the other lane's reply and is dropped by id ([`fresh`]); the rest
//!   follows that position directly (both replies are contiguous runs of the same stream)
//!   and is handed on as one batch, whose position is its last entry.
//! - **Gaps.** Each reply is checked with `detect_gap` against the position and the
//!   `entries-added` it was sent with, by the facts observed right after it (pipelined on
//!   the same connection, as for any blocking read). The send-time position is the one
//!   the reply's facts can speak for: a reply may have been answered before the other
//!   lane's reply that arrived first, so its facts can be older than what was handed on
//!   since, but never older than the position it was sent with. Any suspicious fact ends
//!   the pairing, and the tailer's checked read from the position handed on decides (so a
//!   trim of entries already handed on costs one checked read, never a false gap).
//! - **Everything else** goes back to the tailer's loop: a full reply (behind: single
//!   reads and catch-up ranges take over), a failed read, the `check_interval`, changed
//!   options. Reads still waiting at the peer then are not dropped: a connection runs
//!   one blocking read at a time, so a new read would queue behind one that waits up to
//!   the block time, and could outlast its own time bound. The lanes stay with the tailer
//!   ([`Lanes`]): the loop waits out the first lane's read before its own blocking read
//!   (settling it: the reply is dropped, the loop reads again from its position), and
//!   pairing again takes up a read still in flight on either lane (its reply judged, as
//!   any, against what it was sent with).
//!
//! The price: a read covers from the position at its send, so about half of each reply is
//! what the other lane brought already (every entry is read about twice), paid only across
//! a slow link while caught up, where reads are small. The read size is held at its upper
//! bound while paired (capped by the byte budget as always): a short blocking read costs
//! nothing for its count, and a count below one round trip's worth of entries would make
//! replies come back full and leave the pairing.

use super::batch_size::BatchSize;
use super::events::TailPosition;
use super::gap::{detect_gap, note_entries_added, GapCheck};
use super::worker::{lag, send, RawBatch, Stage, Stopped, Worker};
use super::TailOptions;
use replication_core::{PeerBackend, PeerError, RawEntry, ReadRequest, StreamInfo, StreamLane};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Why paired reads ended.
pub(super) enum PairedEnd {
    /// A reply came back full: behind again, the checked read takes over.
    Behind,
    /// A reply's facts look like a gap: the checked read from the position decides.
    Suspect,
    /// Time for the periodic check, or the options changed: the loop goes on as after any
    /// read.
    Due,
    /// A read failed (retried by the tailer as any failed read).
    Failed(PeerError),
}

/// The entries of a reply that follow `handed` (everything handed on so far), and the
/// position after them. The reply is a contiguous run of the stream after a cursor at or
/// before `handed.after`, so what it holds beyond `handed.after` directly follows it.
pub(super) fn fresh(handed: TailPosition, entries: Vec<RawEntry>) -> (Vec<RawEntry>, TailPosition) {
    let fresh: Vec<RawEntry> = entries
        .into_iter()
        .filter(|entry| entry.id > handed.after)
        .collect();
    let position = TailPosition {
        after: fresh.last().map_or(handed.after, |entry| entry.id),
        entries_added: handed.entries_added.map(|added| added + fresh.len() as u64),
    };
    (fresh, position)
}

/// What a read was sent with: the facts its reply is judged against.
#[derive(Clone, Copy, Debug)]
struct Sent {
    position: TailPosition,
    seen_added: Option<u64>,
    count: usize,
}

type Reply = Result<(Vec<RawEntry>, Option<StreamInfo>), PeerError>;

/// One lane: its read in flight, or when the next one may go.
struct Lane {
    lane: StreamLane,
    in_flight: Option<(Sent, JoinHandle<Reply>)>,
    /// When the next read goes out, while none is in flight.
    next_send: Option<Instant>,
    /// When the last read went out.
    last_sent: Option<Instant>,
}

impl Lane {
    fn new(lane: StreamLane) -> Self {
        Self {
            lane,
            in_flight: None,
            next_send: None,
            last_sent: None,
        }
    }

    fn send(&mut self, peer: &Arc<dyn PeerBackend>, sent: Sent, block: Duration) {
        let peer = Arc::clone(peer);
        let lane = self.lane;
        let request = ReadRequest {
            after: sent.position.after,
            count: sent.count,
            block: Some(block),
        };
        let read = tokio::spawn(async move { peer.read_stream_with_info_on(lane, request).await });
        self.in_flight = Some((sent, read));
        self.next_send = None;
        self.last_sent = Some(Instant::now());
    }

    /// The reply of the read in flight (never resolves without one). Cancel-safe: the
    /// read stays in flight until it is taken here.
    async fn reply(&mut self) -> (Sent, Option<Reply>) {
        let Some((sent, read)) = &mut self.in_flight else {
            return std::future::pending().await;
        };
        let joined = read.await;
        let sent = *sent;
        self.in_flight = None;
        // Only an abort (ours, on drop) or a panic ends a read task early.
        (sent, joined.ok())
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        if let Some((_, read)) = &self.in_flight {
            read.abort();
        }
    }
}

/// A tailer's two lanes, kept between pairings (see the module docs).
pub(super) struct Lanes([Lane; 2]);

impl Default for Lanes {
    fn default() -> Self {
        Self([Lane::new(StreamLane::First), Lane::new(StreamLane::Second)])
    }
}

impl Lanes {
    /// Waits until no read of paired reads is in flight on the first lane, so the
    /// tailer's own blocking read on that connection does not queue behind it. What it
    /// brings is dropped: the tailer reads again from the position handed on.
    pub(super) async fn settle_first(&mut self) {
        let lane = &mut self.0[0];
        if let Some((_, read)) = lane.in_flight.take() {
            let _ = read.await;
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Worker {
    /// Reads in pairs across a link of `round_trip` until something sends the tailer back
    /// to its loop (see the module docs). `checked_at`: the last checked read.
    pub(super) async fn paired(
        &mut self,
        stages: &mpsc::Sender<Stage>,
        options: &TailOptions,
        size: &mut BatchSize,
        seen_added: &mut Option<u64>,
        round_trip: Duration,
        checked_at: Instant,
    ) -> Result<PairedEnd, Stopped> {
        size.widen();
        tracing::debug!(
            peer = self.peer.node_id(),
            ?round_trip,
            "pairing reads across a slow link"
        );
        let stagger = round_trip / 2;
        let now = Instant::now();
        // A lane whose read is still in flight from an earlier pairing keeps it.
        for (lane, first_send) in self.lanes.0.iter_mut().zip([now, now + stagger]) {
            if lane.in_flight.is_none() {
                lane.next_send = Some(first_send);
            }
        }
        let end = self
            .pair(stages, options, size, seen_added, stagger, checked_at)
            .await;
        for lane in &mut self.lanes.0 {
            lane.next_send = None;
        }
        let end = end?;
        let why = match &end {
            PairedEnd::Behind => "behind",
            PairedEnd::Suspect => "suspicious facts",
            PairedEnd::Due => "check due",
            PairedEnd::Failed(_) => "read failed",
        };
        tracing::debug!(peer = self.peer.node_id(), why, "paired reads ended");
        Ok(end)
    }

    /// Sends the read of every lane whose time has come, from the position handed on.
    fn send_due(&mut self, seen_added: Option<u64>, count: usize, block: Duration) {
        let now = Instant::now();
        for lane in &mut self.lanes.0 {
            if lane.next_send.is_some_and(|at| at <= now) {
                let sent = Sent {
                    position: self.position,
                    seen_added,
                    count,
                };
                lane.send(&self.peer, sent, block);
            }
        }
    }

    async fn pair(
        &mut self,
        stages: &mpsc::Sender<Stage>,
        options: &TailOptions,
        size: &mut BatchSize,
        seen_added: &mut Option<u64>,
        stagger: Duration,
        checked_at: Instant,
    ) -> Result<PairedEnd, Stopped> {
        loop {
            if checked_at.elapsed() >= options.check_interval
                || self.options.has_changed().unwrap_or(true)
            {
                return Ok(PairedEnd::Due);
            }
            self.send_due(*seen_added, size.current(), options.block_timeout);
            let next_send = self.lanes.0.iter().filter_map(|lane| lane.next_send).min();
            let [first, second] = &mut self.lanes.0;
            let (index, (sent, reply)) = tokio::select! {
                reply = first.reply() => (0, reply),
                reply = second.reply() => (1, reply),
                () = sleep_until(next_send) => continue,
                // A reload ends the pairing at once, not at the next reply.
                _ = self.options.changed() => return Ok(PairedEnd::Due),
            };
            // The next read of this lane goes no sooner than half a round trip after the
            // other lane's last: that keeps the two staggered, also after both were
            // answered at once (an append after an idle spell wakes both).
            let other_sent = self.lanes.0[1 - index].last_sent;
            let now = Instant::now();
            let earliest = other_sent.map_or(now, |at| at + stagger);
            self.lanes.0[index].next_send = Some(earliest.max(now));

            let Some(reply) = reply else {
                return Ok(PairedEnd::Suspect);
            };
            let (entries, info) = match reply {
                Ok(read) => read,
                Err(error) => return Ok(PairedEnd::Failed(error)),
            };
            if entries.is_empty() {
                continue; // Blocked for the whole timeout: nothing new.
            }
            let verdict = detect_gap(
                sent.position.after,
                sent.position.entries_added,
                sent.seen_added,
                info.as_ref(),
            );
            if verdict != GapCheck::None {
                return Ok(PairedEnd::Suspect);
            }
            note_entries_added(seen_added, info.as_ref());
            let as_many_as_asked = entries.len() >= sent.count;
            let (entries, position) = fresh(self.position, entries);
            // Full: more may wait after it, unless it brought nothing new (a read sent
            // long before, say while its connection came up, returns what the other lane
            // had brought meanwhile).
            let full = as_many_as_asked && !entries.is_empty();
            if !entries.is_empty() {
                let lag = lag(position, info.as_ref());
                self.position = position;
                self.unseen.moved(position);
                let batch = RawBatch::screened(entries, position, lag, options, size);
                // The next read goes out before the hand-on, which waits while the engine
                // is busy: a read delayed here would reach the peer late.
                self.send_due(*seen_added, size.current(), options.block_timeout);
                send(stages, Stage::Batch(batch)).await?;
            }
            if full {
                size.observe(sent.count, sent.count);
                return Ok(PairedEnd::Behind);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;
    use proptest::prelude::*;
    use replication_core::StreamId;

    fn entry(ms: u64) -> RawEntry {
        RawEntry {
            id: StreamId::new(ms, 0),
            fields: Vec::new(),
        }
    }

    fn at(ms: u64, added: u64) -> TailPosition {
        TailPosition {
            after: StreamId::new(ms, 0),
            entries_added: Some(added),
        }
    }

    #[test]
    fn a_reply_overlapping_what_was_handed_on_keeps_only_what_follows() {
        let (kept, position) = fresh(at(5, 5), (3..=8).map(entry).collect());
        assert_eq!(
            kept.iter().map(|e| e.id.ms).collect::<Vec<_>>(),
            vec![6, 7, 8]
        );
        assert_eq!(position, at(8, 8));
    }

    #[test]
    fn a_reply_older_than_what_was_handed_on_keeps_nothing() {
        let (kept, position) = fresh(at(9, 9), (3..=8).map(entry).collect());
        assert!(kept.is_empty());
        assert_eq!(position, at(9, 9));
    }

    proptest! {
        /// Two lanes' replies, each a contiguous run of the stream after the cursor it was
        /// sent with, arriving in any order: everything is handed on once, in stream order,
        /// and the position counts exactly what was handed on.
        #[test]
        fn replies_in_any_order_hand_on_each_entry_once_in_order(
            // Each reply: (send cursor index, how many entries it brings).
            replies in proptest::collection::vec((0usize..40, 0usize..20), 1..12),
        ) {
            let stream: Vec<u64> = (1..=60).map(|i| i * 3).collect();
            let mut handed = TailPosition { after: StreamId::ZERO, entries_added: Some(0) };
            let mut seen: Vec<u64> = Vec::new();
            for (cursor, len) in replies {
                // A read is sent with a cursor at or before what is handed on, so the
                // cursor is an index into what was handed on by some earlier time.
                let cursor = cursor.min(seen.len());
                let reply: Vec<RawEntry> = stream
                    .iter()
                    .skip(cursor)
                    .take(len)
                    .map(|ms| entry(*ms))
                    .collect();
                let (kept, position) = fresh(handed, reply);
                seen.extend(kept.iter().map(|e| e.id.ms));
                handed = position;
            }
            prop_assert_eq!(&seen[..], &stream[..seen.len()]);
            prop_assert_eq!(handed.entries_added, Some(seen.len() as u64));
            let last = seen.last().map_or(StreamId::ZERO, |ms| StreamId::new(*ms, 0));
            prop_assert_eq!(handed.after, last);
        }
    }
}
