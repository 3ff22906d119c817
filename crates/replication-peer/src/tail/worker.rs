//! The tailing loop of one peer (runs in its own task, see `StreamTailer::spawn`).
//!
//! Soundness of gap detection: a blocking `XREAD` is followed by `XINFO`
//! (`read_stream_with_info`: on Redis both are sent at once, so the facts cost no round trip);
//! since `max-deleted-entry-id` only grows, `max-deleted <= cursor` *after* the read proves
//! nothing after the cursor had been deleted *before* it, so the batch is contiguous. When
//! the facts look suspicious the batch is dropped and re-read with `read_stream_checked`
//! (Redis: `MULTI; XINFO; XREAD; EXEC`), which sees the facts and the entries in one state,
//! so no trim can fall between check and read. The checked form is also used at start,
//! after errors, while behind (last read full: trimming bites there), and every
//! `check_interval` (catches a stream deleted while we idle).
//!
//! An entry over the entry cap is rejected as soon as it is read (`screen`), and the read
//! size shrinks to a byte budget when entries are large, so what a read holds is bounded.
//!
//! Far behind (a full checked read with a long backlog after it) across a slow link (that
//! read took at least `RANGES_FROM_ROUND_TRIP`, and so does a `PING`: `LinkProbe`), the
//! tailer catches up by reading disjoint
//! id ranges concurrently (`ranges`), with the same order, cursor and gap rules, then
//! comes back to this loop.
//!
//! Caught up across a slow link, the tailer pairs its blocking reads on two connections,
//! half a round trip apart (`paired`), so an entry waits at most about one round trip.
//!
//! Decoding (zstd, SHA-256, meta JSON) runs in a second task fed through a channel of
//! capacity 1, so the next read is on the wire while the previous batch is decoded: on a
//! backlog the tailer is then bounded by the slower of the two stages instead of their sum
//! (measured by `replication-bench`: about 1.4x the entries/s of reading and decoding in
//! one task). Batches and gaps travel the same channel, so their order is kept.

use super::batch_size::BatchSize;
use super::events::{GapReport, Lag, TailBatch, TailEvent, TailPosition};
use super::gap::{detect_gap, note_entries_added, GapCheck, UnseenRecreation};
use super::paired::{Lanes, PairedEnd};
use super::ranges::{far_behind, CatchUp, Found};
use super::screen::{screen, Screened};
use super::{Shared, TailOptions};
use replication_core::{
    Backoff, CdcDecoder, CdcEvent, DecodeLimits, PeerBackend, PeerError, RawEntry, ReadRequest,
    RetryPolicy, StreamInfo,
};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Concurrent ranges (and paired reads) pay only across a round trip of at least this: about twice what the
/// decoding stage spends on one read of 1 000 entries, so below it one read at a time
/// (decoded while the next is on the wire) already keeps the consumer busy, and concurrent
/// ranges on loopback measured about a quarter slower (more CPU per entry) and held twice
/// the memory. A checked read taking this long is only the hint (a read of 1 000 entries
/// on a loaded machine takes as long on loopback); a `PING` decides (`LinkProbe`).
const RANGES_FROM_ROUND_TRIP: std::time::Duration = std::time::Duration::from_millis(8);

/// How long a measured round trip stands before the link is pinged again.
const ROUND_TRIP_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) struct Worker {
    pub(super) peer: Arc<dyn PeerBackend>,
    pub(super) events: mpsc::Sender<TailEvent>,
    pub(super) options: watch::Receiver<TailOptions>,
    pub(super) shared: Arc<Shared>,
    pub(super) position: TailPosition,
    pub(super) link: LinkProbe,
    /// The lanes of paired reads, kept between pairings (a read may still be in flight).
    pub(super) lanes: Lanes,
    /// Whether a failed read may have hidden a recreation (see `UnseenRecreation`).
    pub(super) unseen: UnseenRecreation,
}

/// The peer's round trip as a `PING` measured it, and when: whether the link is slow
/// enough for concurrent ranges (asked once a full read was slow) or for paired reads
/// (asked once caught up), pinged at most once per `ROUND_TRIP_FRESH_FOR`.
#[derive(Debug, Default)]
pub(super) struct LinkProbe {
    measured: Option<(Instant, std::time::Duration)>,
}

impl LinkProbe {
    /// The link's round trip when it is at least `RANGES_FROM_ROUND_TRIP`; a failed ping
    /// says it is not slow (the single reads go on, and their own errors are handled
    /// there).
    async fn slow_round_trip(&mut self, peer: &dyn PeerBackend) -> Option<std::time::Duration> {
        let rtt = match self.measured {
            Some((at, rtt)) if at.elapsed() < ROUND_TRIP_FRESH_FOR => rtt,
            _ => match peer.ping().await {
                Ok(rtt) => {
                    self.measured = Some((Instant::now(), rtt));
                    rtt
                }
                Err(_) => return None,
            },
        };
        (rtt >= RANGES_FROM_ROUND_TRIP).then_some(rtt)
    }

