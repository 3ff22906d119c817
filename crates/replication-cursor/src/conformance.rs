//! The conformance suite every [`CursorStore`] backend must pass: the behaviour the engine
//! relies on, checked the same way for SQLite, in-memory and any future backend.
//!
//! A backend's test implements [`Backend`] and calls [`run_conformance`]; each check
//! panics (like `assert!`) with a message naming what broke. Enabled by the `conformance`
//! cargo feature.

use std::future::Future;
use std::sync::Arc;

use replication_core::{Cursor, CursorError, CursorStore, StreamId};

/// A backend under test: opens stores in named slots.
pub trait Backend: Send + Sync {
    /// The store type.
    type Store: CursorStore;

    /// Opens the store in `slot`. A slot is empty the first time it is opened; each check
    /// uses its own slot. Reopening a slot after `close` must show what was flushed there
    /// when the backend is [`durable`](Self::durable).
    fn open(&self, slot: &str) -> impl Future<Output = Result<Self::Store, CursorError>> + Send;

    /// Whether flushed cursors survive `close` and a reopen of the slot.
    fn durable(&self) -> bool;
}

/// Runs every check of the suite against `backend`.
pub async fn run_conformance<B: Backend>(backend: &B) {
    load_all_starts_empty(backend).await;
    flush_with_nothing_set_succeeds(backend).await;
    set_then_load_round_trips(backend).await;
    last_set_wins(backend).await;
    older_cursor_is_stored_as_given(backend).await;
    many_peers(backend).await;
    values_are_preserved_exactly(backend).await;
    concurrent_sets_and_flushes(backend).await;
    close_flushes_pending_cursors(backend).await;
    calls_after_close_fail_with_closed(backend).await;
}

/// A cursor whose fields all derive from `peer` and `n`, so a mix-up shows.
pub fn sample_cursor(peer: &str, n: u64) -> Cursor {
    Cursor {
        peer_id: peer.to_owned(),
        stream_id: StreamId::new(1_700_000_000_000 + n, n % 7),
        entries_added: Some(n * 3),
        updated_at_ms: 1_700_000_000_000 + i64::try_from(n).expect("sample n fits i64"),
    }
}

async fn open<B: Backend>(backend: &B, slot: &str) -> B::Store {
    match backend.open(slot).await {
        Ok(store) => store,
        Err(e) => panic!("opening conformance slot {slot}: {e}"),
    }
}

async fn load_sorted(store: &impl CursorStore, what: &str) -> Vec<Cursor> {
    let mut cursors = match store.load_all().await {
        Ok(c) => c,
        Err(e) => panic!("{what}: load_all failed: {e}"),
    };
    cursors.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
    cursors
}

fn sorted(mut cursors: Vec<Cursor>) -> Vec<Cursor> {
    cursors.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
    cursors
}

