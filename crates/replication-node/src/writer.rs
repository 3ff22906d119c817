//! The write path: read a snapshot, plan, commit through the apply script, retry on conflict.
//!
//! One batch costs two round trips when nothing else wrote meanwhile: one pipeline reading
//! the write token, the batch's items and tombstones and the (uncached) children sets, and
//! one `EVALSHA` applying everything. A conflict (another writer committed between the two)
//! makes the script write nothing; the batch is then planned again from fresh reads, with
//! capped, jittered backoff, up to [`MAX_ATTEMPTS`] times.
//!
//! Writes of this process are serialised by a mutex (they would only conflict with each
//! other otherwise), and the mutex also guards the CDC encoder and the tree cache.

use crate::apply_script::{ScriptArgs, PURGE_SOURCE, SOURCE};
use crate::keys::KeySpace;
use crate::merkle_update::{recompute, required_paths, ChildSet};
use crate::plan::{plan, Outcome, Stored, WriteOp};
use crate::prepared::PreparedReads;
use crate::state_read;
use crate::stored::{decode_recorded_tombstone, reply_array, reply_bytes};
use crate::tree_cache::TreeCache;
use crate::NodeError;
use bytes::Bytes;
use fred::prelude::{Client, ClientLike, KeysInterface, LuaInterface, TransactionInterface, Value};
use fred::types::CustomCommand;
use replication_core::cdc::CdcEncoder;
use replication_core::merkle::{encode_member, Hash};
use replication_core::{encode_item_json, encode_tombstone_json, Backoff, SyncItem};
use std::collections::{HashMap, HashSet};
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
    prepared: Arc<PreparedReads>,
    state: Mutex<WriterState>,
}

struct WriterState {
    encoder: CdcEncoder,
    cache: TreeCache,
}

/// What a batch read before planning.
struct Snapshot<'k> {
    /// The write token (empty when no write ever happened).
    token: Bytes,
    stored: HashMap<&'k str, Stored>,
    sets: HashMap<String, ChildSet>,
    /// Every local write's version is above it.
    floor: u64,
}