    async fn is_slow(&mut self, peer: &dyn PeerBackend) -> bool {
        self.slow_round_trip(peer).await.is_some()
    }
}

/// The tailer stops when the handle is gone.
pub(super) struct Stopped;

/// What the reading task hands to the decoding task, in stream order.
pub(super) enum Stage {
    /// Entries read, still encoded.
    Batch(RawBatch),
    /// Anything else for the engine (gaps), passed on as is.
    Event(TailEvent),
}

pub(super) struct RawBatch {
    pub(super) entries: Vec<Screened>,
    pub(super) position: TailPosition,
    pub(super) lag: Lag,
    pub(super) limits: DecodeLimits,
    /// The adaptive read size after this read, for the status.
    pub(super) batch_size: usize,
    /// Bytes of the entries as read (every field name and value).
    pub(super) wire_bytes: u64,
}

/// Aborts the decoding task when the reading task ends or is aborted.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Worker {
    pub(super) async fn run(mut self) {
        let (stages, stages_rx) = mpsc::channel(1);
        let decoding = Decoding {
            peer: Arc::clone(&self.peer),
            events: self.events.clone(),
            shared: Arc::clone(&self.shared),
        };
        let _decoding = AbortOnDrop(tokio::spawn(decoding.run(stages_rx)));
        let _ = self.tail(&stages).await;
    }

    async fn tail(&mut self, stages: &mpsc::Sender<Stage>) -> Result<(), Stopped> {
        let options = self.options.borrow_and_update().clone();
        let mut size = BatchSize::new(options.batch_size, options.max_batch_size);
        let mut backoff = RetryPolicy::new(options.retry_initial, options.retry_max).backoff();
        let mut seen_added: Option<u64> = None;
        let mut checked = true;
        let mut last_check = Instant::now();
        loop {
            let options = self.options.borrow_and_update().clone();
            size.set_bounds(options.batch_size, options.max_batch_size);
            let count = size.current();
            let cursor = self.position.after;
            let due = last_check.elapsed() >= options.check_interval;

            let started = Instant::now();
            let outcome = if checked || due {
                self.peer
                    .read_stream_checked(cursor, count)
                    .await
                    .map(|read| (read.entries, read.info, true))
            } else {
                self.lanes.settle_first().await;
                self.peer
                    .read_stream_with_info(ReadRequest {
                        after: cursor,
                        count,
                        block: Some(options.block_timeout),
                    })
                    .await
                    .map(|(entries, info)| match entries.is_empty() {
                        true => (entries, None, false),
                        false => (entries, info, false),
                    })
            };
            let (entries, info, was_checked) = match outcome {
                Ok(outcome) => outcome,
                Err(error) => {
                    self.retry_after(error, &mut backoff, &options).await?;
                    checked = true;
                    continue;
                }
            };
            backoff.reset();
            self.shared.clear_error();
            if self.unseen.take_unsure() {
                tracing::warn!(peer = self.peer.node_id(),
                    "cannot tell whether the stream was recreated again while unreadable; repairing");
                self.report_gap(stages, cursor, super::GapKind::Recreated, self.position)
                    .await?;
            }
            if was_checked {
                last_check = Instant::now();
            } else if entries.is_empty() {
                // Blocked for the whole timeout: nothing new, so caught up (pairing now,
                // while idle, has the second connection up before writes come).
                checked = self
                    .pair_when_slow(
                        stages,
                        &options,
                        &mut size,
                        &mut seen_added,
                        last_check,
                        &mut backoff,
                    )
                    .await?;
                continue;
            }

            let verdict = detect_gap(
                cursor,
                self.position.entries_added,
                seen_added,
                info.as_ref(),
            );
            if let GapCheck::Gap {
                kind,
                resume_from,
                resume_position,
            } = verdict
            {
                if !was_checked {
                    // Facts read after the batch: confirm on one atomic observation.
                    checked = true;
                    continue;
                }
                let resume = TailPosition {
                    after: resume_from,
                    entries_added: resume_position,
                };
                tracing::warn!(peer = self.peer.node_id(), after = %cursor, ?kind, resume_from = %resume_from, "gap in peer stream");
                if matches!(kind, super::GapKind::Recreated) {
                    seen_added = None;
                    self.unseen.recreated();
                }
                self.position = resume;
                self.report_gap(stages, cursor, kind, resume).await?;
                checked = true;
                continue;
            }
            note_entries_added(&mut seen_added, info.as_ref());

            let full = entries.len() >= count;
            size.observe(count, entries.len());
            checked = full;
            let position = self.advance(&entries, info.as_ref(), was_checked && !full);
            if entries.is_empty() {
                self.position = position;
                continue;
            }
            let lag = lag(position, info.as_ref());
            self.position = position;
            self.unseen.moved(position);
            let read_took = started.elapsed();
            let behind = match (&info, full && was_checked) {
                (Some(info), true)
                    if far_behind(position, info, count)
                        && read_took >= RANGES_FROM_ROUND_TRIP
                        && self.link.is_slow(&*self.peer).await =>
                {
                    Some(Found {
                        info: *info,
                        ids: entries.iter().map(|e| e.id).collect(),
                        round_trip: read_took,
                    })
                }
                _ => None,
            };
            let batch = RawBatch::screened(entries, position, lag, &options, &mut size);
            send(stages, Stage::Batch(batch)).await?;
            if !full {
                checked = self
                    .pair_when_slow(
                        stages,
                        &options,
                        &mut size,
                        &mut seen_added,
                        last_check,
                        &mut backoff,
                    )
                    .await?;
            }
            if let Some(found) = behind {
                let outcome = self
                    .catch_up(stages, &options, &mut size, &mut seen_added, &found)
                    .await?;
                // Back to one read at a time, checked: it finds what is left (or the gap
                // a suspicious range hinted at) from the cursor, exactly as before.
                checked = true;
                if let CatchUp::Failed(error) = outcome {
                    self.retry_after(error, &mut backoff, &options).await?;
                }
            }
        }
    }

    /// Reports a failed read and waits before the next. Tailing never ends on an error,
    /// even a permanent one (the peer may be repaired): the policy only spaces the reads
    /// out, and is unbounded.
    async fn retry_after(
        &mut self,
        error: PeerError,
        backoff: &mut Backoff,
        options: &TailOptions,
    ) -> Result<(), Stopped> {
        self.failed(error)?;
        self.unseen.read_failed(self.position);
        let delay = backoff.next_delay().unwrap_or(options.retry_max);
        self.wait_to_retry(delay).await;
        Ok(())
    }

    /// Caught up (the caller saw a short read): pairs the reads when allowed, the backend
    /// has a second lane and the link is slow. Returns whether the next read must be
    /// checked.
    async fn pair_when_slow(
        &mut self,
        stages: &mpsc::Sender<Stage>,
        options: &TailOptions,
        size: &mut BatchSize,
        seen_added: &mut Option<u64>,
        last_check: Instant,
        backoff: &mut Backoff,
    ) -> Result<bool, Stopped> {
        if !options.paired_reads || self.peer.stream_lanes() < 2 {
            return Ok(false);
        }
        let Some(round_trip) = self.link.slow_round_trip(&*self.peer).await else {
            return Ok(false);
        };
        let end = self
            .paired(stages, options, size, seen_added, round_trip, last_check)
            .await?;
        Ok(match end {
            PairedEnd::Behind | PairedEnd::Suspect => true,
            PairedEnd::Due => false,
            PairedEnd::Failed(error) => {
                self.retry_after(error, backoff, options).await?;
                true
            }
        })
    }

    /// Waits `delay` before a failed read is retried; a read refused while the connection
    /// was not up never reached the peer, so it is retried as soon as the connection is.
    async fn wait_to_retry(&self, delay: std::time::Duration) {
        let up = |peer: &dyn PeerBackend| {
            peer.connection().state == replication_core::ConnectionState::Connected
        };
        let until = Instant::now() + delay;
        if up(&*self.peer) {
            return tokio::time::sleep_until(until).await;
        }
        // Looked at often at first (a connect takes a few round trips), then less, so a
        // peer down for long costs a few looks a second.
        let mut step = std::time::Duration::from_millis(5);
        while Instant::now() < until && !up(&*self.peer) {
            tokio::time::sleep_until(until.min(Instant::now() + step)).await;
            step = (step * 2).min(std::time::Duration::from_millis(50));
        }
    }

    /// Counts a gap after `cursor` and hands it on, in stream order.
    async fn report_gap(
        &self,
        stages: &mpsc::Sender<Stage>,
        cursor: replication_core::StreamId,
        kind: super::GapKind,
        resume_from: TailPosition,
    ) -> Result<(), Stopped> {
        self.shared.count_gap();
        let gap = GapReport {
            after: cursor,
            kind,
            resume_from,
        };
        send(stages, Stage::Event(TailEvent::Gap(gap))).await
    }

    /// The position after `entries`. A checked read that came back short read everything
    /// after the cursor, so its last entry is the stream's last: position = entries-added.
    fn advance(
        &self,
        entries: &[RawEntry],
        info: Option<&StreamInfo>,
        caught_up: bool,
    ) -> TailPosition {
        let after = entries.last().map_or(self.position.after, |e| e.id);
        let entries_added = match info.and_then(|i| i.entries_added) {
            Some(added) if caught_up => Some(added),
            _ => self
                .position
                .entries_added
                .map(|pos| pos + entries.len() as u64),
        };
        TailPosition {
            after,
            entries_added,
        }
    }

    fn failed(&self, error: PeerError) -> Result<(), Stopped> {
        tracing::debug!(peer = self.peer.node_id(), %error, "stream read failed; retrying");
        self.shared.set_error(error.clone());
        // Never wait on the engine for an error report: the status holds it anyway.
        match self.events.try_send(TailEvent::Error(error)) {
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Stopped),
            _ => Ok(()),
        }
    }
}