#[track_caller]
fn must<T>(result: Result<T, CursorError>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Closes `store` and, for a durable backend, checks the reopened slot holds `expected`.
async fn check_after_reopen<B: Backend>(
    backend: &B,
    store: B::Store,
    slot: &str,
    expected: &[Cursor],
) {
    must(store.close().await, "close");
    if backend.durable() {
        let reopened = open(backend, slot).await;
        let what = format!("{slot}: after close and reopen");
        assert_eq!(
            load_sorted(&reopened, &what).await,
            sorted(expected.to_vec()),
            "{what}"
        );
        must(reopened.close().await, "close after reopen");
    }
}

/// A new store holds no cursor.
pub async fn load_all_starts_empty<B: Backend>(backend: &B) {
    let store = open(backend, "load_all_starts_empty").await;
    assert!(
        load_sorted(&store, "new store").await.is_empty(),
        "a new store must hold no cursor"
    );
    check_after_reopen(backend, store, "load_all_starts_empty", &[]).await;
}

/// Flushing with nothing buffered is fine and stores nothing.
pub async fn flush_with_nothing_set_succeeds<B: Backend>(backend: &B) {
    let store = open(backend, "flush_with_nothing_set").await;
    must(store.flush().await, "flush of an empty store");
    must(store.flush().await, "second flush of an empty store");
    assert!(load_sorted(&store, "after empty flushes").await.is_empty());
    check_after_reopen(backend, store, "flush_with_nothing_set", &[]).await;
}

/// A cursor set and flushed comes back, before and after a reopen.
pub async fn set_then_load_round_trips<B: Backend>(backend: &B) {
    let slot = "set_then_load_round_trips";
    let store = open(backend, slot).await;
    let cursor = sample_cursor("uk.node.manchester-1", 42);
    must(store.set(cursor.clone()).await, "set");
    assert_eq!(
        load_sorted(&store, "before flush").await,
        vec![cursor.clone()],
        "load_all must show unflushed sets"
    );
    must(store.flush().await, "flush");
    assert_eq!(
        load_sorted(&store, "after flush").await,
        vec![cursor.clone()]
    );
    check_after_reopen(backend, store, slot, &[cursor]).await;
}

/// The latest `set` for a peer wins, flushed or not.
pub async fn last_set_wins<B: Backend>(backend: &B) {
    let slot = "last_set_wins";
    let store = open(backend, slot).await;
    for n in 1..=3 {
        must(store.set(sample_cursor("peer", n)).await, "set");
    }
    must(store.flush().await, "flush");
    assert_eq!(
        load_sorted(&store, "after flush").await,
        vec![sample_cursor("peer", 3)],
        "last set before flush wins"
    );
    must(store.set(sample_cursor("peer", 4)).await, "set after flush");
    assert_eq!(
        load_sorted(&store, "unflushed").await,
        vec![sample_cursor("peer", 4)],
        "an unflushed set wins too"
    );
    must(store.flush().await, "second flush");
    check_after_reopen(backend, store, slot, &[sample_cursor("peer", 4)]).await;
}

/// No monotonicity: an older cursor (after a stream was recreated) replaces a newer one.
pub async fn older_cursor_is_stored_as_given<B: Backend>(backend: &B) {
    let slot = "older_cursor_is_stored_as_given";
    let store = open(backend, slot).await;
    let newer = Cursor {
        peer_id: "p".into(),
        stream_id: StreamId::new(900, 9),
        entries_added: Some(5000),
        updated_at_ms: 10,
    };
    let older = Cursor {
        peer_id: "p".into(),
        stream_id: StreamId::new(3, 0),
        entries_added: Some(1),
        updated_at_ms: 20,
    };
    must(store.set(newer).await, "set newer");
    must(store.flush().await, "flush newer");
    must(store.set(older.clone()).await, "set older");
    must(store.flush().await, "flush older");
    assert_eq!(
        load_sorted(&store, "after moving back").await,
        vec![older.clone()],
        "an older cursor must be stored as given"
    );
    check_after_reopen(backend, store, slot, &[older]).await;
}

/// Many peers in one flush, then a partial update: every peer keeps its own cursor.
pub async fn many_peers<B: Backend>(backend: &B) {
    let slot = "many_peers";
    let store = open(backend, slot).await;
    let peers: Vec<String> = (0..500).map(|i| format!("node-{i:03}")).collect();
    for (i, peer) in (0u64..).zip(&peers) {
        must(store.set(sample_cursor(peer, i)).await, "set");
    }
    must(store.flush().await, "flush of 500 peers");
    for (i, peer) in (0u64..).zip(&peers).filter(|(i, _)| i % 2 == 0) {
        must(store.set(sample_cursor(peer, i + 1000)).await, "update");
    }
    must(store.flush().await, "flush of the update");
    let expected: Vec<Cursor> = (0u64..)
        .zip(&peers)
        .map(|(i, p)| sample_cursor(p, if i % 2 == 0 { i + 1000 } else { i }))
        .collect();
    assert_eq!(
        load_sorted(&store, "many peers").await,
        expected,
        "each peer keeps its own latest cursor"
    );
    check_after_reopen(backend, store, slot, &expected).await;
}

/// Extreme and unusual values come back bit for bit.
pub async fn values_are_preserved_exactly<B: Backend>(backend: &B) {
    let slot = "values_are_preserved_exactly";
    let store = open(backend, slot).await;
    let cursors = vec![
        Cursor {
            peer_id: "max".into(),
            stream_id: StreamId::MAX,
            entries_added: Some(u64::MAX),
            updated_at_ms: i64::MAX,
        },
        Cursor {
            peer_id: "zero".into(),
            stream_id: StreamId::ZERO,
            entries_added: None,
            updated_at_ms: i64::MIN,
        },
        Cursor {
            peer_id: "ms-max".into(),
            stream_id: StreamId::new(u64::MAX, 0),
            entries_added: Some(0),
            updated_at_ms: -1,
        },
        Cursor {
            peer_id: "seq-max".into(),
            stream_id: StreamId::new(0, u64::MAX),
            entries_added: Some(1 << 63),
            updated_at_ms: 0,
        },
        Cursor {
            peer_id: String::new(),
            stream_id: StreamId::new(1, 1),
            entries_added: None,
            updated_at_ms: 1,
        },
        Cursor {
            peer_id: "nœud.été-東京-1 'quoted' \"double\"; DROP TABLE cursors;--".into(),
            stream_id: StreamId::new(1_700_000_000_000, 3),
            entries_added: Some(7),
            updated_at_ms: 1_700_000_000_123,
        },
        Cursor {
            peer_id: "x".repeat(4096),
            stream_id: StreamId::new(2, 2),
            entries_added: Some(2),
            updated_at_ms: 2,
        },
    ];
    for cursor in &cursors {
        must(store.set(cursor.clone()).await, "set");
    }
    must(store.flush().await, "flush");
    assert_eq!(
        load_sorted(&store, "exact values").await,
        sorted(cursors.clone()),
        "values must round-trip exactly"
    );
    check_after_reopen(backend, store, slot, &cursors).await;
}

/// Sets and flushes from many tasks at once lose nothing.
pub async fn concurrent_sets_and_flushes<B: Backend>(backend: &B) {
    let slot = "concurrent_sets_and_flushes";
    let store = Arc::new(open(backend, slot).await);
    let mut tasks = Vec::new();
    for task in 0..8u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for n in 0..40u64 {
                store.set(sample_cursor(&format!("task-{task}"), n)).await?;
                store
                    .set(sample_cursor(&format!("task-{task}-peer-{n}"), n))
                    .await?;
                if n % 5 == 4 {
                    store.flush().await?;
                }
            }
            Ok::<(), CursorError>(())
        }));
    }
    for task in tasks {
        match task.await {
            Ok(result) => must(result, "concurrent set or flush"),
            Err(e) => panic!("concurrent task failed: {e}"),
        }
    }
    let mut expected = Vec::new();
    for task in 0..8u64 {
        expected.push(sample_cursor(&format!("task-{task}"), 39));
        expected.extend((0..40u64).map(|n| sample_cursor(&format!("task-{task}-peer-{n}"), n)));
    }
    let expected = sorted(expected);
    assert_eq!(
        load_sorted(store.as_ref(), "after concurrent writers").await,
        expected
    );
    let store = match Arc::try_unwrap(store) {
        Ok(store) => store,
        Err(_) => panic!("every task has finished, so no other reference remains"),
    };
    check_after_reopen(backend, store, slot, &expected).await;
}

