//! What a batch is planned from: the write token, the stored state of its ids and the
//! children sets their change may touch, taken from the read-ahead and the tree cache when
//! they are exact at the token, read in one pipeline otherwise.

use super::Writer;
use crate::batch_read;
use crate::merkle_update::{required_paths, ChildSet};
use crate::state::Stored;
use crate::tree_cache::TreeCache;
use crate::NodeError;
use bytes::Bytes;
use fred::prelude::Value;
use std::collections::HashMap;

/// What a batch read before planning.
pub(super) struct Snapshot<'k> {
    /// The write token (empty when no write ever happened).
    pub(super) token: Bytes,
    pub(super) stored: HashMap<&'k str, Stored>,
    pub(super) sets: HashMap<String, ChildSet>,
    /// Every local write's version is above it.
    pub(super) floor: u64,
}

impl Writer {
    /// Reads the token, the stored state of `ids` and the children sets their change may
    /// touch, in one pipeline (two when the tree cache turns out to be stale). Sets the cache
    /// knows are moved out of it, not copied: the batch puts them back when it commits.
    ///
    /// When `local_states` just read these ids at the token the cache is at, those states
    /// are used and only uncached sets are read (often nothing at all): the commit's token
    /// check catches any write in between (see `read_ahead`).
    pub(super) async fn snapshot<'k>(
        &self,
        ids: &'k [String],
        cache: &mut TreeCache,
    ) -> Result<Snapshot<'k>, NodeError> {
        let paths = required_paths(ids.iter().map(String::as_str));
        if let Some(token) = cache.token().cloned() {
            if let Some((mut states, floor)) = self.read_ahead.take(&token, ids) {
                let (known, uncached) = split_known(&paths, cache);
                let mut replies = Vec::new();
                if !uncached.is_empty() {
                    let pipeline = self.client.pipeline();
                    batch_read::queue_children(&pipeline, &self.keys, &uncached).await?;
                    replies = batch_read::replies(&pipeline, uncached.len(), "batch read").await?;
                }
                let sets = self.collect_sets(&uncached, &mut replies.into_iter(), known, cache)?;
                let stored = ids
                    .iter()
                    .map(|id| (id.as_str(), states.remove(id).unwrap_or_default()))
                    .collect();
                return Ok(Snapshot {
                    token,
                    stored,
                    sets,
                    floor,
                });
            }
        }
        loop {
            let cached_token = cache.token().cloned();
            // Decided for every path before any set moves out of the cache.
            let (known, uncached) = split_known(&paths, cache);
            let pipeline = self.client.pipeline();
            batch_read::queue(&pipeline, &self.keys, ids).await?;
            batch_read::queue_children(&pipeline, &self.keys, &uncached).await?;
            let replies = batch_read::replies(
                &pipeline,
                batch_read::STATE_REPLIES + uncached.len(),
                "batch read",
            )
            .await?;
            let mut replies = replies.into_iter();
            let batch_read::StateRead {
                token,
                stored,
                floor,
            } = batch_read::parse(&self.keys, ids, &mut replies)?;
            if cached_token.as_ref() != Some(&token) {
                // Someone else wrote since the cache was filled: nothing in it can be trusted,
                // and sets it answered for must be read afresh.
                let answered = !known.is_empty();
                cache.clear();
                if answered {
                    continue;
                }
            }
            let sets = self.collect_sets(&uncached, &mut replies, known, cache)?;
            return Ok(Snapshot {
                token,
                stored: ids.iter().map(String::as_str).zip(stored).collect(),
                sets,
                floor,
            });
        }
    }

    /// The children sets of the batch: those of `uncached` paths parsed from their `ZRANGE`
    /// replies, those of `known` paths moved out of the cache.
    fn collect_sets(
        &self,
        uncached: &[&str],
        replies: &mut impl Iterator<Item = Value>,
        known: Vec<&str>,
        cache: &mut TreeCache,
    ) -> Result<HashMap<String, ChildSet>, NodeError> {
        let mut sets = HashMap::with_capacity(uncached.len() + known.len());
        for path in uncached {
            let reply = replies.next().unwrap_or(Value::Null);
            sets.insert(
                (*path).to_owned(),
                batch_read::parse_children(&self.keys, path, reply)?,
            );
        }
        for path in known {
            sets.insert(path.to_owned(), cache.take(path));
        }
        Ok(sets)
    }
}

/// `paths` split into those the cache knows and those to read, each in order.
fn split_known<'p>(paths: &[&'p str], cache: &TreeCache) -> (Vec<&'p str>, Vec<&'p str>) {
    let (mut known, mut uncached) = (Vec::new(), Vec::new());
    for (path, knows) in paths.iter().zip(cache.knows_all(paths)) {
        if knows {
            known.push(*path);
        } else {
            uncached.push(*path);
        }
    }
    (known, uncached)
}
