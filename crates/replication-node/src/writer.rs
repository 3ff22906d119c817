//! The write path: every batch is read ([`snapshot`]), planned ([`planning`], around the
//! pure planner `plan`), committed through the apply script ([`commit`]) and, when another
//! writer committed in between, planned again from fresh reads with capped, jittered
//! backoff, up to [`MAX_ATTEMPTS`] times. Tombstone collection ([`tombstone_collection`])
//! writes through the same connection.
//!
//! One batch costs two round trips when nothing else wrote meanwhile: one pipeline reading
//! the write token, the batch's items and tombstones and the (uncached) children sets, and
//! one `MULTI`/`EXEC` block (a staging `MSET` and an `EVAL` of the apply script) applying
//! everything. A conflict makes the script write nothing.
//!
//! Writes of this process are serialised by a mutex (they would only conflict with each
//! other otherwise), and the mutex also guards the CDC encoder and the tree cache.

mod commit;
mod planning;
mod snapshot;
mod tombstone_collection;

use crate::keys::KeySpace;
use crate::plan::{Outcome, WriteOp};
use crate::read_ahead::ReadAhead;
use crate::tree_cache::TreeCache;
use crate::NodeError;
use bytes::Bytes;
use fred::prelude::Client;
use replication_core::cdc::CdcEncoder;
use replication_core::{RetryPolicy, SyncItem};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::Mutex;

/// Attempts per batch before giving up with [`NodeError::Contended`].
pub(crate) const MAX_ATTEMPTS: u32 = 20;

/// The write side of the store.
pub(crate) struct Writer {
    client: Client,
    keys: KeySpace,
    cdc_maxlen: u64,
    purge_sha: String,
    /// States `local_states` read, for the next batch to use instead of reading again.
    read_ahead: Arc<ReadAhead>,
    state: Mutex<WriterState>,
}

struct WriterState {
    encoder: CdcEncoder,
    cache: TreeCache,
}

impl Writer {
    /// Loads the scripts on `client`, which the writer then uses for everything it sends.
    pub(crate) async fn new(
        client: Client,
        keys: KeySpace,
        cdc_maxlen: u64,
        read_ahead: Arc<ReadAhead>,
    ) -> Result<Self, NodeError> {
        let purge_sha = commit::load_script(&client, &keys, tombstone_collection::SOURCE).await?;
        Ok(Self {
            client,
            keys,
            cdc_maxlen,
            purge_sha,
            read_ahead,
            state: Mutex::new(WriterState {
                encoder: CdcEncoder::new(),
                cache: TreeCache::default(),
            }),
        })
    }

    /// The client the writer uses (also for write probes).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The key a write probe writes to (see `health`).
    pub(crate) fn probe_key(&self) -> String {
        self.keys.probe()
    }

    /// Applies `ops` as one atomic batch. Returns one outcome per op, in order.
    pub(crate) async fn execute(&self, ops: &mut [WriteOp]) -> Result<Vec<Outcome>, NodeError> {
        let ends = vec![ops.len()];
        self.execute_parts(ops, &ends).await
    }

    /// Applies `ops`, when they are a large batch of replicated changes, as a few atomic
    /// parts of whole keys committed back to back (see [`planning::PIPELINING`]), or else
    /// as one atomic batch. Returns one outcome per op, in the order `ops` have after the call (a
    /// batch in parts is regrouped by key).
    pub(crate) async fn execute_in_parts(
        &self,
        ops: &mut [WriteOp],
    ) -> Result<Vec<Outcome>, NodeError> {
        let ends = planning::split_by_key(ops);
        self.execute_parts(ops, &ends).await
    }

    /// Commits `ops` as the parts ending at `ends`, each expecting the token the previous
    /// one installs, and plans the whole batch again when any part met another writer.
    async fn execute_parts(
        &self,
        ops: &mut [WriteOp],
        ends: &[usize],
    ) -> Result<Vec<Outcome>, NodeError> {
        let mut guard = self.state.lock().await;
        let state = &mut *guard;
        let mut seen = HashSet::with_capacity(ops.len());
        let ids: Vec<String> = ops
            .iter()
            .map(WriteOp::key)
            .filter(|k| seen.insert(*k))
            .map(str::to_owned)
            .collect();
        let mut backoff =
            RetryPolicy::new(Duration::from_millis(2), Duration::from_millis(100)).backoff();
        for _ in 0..MAX_ATTEMPTS {
            let mut snapshot = self.snapshot(&ids, &mut state.cache).await?;
            let mut outcomes = Vec::with_capacity(ops.len());
            let mut token = snapshot.token.clone();
            let mut in_flight = Vec::with_capacity(ends.len());
            let mut start = 0;
            for &end in ends {
                let part = &mut ops[start..end];
                start = end;
                // Parts hold disjoint keys, so the states read before the batch are still the
                // states each part starts from; the sets carry every earlier part's changes.
                let (part_outcomes, args) = self.prepare(
                    part,
                    &snapshot.stored,
                    snapshot.floor,
                    &mut snapshot.sets,
                    &mut state.encoder,
                );
                outcomes.extend(part_outcomes);
                let Some(args) = args else {
                    continue;
                };
                let new_token = Bytes::from(format!("{:032x}", rand::random::<u128>()));
                // Each part expects the token the previous one installs: if one does not
                // land, every later one finds the wrong token and writes nothing.
                let mut commit = Box::pin(self.commit(token.clone(), new_token.clone(), args));
                // Polled once now, the block is queued on the connection in order, and Redis
                // runs it while the next part is prepared.
                let early = std::future::poll_fn(|cx| Poll::Ready(commit.as_mut().poll(cx))).await;
                in_flight.push((commit, early));
                token = new_token;
            }
            if in_flight.is_empty() {
                // Nothing written: the sets read are still exact at the token read.
                state.cache.advance(snapshot.token, snapshot.sets);
                return Ok(outcomes);
            }
            let (mut landed, mut failure) = (true, None);
            for (commit, early) in in_flight {
                let result = match early {
                    Poll::Ready(result) => result,
                    Poll::Pending => commit.await,
                };
                match result {
                    Ok(true) => {}
                    Ok(false) => landed = false,
                    Err(error) => {
                        landed = false;
                        failure.get_or_insert(error);
                    }
                }
            }
            if let Some(error) = failure {
                // The batch's sets left the cache; start from a clean one next time.
                state.cache.clear();
                return Err(error);
            }
            if landed {
                // The sets read, updated by the batch, are exact at the last token (sets the
                // cache still holds were untouched by the batch).
                state.cache.advance(token, snapshot.sets);
                return Ok(outcomes);
            }
            // Another writer committed (before the first part, or between two): whatever
            // the cache holds is stale. Parts that landed are no-ops when planned again
            // (pipelining is only for replicated changes, which apply idempotently).
            state.cache.clear();
            tracing::debug!("node store write conflicted with another writer; planning again");
            let delay = backoff.next_delay().unwrap_or(Duration::from_millis(100));
            tokio::time::sleep(delay).await;
        }
        Err(NodeError::Contended {
            attempts: MAX_ATTEMPTS,
        })
    }
}

/// The item a local put stored, once the batch committed.
pub(crate) fn committed_item(op: WriteOp) -> Option<SyncItem> {
    match op {
        WriteOp::LocalPut(item) => Some(item),
        _ => None,
    }
}