/// `close` flushes what was set but not flushed.
pub async fn close_flushes_pending_cursors<B: Backend>(backend: &B) {
    let slot = "close_flushes_pending_cursors";
    let store = open(backend, slot).await;
    must(store.set(sample_cursor("a", 1)).await, "set a");
    must(store.flush().await, "flush");
    must(store.set(sample_cursor("a", 2)).await, "set a again");
    must(store.set(sample_cursor("b", 1)).await, "set b");
    check_after_reopen(
        backend,
        store,
        slot,
        &[sample_cursor("a", 2), sample_cursor("b", 1)],
    )
    .await;
}

/// After `close`, every call fails with `Closed`, a second `close` included.
pub async fn calls_after_close_fail_with_closed<B: Backend>(backend: &B) {
    let store = open(backend, "calls_after_close").await;
    must(store.set(sample_cursor("a", 1)).await, "set");
    must(store.close().await, "close");
    let closed = |what: &str, result: Result<(), CursorError>| {
        assert!(
            matches!(result, Err(CursorError::Closed { .. })),
            "{what} after close: expected Closed, got {result:?}"
        );
    };
    closed("load_all", store.load_all().await.map(|_| ()));
    closed("set", store.set(sample_cursor("a", 2)).await);
    closed("flush", store.flush().await);
    closed("close", store.close().await);
}
