//! The tailing loop of one peer (runs in its own task, see `StreamTailer::spawn`).
//!
//! Soundness of gap detection: a blocking `XREAD` is followed by `XINFO` (`stream_info`);
//! since `max-deleted-entry-id` only grows, `max-deleted <= cursor` *after* the read proves
//! nothing after the cursor had been deleted *before* it, so the batch is contiguous. When
//! the facts look suspicious the batch is dropped and re-read with `read_stream_checked`
//! (Redis: `MULTI; XINFO; XREAD; EXEC`), which sees the facts and the entries in one state,
//! so no trim can fall between check and read. The checked form is also used at start,
//! after errors, while behind (last read full: trimming bites there), and every
//! `check_interval` (catches a stream deleted while we idle).

use super::batch_size::BatchSize;
use super::events::{GapReport, Lag, TailBatch, TailEvent, TailPosition};
use super::gap::{detect_gap, GapCheck};
use super::{Shared, TailOptions};
use replication_core::{
    Backoff, CdcDecoder, PeerBackend, PeerError, RawEntry, ReadRequest, StreamInfo,
};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub(super) struct Worker {
    pub(super) peer: Arc<dyn PeerBackend>,
    pub(super) events: mpsc::Sender<TailEvent>,
    pub(super) options: watch::Receiver<TailOptions>,
    pub(super) shared: Arc<Shared>,
    pub(super) position: TailPosition,
}

/// The tailer stops when the handle is gone.
struct Stopped;

impl Worker {
    pub(super) async fn run(mut self) {
        let _ = self.tail().await;
    }

    async fn tail(&mut self) -> Result<(), Stopped> {
        let options = self.options.borrow_and_update().clone();
        let mut size = BatchSize::new(options.batch_size, options.max_batch_size);
        let mut decoder = CdcDecoder::new(options.limits);
        let mut backoff = Backoff::new(options.retry_initial, options.retry_max);
        let mut seen_added: Option<u64> = None;
        let mut checked = true;
        let mut last_check = Instant::now();
        loop {
            let options = self.options.borrow_and_update().clone();
            size.set_bounds(options.batch_size, options.max_batch_size);
            if decoder.limits() != options.limits {
                decoder = CdcDecoder::new(options.limits);
            }
            let count = size.current();
            let cursor = self.position.after;
            let due = last_check.elapsed() >= options.check_interval;

            let outcome = if checked || due {
                self.peer
                    .read_stream_checked(cursor, count)
                    .await
                    .map(|read| (read.entries, read.info, true))
            } else {
                match self
                    .peer
                    .read_stream(ReadRequest {
                        after: cursor,
                        count,
                        block: Some(options.block_timeout),
                    })
                    .await
                {
                    Ok(entries) if entries.is_empty() => Ok((entries, None, false)),
                    Ok(entries) => self
                        .peer
                        .stream_info()
                        .await
                        .map(|info| (entries, info, false)),
                    Err(e) => Err(e),
                }
            };
            let (entries, info, was_checked) = match outcome {
                Ok(outcome) => outcome,
                Err(error) => {
                    self.failed(error)?;
                    checked = true;
                    let delay = backoff.next_delay(rand::random::<f64>());
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            backoff.reset();
            self.shared.clear_error();
            if was_checked {
                last_check = Instant::now();
            } else if entries.is_empty() {
                continue; // Blocked for the whole timeout: nothing new.
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
                }
                self.position = resume;
                self.shared.count_gap();
                self.send(TailEvent::Gap(GapReport {
                    after: cursor,
                    kind,
                    resume_from: resume,
                }))
                .await?;
                checked = true;
                continue;
            }
            if let Some(added) = info.as_ref().and_then(|i| i.entries_added) {
                seen_added = Some(seen_added.map_or(added, |seen| seen.max(added)));
            }

            let full = entries.len() >= count;
            size.observe(count, entries.len());
            checked = full;
            let position = self.advance(&entries, info.as_ref(), was_checked && !full);
            if entries.is_empty() {
                self.position = position;
                continue;
            }
            let lag = lag(position, info.as_ref());
            let batch = self.decode(&mut decoder, entries, position, lag);
            self.position = position;
            self.shared
                .record_batch(size.current(), lag, batch.rejected());
            self.send(TailEvent::Batch(batch)).await?;
        }
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

    fn decode(
        &self,
        decoder: &mut CdcDecoder,
        entries: Vec<RawEntry>,
        position: TailPosition,
        lag: Lag,
    ) -> TailBatch {
        let records = entries
            .into_iter()
            .map(|entry| {
                let decoded = decoder.decode(entry.id, entry.fields);
                if let Err(e) = &decoded {
                    tracing::warn!(peer = self.peer.node_id(), entry = %entry.id, reason = %e.reason, "skipping bad CDC entry");
                }
                (entry.id, decoded)
            })
            .collect();
        TailBatch {
            records,
            last_id: position.after,
            position,
            lag,
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

    async fn send(&self, event: TailEvent) -> Result<(), Stopped> {
        self.events.send(event).await.map_err(|_| Stopped)
    }
}

fn lag(position: TailPosition, info: Option<&StreamInfo>) -> Lag {
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
