//! What a tailer hands to the engine.

use super::gap::GapKind;
use replication_core::{CdcDecodeError, CdcEvent, PeerError, StreamId};

/// How far behind the peer's newest entry the tailer is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lag {
    /// Entries added to the peer's stream after the delivered cursor, when known.
    pub entries: Option<u64>,
    /// Milliseconds between the delivered cursor and the peer's last generated id.
    pub ms: u64,
}

/// A cursor position: an entry id and, when known, how many entries the stream had ever
/// received up to and including it (used to count trimmed entries exactly).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TailPosition {
    /// Entries up to and including this id are delivered.
    pub after: StreamId,
    /// The stream's `entries-added` count at this id, when known.
    pub entries_added: Option<u64>,
}

/// Consecutive entries read from the peer, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailBatch {
    /// Every entry read, in stream order: decoded, or the reason it was rejected
    /// (rejected entries are skipped by the cursor like any other).
    pub records: Vec<(StreamId, Result<CdcEvent, CdcDecodeError>)>,
    /// Id of the last entry; the cursor to checkpoint once the batch is applied.
    pub last_id: StreamId,
    /// The position after this batch.
    pub position: TailPosition,
    /// Lag behind the peer after this batch.
    pub lag: Lag,
    /// Bytes of the entries as read: every field name and value, content still
    /// compressed where the writer compressed it.
    pub wire_bytes: u64,
    /// Content bytes of the decoded puts, after decompression.
    pub content_bytes: u64,
}

impl TailBatch {
    /// How many records were rejected by the decoder.
    pub fn rejected(&self) -> usize {
        self.records.iter().filter(|(_, r)| r.is_err()).count()
    }
}

/// Entries that can no longer be read: the engine should run a repair (cold path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GapReport {
    /// The cursor the gap was found after.
    pub after: StreamId,
    /// Trimmed (with how many, if known) or recreated.
    pub kind: GapKind,
    /// Where tailing continues (exclusive): the oldest surviving entry comes next.
    pub resume_from: TailPosition,
}

/// One thing the tailer reports.
#[derive(Clone, Debug, PartialEq)]
pub enum TailEvent {
    /// Entries to apply.
    Batch(TailBatch),
    /// Entries were lost; tailing goes on from `resume_from`.
    Gap(GapReport),
    /// A read failed; the tailer retries with backoff by itself (for health display).
    Error(PeerError),
}
