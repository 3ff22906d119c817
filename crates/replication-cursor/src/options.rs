//! Tuning of the SQLite cursor store: background flush interval, durability level and
//! how hard to retry when another connection holds the database lock.

use std::time::Duration;

use replication_core::CursorConfig;

/// How [`SqliteCursorStore`](crate::SqliteCursorStore) opens and writes its database.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Longest time a `set` cursor stays unflushed: the writer thread flushes dirty cursors
    /// this long after the first unflushed `set`. `None` disables the background flush
    /// (only explicit `flush` and `close` write). Default 1s, like `cursor.flush_interval`.
    pub flush_interval: Option<Duration>,
    /// What a committed flush survives. Default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// How long SQLite itself waits for a lock held by another connection before it
    /// reports the database busy. Default 5s.
    pub busy_timeout: Duration,
    /// How many more times a transaction that still found the database busy is retried,
    /// with a backoff doubling from 10ms up to 500ms between attempts. Default 8.
    pub busy_retries: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            flush_interval: Some(Duration::from_secs(1)),
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            busy_retries: 8,
        }
    }
}

impl SqliteOptions {
    /// The defaults, with the background flush interval taken from the engine config.
    pub fn from_config(config: &CursorConfig) -> Self {
        Self {
            flush_interval: Some(config.flush_interval),
            ..Self::default()
        }
    }

    /// Sets [`flush_interval`](Self::flush_interval).
    pub fn with_flush_interval(mut self, interval: Option<Duration>) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Sets [`synchronous`](Self::synchronous).
    pub fn with_synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Sets [`busy_timeout`](Self::busy_timeout).
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets [`busy_retries`](Self::busy_retries).
    pub fn with_busy_retries(mut self, retries: u32) -> Self {
        self.busy_retries = retries;
        self
    }
}

/// SQLite's `PRAGMA synchronous` in WAL mode: when a commit reaches stable storage.
///
/// Both levels make a returned `flush` survive a crash or SIGKILL of the process: the
/// commit has been written to the WAL file through the operating system, whose page
/// cache outlives the process. They differ on power loss or a kernel crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync the WAL on every commit: a returned flush also survives power loss on a disk
    /// that honours fsync. Costs one fsync per flush, which the coalescing keeps rare.
    #[default]
    Full,
    /// fsync only at WAL checkpoints: a power loss may roll back the last flushes (never
    /// corrupting the file). A rolled-back cursor points to entries already applied, so
    /// the engine re-reads and re-applies them, which is idempotent.
    Normal,
}

impl Synchronous {
    /// The value for `PRAGMA synchronous`.
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}
