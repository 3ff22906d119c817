//! Every replicated write of one engine to its store passes here, from every peer's hot
//! path and every repair cycle alike.
//!
//! A store that answers `local_states` judges each change itself inside `apply_batch`
//! (it keeps the newer stamp), so its writes go straight through. A store with only the
//! required methods cannot: the engine judged each change against the state it derived
//! from the store's tree and content, and `submit` / `delete_replicated` then write
//! unconditionally. Between that judgement and the write another of this engine's
//! writers (a second peer's hot path, a repair) may have stored a newer write of the same
//! key, which the delete would then remove and the store's own tombstone spread. So for
//! such a store the gate writes one batch at a time, and under that lock derives the
//! state of every key again and drops the changes that no longer win: no write of this
//! engine can fall between the last judgement and the write. The store's own local
//! writes can (it offers no conditional write); docs/PROTOCOL.md states that limit.
//!
//! Whether a store answers is learnt from its first reply to `local_states` (a store
//! that answers describes every key, `None` never appears); until then, and for a store
//! that once did not answer, the gate judges.

use replication_core::{Change, HeldState, SyncEngineRef, SyncError, Verdict};
use std::sync::atomic::{AtomicU8, Ordering};
use tokio::sync::Mutex;

const UNKNOWN: u8 = 0;
const ANSWERS: u8 = 1;
const DERIVED: u8 = 2;

/// See the module docs. One per engine (in `Shared`).
#[derive(Debug, Default)]
pub(crate) struct WriteGate {
    /// Held across judge-again-and-write for stores that do not answer.
    lock: Mutex<()>,
    /// What the store's `local_states` has shown it to be.
    shape: AtomicU8,
}

impl WriteGate {
    /// Applies `changes` to `store`; for a store that cannot judge them, only those that
    /// still win over what it holds at the time of the write.
    pub(crate) async fn apply<S: SyncEngineRef>(
        &self,
        store: &S,
        changes: Vec<Change>,
    ) -> Result<(), SyncError> {
        if changes.is_empty() || self.shape.load(Ordering::Acquire) == ANSWERS {
            return store.apply_batch(changes).await;
        }
        let _serialised = self.lock.lock().await;
        let keys: Vec<String> = changes.iter().map(|c| c.key().to_owned()).collect();
        let states = store.local_states(&keys).await?;
        if states.len() == keys.len() && states.iter().all(Option::is_some) {
            // Learnt once: never `DERIVED` again from here (a store that ever failed to
            // answer stays judged, so the check is taken only while unsure).
            let _ =
                self.shape
                    .compare_exchange(UNKNOWN, ANSWERS, Ordering::AcqRel, Ordering::Acquire);
            return store.apply_batch(changes).await;
        }
        self.shape.store(DERIVED, Ordering::Release);
        let hints: Vec<Option<u64>> = changes.iter().map(|c| Some(c.stamp().version)).collect();
        let derived = replication_merkle::derive_states(store, &keys, &hints).await?;
        if derived.len() != changes.len() {
            return Err(SyncError::new(format!(
                "the local store described {} of {} keys while being written",
                derived.len(),
                changes.len()
            )));
        }
        let winners: Vec<Change> = changes
            .into_iter()
            .zip(derived)
            .filter_map(|(change, held)| {
                let verdict = HeldState::Derived(held).judge(&change.stamp());
                if verdict == Verdict::Wins {
                    Some(change)
                } else {
                    tracing::debug!(
                        key = change.key(),
                        ?verdict,
                        "a newer write of this key landed since it was judged; not written"
                    );
                    None
                }
            })
            .collect();
        if winners.is_empty() {
            return Ok(());
        }
        store.apply_batch(winners).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;
    use replication_core::{SyncItem, Tombstone};
    use replication_testkit::{MemoryStore, MinimalStore};

    fn put(key: &str, content: &str, version: u64) -> Change {
        Change::Put(SyncItem::new(
            key,
            content.as_bytes().to_vec(),
            version,
            1_000,
        ))
    }

    fn delete(key: &str, version: u64) -> Change {
        Change::Delete {
            key: key.to_owned(),
            tombstone: Tombstone {
                version,
                deleted_at: 2_000,
            },
        }
    }

    #[tokio::test]
    async fn a_delete_judged_before_a_newer_put_landed_leaves_that_put() {
        let store = MinimalStore::new(MemoryStore::new());
        let gate = WriteGate::default();
        // Judged against version 1; meanwhile another writer stored version 2.
        gate.apply(&store, vec![put("k", "one", 1)]).await.unwrap();
        gate.apply(&store, vec![put("k", "two", 2)]).await.unwrap();
        gate.apply(&store, vec![delete("k", 1), put("other", "x", 1)])
            .await
            .unwrap();
        assert_eq!(store.inner().item("k").unwrap().version, 2);
        assert!(store.inner().item("other").is_some());
        // The delete of the version held still deletes.
        gate.apply(&store, vec![delete("k", 2)]).await.unwrap();
        assert!(store.inner().item("k").is_none());
    }

    #[tokio::test]
    async fn a_store_that_stores_as_it_comes_keeps_the_newer_put() {
        let store = MinimalStore::like_sync_engine();
        let gate = WriteGate::default();
        gate.apply(&store, vec![put("k", "two", 2)]).await.unwrap();
        gate.apply(&store, vec![put("k", "one", 1)]).await.unwrap();
        assert_eq!(store.inner().item("k").unwrap().version, 2);
        assert_eq!(gate.shape.load(Ordering::Acquire), DERIVED);
    }

    #[tokio::test]
    async fn a_store_that_answers_is_learnt_and_written_straight_through() {
        let store = MemoryStore::new();
        let gate = WriteGate::default();
        gate.apply(&store, vec![put("k", "two", 2)]).await.unwrap();
        assert_eq!(gate.shape.load(Ordering::Acquire), ANSWERS);
        // The store judges itself: the older put loses inside `apply_batch`.
        gate.apply(&store, vec![put("k", "one", 1)]).await.unwrap();
        assert_eq!(store.item("k").unwrap().version, 2);
    }
}
