//! Durability under SIGKILL and sharing one file between processes, with real processes.
//!
//! The child processes are this test binary run again (`std::env::current_exe()`) with
//! `CURSOR_CHILD_DB` set and an exact filter selecting [`child_writer`], which then writes
//! and flushes cursors in a loop, printing `ACK <n>` on stdout only after the flush of
//! round `n` returned. The parent knows the last acknowledged round when it kills the
//! child, so it can check that a reopened store never holds anything older.

// A panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use replication_core::{Cursor, CursorStore, StreamId};
use replication_cursor::{SqliteCursorStore, SqliteOptions};

/// Path of the database the child writes; its presence makes `child_writer` a child.
const ENV_DB: &str = "CURSOR_CHILD_DB";
/// First round number the child writes.
const ENV_START: &str = "CURSOR_CHILD_START";
/// Number of rounds to write, then exit; unset means until killed.
const ENV_ROUNDS: &str = "CURSOR_CHILD_ROUNDS";
/// Writer tag: prefix of the child's own peers and `seq` of its cursor for the shared peer.
const ENV_TAG: &str = "CURSOR_CHILD_TAG";

/// Peers each child writes besides the shared one.
const OWN_PEERS: u64 = 4;
/// A peer every child writes, to make concurrent writers touch the same row.
const SHARED_PEER: &str = "shared";

/// The cursors of round `n` by writer `tag`: every field derives from `n`.
fn round_cursors(tag: u64, n: u64) -> Vec<Cursor> {
    let cursor = |peer_id: String, seq: u64| Cursor {
        peer_id,
        stream_id: StreamId::new(n, seq),
        entries_added: Some(n),
        updated_at_ms: i64::try_from(n).expect("round numbers stay small"),
    };
    let mut cursors: Vec<Cursor> = (0..OWN_PEERS)
        .map(|k| cursor(format!("w{tag}-{k}"), k))
        .collect();
    cursors.push(cursor(SHARED_PEER.to_owned(), tag));
    cursors
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

/// Writes rounds `start..start + rounds` (or forever), flushing each and printing `ACK n`
/// after the flush returned.
async fn write_rounds(path: &Path, tag: u64, start: u64, rounds: Option<u64>) {
    let store = SqliteCursorStore::open(path, SqliteOptions::default().with_flush_interval(None))
        .await
        .unwrap();
    let end = rounds.map_or(u64::MAX, |r| start + r);
    for n in start..end {
        for cursor in round_cursors(tag, n) {
            store.set(cursor).await.unwrap();
        }
        store.flush().await.unwrap();
        // One write per line on a pipe is atomic, so the parent never sees half a line.
        // If the parent is gone, printing panics and the child ends.
        println!("ACK {n}");
    }
    store.close().await.unwrap();
}

/// The child's loop when run as a child; otherwise a short run of the same loop checked
/// by reopening, so this test is a real test in a plain `cargo test` too.
#[tokio::test]
async fn child_writer() {
    if let Ok(path) = std::env::var(ENV_DB) {
        let tag = env_u64(ENV_TAG).unwrap_or(0);
        write_rounds(
            Path::new(&path),
            tag,
            env_u64(ENV_START).unwrap_or(1),
            env_u64(ENV_ROUNDS),
        )
        .await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inline.db");
    write_rounds(&path, 1, 10, Some(5)).await;
    let reopened = SqliteCursorStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(
        sorted(reopened.load_all().await.unwrap()),
        sorted(round_cursors(1, 14))
    );
}

fn sorted(mut cursors: Vec<Cursor>) -> Vec<Cursor> {
    cursors.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
    cursors
}

/// Starts a child writer; its stdout acks arrive on the returned channel.
fn spawn_child(
    path: &Path,
    tag: u64,
    start: u64,
    rounds: Option<u64>,
) -> (Child, mpsc::Receiver<u64>) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(ENV_DB, path)
        .env(ENV_TAG, tag.to_string())
        .env(ENV_START, start.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    match rounds {
        Some(r) => command.env(ENV_ROUNDS, r.to_string()),
        None => command.env_remove(ENV_ROUNDS),
    };
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (acks, received) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest writes `test child_writer ... ` without a newline before the test
            // runs, so the first ack shares its line: look for the marker anywhere.
            if let Some(at) = line.rfind("ACK ") {
                let n: u64 = line[at + 4..]
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("bad ack line {line:?}"));
                if acks.send(n).is_err() {
                    break;
                }
            }
        }
    });
    (child, received)
}

