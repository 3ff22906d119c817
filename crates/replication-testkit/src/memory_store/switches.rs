//! The switches of [`MemoryStore`]: injected failures, refusals, reply latency,
//! backpressure, echoes, connection facts and sync-engine's behaviour.

use super::MemoryStore;
use std::time::Duration;

impl MemoryStore {
    /// Makes every `SyncEngineRef` call fail with a retriable error (`true`) or work again.
    pub fn set_failing(&self, failing: bool) {
        self.lock().fail_all = failing;
    }

    /// Makes only the writing `SyncEngineRef` calls fail with a retriable error.
    pub fn set_failing_writes(&self, failing: bool) {
        self.lock().fail_writes = failing;
    }

    /// Makes every replicated write of `key` fail with a permanent error, as a store refuses
    /// a reserved id or a payload over its cap; a batch holding it changes nothing.
    pub fn refuse_key(&self, key: &str) {
        self.lock().refused.insert(key.to_owned());
    }

    /// Starts (`true`) or stops recording the changes of replicated writes (`submit`,
    /// `apply_batch`) that fail by injection, for [`Self::take_failed_writes`].
    pub fn set_recording_failed_writes(&self, recording: bool) {
        self.lock().failed_writes = recording.then(Vec::new);
    }

    /// The key and stamp of every change whose write failed by injection since recording
    /// started or since the last call.
    pub fn take_failed_writes(&self) -> Vec<(String, replication_core::Stamp)> {
        self.lock()
            .failed_writes
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Accepts replicated writes of `key` again (undoes [`Self::refuse_key`]).
    pub fn allow_key(&self, key: &str) {
        self.lock().refused.remove(key);
    }

    /// Delays the reply of every replicated write by `latency` after the write is applied
    /// and visible, as a remote store's reply is still on the wire when its data is
    /// already readable (tokio time, so paused tests drive it).
    pub fn set_reply_latency(&self, latency: Duration) {
        self.lock().reply_latency = latency;
    }

    /// Waits out the reply latency, with the lock released.
    pub(super) async fn reply(&self) {
        let latency = self.lock().reply_latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    /// What `connection` reports: the facts a store on a real server would (the server
    /// holding the data, failovers); `None`, the default, as a store with no connection.
    pub fn set_connection(&self, status: Option<replication_core::ConnectionStatus>) {
        self.lock().connection = status;
    }

    /// What `should_accept_writes` answers (backpressure switch).
    pub fn set_accepting_writes(&self, accepting: bool) {
        self.lock().accepting_writes = accepting;
    }

    /// When on, replicated puts are appended to the CDC stream like sync-engine's `submit`
    /// does (the echo the engine must tolerate). Off by default, as in our node store.
    pub fn set_echo_replicated_puts(&self, echo: bool) {
        self.lock().echo_replicated_puts = echo;
    }

    /// When on, local deletes append bare DEL entries (`op` and `key` only), as sync-engine
    /// writes them, instead of entries carrying the delete's stamp: readers must then find
    /// the tombstone (or apply the bare-delete rule). Off by default, as in our node store.
    pub fn set_bare_deletes(&self, bare: bool) {
        self.lock().bare_deletes = bare;
    }

    /// When on, the store behaves like sync-engine's: replicated writes (`submit`, deletes,
    /// `apply_batch`) are stored as they come, without the conflict order, deletes (local
    /// or replicated) leave no tombstone, and replicated puts are appended to the CDC
    /// stream. Off by default (our node store's behaviour).
    pub fn set_like_sync_engine(&self, like: bool) {
        let mut state = self.lock();
        state.like_sync_engine = like;
        state.echo_replicated_puts = like;
        if like {
            state.tombstones.clear();
            state.recorded.clear();
        }
    }
}
