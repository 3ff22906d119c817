//! Flushes per second of `SqliteCursorStore`, each flush after setting every peer's
//! cursor, for 1 and 64 peers and both `synchronous` levels, on a temp file.
//!
//! `cargo bench -p replication-cursor --bench flush` runs each case for a few seconds and
//! prints `cursor_flush peers=<n> synchronous=<level> flushes_per_sec=<rate>`. Without
//! `--bench` (as `cargo test --benches` runs it) each case does a few flushes only, and
//! checks the stored cursors, so the benchmark cannot rot unnoticed.

use std::time::{Duration, Instant};

use replication_core::{Cursor, CursorError, CursorStore, StreamId};
use replication_cursor::{SqliteCursorStore, SqliteOptions, Synchronous};

/// How long each case runs under `cargo bench`.
const MEASURE_FOR: Duration = Duration::from_secs(4);
/// Flushes per case in smoke mode.
const SMOKE_FLUSHES: u64 = 20;

fn cursor(peer: usize, round: u64) -> Cursor {
    Cursor {
        peer_id: format!("uk.node.peer-{peer:02}"),
        stream_id: StreamId::new(1_700_000_000_000 + round, peer as u64),
        entries_added: Some(round),
        updated_at_ms: 1_700_000_000_000 + round as i64,
    }
}

/// Runs one case; returns the number of flushes and the time they took.
async fn run_case(
    peers: usize,
    synchronous: Synchronous,
    measure: bool,
) -> Result<(u64, Duration), CursorError> {
    let dir = tempfile::tempdir().map_err(|e| CursorError::Unavailable {
        location: "temp dir".into(),
        message: e.to_string(),
        source: Some(Box::new(e)),
    })?;
    let path = dir.path().join("bench.db");
    // No background flush: every flush measured is an explicit one.
    let options = SqliteOptions::default()
        .with_flush_interval(None)
        .with_synchronous(synchronous);
    let store = SqliteCursorStore::open(&path, options).await?;
    let started = Instant::now();
    let mut round = 0;
    loop {
        round += 1;
        for peer in 0..peers {
            store.set(cursor(peer, round)).await?;
        }
        store.flush().await?;
        let done = if measure {
            started.elapsed() >= MEASURE_FOR
        } else {
            round >= SMOKE_FLUSHES
        };
        if done {
            break;
        }
    }
    let elapsed = started.elapsed();
    let stored = store.load_all().await?;
    let expected: Vec<Cursor> = (0..peers).map(|peer| cursor(peer, round)).collect();
    assert_eq!(stored, expected, "the last round of cursors is stored");
    store.close().await?;
    Ok((round, elapsed))
}

fn main() -> Result<(), CursorError> {
    let measure = std::env::args().any(|arg| arg == "--bench");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| CursorError::Unavailable {
            location: "runtime".into(),
            message: e.to_string(),
            source: None,
        })?;
    for synchronous in [Synchronous::Full, Synchronous::Normal] {
        for peers in [1, 64] {
            let (flushes, elapsed) = runtime.block_on(run_case(peers, synchronous, measure))?;
            let rate = flushes as f64 / elapsed.as_secs_f64();
            let level = format!("{synchronous:?}").to_lowercase();
            println!("cursor_flush peers={peers} synchronous={level} flushes_per_sec={rate:.0}");
        }
    }
    Ok(())
}