pub(super) async fn send(stages: &mpsc::Sender<Stage>, stage: Stage) -> Result<(), Stopped> {
    stages.send(stage).await.map_err(|_| Stopped)
}

/// The decoding task: turns raw batches into decoded ones, in order, and hands every
/// event to the engine. Ends when either side is gone.
struct Decoding {
    peer: Arc<dyn PeerBackend>,
    events: mpsc::Sender<TailEvent>,
    shared: Arc<Shared>,
}

impl Decoding {
    async fn run(self, mut stages: mpsc::Receiver<Stage>) {
        let mut decoder: Option<CdcDecoder> = None;
        while let Some(stage) = stages.recv().await {
            let event = match stage {
                Stage::Event(event) => event,
                Stage::Batch(raw) => {
                    let decoder = match &mut decoder {
                        Some(decoder) if decoder.limits() == raw.limits => decoder,
                        _ => decoder.insert(CdcDecoder::new(raw.limits)),
                    };
                    let (batch_size, lag) = (raw.batch_size, raw.lag);
                    let batch = self.decode(decoder, raw);
                    self.shared.record_batch(batch_size, lag, batch.rejected());
                    TailEvent::Batch(batch)
                }
            };
            if self.events.send(event).await.is_err() {
                return;
            }
        }
    }

