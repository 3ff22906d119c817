//! Tailing a peer's CDC stream over any [`PeerBackend`]: [`StreamTailer::spawn`] starts a
//! task that reads, decodes and checks for gaps, and hands [`TailEvent`]s to the engine
//! through a channel of capacity 1. That gives prefetch (the next read is in flight while
//! the engine applies a batch) and backpressure (a busy engine stops the reads).

mod batch_size;
mod events;
mod gap;
mod paired;
mod ranges;
mod screen;
mod worker;

pub use events::{GapReport, Lag, TailBatch, TailEvent, TailPosition};
pub use gap::GapKind;

use replication_core::{DecodeLimits, PeerBackend, PeerError, Settings, StreamId};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Where a tailer starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TailStart {
    /// Read entries after this id (the checkpointed cursor; `0-0` from the beginning).
    pub after: StreamId,
    /// The stream's `entries-added` at `after`, when known (from a previous
    /// [`TailerHandle::position`]); lets a trim be counted exactly.
    pub entries_added: Option<u64>,
}

/// Tuning of a tailer; can change while it runs ([`TailerHandle::set_options`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailOptions {
    /// Entries per read to start with, and the additive growth step.
    pub batch_size: usize,
    /// Upper bound of the adaptive read size.
    pub max_batch_size: usize,
    /// How long one read waits for new entries.
    pub block_timeout: Duration,
    /// Bounds on decoded content.
    pub limits: DecodeLimits,
    /// Longest time between two atomic gap checks while idle or caught up.
    pub check_interval: Duration,
    /// First delay after a failed read; doubles (with jitter) up to `retry_max`.
    pub retry_initial: Duration,
    /// Cap of the retry delay.
    pub retry_max: Duration,
    /// Most id ranges read at once while catching up a long backlog (each aiming at two
    /// read sizes, at most four); 1 reads one range at a time.
    pub catch_up_ranges: usize,
    /// Across a slow link, while caught up, keep a second blocking read waiting at the
    /// peer (on a second connection, where the backend has one) half a round trip after
    /// the first, so lag stays within about one round trip (see `paired`).
    pub paired_reads: bool,
}

/// Default of [`TailOptions::catch_up_ranges`]: with reads of 1 000, enough ranges (each
/// aiming at two reads) to keep a 150 ms round trip busy at over 300 000 entries/s; only a
/// peer far behind across a slow link holds that many (see `ranges`).
const DEFAULT_CATCH_UP_RANGES: usize = 24;

impl TailOptions {
    /// Options from the engine settings.
    pub fn from_settings(settings: &Settings) -> Self {
        let (hot, peer) = (&settings.hot_path, &settings.peer);
        Self {
            batch_size: hot.batch_size,
            max_batch_size: hot.max_batch_size,
            block_timeout: hot.block_timeout,
            limits: DecodeLimits {
                max_decompressed_bytes: hot.max_content_bytes,
                object_ids: settings.limits.object_ids(),
            },
            check_interval: Duration::from_secs(30),
            retry_initial: peer.reconnect_initial_delay,
            retry_max: peer.reconnect_max_delay,
            catch_up_ranges: DEFAULT_CATCH_UP_RANGES,
            paired_reads: true,
        }
    }
}

impl Default for TailOptions {
    fn default() -> Self {
        Self::from_settings(&Settings::default())
    }
}

/// What a tailer has been doing (cached, for health and metrics).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TailStatus {
    /// The last read error, until a read succeeds again.
    pub last_error: Option<PeerError>,
    /// Entries rejected by the decoder so far.
    pub rejected: u64,
    /// Gaps reported so far.
    pub gaps: u64,
    /// Batches read so far.
    pub batches: u64,
    /// The current adaptive read size.
    pub batch_size: usize,
    /// Lag after the last batch read.
    pub lag: Option<Lag>,
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    status: Mutex<TailStatus>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, TailStatus> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn set_error(&self, error: PeerError) {
        self.lock().last_error = Some(error);
    }
    fn clear_error(&self) {
        self.lock().last_error = None;
    }
    fn count_gap(&self) {
        self.lock().gaps += 1;
    }
    fn record_batch(&self, batch_size: usize, lag: Lag, rejected: usize) {
        let mut status = self.lock();
        status.batches += 1;
        status.batch_size = batch_size;
        status.lag = Some(lag);
        status.rejected += rejected as u64;
    }
}

/// Starts tailers.
#[derive(Debug)]
pub struct StreamTailer;

impl StreamTailer {
    /// Spawns a tailer of `peer`'s stream from `start`. It runs until the handle is
    /// dropped or stopped; read errors are retried with capped backoff, never fatal.
    pub fn spawn(
        peer: Arc<dyn PeerBackend>,
        start: TailStart,
        options: TailOptions,
    ) -> TailerHandle {
        let (events_tx, events) = mpsc::channel(1);
        let (options_tx, options_rx) = watch::channel(options);
        let shared = Arc::new(Shared::default());
        // The beginning of a stream is position 0 by definition.
        let entries_added = start
            .entries_added
            .or((start.after == StreamId::ZERO).then_some(0));
        let position = TailPosition {
            after: start.after,
            entries_added,
        };
        let worker = worker::Worker {
            peer,
            events: events_tx,
            options: options_rx,
            shared: Arc::clone(&shared),
            position,
            link: worker::LinkProbe::default(),
            lanes: paired::Lanes::default(),
            unseen: gap::UnseenRecreation::default(),
        };
        let task = tokio::spawn(worker.run());
        TailerHandle {
            events,
            options: options_tx,
            shared,
            delivered: position,
            task: Some(task),
        }
    }
}

/// The engine's end of a tailer. Dropping it stops the tailer.
#[derive(Debug)]
pub struct TailerHandle {
    events: mpsc::Receiver<TailEvent>,
    options: watch::Sender<TailOptions>,
    shared: Arc<Shared>,
    delivered: TailPosition,
    task: Option<JoinHandle<()>>,
}

impl TailerHandle {
    /// The next event; `None` once the tailer has stopped. Cancel-safe.
    pub async fn recv(&mut self) -> Option<TailEvent> {
        let event = self.events.recv().await?;
        match &event {
            TailEvent::Batch(batch) => self.delivered = batch.position,
            TailEvent::Gap(gap) => self.delivered = gap.resume_from,
            TailEvent::Error(_) => {}
        }
        Some(event)
    }

    /// The position of everything handed out by [`Self::recv`] so far (the engine
    /// checkpoints it once applied).
    pub fn position(&self) -> TailPosition {
        self.delivered
    }

    /// Replaces the options (config reload); takes effect at the next read.
    pub fn set_options(&self, options: TailOptions) {
        self.options.send_replace(options);
    }

    /// The options in force.
    pub fn options(&self) -> TailOptions {
        self.options.borrow().clone()
    }

    /// Cached facts about the tailer.
    pub fn status(&self) -> TailStatus {
        self.shared.lock().clone()
    }

    /// Stops the tailer and waits for its task to end. Events not yet received are dropped.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for TailerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