/// splitmix64: enough randomness for kill delays without a dependency. The seed is
/// printed so a failing run can be replayed.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % bound
    }
}

/// The single round number all of writer `tag`'s cursors in the store carry, or `None`
/// if it has none. One flush writes a whole round in one transaction, so a mix of
/// rounds would mean a torn transaction.
async fn stored_round(path: &Path, tag: u64) -> Option<u64> {
    let store = SqliteCursorStore::open(path, SqliteOptions::default())
        .await
        .unwrap();
    let cursors = store.load_all().await.unwrap();
    store.close().await.unwrap();
    let own: Vec<&Cursor> = cursors
        .iter()
        .filter(|c| c.peer_id.starts_with(&format!("w{tag}-")))
        .collect();
    let round = own.first()?.stream_id.ms;
    let expected = round_cursors(tag, round);
    assert_eq!(
        own.len(),
        expected.len() - 1,
        "every own peer is written in each round"
    );
    for cursor in own {
        assert!(
            expected.contains(cursor),
            "cursor {cursor:?} is not from round {round}: torn flush"
        );
    }
    Some(round)
}

#[tokio::test]
async fn flushed_cursors_survive_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("crash.db");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed {seed}");
    let mut random = Random(seed);

    // Highest round known durable: acknowledged by a child, or found after a kill.
    let mut durable: Option<u64> = None;
    for kill in 0..20 {
        let start = durable.map_or(1, |n| n + 1);
        let (mut child, acks) = spawn_child(&path, 1, start, None);
        let mut first_ack = None;
        if kill % 4 == 0 {
            // Sometimes kill without waiting: during start-up, open or schema creation.
            thread::sleep(Duration::from_millis(random.below(60)));
        } else {
            // Otherwise once the loop runs, at a random point within it.
            first_ack = Some(
                acks.recv_timeout(Duration::from_secs(120))
                    .expect("child acknowledged no flush"),
            );
            thread::sleep(Duration::from_millis(random.below(150)));
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        // The reader thread ends at EOF, so this drains every ack the child printed. A
        // child that acknowledged nothing leaves the previous children's durable round.
        let acknowledged = acks.iter().last().or(first_ack).or(durable);

        let found = stored_round(&path, 1).await;
        eprintln!("kill {kill}: last acknowledged round {acknowledged:?}, store holds {found:?}");
        // The child may have committed the round after the acknowledged one and died
        // before printing; anything else (older, missing, further ahead) is a bug.
        let next = acknowledged.map_or(1, |n| n + 1);
        assert!(
            found == acknowledged || found == Some(next),
            "kill {kill}: last acknowledged round {acknowledged:?}, store holds round {found:?}"
        );
        durable = found.or(durable);
    }
    assert!(durable.is_some(), "at least one child got to flush");
}

#[tokio::test]
async fn two_processes_writing_one_file_keep_it_sound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    const ROUNDS: u64 = 200;
    // Both start together on a file that does not exist yet, so they also race to
    // create it and its schema.
    let children: Vec<(Child, mpsc::Receiver<u64>)> = (1..=2)
        .map(|tag| spawn_child(&path, tag, 1, Some(ROUNDS)))
        .collect();
    for (mut child, acks) in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "a writer failed: {status}");
        assert_eq!(
            acks.iter().last(),
            Some(ROUNDS),
            "every flush was acknowledged"
        );
    }

    let conn = rusqlite::Connection::open(&path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    conn.close().unwrap();
    for tag in 1..=2 {
        assert_eq!(
            stored_round(&path, tag).await,
            Some(ROUNDS),
            "writer {tag}'s last round"
        );
    }
    let store = SqliteCursorStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    let shared = store
        .load_all()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.peer_id == SHARED_PEER)
        .unwrap();
    assert_eq!(shared.stream_id.ms, ROUNDS);
    assert!(
        shared.stream_id.seq == 1 || shared.stream_id.seq == 2,
        "written by one of the writers"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "nothing was taken for corrupt: {leftovers:?}"
    );
}