    fn decode(&self, decoder: &mut CdcDecoder, raw: RawBatch) -> TailBatch {
        let RawBatch {
            entries,
            position,
            lag,
            wire_bytes,
            ..
        } = raw;
        let mut content_bytes = 0u64;
        let records = entries
            .into_iter()
            .map(|entry| {
                let (id, decoded) = match entry {
                    Screened::Raw(entry) => (entry.id, decoder.decode(entry.id, entry.fields)),
                    Screened::Rejected(rejected) => (rejected.entry_id, Err(rejected)),
                };
                match &decoded {
                    Ok(CdcEvent::Put(put)) => content_bytes += put.content.len() as u64,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(peer = self.peer.node_id(), entry = %id, reason = %e.reason, "skipping bad CDC entry");
                    }
                }
                (id, decoded)
            })
            .collect();
        TailBatch {
            records,
            last_id: position.after,
            position,
            lag,
            wire_bytes,
            content_bytes,
        }
    }
}

/// Bytes one read should stay within: room for a few entries at the entry cap, so the
/// read size shrinks when a peer writes large entries (see `BatchSize::fit_bytes`).
impl RawBatch {
    /// The batch of `entries` read up to `position`: screened against the entry cap, and
    /// the read size fitted to the bytes they came to (the one home of that step, for
    /// single reads and catch-up ranges alike).
    pub(super) fn screened(
        entries: Vec<replication_core::RawEntry>,
        position: TailPosition,
        lag: Lag,
        options: &TailOptions,
        size: &mut BatchSize,
    ) -> Self {
        let returned = entries.len();
        let (entries, read_bytes) = screen(entries, &options.limits);
        size.fit_bytes(returned, read_bytes, read_budget(&options.limits));
        RawBatch {
            entries,
            position,
            lag,
            limits: options.limits,
            batch_size: size.current(),
            wire_bytes: read_bytes as u64,
        }
    }
}

pub(super) fn read_budget(limits: &DecodeLimits) -> usize {
    limits.max_entry_bytes().saturating_mul(4)
}

pub(super) fn lag(position: TailPosition, info: Option<&StreamInfo>) -> Lag {
    let Some(info) = info else {
        return Lag::default();
    };
    Lag {
        entries: match (info.entries_added, position.entries_added) {
            (Some(added), Some(pos)) => Some(added.saturating_sub(pos)),
            _ => None,
        },
        ms: position.after.lag_ms(info.last_generated),
    }
}