impl Writer {
    /// Loads the scripts on `client`, which the writer then uses for everything it sends.
    pub(crate) async fn new(
        client: Client,
        keys: KeySpace,
        cdc_maxlen: u64,
        prepared: Arc<PreparedReads>,
    ) -> Result<Self, NodeError> {
        let purge_sha = load_script(&client, &keys, PURGE_SOURCE).await?;
        Ok(Self {
            client,
            keys,
            cdc_maxlen,
            purge_sha,
            prepared,
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

    /// Applies `ops` as one atomic batch, or, with `pipelined` and a large batch of
    /// replicated changes only, as a few atomic parts committed back to back (see
    /// [`split_by_key`]). Returns one outcome per op, in the order `ops` have after the call
    /// (a pipelined batch regroups them by key).
    pub(crate) async fn execute(
        &self,
        ops: &mut [WriteOp],
        pipelined: bool,
    ) -> Result<Vec<Outcome>, NodeError> {
        let ends = if pipelined {
            split_by_key(ops)
        } else {
            vec![ops.len()]
        };
        let mut guard = self.state.lock().await;
        let state = &mut *guard;
        let mut seen = HashSet::with_capacity(ops.len());
        let ids: Vec<String> = ops
            .iter()
            .map(WriteOp::key)
            .filter(|k| seen.insert(*k))
            .map(str::to_owned)
            .collect();
        let mut backoff = Backoff::new(Duration::from_millis(2), Duration::from_millis(100));
        for _ in 0..MAX_ATTEMPTS {
            let mut snapshot = self.snapshot(&ids, &mut state.cache).await?;
            let mut outcomes = Vec::with_capacity(ops.len());
            let mut token = snapshot.token.clone();
            let mut in_flight = Vec::with_capacity(ends.len());
            let mut start = 0;
            for &end in &ends {
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
            tokio::time::sleep(backoff.next_delay(replication_core::jitter())).await;
        }
        Err(NodeError::Contended {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Plans `ops` over `stored` and `sets` (updated in place to the state after them) and
    /// builds the commit; `None` when they change nothing.
    fn prepare(
        &self,
        ops: &mut [WriteOp],
        stored: &HashMap<&str, Stored>,
        floor: u64,
        sets: &mut HashMap<String, ChildSet>,
        encoder: &mut CdcEncoder,
    ) -> (Vec<Outcome>, Option<ScriptArgs>) {
        let now = now_ms();
        let mut plan = plan(ops, stored, floor, now, encoder);
        if plan.is_empty() {
            return (plan.outcomes, None);
        }
        let leaves: HashMap<&str, Option<Hash>> =
            plan.leaves.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let changes = recompute(sets, &leaves);

        let mut args = ScriptArgs::new();
        for entry in plan.cdc.drain(..) {
            args.xadd(self.keys.cdc(), self.cdc_maxlen, entry);
        }
        for (path, segment, hash) in &changes.removed {
            args.zrem(self.keys.children(path), encode_member(segment, hash));
        }
        for (path, segment, hash) in &changes.added {
            args.zadd(self.keys.children(path), encode_member(segment, hash));
        }
        for (id, tombstone) in &plan.tombstones_set {
            args.hset(id.clone(), encode_tombstone_json(tombstone, now));
        }
        for id in &plan.tombstones_deleted {
            args.hdel(id.clone());
        }
        for (id, source) in &plan.items_set {
            let item = match &ops[*source] {
                WriteOp::LocalPut(item) | WriteOp::Put(item) => item,
                WriteOp::LocalDelete(_) | WriteOp::Delete(..) => {
                    unreachable!("the planner sources items from puts")
                }
            };
            args.set_item(self.keys.item(id), Bytes::from(encode_item_json(item)));
        }
        for id in &plan.items_deleted {
            args.del(self.keys.item(id));
        }
        for (path, hash) in &changes.hashes_set {
            args.set(self.keys.hash(path), Bytes::from(hex::encode(hash)));
        }
        for path in &changes.hashes_deleted {
            args.del(self.keys.hash(path));
        }
        (plan.outcomes, Some(args))
    }

    /// Reads the token, the stored state of `ids` and the children sets their change may
    /// touch, in one pipeline (two when the tree cache turns out to be stale). Sets the cache
    /// knows are moved out of it, not copied: the batch puts them back when it commits.
    ///
    /// When `local_states` just read these ids at the token the cache is at, those states
    /// are used and only uncached sets are read (often nothing at all): the commit's token
    /// check catches any write in between (see `prepared`).
    async fn snapshot<'k>(
        &self,
        ids: &'k [String],
        cache: &mut TreeCache,
    ) -> Result<Snapshot<'k>, NodeError> {
        let paths = required_paths(ids.iter().map(String::as_str));
        if let Some(token) = cache.token().cloned() {
            if let Some((mut states, floor)) = self.prepared.take(&token, ids) {
                let (known, uncached) = split_known(&paths, cache);
                let mut replies = Vec::new();
                if !uncached.is_empty() {
                    let pipeline = self.client.pipeline();
                    state_read::queue_children(&pipeline, &self.keys, &uncached).await?;
                    replies = state_read::replies(&pipeline, uncached.len(), "batch read").await?;
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
            state_read::queue(&pipeline, &self.keys, ids).await?;
            state_read::queue_children(&pipeline, &self.keys, &uncached).await?;
            let replies = state_read::replies(
                &pipeline,
                state_read::STATE_REPLIES + uncached.len(),
                "batch read",
            )
            .await?;
            let mut replies = replies.into_iter();
            let state_read::StateRead {
                token,
                stored,
                floor,
            } = state_read::parse(&self.keys, ids, &mut replies)?;
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
                state_read::parse_children(&self.keys, path, reply)?,
            );
        }
        for path in known {
            sets.insert(path.to_owned(), cache.take(path));
        }
        Ok(sets)
    }

    /// Runs the commit block (see `apply_script`); `Ok(false)` when another writer got there
    /// first.
    async fn commit(
        &self,
        expected: Bytes,
        new_token: Bytes,
        args: ScriptArgs,
    ) -> Result<bool, NodeError> {
        let epoch = self.keys.epoch();
        let (staging, argv) = args.into_commit(expected, new_token.clone(), &self.keys);
        let reply = match self.run_commit(&epoch, staging, argv).await {
            Ok(reply) => reply,
            Err(error) if error.is_retriable() => {
                // The block may have run before the connection failed: our token tells.
                let now: Option<Bytes> = self.client.get(&epoch).await.ok().flatten();
                if now.as_ref() == Some(&new_token) {
                    return Ok(true);
                }
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        Ok(match reply {
            Value::Integer(1) => true,
            // A resent block (client retry after a dropped connection) finds its own token.
            other => reply_bytes(&epoch, other)?.is_some_and(|current| current == new_token),
        })
    }

    /// `MULTI`, the staging `MSET` (if any body is stored), `EVAL` of the script, `EXEC`;
    /// returns the script's reply. `EVAL` rather than `EVALSHA`: a script missing from the
    /// server's cache would fail inside the block after the `MSET` had run.
    async fn run_commit(
        &self,
        epoch: &str,
        staging: Vec<(fred::types::Key, Value)>,
        argv: Vec<Value>,
    ) -> Result<Value, NodeError> {
        let queue = |e| NodeError::redis("queueing the commit", e);
        let block = self.client.multi();
        let staged = !staging.is_empty();
        if staged {
            let _: () = block.mset(staging).await.map_err(queue)?;
        }
        // Transactions have no typed EVAL: `EVAL source 1 token-key argv...`.
        let mut eval = Vec::with_capacity(3 + argv.len());
        eval.extend([
            Value::from_static_str(SOURCE),
            Value::Integer(1),
            Value::from(epoch),
        ]);
        eval.extend(argv);
        // Routed by the store's slot: fred would hash the script's source, the first argument.
        let eval_command = CustomCommand::new_static("EVAL", self.keys.route(), false);
        let _: () = block.custom(eval_command, eval).await.map_err(queue)?;
        let replies: Value = block
            .exec(true)
            .await
            .map_err(|e| NodeError::redis("write script", e))?;
        let mut replies = reply_array(epoch, replies)?;
        let expected = if staged { 2 } else { 1 };
        if replies.len() != expected {
            return Err(crate::stored::corrupt(
                epoch,
                format!(
                    "the commit block answered {} replies, not {expected}",
                    replies.len()
                ),
            ));
        }
        Ok(replies.pop().unwrap_or(Value::Null))
    }

    /// `EVALSHA`, loading the script again if the server lost it (restart, SCRIPT FLUSH).
    async fn evalsha(
        &self,
        sha: &str,
        source: &str,
        keys: Vec<String>,
        argv: Vec<Value>,
    ) -> Result<Value, NodeError> {
        match self
            .client
            .evalsha::<Value, _, _, _>(sha, keys.clone(), argv.clone())
            .await
        {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                load_script(&self.client, &self.keys, source).await?;
                self.client
                    .evalsha(sha, keys, argv)
                    .await
                    .map_err(|e| NodeError::redis("write script", e))
            }
            other => other.map_err(|e| NodeError::redis("write script", e)),
        }
    }

    /// Drops tombstones this store recorded before `recorded_before_ms` (its own clock;
    /// values without the time count as recorded at their `deleted_at`) and raises the
    /// version floor above the versions they held (see `PURGE_SOURCE`); returns how many.
    pub(crate) async fn purge_tombstones(&self, recorded_before_ms: i64) -> Result<u64, NodeError> {
        let key = self.keys.tombstones();
        let script_keys = vec![key.clone(), self.keys.version_floor(), self.keys.epoch()];
        let mut cursor = String::from("0");
        let mut dropped = 0u64;
        loop {
            let args: Vec<Value> = vec![
                key.clone().into(),
                cursor.clone().into(),
                "COUNT".into(),
                1000.into(),
            ];
            let reply: Value = self
                .client
                .custom(
                    CustomCommand::new_static("HSCAN", self.keys.route(), false),
                    args,
                )
                .await
                .map_err(|e| NodeError::redis("HSCAN tombstones", e))?;
            let mut parts = reply_array(&key, reply)?.into_iter();
            let next_cursor = parts
                .next()
                .map(|v| reply_bytes(&key, v))
                .transpose()?
                .flatten()
                .unwrap_or_default();
            let pairs = parts
                .next()
                .map(|v| reply_array(&key, v))
                .transpose()?
                .unwrap_or_default();
            let token = format!("{:032x}", rand::random::<u128>());
            let mut argv = vec![Value::from(token)];
            let mut pairs = pairs.into_iter();
            while let (Some(field), Some(value)) = (pairs.next(), pairs.next()) {
                let field = reply_bytes(&key, field)?.unwrap_or_default();
                let value = reply_bytes(&key, value)?.unwrap_or_default();
                let id = String::from_utf8_lossy(&field);
                let (tombstone, recorded_at) = decode_recorded_tombstone(&key, &id, &value)?;
                if recorded_at < recorded_before_ms {
                    argv.push(Value::Bytes(field));
                    argv.push(Value::Bytes(value));
                    argv.push(Value::from(tombstone.version.to_string()));
                }
            }
            if argv.len() > 1 {
                let reply = self
                    .evalsha(&self.purge_sha, PURGE_SOURCE, script_keys.clone(), argv)
                    .await?;
                dropped += reply.as_u64().unwrap_or(0);
            }
            cursor = String::from_utf8_lossy(&next_cursor).into_owned();
            if cursor == "0" || cursor.is_empty() {
                return Ok(dropped);
            }
        }
    }
}

/// `SCRIPT LOAD source` on the server that runs the store's scripts: on a Cluster, the
/// primary of the store's slot (fred would send it wherever the source text hashes).
/// Returns the script's SHA-1.
async fn load_script(client: &Client, keys: &KeySpace, source: &str) -> Result<String, NodeError> {
    let command = CustomCommand::new_static("SCRIPT", keys.route(), false);
    client
        .custom(command, vec!["LOAD", source])
        .await
        .map_err(|e| NodeError::redis("SCRIPT LOAD", e))
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

/// Batches of replicated changes at least this large are committed in parts.
const PIPELINE_MIN_OPS: usize = 256;
/// Changes per part, at least (fewer, larger parts when the batch is smaller).
const PIPELINE_PART_OPS: usize = 250;
/// Parts per batch, at most: each part costs its own recompute of the shared ancestors.
const PIPELINE_MAX_PARTS: usize = 4;

/// Regroups a large batch of replicated changes into parts of whole keys (every change of a
/// key in one part, in their original order), so that it can be committed as a few atomic
/// parts back to back: while Redis runs one part, the next is planned and encoded. Returns
/// the end index of each part (just `[ops.len()]`, and `ops` untouched, for batches that are
/// small or hold local writes: re-planning those after a partial commit would not be
/// idempotent).
///
/// A batch is then no longer atomic as a whole, only each part is: a failure leaves a
/// prefix of parts applied, each consistent (items, tree, tombstones), and the caller
/// retries the batch, whose applied changes are then no-ops.
pub(crate) fn split_by_key(ops: &mut [WriteOp]) -> Vec<usize> {
    let replicated = ops
        .iter()
        .all(|op| matches!(op, WriteOp::Put(_) | WriteOp::Delete(..)));
    let parts = (ops.len() / PIPELINE_PART_OPS).clamp(1, PIPELINE_MAX_PARTS);
    if !replicated || ops.len() < PIPELINE_MIN_OPS || parts == 1 {
        return vec![ops.len()];
    }
    // Distinct keys in first-seen order, spread evenly over the parts.
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(ops.len());
    for op in ops.iter() {
        let next = index.len();
        index.entry(op.key()).or_insert(next);
    }
    let distinct = index.len();
    let part_of: Vec<usize> = ops
        .iter()
        .map(|op| index.get(op.key()).map_or(0, |i| i * parts / distinct))
        .collect();
    drop(index);
    let mut tagged: Vec<(usize, WriteOp)> = ops
        .iter_mut()
        .zip(&part_of)
        .map(|(op, part)| {
            (
                *part,
                std::mem::replace(op, WriteOp::LocalDelete(String::new())),
            )
        })
        .collect();
    // Stable: a key's changes keep their order.
    tagged.sort_by_key(|(part, _)| *part);
    let mut ends = Vec::with_capacity(parts);
    for (i, (slot, (part, op))) in ops.iter_mut().zip(tagged).enumerate() {
        *slot = op;
        if ends.len() < part {
            ends.push(i);
        }
    }
    ends.push(ops.len());
    ends.retain(|end| *end > 0);
    ends.dedup();
    ends
}

/// Wall clock in ms since the epoch (0 if the clock is before 1970).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The item a local put stored, once the batch committed.
pub(crate) fn committed_item(op: WriteOp) -> Option<SyncItem> {
    match op {
        WriteOp::LocalPut(item) => Some(item),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! The commit block against a real redis-server: what a refused or failing commit
    //! leaves behind (nothing, staged bodies included).
    use super::*;
    use crate::connect::connect;
    use crate::NodeStoreConfig;
    use replication_testkit::RedisServer;

    async fn writer(server: &RedisServer) -> Writer {
        let config = NodeStoreConfig::new(server.url()).with_prefix("n:");
        let client = connect(&config).await.unwrap();
        Writer::new(client, KeySpace::new("n:"), 1000, Arc::default())
            .await
            .unwrap()
    }

    /// A commit storing two items and appending one CDC entry.
    fn args(keys: &KeySpace) -> ScriptArgs {
        let mut args = ScriptArgs::new();
        args.xadd(keys.cdc(), 1000, vec![("op", b"PUT".to_vec())]);
        args.zadd(keys.children(""), format!("a:{}", "0".repeat(64)));
        args.set_item(keys.item("a"), Bytes::from_static(b"{\"body\":1}"));
        args.set_item(keys.item("b"), Bytes::from_static(b"{\"body\":2}"));
        args
    }

    fn get(server: &RedisServer, key: &str) -> String {
        server.command(&["GET", key]).unwrap().trim().to_owned()
    }

    fn all_keys(server: &RedisServer) -> String {
        server.command(&["KEYS", "*"]).unwrap().trim().to_owned()
    }

    #[tokio::test]
    async fn a_commit_lands_atomically_and_leaves_no_staged_body() {
        let server = RedisServer::start().unwrap();
        let writer = writer(&server).await;
        let keys = KeySpace::new("n:");
        let committed = writer
            .commit(Bytes::new(), Bytes::from_static(b"t1"), args(&keys))
            .await
            .unwrap();
        assert!(committed);
        assert_eq!(get(&server, "n:a"), "{\"body\":1}");
        assert_eq!(get(&server, "n:b"), "{\"body\":2}");
        assert_eq!(get(&server, "n:store:epoch"), "t1");
        assert!(
            !all_keys(&server).contains("staging"),
            "{}",
            all_keys(&server)
        );
    }

    #[tokio::test]
    async fn a_commit_against_another_token_writes_nothing_and_drops_its_staged_bodies() {
        let server = RedisServer::start().unwrap();
        let writer = writer(&server).await;
        let keys = KeySpace::new("n:");
        server.command(&["SET", "n:store:epoch", "theirs"]).unwrap();
        let committed = writer
            .commit(
                Bytes::from_static(b"ours"),
                Bytes::from_static(b"t2"),
                args(&keys),
            )
            .await
            .unwrap();
        assert!(!committed);
        assert_eq!(all_keys(&server), "n:store:epoch");
        assert_eq!(get(&server, "n:store:epoch"), "theirs");
    }

    #[tokio::test]
    async fn a_failing_write_reports_the_error_and_drops_the_staged_bodies() {
        let server = RedisServer::start().unwrap();
        let writer = writer(&server).await;
        let keys = KeySpace::new("n:");
        // Something outside the store made the CDC key a string: XADD fails first.
        server.command(&["SET", "n:cdc", "not a stream"]).unwrap();
        let error = writer
            .commit(Bytes::new(), Bytes::from_static(b"t3"), args(&keys))
            .await
            .unwrap_err();
        assert!(format!("{error:?}").contains("WRONGTYPE"), "{error:?}");
        assert!(!error.is_retriable(), "{error:?}");
        assert_eq!(all_keys(&server), "n:cdc");
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;
    use replication_core::{SyncItem, Tombstone};

    fn put(key: &str, version: u64) -> WriteOp {
        WriteOp::Put(SyncItem::new(
            key,
            version.to_le_bytes().to_vec(),
            version,
            1,
        ))
    }

    fn keys(ops: &[WriteOp]) -> Vec<String> {
        ops.iter().map(|op| op.key().to_owned()).collect()
    }

    #[test]
    fn small_batches_and_local_writes_stay_whole() {
        let mut small: Vec<WriteOp> = (0..255).map(|i| put(&format!("k{i}"), 1)).collect();
        assert_eq!(split_by_key(&mut small), vec![255]);
        let mut local: Vec<WriteOp> = (0..600).map(|i| put(&format!("k{i}"), 1)).collect();
        local.push(WriteOp::LocalDelete("k0".into()));
        let before = keys(&local);
        assert_eq!(split_by_key(&mut local), vec![601]);
        assert_eq!(keys(&local), before);
    }

    #[test]
    fn parts_hold_whole_keys_in_their_original_order() {
        // 1 000 changes over 400 keys, each key changed at positions spread over the batch.
        let mut ops: Vec<WriteOp> = (0..1_000u64)
            .map(|i| {
                let key = format!("k{}", i % 400);
                if i % 7 == 0 {
                    WriteOp::Delete(
                        key,
                        Some(Tombstone {
                            version: i,
                            deleted_at: 1,
                        }),
                    )
                } else {
                    put(&key, i)
                }
            })
            .collect();
        let original: Vec<(String, String)> = ops
            .iter()
            .map(|op| (op.key().to_owned(), format!("{op:?}")))
            .collect();
        let ends = split_by_key(&mut ops);
        assert_eq!(ends.len(), PIPELINE_MAX_PARTS);
        assert_eq!(ends.last(), Some(&1_000));
        // No key in two parts.
        let mut part_of = HashMap::new();
        let mut start = 0;
        for (part, end) in ends.iter().enumerate() {
            for op in &ops[start..*end] {
                assert_eq!(*part_of.entry(op.key().to_owned()).or_insert(part), part);
            }
            start = *end;
        }
        // Same changes, and each key's changes in their original order.
        let now: Vec<(String, String)> = ops
            .iter()
            .map(|op| (op.key().to_owned(), format!("{op:?}")))
            .collect();
        for key in (0..400).map(|k| format!("k{k}")) {
            let of = |list: &[(String, String)]| -> Vec<String> {
                list.iter()
                    .filter(|(k, _)| *k == key)
                    .map(|(_, op)| op.clone())
                    .collect()
            };
            assert_eq!(of(&now), of(&original), "{key}");
        }
    }
}
