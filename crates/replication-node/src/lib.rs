//! The node's own store: a [`SyncEngineRef`](replication_core::SyncEngineRef) over the
//! node's Redis, in the layout of docs/PROTOCOL.md, so that any peer (ours or sync-engine)
//! can tail its CDC stream and repair from its Merkle tree and items.
//!
//! # What a write does
//! Every write, local ([`NodeStore::put`], `delete`) or replicated (`submit`,
//! `delete_replicated*`, `apply_batch`), is one batch that, in one atomic step, stores or
//! removes the items, records or drops tombstones, updates the Merkle tree (the changed
//! leaves' ancestors only) and, for local writes only, appends the CDC entries. The one
//! exception: a large batch of replicated changes is committed as a few atomic parts of
//! whole keys (how large and how many: `writer::planning::PIPELINING`), sent back to back
//! so that Redis runs one while the next is planned. Each part leaves the store consistent;
//! a failure may leave some parts applied, and applying the batch again (the engine retries
//! it whole, and replicated changes apply idempotently) completes it. Replicated writes
//! follow the conflict order of docs/PROTOCOL.md: a change that does not beat the
//! stored item or tombstone is a no-op, and they never append to the CDC stream (no echo).
//!
//! Local puts take `version = max(item, tombstone version) + 1` and `updated_at = now`, but
//! never earlier than the key's last write. A local delete leaves a tombstone one version
//! above the item; deleting an absent key is a no-op with no CDC entry. A bare
//! `delete_replicated` (no tombstone known) deletes the version held, stamped
//! `{version: held, deleted_at: max(now, its updated_at)}`; a replicated delete of an absent
//! key still records its tombstone when it beats any tombstone already kept.
//!
//! # Consistency
//! Redis has no SHA-256 in Lua, so hashes are computed here. A batch (`writer`, reading in
//! `writer::snapshot`, planning in `writer::planning`, committing in `writer::commit`):
//! 1. reads, in one pipeline, the write token `{prefix}store:epoch`, the batch's items and
//!    tombstones, and the children sets of the affected tree nodes. When `local_states` has
//!    just read the same ids at the token the writer last saw (the engine asks it before
//!    every apply), those states are used instead (`read_ahead`), and the tree cache usually
//!    holds every set, so the write reads nothing at all;
//! 2. plans the batch (`plan`: conflict order, versions, CDC) and recomputes the affected
//!    nodes bottom-up (`merkle_update`);
//! 3. commits with one `MULTI`/`EXEC` block (`apply_script`): an `MSET` stages the item
//!    bodies under `{prefix}store:staging:{n}`, then a Lua script checks that the write
//!    token is unchanged, applies every write (renaming the staged bodies into place) and
//!    installs a new token; on a token mismatch or a failing write it drops the staged
//!    bodies and writes nothing.
//!
//! If another writer (another task, or the `replicationd put` CLI in another process)
//! committed in between, the token differs, the script writes nothing, and the batch is
//! planned again from fresh reads, with capped, jittered backoff; after
//! `writer::MAX_ATTEMPTS` attempts, a retriable [`NodeError::Contended`]. The parts of a
//! pipelined batch each expect the token the previous part installs, so once one part does
//! not land none after it does. The same check
//! makes states read ahead (step 1) safe: the token is read before them, so they are never
//! older than it, and any write after it fails the commit.
//!
//! A process that dies before `EXEC` has written nothing (Redis discards an unfinished
//! `MULTI` with its connection); once `EXEC` runs, Redis runs the block to completion without
//! interleaving, and persistence (AOF) and replicas receive it as one `MULTI`/`EXEC`, so a
//! crash of Redis itself cannot leave half a batch either, nor a staged body behind. The one
//! ambiguous case is a connection lost while the reply is in flight: the store then reads
//! the token, which tells whether its batch landed.
//!
//! This is the compare-and-set form of the WATCH/MULTI/EXEC pattern. WATCH lives on a
//! connection: if the client reconnects between WATCH and EXEC, the transaction would run
//! unguarded on the new connection. The token check inside the script cannot be lost that
//! way and needs no dedicated connection.
//!
//! # Ids that are both item and parent
//! The node `a` of items `a` and `a.b` lists its own leaf hash under the empty segment
//! (member `:{hex}`), as docs/PROTOCOL.md defines. Hash keys of nodes that disappear are
//! deleted (sync-engine leaves them behind).
//!
//! # Cost
//! A batch of replicated changes costs, whatever its size, one read round trip (none when
//! the engine read its states just before) and one commit block per part, the parts sent
//! back to back; in each, Redis does one `MSET`, one `RENAME` per stored item and one
//! grouped command per children set and kind of write. See docs/BENCHMARKS.md for figures.
//!
//! # Limits
//! Content over [`NodeStoreConfig::max_payload_bytes`] is refused with
//! [`NodeError::PayloadTooLarge`] (permanent) before anything is written. Object ids longer
//! or deeper than [`NodeStoreConfig::object_id_limits`] are refused with
//! [`NodeError::InvalidKey`] before any bookkeeping (an id costs one tree node per ancestor,
//! each named by its full path). Object ids that would collide with the store's own keys
//! (`cdc`, `tombstones`, `merkle:*`, `store:*`) are refused.
//!
//! # Deployments
//! The node's Redis may be one server, a primary found through Sentinel or a Redis
//! Cluster (`NodeStoreConfig::redis_url`). On a Cluster every key of the store must share
//! one hash slot, since a commit is one `MULTI`/`EXEC` block over all of them: the prefix
//! must carry a hash tag (`"{node-b}:"`), and [`NodeStoreConfig::validate`] refuses one
//! without. After a failover the client follows the new primary by itself; writes refused
//! meanwhile (connection lost, `READONLY`, `CLUSTERDOWN`) fail retriably, and
//! [`NodeStore::connection`] shows the server change.

mod apply_script;
mod batch_read;
mod config;
mod connect;
mod error;
mod health;
mod keys;
mod merkle_update;
mod plan;
mod read_ahead;
mod reader;
mod server_watch;
mod state;
mod store;
mod tree_cache;
mod value_codec;
mod writer;

pub use config::NodeStoreConfig;
pub use error::{BoxedSource, NodeError};
pub use store::NodeStore;
